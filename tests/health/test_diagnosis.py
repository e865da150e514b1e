"""The root-cause search names the scope that explains a failure spike: all of it, and
nothing more."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from paymend.health.diagnosis import Observation, diagnose, rose

CHANNELS, BANKS, REGIONS, METHODS = (
    ["sim_a", "sim_b"],
    ["ICBC", "CCB", "CMB", "BOC"],
    ["CN-East", "CN-North", "CN-South"],
    ["card", "alipay"],
)


def traffic(
    n: int, seed: int, broken: dict[str, str] | None = None, rate: float = 0.8
) -> list[Observation]:
    rng = random.Random(seed)
    out: list[Observation] = []
    for _ in range(n):
        dims: dict[str, str | None] = {
            "channel": rng.choice(CHANNELS),
            "bank": rng.choice(BANKS),
            "region": rng.choice(REGIONS),
            "method": rng.choice(METHODS),
        }
        hit = broken is not None and all(dims[k] == v for k, v in broken.items())
        failed = rng.random() < (rate if hit else 0.01)
        dims["code"] = "SYSTEM_ERROR" if failed else None
        out.append(Observation(dims, failed, len(out) / 100))
    return out


def test_a_bank_failing_on_every_channel_is_named_as_the_bank() -> None:
    top = diagnose(traffic(4000, 1), traffic(4000, 2, {"bank": "CMB"}))[0]
    assert top.scope == {"bank": "CMB"}  # not narrowed to a channel: both fail alike
    assert top.explanatory_power > 0.8


def test_a_channel_outage_is_named_as_the_channel() -> None:
    top = diagnose(traffic(4000, 3), traffic(4000, 4, {"channel": "sim_a"}, rate=1.0))[0]
    assert top.scope == {"channel": "sim_a"}


def test_a_regional_burst_is_named_as_the_region() -> None:
    top = diagnose(traffic(4000, 5), traffic(4000, 6, {"region": "CN-North"}, rate=0.5))[0]
    assert top.scope == {"region": "CN-North"}


def test_noise_is_not_blamed_on_anyone() -> None:
    suspects = diagnose(traffic(2000, 7), traffic(2000, 8))  # the same 1% everywhere
    assert all(s.failures - s.expected < 15 for s in suspects)


def test_a_spike_is_not_explained_by_a_bystander() -> None:
    suspects = diagnose(traffic(4000, 9), traffic(4000, 10, {"bank": "CMB"}))
    assert all(s.scope.get("bank") != "CCB" for s in suspects)


def test_a_channel_whose_circuit_opened_is_still_named_though_routing_moved_away() -> None:
    """A few failing calls on the dead channel, thousands of ordinary ones rerouted to the
    other: by counts a method could look as big; by the rise of its rate the channel is
    the only answer."""
    rng = random.Random(11)

    def call(channel: str, failed: bool) -> Observation:
        dims = {
            "channel": channel,
            "method": rng.choice(METHODS),
            "bank": rng.choice(BANKS),
            "region": rng.choice(REGIONS),
        }
        return Observation({**dims, "code": "ERR" if failed else None}, failed)

    baseline = [call(rng.choice(CHANNELS), rng.random() < 0.003) for _ in range(4000)]
    anomaly = [call("sim_a", i < 6) for i in range(30)]
    anomaly += [call("sim_b", rng.random() < 0.004) for _ in range(1600)]
    top = diagnose(baseline, anomaly)[0]
    assert top.scope == {"channel": "sim_a"}
    assert top.p_value < 1e-6


def test_a_channel_failing_in_one_region_is_named_as_both() -> None:
    top = diagnose(
        traffic(4000, 12), traffic(4000, 13, {"channel": "sim_b", "region": "CN-North"}, 0.5)
    )[0]
    assert top.scope == {"channel": "sim_b", "region": "CN-North"}
    assert top.explanatory_power > 0.8


PLACES = {"channel": CHANNELS, "method": METHODS, "bank": BANKS, "region": REGIONS}


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from(sorted(PLACES)), min_size=1, max_size=2, unique=True).flatmap(
        lambda dims: st.fixed_dictionaries({d: st.sampled_from(PLACES[d]) for d in dims})
    ),
    st.integers(0, 10**6),
)
def test_any_broken_scope_of_one_or_two_dimensions_is_found_exactly(
    broken: dict[str, str], seed: int
) -> None:
    top = diagnose(traffic(4000, seed), traffic(4000, seed + 1, broken, 0.6))[0]
    assert top.scope == broken


def test_a_part_that_only_happens_to_hold_the_failures_is_widened_to_the_channel() -> None:
    """The six failures of a dead channel all fell on card payments and its five alipay
    calls got through, by chance: channel x card fails no more than the channel's other
    calls (Fisher p = 1/462), so the channel is the place, named once."""
    rng = random.Random(14)

    def call(channel: str, method: str, failed: bool, code: str = "SYSTEM_ERROR") -> Observation:
        return Observation(
            {"channel": channel, "method": method, "code": code if failed else None}, failed
        )

    base = [call(c, rng.choice(METHODS), rng.random() < 0.01) for c in CHANNELS * 1000]
    now = [call("sim_a", "card", True, "ERR_NEW") for _ in range(6)]
    now += [call("sim_a", "alipay", False) for _ in range(5)]
    now += [call("sim_b", rng.choice(METHODS), False) for _ in range(100)]
    places = [s.scope for s in diagnose(base, now) if "code" not in s.scope]
    assert places == [{"channel": "sim_a"}]


def test_a_few_failures_of_a_new_code_name_the_channel_they_came_from() -> None:
    """Four expired-credential errors hide in a busy channel's usual noise; by their code
    they do not."""
    rng = random.Random(15)

    def call(channel: str, code: str | None = None, noise: float = 0.004) -> Observation:
        failed = code is not None or rng.random() < noise
        dims = {"channel": channel, "bank": rng.choice(BANKS), "region": rng.choice(REGIONS)}
        return Observation({**dims, "code": code or ("SYSTEM_ERROR" if failed else None)}, failed)

    base = [call(rng.choice(["sim_a"] * 9 + ["sim_b"])) for _ in range(3000)]
    now = [call(rng.choice(["sim_a"] * 9 + ["sim_b"])) for _ in range(1200)]
    now += [call("sim_a", "credentials_expired") for _ in range(4)]
    top = diagnose(base, now)[0]
    assert (top.scope, top.symptom) == ({"channel": "sim_a"}, "credentials_expired")


def test_every_payment_on_the_backup_channel_still_names_it() -> None:
    """The primary is down and its circuit open: every call of the anomaly window went to
    sim_b. One value now, but two before: the channel is an answer, not a constant."""
    base = traffic(4000, 16)
    now = [o for o in traffic(6000, 17, {"channel": "sim_b"}, 0.3) if o.dims["channel"] == "sim_b"]
    top = diagnose(base, now)[0]
    assert top.scope == {"channel": "sim_b"}


def test_a_dimension_with_one_value_always_tells_nothing() -> None:
    def one_currency(calls: list[Observation]) -> list[Observation]:
        return [Observation({**o.dims, "currency": "CNY"}, o.failed, o.at) for o in calls]

    dims = ("channel", "bank", "region", "method", "currency", "code")
    suspects = diagnose(
        one_currency(traffic(4000, 18)),
        one_currency(traffic(4000, 19, {"bank": "CMB"})),
        dims,
    )
    assert suspects[0].scope == {"bank": "CMB"}
    assert all("currency" not in s.scope for s in suspects)


def test_calls_made_before_the_fault_do_not_make_a_channel_look_healthy() -> None:
    """CMB fails on both channels from t=10. sim_a's circuit for CMB opened at once, so
    most of sim_a's CMB calls in the window were made before the fault: compared from the
    first failure on, sim_a and sim_b fail alike, and the bank is the answer."""
    rng = random.Random(20)

    def call(t: float, channel: str) -> Observation:
        failed = t >= 10 and rng.random() < 0.8
        return Observation({"channel": channel, "bank": "CMB", "code": None}, failed, t)

    other = [
        Observation({"channel": rng.choice(CHANNELS), "bank": "ICBC", "code": None}, False, t)
        for t in range(40)
    ] * 20
    base = [
        Observation({"channel": c, "bank": b, "code": None}, False, 0)
        for c in CHANNELS
        for b in BANKS
    ] * 200
    now = [call(t / 10, "sim_a") for t in range(0, 100)]  # before the fault
    now += [call(10 + t / 10, "sim_a") for t in range(10)]  # until the circuit opened
    now += [call(10 + t / 10, "sim_b") for t in range(300)]  # failed over
    top = diagnose(base, now + other)[0]
    assert top.scope == {"bank": "CMB"}


def test_equal_explanations_prefer_the_wider_scope() -> None:
    """All four failures are on sim_a, which carries nine calls in ten, and in CN-East,
    which carries half: either explains them all; the channel is the wider claim."""
    rng = random.Random(21)

    def call(failed: bool, region: str | None = None) -> Observation:
        channel = "sim_a" if failed or rng.random() < 0.9 else "sim_b"
        dims = {"channel": channel, "region": region or rng.choice(["CN-East", "CN-North"])}
        return Observation({**dims, "code": "token_expired" if failed else None}, failed)

    top = diagnose(
        [call(False) for _ in range(3000)],
        [call(False) for _ in range(1200)] + [call(True, "CN-East") for _ in range(4)],
    )[0]
    assert top.scope == {"channel": "sim_a"}


def overlapping(seed: int) -> list[Observation]:
    """A big fault (sim_b x CMB fails 80% of its calls) beside a small one that a breaker
    stopped after 30 calls (sim_a x CN-North fails half of them; its later calls went
    to sim_b)."""
    rng = random.Random(seed)
    out, small = [], 0
    for o in traffic(4000, seed, {"channel": "sim_b", "bank": "CMB"}):
        dims = dict(o.dims)
        if dims["channel"] == "sim_a" and dims["region"] == "CN-North":
            small += 1
            if small > 30:
                dims["channel"] = "sim_b"
            failed = rng.random() < (0.5 if small <= 30 else 0.8 if dims["bank"] == "CMB" else 0.01)
            dims["code"] = "SYSTEM_ERROR" if failed else None
            o = Observation(dims, failed, o.at)
        out.append(o)
    return out


def test_an_incident_beside_a_bigger_fault_is_named_by_its_own_failures() -> None:
    """The big fault explains most of the window's excess; the incident opened for the
    small one is about the small one's failures, and names it first."""
    base, now = traffic(4000, 21), overlapping(22)
    assert diagnose(base, now)[0].scope == {"channel": "sim_b", "bank": "CMB"}
    own = diagnose(base, now, around={"channel": "sim_a", "region": "CN-North"})
    assert own[0].scope == {"channel": "sim_a", "region": "CN-North"}
    assert {"channel": "sim_b", "bank": "CMB"} in [s.scope for s in own]  # still listed


def test_an_incident_on_one_channel_of_a_bank_wide_fault_names_the_bank() -> None:
    base, now = traffic(4000, 23), traffic(4000, 24, {"bank": "CMB"})
    for around in ({"channel": "sim_a", "bank": "CMB"}, {"channel": "sim_b", "bank": "CMB"}):
        assert diagnose(base, now, around=around)[0].scope == {"bank": "CMB"}


def test_an_incident_whose_scope_did_not_fail_keeps_the_order_of_evidence() -> None:
    base, now = traffic(4000, 25), traffic(4000, 26, {"bank": "CMB"})
    assert diagnose(base, now, around={"region": "nowhere"}) == diagnose(base, now)


def test_a_window_with_no_excess_of_failures_rose_nowhere() -> None:
    """Asked of a window that fails exactly as its baseline did (here: never), a scope
    did not rise, and asking divides by no excess."""
    calm = [Observation({"channel": "sim_a", "code": None}, False, i / 10) for i in range(20)]
    assert not rose(calm, calm, {"channel": "sim_a"})

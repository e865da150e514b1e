"""The root-cause search names the dimension value that explains a failure spike."""

from __future__ import annotations

import random

from paymend.health.diagnosis import Observation, diagnose

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
    out = []
    for _ in range(n):
        dims = {
            "channel": rng.choice(CHANNELS),
            "bank": rng.choice(BANKS),
            "region": rng.choice(REGIONS),
            "method": rng.choice(METHODS),
        }
        hit = broken is not None and all(dims[k] == v for k, v in broken.items())
        failed = rng.random() < (rate if hit else 0.01)
        dims["code"] = "SYSTEM_ERROR" if failed else None
        out.append(Observation(dims, failed))
    return out


def test_a_bank_failing_on_every_channel_is_named_as_the_bank() -> None:
    top = diagnose(traffic(4000, 1), traffic(4000, 2, {"bank": "CMB"}))[0]
    assert (top.dimension, top.value) == ("bank", "CMB")
    assert top.explanatory_power > 0.8


def test_a_channel_outage_is_named_as_the_channel() -> None:
    top = diagnose(traffic(4000, 3), traffic(4000, 4, {"channel": "sim_a"}, rate=1.0))[0]
    assert (top.dimension, top.value) == ("channel", "sim_a")


def test_a_regional_burst_is_named_as_the_region() -> None:
    top = diagnose(traffic(4000, 5), traffic(4000, 6, {"region": "CN-North"}, rate=0.5))[0]
    assert (top.dimension, top.value) == ("region", "CN-North")


def test_noise_is_not_blamed_on_anyone() -> None:
    suspects = diagnose(traffic(2000, 7), traffic(2000, 8))  # the same 1% everywhere
    assert all(s.failures - s.expected < 15 for s in suspects)


def test_a_spike_is_not_explained_by_a_bystander() -> None:
    suspects = diagnose(traffic(4000, 9), traffic(4000, 10, {"bank": "CMB"}))
    assert ("bank", "CCB") not in {(s.dimension, s.value) for s in suspects}


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
    assert (top.dimension, top.value) == ("channel", "sim_a")
    assert top.p_value < 1e-6

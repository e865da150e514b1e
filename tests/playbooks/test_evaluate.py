"""The evaluator: a signal that holds starts a playbook on its key; a quiet spell with
closed circuits recovers it. Driven on a real in-memory health book, time by hand."""

from __future__ import annotations

from pathlib import Path

from paymend.health.book import HealthBook
from paymend.health.outcomes import Outcome
from paymend.playbooks.evaluate import Evaluator, Recovered, Started, in_scope, scope_of
from paymend.playbooks.model import Playbook, load_playbooks

S, B, T, U = Outcome.SUCCESS, Outcome.BUSINESS, Outcome.TECHNICAL, Outcome.UNKNOWN
REGION = ("sim_a", "sim_a|region=CN-North", "*|region=CN-North")
ELSEWHERE = ("sim_a", "sim_a|region=CN-East", "*|region=CN-East")


def playbook(tmp_path: Path, when: str, recover: str = "{after: 30s}") -> Playbook:
    path = tmp_path / "p.yaml"
    path.write_text(
        "playbooks:\n"
        "  - name: watch\n"
        "    description: test\n"
        "    severity: major\n"
        f"    when: {when}\n"
        "    do: [alert, open_incident]\n"
        f"    recover: {recover}\n"
    )
    return load_playbooks(path)[0]


def traffic(book: HealthBook, start: float, end: float, fail_every: int | None) -> None:
    """20 calls a second on two regions; CN-North fails every `fail_every`-th call."""
    t, n = start, 0
    while t < end:
        book.record(ELSEWHERE, t, S, 120)
        failed = fail_every is not None and n % fail_every == 0
        book.record(REGION, t + 0.025, T if failed else S, 120)
        t += 0.1
        n += 1


def test_keys_in_scope() -> None:
    assert in_scope("sim_a|region=CN-North", "channel_region")
    assert not in_scope("sim_a|region=CN-North", "channel")
    assert in_scope("*|bank=CMB", "bank") and not in_scope("*|bank=CMB", "channel_bank")
    assert scope_of("sim_a|bank=CMB") == {"channel": "sim_a", "bank": "CMB"}
    assert scope_of("*|region=CN-North") == {"region": "CN-North"}


def test_an_error_spike_starts_the_playbook_on_its_key_only(tmp_path: Path) -> None:
    p = playbook(tmp_path, "{signal: error_spike, scope: channel_region, min_calls: 20}")
    ev = Evaluator([p])
    book = HealthBook()
    traffic(book, 0, 300, None)
    assert ev.tick(book, 300) == []
    traffic(book, 300, 303, 2)  # half the CN-North calls fail
    changes = ev.tick(book, 303)
    assert [(type(c), c.key) for c in changes] == [(Started, "sim_a|region=CN-North")]
    started = changes[0]
    assert isinstance(started, Started) and started.signal.value > 0.1  # over 10 s
    assert ev.tick(book, 304) == []  # started once, not every tick
    assert ev.active() == [("watch", "sim_a|region=CN-North")]


def test_it_recovers_after_a_quiet_spell_with_closed_circuits(tmp_path: Path) -> None:
    p = playbook(tmp_path, "{signal: error_spike, scope: channel_region, min_calls: 20}")
    ev = Evaluator([p])
    book = HealthBook()
    traffic(book, 0, 300, None)
    traffic(book, 300, 303, 2)
    ev.tick(book, 303)
    book.force_open("sim_a|region=CN-North", 303, "the playbook's action")
    for t in range(304, 334):
        traffic(book, t - 1, t, None)
        assert ev.tick(book, t) == []  # clear, but not for 30 s yet / circuit not closed
    for second in range(334, 400):
        for _ in range(3):  # probes pass one at a time and close the circuit
            if book.allow("sim_a|region=CN-North", second):
                book.record(REGION, second + 0.1, S, 100)
        changes = ev.tick(book, second + 0.5)
        if changes:
            break
    assert [type(c) for c in changes] == [Recovered]
    assert "circuit is closed" in changes[0].why  # type: ignore[union-attr]
    assert ev.active() == []


def test_a_wave_of_declines_starts_nothing(tmp_path: Path) -> None:
    playbooks = load_playbooks(Path(__file__).parents[2] / "src/paymend/playbooks.yaml")
    ev = Evaluator(playbooks)
    book = HealthBook()
    traffic(book, 0, 300, None)
    t = 300.0
    while t < 420:
        book.record(REGION, t, B, 150)  # insufficient funds, everyone
        book.record(ELSEWHERE, t + 0.05, B, 150)
        t += 0.05
        if t % 1 < 0.05:
            assert ev.tick(book, t) == []
    assert book.state("sim_a") is book.state("sim_a|region=CN-North")


def test_a_failure_ops_must_hear_of_starts_a_playbook_at_once(tmp_path: Path) -> None:
    p = playbook(tmp_path, "{signal: ops_alert, scope: channel, recent: 60s}", "{after: 5m}")
    ev = Evaluator([p])
    book = HealthBook()
    traffic(book, 0, 10, None)
    assert ev.tick(book, 10) == []
    book.flag("sim_a", 10.5, "credentials_expired")
    changes = ev.tick(book, 11)
    assert [(type(c), c.key) for c in changes] == [(Started, "sim_a")]
    assert "credentials_expired" in changes[0].signal.why  # type: ignore[union-attr]
    t = 11
    while not (changes := ev.tick(book, t)):
        t += 1
    assert isinstance(changes[0], Recovered)
    assert t == 10 + 60 + 300  # the alert ages out after 60 s, then 5 quiet minutes


def test_a_sick_channel_opens_one_incident_not_one_per_scope(tmp_path: Path) -> None:
    p = playbook(tmp_path, "{signal: circuit_open, scope: [channel_region, channel_bank]}")
    ev = Evaluator([p])
    book = HealthBook()
    for i in range(10):
        book.record(REGION, i * 0.01, T, 20)
    assert book.state("sim_a").value == "open"
    assert book.state("sim_a|region=CN-North").value == "open"
    assert ev.tick(book, 1) == []  # channel-down speaks for it


def test_a_scope_failing_far_worse_than_its_sick_channel_is_a_fault_of_its_own(
    tmp_path: Path,
) -> None:
    p = playbook(tmp_path, "{signal: circuit_open, scope: channel_bank}")
    ev = Evaluator([p])
    book = HealthBook()
    cmb = ("sim_b", "sim_b|bank=CMB")
    icbc = ("sim_b", "sim_b|bank=ICBC")
    for i in range(100):  # the channel times out a third of the time; CMB nearly always
        book.record(icbc, i * 0.2, T if i % 3 == 0 else S, 3000)
        book.record(cmb, i * 0.2 + 0.1, T if i % 10 else S, 3000)
    assert book.state("sim_b").value != "closed"
    assert book.state("sim_b|bank=CMB").value != "closed"
    changes = ev.tick(book, 20.5)
    assert [(type(c), c.key) for c in changes] == [(Started, "sim_b|bank=CMB")]


def test_a_scope_that_tripped_with_its_channel_stays_covered_until_it_closes(
    tmp_path: Path,
) -> None:
    p = playbook(tmp_path, "{signal: circuit_open, scope: channel_region}")
    ev = Evaluator([p])
    book = HealthBook()
    for i in range(10):
        book.record(REGION, i * 0.01, T, 20)
    assert ev.tick(book, 1) == []
    for t in range(11, 14):  # the channel's probes pass; the region's circuit waits
        assert book.allow("sim_a", t)
        book.record(["sim_a"], t + 0.1, S, 20)
    assert book.state("sim_a").value == "closed"
    assert book.state("sim_a|region=CN-North").value == "open"
    assert ev.tick(book, 15) == []  # still the channel's fault, not a second one


CMB = ("sim_a", "sim_a|bank=CMB", "*|bank=CMB")
BANK_DOWN = "{signal: error_spike, scope: bank, threshold: 0.6, min_calls: 30, for: 5s}"


def bank_down(tmp_path: Path) -> Playbook:
    path = tmp_path / "p.yaml"
    path.write_text(
        "playbooks:\n"
        "  - name: bank-down\n"
        "    description: test\n"
        "    severity: critical\n"
        f"    when: {BANK_DOWN}\n"
        "    do: [{pause: {what: bank}}, alert]\n"
        "    recover: {after: 2m}\n"
    )
    return load_playbooks(path)[0]


def paused_bank(tmp_path: Path) -> tuple[Evaluator, HealthBook]:
    """CMB times out on every call from 300 s on; the playbook pauses it once the errors
    have held 5 s over 60 % of the last ten seconds' calls (312 s)."""
    ev, book = Evaluator([bank_down(tmp_path)]), HealthBook()
    for i in range(3000):  # ten healthy calls a second
        book.record(CMB, i * 0.1, S, 150)
    for i in range(121):
        book.record(CMB, 300 + i * 0.1, U, 3000)
        ev.tick(book, 300 + i * 0.1)
    assert ev.active() == [("bank-down", "*|bank=CMB")]
    return ev, book


def test_a_paused_bank_recovers_once_its_probes_pass(tmp_path: Path) -> None:
    """Paused, the bank has no traffic but its probes, one a second: while they fail the
    pause holds, past the two minutes of `after`; once the last failing one has left
    the trigger's ten seconds, and at least five passed, it ends at once."""
    ev, book = paused_bank(tmp_path)
    for t in range(313, 600):  # the fault lasts: every probe times out
        book.record(CMB, t, U, 3000)
        assert ev.tick(book, t + 0.5) == []
    changes = []
    for t in range(600, 620):  # the bank is back
        book.record(CMB, t, S, 150)
        changes = ev.tick(book, t + 0.5)
        if changes:
            break
    assert [type(c) for c in changes] == [Recovered]
    assert "10 probes passed in 10s" in changes[0].why  # type: ignore[union-attr]
    assert changes[0].at == 609.5  # the fault's last timeout left the 10 s window
    assert ev.active() == []


def test_a_paused_bank_without_probes_recovers_after_its_quiet_spell(tmp_path: Path) -> None:
    """With nothing at all passing (no payments of the bank), `after` still ends it."""
    ev, book = paused_bank(tmp_path)
    changes = []
    for t in range(313, 500):
        changes = ev.tick(book, t)
        if changes:
            break
    assert [type(c) for c in changes] == [Recovered]
    assert "clear for 120s" in changes[0].why  # type: ignore[union-attr]

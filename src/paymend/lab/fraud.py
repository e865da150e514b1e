"""Fraud in the lab: good customers with identities, and attacks beside them.

A scenario with a `fraud:` section (lab/fraud_spec.py) runs the real risk gate
(engine/risk_gate.py, the shipped rules unless the section names a file). Each good
payment carries its customer's id, phone (device), IP, card fingerprint and countries in
its metadata, as a checkout passes them; a customer is a pure function of the seed and
the payment's number, and so is when their account was opened (`customer_since`: most
months or years before the run, `new_customers` of them within its last month), so the
good payments themselves (their times, amounts, truths) are the scenario's as without
fraud. The attacks are payments of their own, numbered
from FRAUD_BASE so their draws never meet a good payment's, kept out of the run's
arrivals: every figure the oracle and the naive checkout compare is the good customers'.
`figures` tells what became of both: fraud blocked, stopped before any provider call,
charged; good payments blocked, held, challenged.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from paymend.domain.clock import Clock
from paymend.engine.risk_gate import RiskGate, build_risk
from paymend.lab.arrivals import Arrival
from paymend.lab.fraud_spec import AccountTakeover, CardTesting, Wave
from paymend.lab.scenario import Scenario
from paymend.providers.simulator import ChargeState, Ledger
from paymend.store import run_records
from paymend.store.database import Connection, Store

if TYPE_CHECKING:
    from paymend.lab.records import Records

FRAUD_BASE = 1_000_000  # the attacks' payment numbers start here
CARD_TESTING = "card_testing"
ACCOUNT_TAKEOVER = "account_takeover"
FIRST_MINUTE_S = 60.0  # the targets count card testing after its first minute
TRIP = "JP"  # where a good customer abroad pays from
NEW_DAYS = 30.0  # a new customer opened their account this many days before the run, at most
OLD_DAYS = (60.0, 1095.0)  # and the others between two months and three years before it
STOLEN_CARD_TRUTHS = ("incorrect_details", "expired_card", "fraud")
FRAUD_FIGURES = (
    "fraud_attempts",
    "fraud_blocked",
    "fraud_stopped",
    "fraud_charged",
    "card_testing_stopped_after_first_minute",
    "account_takeover_charged",
    "good_blocked",
    "good_blocked_rate",
    "good_blocked_with_history",
    "good_held",
    "good_challenged",
)
"""The fraud figures of the summary and the report, when the scenario has fraud."""


@dataclass(slots=True)
class _Who:
    kind: str
    wave: Wave
    customer: str | None
    metadata: dict[str, str]


@dataclass(slots=True)
class Fraud:
    """One run's fraud: the attacks' payments and, once the run is over, the risk
    verdicts of every payment. Inert for a scenario without fraud."""

    scenario: Scenario
    arrivals: list[Arrival] = field(default_factory=list)  # the attacks', as paid
    verdicts: dict[str, str] = field(default_factory=dict)  # payment id -> risk verdict
    start: datetime | None = None  # the run's start on its clock (lab/runner.py sets it)
    _who: dict[int, _Who] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.scenario.fraud is not None

    def gate(self, store: Store, clock: Clock) -> RiskGate | None:
        spec = self.scenario.fraud
        return None if spec is None else build_risk(store, clock, spec.rules)

    def attacks(self) -> list[Arrival]:
        """Every attack payment of the scenario, in arrival order; the same for a seed."""
        spec = self.scenario.fraud
        if spec is None:
            return []
        found: list[Arrival] = []
        self._who.clear()
        for w, wave in enumerate(spec.card_testing):
            found += self._card_testing(w, wave)
        for w, taking in enumerate(spec.account_takeover):
            found += self._account_takeover(w, taking)
        found.sort(key=lambda a: (a.t, a.n))
        return found

    def merged(self, good: list[Arrival]) -> list[Arrival]:
        """The good payments and the attacks, in arrival order."""
        if not self.active:
            return good
        return sorted([*good, *self.attacks()], key=lambda a: (a.t, a.n))

    def is_attack(self, a: Arrival) -> bool:
        return a.n >= FRAUD_BASE

    def customer_id(self, a: Arrival) -> str | None:
        if a.n in self._who:
            return self._who[a.n].customer
        return None if self.scenario.fraud is None else f"cust-{self._customer_of(a.n)[0]}"

    def signals(self, a: Arrival) -> dict[str, str]:
        """What the checkout passes in the payment's metadata for risk control."""
        spec = self.scenario.fraud
        if spec is None:
            return {}
        if a.n in self._who:
            return self._who[a.n].metadata
        k, roll = self._customer_of(a.n)
        signals = self._home(k)
        if roll < spec.abroad:  # the customer's own phone and card, on a trip
            signals.update(ip=f"192.0.2.{k % 250}", ip_country=TRIP)
        return signals

    def authenticates(self, payment_id: str) -> bool:
        """Whether the payer can pass 3-D Secure: the cardholder can, a fraudster not."""
        return all(a.payment_id != payment_id for a in self.arrivals)

    def read(self, conn: Connection) -> None:
        self.verdicts = {r.payment_id: r.verdict for r in run_records.risk_verdicts(conn)}

    # -- drawing the attacks -------------------------------------------------------------

    def _customer_of(self, n: int) -> tuple[int, float]:
        """The good payment's customer, and a uniform draw of its own for the trip."""
        assert self.scenario.fraud is not None
        digest = hashlib.blake2b(f"{self.scenario.seed}:{n}".encode(), digest_size=16).digest()
        k = int.from_bytes(digest[:8], "big") % self.scenario.fraud.customers
        return k, int.from_bytes(digest[8:], "big") / 2**64

    def customer_since(self, k: int) -> str:
        """When customer `k` opened their account (ISO 8601), as the shop's checkout
        passes it: `new_customers` of them within NEW_DAYS before the run, the others
        between OLD_DAYS; a pure function of the seed and `k`."""
        spec = self.scenario.fraud
        assert spec is not None and self.start is not None, "the run sets its start"
        digest = hashlib.blake2b(f"{self.scenario.seed}:since:{k}".encode(), digest_size=16)
        raw = digest.digest()
        new = int.from_bytes(raw[:8], "big") / 2**64 < spec.new_customers
        u = int.from_bytes(raw[8:], "big") / 2**64
        low, high = (0.0, NEW_DAYS) if new else OLD_DAYS
        opened = self.start - timedelta(days=low + u * (high - low))
        return opened.isoformat(timespec="seconds")

    def _home(self, k: int) -> dict[str, str]:
        """A good customer's own signals: their phone, home IP, card, country and
        account's age."""
        assert self.scenario.fraud is not None
        country = self.scenario.fraud.home
        return {
            "device_id": f"phone-{k}",
            "ip": f"10.{k // 250 % 250}.{k % 250}.7",
            "card_fingerprint": f"card-{k}",
            "country": country,
            "ip_country": country,
            "bin_country": country,
            "customer_since": self.customer_since(k),
        }

    def _times(self, kind: str, w: int, wave: Wave) -> tuple[random.Random, list[float]]:
        rng = random.Random(f"{self.scenario.seed}:{kind}:{w}")  # noqa: S311 - a simulation
        times: list[float] = []
        t = wave.at
        while True:
            t += rng.expovariate(wave.rate)
            if t >= min(wave.end, self.scenario.duration):
                return rng, times
            times.append(t)

    def _arrival(self, t: float, amount: int, truth: str, rng: random.Random) -> Arrival:
        s = self.scenario
        n = FRAUD_BASE + len(self._who)
        bank = rng.choices(list(s.banks), list(s.banks.values()))[0]
        region = rng.choices(list(s.regions), list(s.regions.values()))[0]
        return Arrival(n, t, "card", region, bank, amount, truth)

    def _card_testing(self, w: int, wave: CardTesting) -> list[Arrival]:
        rng, times = self._times(CARD_TESTING, w, wave)
        out = []
        for j, t in enumerate(times):
            ok = rng.random() < wave.approved
            truth = "ok" if ok else rng.choice(STOLEN_CARD_TRUTHS)
            a = self._arrival(t, rng.randint(wave.amount.min, wave.amount.max), truth, rng)
            metadata = {
                "device_id": f"emu-{w}-{j // wave.cards_per_device}",
                "ip": f"203.0.{w % 250}.{rng.randrange(wave.ips) % 250}",
                "card_fingerprint": f"stolen-{w}-{j}",
                "country": "CN",
                "ip_country": "NL",
            }
            self._who[a.n] = _Who(CARD_TESTING, wave, None, metadata)
            out.append(a)
        return out

    def _account_takeover(self, w: int, wave: AccountTakeover) -> list[Arrival]:
        assert self.scenario.fraud is not None
        rng, times = self._times(ACCOUNT_TAKEOVER, w, wave)
        out = []
        for j, t in enumerate(times):
            victim = rng.randrange(self.scenario.fraud.customers)
            a = self._arrival(t, rng.randint(wave.amount.min, wave.amount.max), "ok", rng)
            metadata = {
                **self._home(victim),  # their account, opened when they opened it
                "device_id": f"new-{w}-{j}",
                "ip": f"198.51.{w % 250}.{j % 250}",
                "ip_country": wave.country,
            }
            self._who[a.n] = _Who(ACCOUNT_TAKEOVER, wave, f"cust-{victim}", metadata)
            out.append(a)
        return out

    # -- what became of them -------------------------------------------------------------

    def figures(
        self,
        good: list[Arrival],
        records: Records,
        ledger: Ledger,
        succeeded: Callable[[Arrival], bool],
    ) -> dict[str, Any]:
        """The fraud figures (FRAUD_FIGURES and per kind), from the store's verdicts and
        attempts and the providers' ledger; {} for a scenario without fraud."""
        if not self.active:
            return {}
        charged = Counter(
            c.payment_id
            for c in ledger.all_charges()
            if c.state is ChargeState.CHARGED and c.refunded < c.amount.minor
        )
        kinds: dict[str, Counter[str]] = {}
        late = late_stopped = 0
        for a in self.arrivals:
            who = self._who[a.n]
            pid = a.payment_id or ""
            stopped = not records.attempts.get(pid)
            tally = kinds.setdefault(who.kind, Counter())
            tally["attempts"] += 1
            verdict = self.verdicts.get(pid)
            tally["blocked"] += verdict == "block"
            tally["challenged"] += verdict == "challenge"
            tally["held"] += verdict == "review"
            tally["stopped"] += stopped
            tally["charged"] += charged[pid] > 0
            if who.kind == CARD_TESTING and a.t >= who.wave.at + FIRST_MINUTE_S:
                late += 1
                late_stopped += stopped
        total = sum(kinds.values(), Counter())
        good_tally = _good(self, good, succeeded)
        n = len(good)
        return {
            "fraud_attempts": total["attempts"],
            "fraud_blocked": total["blocked"],
            "fraud_stopped": total["stopped"],
            "fraud_charged": total["charged"],
            "card_testing_stopped_after_first_minute": (
                round(late_stopped / late, 4) if late else None
            ),
            "account_takeover_charged": kinds.get(ACCOUNT_TAKEOVER, Counter())["charged"],
            "good_blocked": good_tally["block"],
            "good_blocked_rate": round(good_tally["block"] / n, 4) if n else 0.0,
            "good_blocked_with_history": good_tally["history_block"],
            "good_held": good_tally["review"],
            "good_challenged": good_tally["challenge"],
            "good_with_history": good_tally["history"],
            "fraud_by_kind": {k: dict(v) for k, v in sorted(kinds.items())},
        }


def _good(fraud: Fraud, good: list[Arrival], succeeded: Callable[[Arrival], bool]) -> Counter[str]:
    """Good payments by risk verdict; `history_*` those of a customer with an earlier
    successful payment."""
    tally: Counter[str] = Counter()
    paid: set[str | None] = set()
    for a in good:  # in arrival order
        verdict = fraud.verdicts.get(a.payment_id or "", "allow")
        customer = fraud.customer_id(a)
        tally[verdict] += 1
        if customer in paid:
            tally["history"] += 1
            tally[f"history_{verdict}"] += 1
        if succeeded(a):
            paid.add(customer)
    return tally

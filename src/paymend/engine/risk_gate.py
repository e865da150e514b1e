"""The risk decision of each payment, before routing and before any provider call.

`prepare` takes what the request itself says (its features, the subjects it is counted
under, and with Redis the counters); `decide` then reads, inside the payment's own
first transaction (engine/creation.py), what the store knows (velocity rows without
Redis, the customer's and the card's history, list entries) and asks risk/ for the
decision, which `Assessed.record` stores in that same transaction. `stop_of` says what
it means for the payment: a block fails it with `risk_declined` (customers read the
catalogue's neutral message, never the rule), a review holds it in the review queue
(engine/review.py), a challenge asks the customer for 3-D Secure before anything is
charged (engine/risk_challenge.py continues it). Once it committed, `decided` counts
the payment in Redis, the metrics and the log. Shadow rules are recorded and counted,
never enforced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from paymend.domain.clock import Clock
from paymend.domain.payment import Payment, PaymentStatus
from paymend.engine.commands import PayCommand
from paymend.engine.creation import Stop
from paymend.observability import children, get_logger
from paymend.risk.assess import Listed, complete, evaluate, history_features
from paymend.risk.features import (
    SUBJECTS,
    Subjects,
    base_features,
    subjects,
)
from paymend.risk.model import Decision, ListAction, ListKind, Verdict
from paymend.risk.redis_velocity import RedisVelocity
from paymend.risk.rules import SHIPPED_RULES, RuleSet, load
from paymend.risk.score import History
from paymend.risk.velocity import (
    BLOCKED_CODE,
    FRAUD_LIKE,
    REACHES,
    UNCOUNTED,
    Seen,
    VelocityBook,
    aggregate,
    count_bands,
    counted_failure,
)
from paymend.store import risk as repo
from paymend.store import risk_assessment as assessment
from paymend.store.database import Connection, Store

log = get_logger("paymend.risk")
DECISIONS = Counter(
    "paymend_risk_decisions_total", "Risk decisions enforced, by verdict", ["verdict"]
)
SHADOW = Counter(
    "paymend_risk_shadow_decisions_total",
    "What the shadow rules would have decided, by verdict and whether it differs",
    ["verdict", "differs"],
)
_DECISIONS, _SHADOW = children(DECISIONS), children(SHADOW)  # every payment counts in them
LIST_KINDS: dict[str, ListKind] = {
    "card": ListKind.CARD,
    "email": ListKind.EMAIL,
    "device": ListKind.DEVICE,
    "ip": ListKind.IP,
}


@dataclass(frozen=True, slots=True)
class RiskNote:
    """What a payment's view tells of its risk decision: the action taken, the rules
    that fired (shadow ones marked) and the customer's score."""

    action: str
    rules: list[dict[str, Any]]
    score: int
    rules_version: str

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> RiskNote:
        """From a stored decision (store/risk.py)."""
        return cls(row["verdict"], list(row["fired"]), row["score"], row["rules_version"])


@dataclass(slots=True)
class Assessed:
    decision: Decision
    who: Subjects
    row: dict[str, Any]  # the decision as stored, in the payment's first transaction

    def record(self, conn: Connection) -> None:
        repo.record(conn, self.row)

    @property
    def note(self) -> RiskNote:
        return RiskNote.of_row(self.row)


@dataclass(frozen=True, slots=True)
class Pending:
    """A payment about to be decided: what its request gives, read before its
    transaction (Redis's counters included; None: the database's rows are read)."""

    cmd: PayCommand
    payment_id: str
    now: datetime
    who: Subjects
    base: dict[str, Any]
    from_redis: Mapping[str, Iterable[Seen]] | None


# how the database's velocity rows' failures are counted: as risk/velocity.py
# `counted_failure` counts them
COUNTING = assessment.Counting(UNCOUNTED, FRAUD_LIKE)


def velocity_ask(now: datetime, currency: str, exclude: str) -> assessment.VelocityAsk:
    """What the velocity rows of a payment in `currency` at `now` are read for: each of
    risk/velocity.py's windows back from `now`, `exclude` (the payment) left out."""
    starts = tuple([now - reach for reach in REACHES])
    return assessment.VelocityAsk(starts, currency, exclude, COUNTING)


class RiskGate:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        live: RuleSet,
        shadow: RuleSet | None = None,
        book: VelocityBook | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.live = live
        self.shadow = shadow
        self.book = book  # Redis; None: the database's rows

    def prepare(self, cmd: PayCommand, payment_id: str) -> Pending:
        """The request's own features and subjects, and Redis's counters if it holds them."""
        now = self.clock.now()
        who = subjects(cmd.merchant_id, cmd.customer.id, cmd.customer.email, cmd.metadata)
        base = base_features(
            amount=cmd.amount.minor,
            exponent=cmd.amount.exponent,
            currency=cmd.amount.currency,
            method=cmd.method,
            bank=cmd.bank,
            region=cmd.region,
            metadata=cmd.metadata,
            who=who,
            email=cmd.customer.email,
            now=now,
        )
        from_redis = self.book.history(who, now) if self.book is not None else None
        return Pending(cmd, payment_id, now, who, base, from_redis)

    def decide(self, conn: Connection, p: Pending) -> Assessed:
        """The decision, from reads in the caller's transaction (the payment's first):
        one statement, velocity rows (without Redis) and history together."""
        who, now = p.who, p.now
        keys = _list_keys(who)
        asked = _history_keys(p.cmd.merchant_id, who, keys)
        currency = p.cmd.amount.currency
        if p.from_redis is not None:
            h = assessment.read(conn, (), None, asked)[1]
            velocity = aggregate(p.from_redis, now, currency, exclude=p.payment_id)
        else:
            pairs = who.items()
            ask = velocity_ask(now, currency, p.payment_id)
            raw, h = assessment.read(conn, pairs, ask, asked)
            velocity = count_bands(raw, [s for s, _ in pairs])
        customer, card, device_new, listed = _histories(h, who, now, keys)
        extra = history_features(p.base, velocity, self.live, customer, card, device_new)
        features = complete(p.base, velocity, extra)
        decision = evaluate(features, self.live, self.shadow, listed)
        return Assessed(decision, who, _row(p.payment_id, p.cmd, who, p.base, decision, now))

    @staticmethod
    def stop_of(assessed: Assessed) -> Stop | None:
        """What the decision does to the payment before routing (None: go on)."""
        decision = assessed.decision
        if decision.verdict is Verdict.ALLOW:
            return None
        why = f"risk: {decision.deciding_rule or decision.verdict.value}"
        if decision.verdict is Verdict.BLOCK:
            # failures/catalogue.yaml shows it as payment_method_unusable
            return Stop(PaymentStatus.FAILED, why, BLOCKED_CODE)
        if decision.verdict is Verdict.REVIEW:
            return Stop(PaymentStatus.HELD, why)
        return Stop(PaymentStatus.REQUIRES_ACTION, why)

    async def decided(self, p: Pending, assessed: Assessed, payment: Payment) -> None:
        """After the payment's first transaction committed: count it (Redis), in the
        metrics and, when not a plain allow, in the log. One refused there (a block, a
        paused bank) is a failure too, if it is the customer's (`counted_failure`)."""
        decision = assessed.decision
        if self.book is not None:
            amount = p.base["amount_major"]
            counted = self.book.seen(p.payment_id, p.who, amount, p.cmd.amount.currency, p.now)
            if p.from_redis is None or not counted:
                log.warning("risk_velocity_unavailable", payment_id=p.payment_id)
        _DECISIONS(decision.verdict.value).inc()
        if decision.shadow_verdict is not None:
            differs = decision.shadow_verdict is not decision.verdict
            _SHADOW(decision.shadow_verdict.value, str(differs).lower()).inc()
        if decision.verdict is not Verdict.ALLOW or decision.fired:
            log.info(
                "risk_decision",
                payment_id=p.payment_id,
                verdict=decision.verdict.value,
                rules=[f.rule for f in decision.fired],
                score=decision.score,
            )
        await self.settled(payment, p.who)

    async def settled(self, payment: Payment, who: Subjects) -> None:
        """Tell the Redis book of a failed payment that counts against its subjects (the
        database's rows read the payments' own status and code, so they count it
        already, by the same `counted_failure`)."""
        if self.book is None or payment.status is not PaymentStatus.FAILED:
            return
        counts, fraud = counted_failure(payment.failure_code)
        if counts and not self.book.settled(payment.id, who, fraud, self.clock.now()):
            log.warning("risk_count_lost", payment_id=payment.id)

    async def failed(self, payment: Payment) -> None:
        """A payment that ended failed after it was decided on: after a provider call, in
        the checkout or later in the worker, or rejected from review by an operator
        (engine/review.py). Counted by the subjects its stored decision was made on."""
        if self.book is None:
            return
        row = await self.store.run(lambda conn: repo.decision(conn, payment.id))
        if row is not None:
            await self.settled(payment, subjects_of(row))


def subjects_of(row: Mapping[str, Any]) -> Subjects:
    """The subjects a stored decision was counted under."""
    return Subjects(
        row["card"] or "",
        row["customer_id"] or "",
        row["device"] or "",
        row["ip"] or "",
        row["email"] or "",
    )


def note_of(conn: Connection, payment_id: str) -> RiskNote | None:
    """The payment's stored decision as its view tells it (None: none was taken)."""
    row = repo.decision(conn, payment_id)
    return RiskNote.of_row(row) if row else None


def notes_of(conn: Connection, payment_ids: Sequence[str]) -> dict[str, RiskNote]:
    """`note_of` for a page of payments, in one read."""
    return {r["payment_id"]: RiskNote.of_row(r) for r in repo.decisions_of(conn, payment_ids)}


def _list_keys(who: Subjects) -> list[tuple[str, str]]:
    return [(k, getattr(who, k)) for k in LIST_KINDS if getattr(who, k)]


def _history_keys(
    merchant_id: str, who: Subjects, keys: list[tuple[str, str]]
) -> assessment.HistoryKeys | None:
    """Whom the history is asked of; None: the payment names nobody it could know."""
    if not (who.customer or who.card or keys):
        return None
    customer_id = who.customer.partition("/")[2]
    return assessment.HistoryKeys(
        merchant_id, customer_id, who.customer, who.device, who.card, keys
    )


def _histories(
    h: Mapping[str, Any] | None, who: Subjects, now: datetime, keys: list[tuple[str, str]]
) -> tuple[History, History, bool, list[Listed]]:
    """The customer's and the card's history, whether the device is new to the customer,
    and the list entries the payment is on, from the history row (None: none asked)."""
    if h is None:
        return History(), History(), False, []
    customer, card = History(), History()
    if who.customer:
        first = h["first"]
        age = (now - first).total_seconds() / 86400 if first is not None else -1.0
        customer = History(h["successes"], h["refunds"], h["chargebacks"], age)
    if who.card:
        card = History(h["card_successes"], 0, h["card_chargebacks"])
    device_new = bool(who.customer and who.device and h["decided"] and not h["on_device"])
    listed = [Listed(LIST_KINDS[k], ListAction(h[f"list_{k}"])) for k, _ in keys if h[f"list_{k}"]]
    return customer, card, device_new, listed


def _row(
    payment_id: str,
    cmd: PayCommand,
    who: Subjects,
    base: dict[str, Any],
    decision: Decision,
    now: datetime,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "payment_id": payment_id,
        "merchant_id": cmd.merchant_id,
        "verdict": decision.verdict.value,
        "rules_version": decision.rules_version,
        "score": decision.score,
        "fired": [f.as_dict() for f in decision.fired],
        "features": decision.features,
        "shadow_verdict": decision.shadow_verdict.value if decision.shadow_verdict else None,
        "amount_major": float(base["amount_major"]),
        "currency": cmd.amount.currency,
        "created_at": now,
    }
    keys = {
        "card": "card",
        "customer": "customer_id",
        "device": "device",
        "ip": "ip",
        "email": "email",
    }
    row.update({keys[s]: getattr(who, s) for s in SUBJECTS})
    return row


def build_risk(
    store: Store,
    clock: Clock,
    rules: str | None = None,
    shadow: str | None = None,
    redis_url: str | None = None,
) -> RiskGate | None:
    """The gate from settings: `rules` a rules file (None: the shipped one; "off": no
    risk control), `shadow` a version run beside it, counters in Redis if configured."""
    if rules == "off":
        return None
    live = load(rules or SHIPPED_RULES)
    beside = load(shadow) if shadow else None
    book = RedisVelocity.from_url(redis_url) if redis_url else None
    return RiskGate(store, clock, live, beside, book)

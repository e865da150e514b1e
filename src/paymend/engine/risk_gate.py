"""The risk decision of each payment, before routing and before any provider call.

`assess` reads in one transaction what the store knows (velocity rows, the customer's
and the card's history, list entries) and asks risk/ for the decision, which is then
stored in the payment's own first transaction (`Assessed.record`); with Redis the
counters come from Redis instead and the payment is added to them. `stop` acts on it: a
block fails the payment with `risk_declined` (customers read the catalogue's neutral
message, never the rule), a review holds it in the review queue (engine/review.py), a
challenge asks the customer for 3-D Secure before anything is charged
(engine/risk_challenge.py continues it). Shadow rules are recorded and counted, never
enforced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from paymend.domain.clock import Clock
from paymend.domain.payment import Payment, PaymentStatus
from paymend.engine.commands import PayCommand
from paymend.observability import get_logger
from paymend.risk.assess import Listed, complete, evaluate, history_features
from paymend.risk.features import (
    FRAUD_LIKE_CODES,
    SUBJECTS,
    Subjects,
    base_features,
    subjects,
)
from paymend.risk.model import Decision, ListAction, ListKind, Verdict
from paymend.risk.redis_velocity import RedisVelocity
from paymend.risk.rules import SHIPPED_RULES, RuleSet, load
from paymend.risk.score import History
from paymend.risk.velocity import LONGEST_S, Seen, VelocityBook, aggregate
from paymend.store import risk as repo
from paymend.store.database import Connection, Store
from paymend.store.idempotency import Claim, NewKey

if TYPE_CHECKING:
    from paymend.engine.creation import Creation

log = get_logger("paymend.risk")
BLOCKED_CODE = "risk_declined"  # failures/catalogue.yaml: shown as payment_method_unusable
DECISIONS = Counter(
    "paymend_risk_decisions_total", "Risk decisions enforced, by verdict", ["verdict"]
)
SHADOW = Counter(
    "paymend_risk_shadow_decisions_total",
    "What the shadow rules would have decided, by verdict and whether it differs",
    ["verdict", "differs"],
)
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

    async def assess(self, cmd: PayCommand, payment_id: str) -> Assessed:
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

        def decide(conn: Connection) -> tuple[Decision, dict[str, Any]]:
            rows = from_redis if from_redis is not None else _db_history(conn, who, now)
            velocity = aggregate(rows, now, cmd.amount.currency, exclude=payment_id)
            customer, card, device_new = _histories(conn, cmd.merchant_id, who, now)
            extra = history_features(base, velocity, self.live, customer, card, device_new)
            features = complete(base, velocity, extra)
            listed = [
                Listed(LIST_KINDS[k], ListAction(a)) for k, a in repo.listed(conn, _list_keys(who))
            ]
            decision = evaluate(features, self.live, self.shadow, listed)
            return decision, _row(payment_id, cmd, who, base, decision, now)

        decision, row = await self.store.run(decide)
        if self.book is not None:
            counted = self.book.seen(
                payment_id, who, base["amount_major"], cmd.amount.currency, now
            )
            if from_redis is None or not counted:
                log.warning("risk_velocity_unavailable", payment_id=payment_id)
        DECISIONS.labels(decision.verdict.value).inc()
        if decision.shadow_verdict is not None:
            differs = decision.shadow_verdict is not decision.verdict
            SHADOW.labels(decision.shadow_verdict.value, str(differs).lower()).inc()
        if decision.verdict is not Verdict.ALLOW or decision.fired:
            log.info(
                "risk_decision",
                payment_id=payment_id,
                verdict=decision.verdict.value,
                rules=[f.rule for f in decision.fired],
                score=decision.score,
            )
        return Assessed(decision, who, row)

    async def stop(
        self,
        creation: Creation,
        payment: Payment,
        assessed: Assessed,
        now: datetime,
        claim: Claim | NewKey | None,
    ) -> bool:
        """Act on a decision that stops the payment before routing; False: go on."""
        decision = assessed.decision
        why = f"risk: {decision.deciding_rule or decision.verdict.value}"
        also = assessed.record
        if decision.verdict is Verdict.BLOCK:
            await creation.refuse(payment, BLOCKED_CODE, why, now, claim, also)
            await self.settled(payment, assessed.who)
            return True
        if decision.verdict is Verdict.REVIEW:
            await creation.hold(payment, why, now, claim, also)
            return True
        if decision.verdict is Verdict.CHALLENGE:
            await creation.challenge(payment, why, now, claim, also)
            return True
        return False

    async def settled(self, payment: Payment, who: Subjects) -> None:
        """Tell the Redis book of a failed payment (the database's rows read the
        payments' own status, so they count it already)."""
        if self.book is not None and payment.status is PaymentStatus.FAILED:
            fraud = payment.failure_code in FRAUD_LIKE_CODES or payment.failure_code == BLOCKED_CODE
            if not self.book.settled(payment.id, who, fraud, self.clock.now()):
                log.warning("risk_count_lost", payment_id=payment.id)

    async def failed(self, payment: Payment) -> None:
        """A payment that ended failed after a provider call, in the checkout or later in
        the worker: counted by the subjects its stored decision was made on."""
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
    return [("card", who.card), ("email", who.email), ("device", who.device), ("ip", who.ip)]


def _db_history(conn: Connection, who: Subjects, now: datetime) -> Mapping[str, Iterable[Seen]]:
    pairs = who.items()
    rows = repo.recent(conn, pairs, repo.window_start(now, LONGEST_S))
    out: dict[str, list[Seen]] = {s: [] for s, _ in pairs}
    for r in rows:
        failed = r["status"] == PaymentStatus.FAILED.value
        code = r["failure_code"]
        seen = Seen(
            r["payment_id"],
            r["created_at"].timestamp(),
            float(r["amount_major"]),
            r["currency"],
            r["k_card"],
            failed,
            failed and (code in FRAUD_LIKE_CODES or code == BLOCKED_CODE),
        )
        for subject, value in pairs:
            if r[f"k_{subject}"] == value:
                out[subject].append(seen)
    return out


def _histories(
    conn: Connection, merchant_id: str, who: Subjects, now: datetime
) -> tuple[History, History, bool]:
    if not (who.customer or who.card):
        return History(), History(), False
    customer_id = who.customer.partition("/")[2]
    h = repo.histories(conn, merchant_id, customer_id, who.customer, who.device, who.card)
    customer, card = History(), History()
    if who.customer:
        first = h["first"]
        age = (now - first).total_seconds() / 86400 if first is not None else -1.0
        customer = History(h["successes"], h["refunds"], h["chargebacks"], age)
    if who.card:
        card = History(h["card_successes"], 0, h["card_chargebacks"])
    device_new = bool(who.customer and who.device and h["decided"] and not h["on_device"])
    return customer, card, device_new


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

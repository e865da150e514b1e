"""PaymentService: pay, and finish what a checkout call could not.

The order of work is the safety argument: the payment and a pending attempt are committed
*before* the provider is called, and the outcome, the payment's new status, the next
attempt (if any) and the outbox events are committed together afterwards. A crash
anywhere leaves rows the worker can finish; the attempt id is the provider's idempotency
key, so a resend never charges twice.

A payment is worked on in *runs*: the checkout call (bounded by the checkout deadline)
and, when that is not enough, worker runs started by jobs. Each run calls, classifies,
decides and follows the decision: query an unknown outcome, fail over, retry with
backoff, ask for 3-D Secure, or stop and tell the customer.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import exc
from sqlalchemy.engine import Connection

from paymend.domain.clock import Clock
from paymend.domain.errors import (
    Conflict,
    InvalidInput,
    OrderAlreadyPaid,
    OrderPaymentInProgress,
    PaymendError,
    PaymentInFlight,
    Unavailable,
)
from paymend.domain.events import EventType
from paymend.domain.failure import Action, Decision, Failure
from paymend.domain.ids import AttemptId, PaymentId
from paymend.domain.masking import mask_token
from paymend.domain.payment import (
    ORDER_PAID,
    Attempt,
    AttemptStatus,
    Payment,
    PaymentStatus,
    Refund,
)
from paymend.engine.budget import RetryBudget
from paymend.engine.calls import CallOutcome, call, query_call
from paymend.engine.commands import PayCommand, RefundCommand
from paymend.engine.controls import ControlService, RouteControls
from paymend.engine.events import STATUS_EVENTS, emit
from paymend.engine.ids import IdFactory
from paymend.engine.refunds import RefundService
from paymend.engine.stale import retry_stale
from paymend.failures.classify import Classifier, RawAnswer, default_classifier
from paymend.failures.policy import DecisionContext, PriorAttempt, decide
from paymend.health.book import Health, HealthBook
from paymend.health.breaker import BreakerState
from paymend.health.keys import amount_band, channel_key, context_keys, parse_key, scoped_key
from paymend.health.outcomes import Outcome
from paymend.observability import ATTEMPT_LATENCY, ATTEMPTS, PAYMENTS, get_logger
from paymend.providers.base import ChargeRequest, Provider, QueryRequest
from paymend.routing.ranking import PaymentContext, RoutingRules, rank
from paymend.store import idempotency, jobs, refunds
from paymend.store import payments as repo
from paymend.store.database import Store
from paymend.store.idempotency import Claim
from paymend.store.pii import Vault

log = get_logger("paymend.engine")
REPEAT_WINDOW = timedelta(hours=1)
CARD_HISTORY = timedelta(days=30)  # the card networks' reattempt window
MIN_CALL_S = 0.05  # no call starts with less time than this left before the deadline
SETTLE_FIRST_AFTER = timedelta(seconds=2)  # first worker query of an unknown outcome
PAUSE_WAIT_S = 10.0  # a scheduled retry for a paused bank or region waits at least this
SICK_WINDOW_S, SICK_CALLS = 10.0, 10  # a channel failing half its calls for a scope is sick
INTERRUPTED = "INTERRUPTED"  # transport code of a call whose answer a crash lost


@dataclass(slots=True)
class PaymentView:
    """A payment with its attempt timeline and refunds, as read in one transaction."""

    payment: Payment
    attempts: list[Attempt] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    repeat_failures: int = 0  # same customer, same cause, within the hour before it


@dataclass(frozen=True, slots=True)
class EngineSettings:
    provider_timeout_s: float = 10.0
    routing: tuple[str, ...] = ()  # the merchant's priority list; empty: every channel
    rules: RoutingRules | None = None  # pinned channels, volume split...; overrides routing
    costs: Mapping[str, float] = field(default_factory=dict)  # basis points per channel
    checkout_deadline_s: float = 3.0  # what fits runs in the checkout call; the rest later
    worker_deadline_s: float = 30.0  # one worker run on a payment
    settle_within_s: float = 300.0  # retries and failover stop this long after creation
    max_attempts: int = 4  # provider calls for one payment, all runs together
    seed: int | None = None  # for the backoff jitter; None: unpredictable
    # "naive": one attempt on the first channel, no retry, no failover, no status query,
    # an unknown outcome read as failed: what a checkout without paymend does (the lab's
    # baseline). Never for production.
    policy: str = "default"


@dataclass(slots=True)
class Run:
    """One stretch of work on a payment: a checkout call or a worker continuation."""

    channels: tuple[str, ...]
    started: float  # on the monotonic clock
    deadline_s: float
    attempts: list[Attempt]
    card_tries: int | None = None  # the card's failed tries on other payments, 30 days
    # channels skipped for an open circuit: a failover may still probe one (health.allow)
    # when nothing else is left, or their breakers would never see a call again
    spare: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Routed:
    channels: tuple[str, ...]
    reason: str
    spare: Mapping[str, tuple[str, ...]]  # channel -> its open breaker keys


class PaymentService:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        clock: Clock,
        settings: EngineSettings,
        ids: IdFactory | None = None,
        classifier: Classifier | None = None,
        health: Health | None = None,
        pii: Vault | None = None,
    ) -> None:
        self.store = store
        # seals customer contact details at creation; without a data key none are stored
        self.pii = pii or Vault(None)
        self.providers = providers
        self.clock = clock
        self.settings = settings
        self.ids = ids or IdFactory()
        self.classifier = classifier or default_classifier()
        self.refunds = RefundService(store, providers, clock, self.ids)
        self.budget = RetryBudget()
        self.health: Health = health or HealthBook()
        self.rules = settings.rules or RoutingRules(settings.routing or tuple(providers))
        self._capabilities = {n: p.capabilities for n, p in providers.items()}
        self.controls = ControlService(store, clock, self.ids)
        self._rng = random.Random(settings.seed)  # noqa: S311 - jitter, not secrets
        # the process instance (engine/liveness.py) that owns the attempts this service
        # calls: when it dies, the worker settles them at once. None: no instance (the
        # lab, tests): an attempt is orphaned only by its age
        self.owner: str | None = None

    def methods(self) -> set[str]:
        return {m for p in self.providers.values() for m in p.capabilities.methods}

    # -- pay ----------------------------------------------------------------------------

    def _route(
        self, ctx: PaymentContext, bank: str | None, controls: RouteControls | None = None
    ) -> Routed:
        """Rank the channels for one payment (routing/ranking.py) around what is blocked:
        channels paused by ops, and circuits open for this payment's context."""
        blocked: dict[str, str] = {}
        if controls is not None:
            blocked.update(dict.fromkeys(controls.paused_channels, "paused by ops"))
        now = self._health_now()
        band = amount_band(ctx.amount_minor, ctx.currency)
        tripped: dict[str, tuple[str, ...]] = {}
        if self.settings.policy != "naive":
            candidates = [
                (name, context_keys(name, ctx.method, bank, ctx.region, band))
                for name in self.rules.priority
                if name not in blocked
                and self._capabilities[name].supports(ctx.method, ctx.currency, ctx.region)
            ]
            # every breaker this payment could meet, read at once (one Redis round trip)
            states = iter(self.health.states([k for _, keys in candidates for k in keys]))
            for name, keys in candidates:
                open_keys = tuple(k for k in keys if next(states) is not BreakerState.CLOSED)
                if open_keys:
                    tripped[name] = open_keys
                    scope = parse_key(open_keys[0])[1]
                    where = ", ".join(f"{k}={v}" for k, v in scope.items())
                    blocked[name] = f"circuit open for {where}" if where else "circuit open"
        route = rank(
            ctx,
            self.rules,
            self._capabilities,
            self.settings.costs,
            lambda key: self.health.stats(key, now),
            self._rng,
            blocked,
        )
        channels, reason = route.channels, route.reason
        if controls is not None and controls.forced in channels:
            channels = (controls.forced, *(c for c in channels if c != controls.forced))
            reason += f"; {controls.forced} forced by ops"
        if tripped:
            channels, reason = self._probe_or_fall_back(channels, reason, tripped, now)
        spare = {n: keys for n, keys in tripped.items() if n not in channels}
        return Routed(channels, reason, spare)

    def _probe_or_fall_back(
        self,
        channels: tuple[str, ...],
        reason: str,
        tripped: dict[str, tuple[str, ...]],
        now: float,
    ) -> tuple[tuple[str, ...], str]:
        """`tripped`: the channels that could take this payment but have a circuit open
        for it, with those circuits. One of them takes the payment first as its probe when
        its breakers admit one (one at a time, waits doubling after each failed probe);
        the healthy ranking follows as its failover. Every tripped channel is probed so,
        not only the merchant's favourite: a backup nobody prefers would otherwise stay
        shut long after its fault, and be missing when the primary breaks next. When
        every circuit is open, one try on the channel that last succeeded beats none."""
        for name, keys in tripped.items():  # in the merchant's priority order
            if all(self.health.allow(k, now) for k in keys):
                return (name, *channels), f"{reason}; probing {name} (circuit half-open)"
        if channels:
            return channels, reason
        best = max(
            tripped,
            key=lambda n: max((self.health.last_success(k) or 0.0) for k in tripped[n]),
        )
        return (best,), f"{reason}; every circuit open: trying {best}, which last succeeded"

    async def pay(self, cmd: PayCommand) -> PaymentView:
        controls = await self.controls.for_payment(cmd.method, cmd.bank, cmd.region, cmd.amount)
        ctx = PaymentContext(
            cmd.method, cmd.amount.currency, cmd.region, cmd.bank, cmd.amount.minor
        )
        routed = self._route(ctx, cmd.bank, controls)
        channels, reason = routed.channels, routed.reason
        if not channels and controls.paused_channels:
            raise Unavailable(
                "payment_method_paused",
                f"every channel for {cmd.method} is paused by ops; nothing was charged",
            )
        if not channels:
            raise InvalidInput(
                "payment_method_unavailable",
                f"no configured channel accepts {cmd.method} in {cmd.amount.currency}"
                + (f" for region {cmd.region}" if cmd.region else ""),
                param="method",
            )
        now = self.clock.now()
        payment = Payment(
            id=PaymentId(self.ids.new("pay")),
            merchant_id=cmd.merchant_id,
            order_id=cmd.order_id,
            amount=cmd.amount,
            method=cmd.method,
            bank=cmd.bank,
            region=cmd.region,
            customer=cmd.customer,
            metadata=dict(cmd.metadata),
            token=cmd.token,
            trace_id=cmd.trace_id,
            split=cmd.split,
        )
        payment.transition(PaymentStatus.PROCESSING)
        if controls.paused_because is not None:
            return await self._refuse_paused(payment, controls.paused_because, now, cmd.claim)
        if controls.held_because is not None:
            return await self._hold(payment, controls.held_because, now, cmd.claim)
        attempt = self._new_attempt(payment, 1, channels[0], f"route: {reason}")
        attempt.created_at = now

        def create(conn: Connection) -> None:
            self._insert_payment(conn, payment, now, cmd.claim)
            repo.insert_attempt(conn, attempt, self.owner)
            emit(conn, self.ids.new("evt"), payment, EventType.PAYMENT_CREATED, now)

        await self._create(payment, create)
        self.budget.first(attempt.provider, self.clock.monotonic())
        run = Run(
            channels,
            self.clock.monotonic(),
            cmd.deadline_s or self.settings.checkout_deadline_s,
            [attempt],
            spare=routed.spare,
        )
        try:
            await self._drive(payment, run)
        except PaymendError as exc:
            log.warning("payment_left_in_flight", payment_id=payment.id, code=exc.code)
            raise PaymentInFlight(payment.id) from exc
        repeats = 0
        if payment.failure_code is not None:
            repeats = await self.store.run(
                lambda conn: repo.recent_failures(conn, payment, REPEAT_WINDOW)
            )
        return PaymentView(payment, run.attempts, [], repeats)

    def _insert_payment(
        self, conn: Connection, payment: Payment, now: datetime, claim: Claim | None
    ) -> None:
        """Insert a new payment if its order lets it (one payment per order, unless split),
        linked to the Idempotency-Key it is created under, in the caller's transaction."""
        repo.lock_order(conn, payment.merchant_id, payment.order_id)
        holder = repo.holding_order(
            conn, payment.merchant_id, payment.order_id, split=payment.split
        )
        if holder is not None:
            raise _order_taken(payment.order_id, holder)
        repo.insert_payment(conn, payment, now, self.pii)
        idempotency.link(conn, claim, "payment", payment.id)

    async def _create(self, payment: Payment, write: Callable[[Connection], None]) -> None:
        """Run the transaction that creates `payment`. The database's one-payment-per-order
        index backs the check in `_insert_payment`: an insert it refuses gets the same 409."""
        try:
            await self.store.run(write)
        except exc.IntegrityError as error:
            if not repo.is_order_conflict(error):
                raise
            holder = await self.store.run(
                lambda conn: repo.holding_order(
                    conn, payment.merchant_id, payment.order_id, split=payment.split
                )
            )
            if holder is None:  # the other payment failed meanwhile: the order is free
                await self.store.run(write)
                return
            raise _order_taken(payment.order_id, holder) from None

    async def _refuse_paused(
        self, payment: Payment, why: str, now: datetime, claim: Claim | None
    ) -> PaymentView:
        """The customer's bank or region is paused: no provider is called, and the
        customer is told the bank is unavailable and to use another method."""
        payment.failure_code = "issuer_unavailable"
        payment.failure_message = why
        payment.transition(PaymentStatus.FAILED)
        return await self._decided_without_call(payment, now, EventType.PAYMENT_FAILED, {}, claim)

    async def _hold(
        self, payment: Payment, why: str, now: datetime, claim: Claim | None
    ) -> PaymentView:
        """A playbook or an operator holds this scope's large payments: nothing is called
        until ops release it (engine/review.py); the shop learns by `payment.held`."""
        payment.transition(PaymentStatus.HELD)
        view = await self._decided_without_call(
            payment, now, EventType.PAYMENT_HELD, {"reason": why}, claim
        )
        log.warning("payment_held", payment_id=payment.id, why=why)
        return view

    async def _decided_without_call(
        self,
        payment: Payment,
        now: datetime,
        event: EventType,
        extra: dict[str, str],
        claim: Claim | None,
    ) -> PaymentView:
        """Store a payment the controls settled before any provider call, with its events."""

        def write(conn: Connection) -> None:
            self._insert_payment(conn, payment, now, claim)
            emit(conn, self.ids.new("evt"), payment, EventType.PAYMENT_CREATED, now)
            emit(conn, self.ids.new("evt"), payment, event, now, extra=extra or None)

        await self._create(payment, write)
        PAYMENTS.labels(payment.status.value, "none").inc()
        return PaymentView(payment, [], [])

    async def _drive(
        self,
        payment: Payment,
        run: Run,
        outcome: CallOutcome | None = None,
        *,
        status_known: bool = False,
    ) -> None:
        """Call the run's last attempt (unless its `outcome` is already in hand), then
        follow each decision while the run has time."""
        attempt = run.attempts[-1]
        while True:
            if outcome is None:
                outcome = await self._authorize(payment, attempt, self._call_timeout(run))
            following, inline, after_s = await self._after_call(
                payment, run, attempt, outcome, status_known=status_known
            )
            if following is None or not inline:
                return
            if after_s > 0:
                await self.clock.sleep(after_s)
            run.attempts.append(following)
            attempt, outcome, status_known = following, None, False

    async def _after_call(
        self,
        payment: Payment,
        run: Run,
        attempt: Attempt,
        outcome: CallOutcome,
        *,
        status_known: bool = False,
    ) -> tuple[Attempt | None, bool, float]:
        """Classify, decide, query an unknown outcome if there is time, and record it all.
        Returns the next attempt (if any), whether it runs now, and the wait before it."""
        failure: Failure | None = None
        decision: Decision | None = None
        if self.settings.policy == "naive" and outcome.status is not AttemptStatus.SUCCEEDED:
            return await self._naive(payment, attempt, outcome)
        if outcome.status is not AttemptStatus.SUCCEEDED:
            failure = self._classify(attempt.provider, outcome)
            if run.card_tries is None:  # only a failure's decision needs the card's history
                run.card_tries = await self._card_tries(payment)
        if not status_known:  # the call as it happened, before any status query
            self._record_health(payment, attempt.provider, outcome, failure)
        if failure is not None:
            decision = decide(failure, self._context(payment, run, attempt, failure, status_known))
            if (
                decision.action is Action.QUERY_STATUS
                and not status_known
                and self._remaining(run) >= MIN_CALL_S
            ):
                outcome = await self._query(attempt, outcome, self._call_timeout(run))
                if outcome.status is AttemptStatus.SUCCEEDED:
                    failure = decision = None
                elif outcome.status is AttemptStatus.REQUIRES_ACTION:
                    failure, decision = self._awaits_authentication(attempt, outcome)
                elif outcome.status is AttemptStatus.FAILED:
                    ctx = self._context(payment, run, attempt, failure, True)
                    decision = decide(failure, ctx)
            if (
                decision is not None
                and decision.action is Action.QUERY_STATUS
                and outcome.status is AttemptStatus.FAILED
            ):
                # an error answer that leaves the outcome uncertain: the worker asks
                outcome = replace(outcome, status=AttemptStatus.UNKNOWN)
        if failure is not None and decision is not None:
            decision = self._within_budget(attempt, failure, decision)
        following, inline = self._follow(payment, run, attempt, decision)
        if decision is not None and decision.action is Action.REFRESH_CREDENTIALS:
            await self._refresh(attempt.provider)
        after_s = decision.after_s if decision is not None else 0.0
        await self._record(payment, attempt, outcome, failure, decision, following, inline, after_s)
        return following, inline, after_s

    async def _naive(
        self, payment: Payment, attempt: Attempt, outcome: CallOutcome
    ) -> tuple[Attempt | None, bool, float]:
        failure = self._classify(attempt.provider, outcome)
        if outcome.status is AttemptStatus.UNKNOWN:
            outcome = replace(outcome, status=AttemptStatus.FAILED)
        action = (
            Action.AUTHENTICATE if failure.action is Action.AUTHENTICATE else Action.DO_NOT_RETRY
        )
        decision = Decision(action, "naive policy: one attempt, no query, no retry")
        await self._record(payment, attempt, outcome, failure, decision, None, False, 0.0)
        return None, False, 0.0

    def _awaits_authentication(
        self, attempt: Attempt, outcome: CallOutcome
    ) -> tuple[Failure, Decision]:
        """A status query says the charge waits for the customer's 3-D Secure."""
        failure = self._classify(attempt.provider, replace(outcome, raw_code=outcome.query_code))
        decision = Decision(
            Action.AUTHENTICATE,
            f"status query: {outcome.query_code}; the customer must authenticate",
        )
        return failure, decision

    def _record_health(
        self, payment: Payment, channel: str, outcome: CallOutcome, failure: Failure | None
    ) -> None:
        """Count the call under every key of its context (health/keys.py). Only technical
        failures and unknowns count against a channel; a decline shows it works."""
        if self.settings.policy == "naive":
            return
        if failure is None or outcome.status is AttemptStatus.SUCCEEDED:
            verdict = Outcome.SUCCESS
        elif not failure.counts_against_health:
            verdict = Outcome.BUSINESS
        elif outcome.status is AttemptStatus.UNKNOWN or outcome.answered is None:
            verdict = Outcome.UNKNOWN
        else:
            verdict = Outcome.TECHNICAL
        keys = self._keys(payment, channel)
        if payment.bank is not None:
            keys += (scoped_key("*", "bank", payment.bank),)
        if payment.region is not None:
            keys += (scoped_key("*", "region", payment.region),)
        self.health.record(keys, self._health_now(), verdict, outcome.latency_ms)

    @staticmethod
    def _keys(payment: Payment, channel: str) -> tuple[str, ...]:
        """The health keys of `channel` for this payment's context."""
        band = amount_band(payment.amount.minor, payment.amount.currency)
        return context_keys(channel, payment.method, payment.bank, payment.region, band)

    def _sick(self, payment: Payment, channel: str, now: float) -> bool:
        """Is `channel` failing for this payment's scope: a circuit of its context not
        closed, or half its calls of the last 10 s failed (at least 10 of them)?"""
        keys = self._keys(payment, channel)
        if any(state is not BreakerState.CLOSED for state in self.health.states(keys)):
            return True
        for key in keys:
            seen = self.health.stats(key, now, SICK_WINDOW_S)
            if seen is not None and seen.calls >= SICK_CALLS and seen.failures * 2 >= seen.calls:
                return True
        return False

    def _health_now(self) -> float:
        """Epoch seconds: breakers shared through Redis need a time all processes share."""
        return self.clock.now().timestamp()

    def _within_budget(self, attempt: Attempt, failure: Failure, decision: Decision) -> Decision:
        """A same-channel retry spends the channel's retry budget; when it is spent, the
        payment stops here instead of adding load to a struggling provider."""
        same_channel = (decision.channel or attempt.provider) == attempt.provider
        if decision.action is not Action.RETRY_LATER or not same_channel:
            return decision
        if self.budget.try_retry(attempt.provider, self.clock.monotonic()):
            return decision
        kind = Action.CUSTOMER_ACTION if failure.kind.value == "business" else Action.DO_NOT_RETRY
        return Decision(
            kind,
            f"{decision.reason}; but {attempt.provider}'s retry budget is spent: not retried",
            alert_ops=decision.alert_ops,
        )

    async def _card_tries(self, payment: Payment) -> int:
        token = payment.token
        if token is None:
            return 0
        since = self.clock.now() - CARD_HISTORY
        return await self.store.run(
            lambda conn: repo.card_tries_since(conn, token, since, excluding=payment.id)
        )

    def _remaining(self, run: Run) -> float:
        return run.deadline_s - (self.clock.monotonic() - run.started)

    def _budget(self, payment: Payment) -> float:
        """Seconds left for retries and failover on this payment, all runs together."""
        if payment.created_at is None:
            return self.settings.settle_within_s
        spent = (self.clock.now() - payment.created_at).total_seconds()
        return self.settings.settle_within_s - spent

    def _call_timeout(self, run: Run) -> float:
        """A call may not outlive its run: past the deadline the outcome is unknown and
        the worker finishes the payment."""
        return max(MIN_CALL_S, min(self.settings.provider_timeout_s, self._remaining(run)))

    def _classify(self, channel: str, outcome: CallOutcome) -> Failure:
        provider = self.providers.get(channel)
        return self.classifier.classify(
            getattr(provider, "code_map", channel),
            RawAnswer(outcome.raw_code, outcome.raw_message),
        )

    def _context(
        self, payment: Payment, run: Run, attempt: Attempt, failure: Failure, status_known: bool
    ) -> DecisionContext:
        earlier = [a for a in run.attempts if a.id != attempt.id]
        tried = {a.provider for a in run.attempts}
        left = [c for c in run.channels if c not in tried]
        if not left and failure.failover:  # the last resort: a tripped channel...
            now = self._health_now()
            # ...probed early (health/breaker.py) only when the channel that failed is
            # failing for this payment's scope too (a blip on a healthy channel is
            # better retried there), and only for a circuit of a scope on a channel
            # that otherwise works: a channel down as a whole keeps its schedule
            sick = self._sick(payment, attempt.provider, now)
            left = [
                name
                for name, keys in run.spare.items()
                if name not in tried
                and all(
                    self.health.ready(k, now, sick and channel_key(name) not in keys) for k in keys
                )
            ][:1]
        return DecisionContext(
            channel=attempt.provider,
            attempts=[
                *(PriorAttempt(a.provider, a.unified_code) for a in earlier),
                PriorAttempt(attempt.provider, failure.code),
            ],
            channels_left=left,
            card_reattempts_30d=(run.card_tries or 0) + len(earlier),
            remaining_s=self._budget(payment),
            credentials_refreshed=any(
                a.provider == attempt.provider and a.decision == Action.REFRESH_CREDENTIALS.value
                for a in earlier
            ),
            status_known=status_known,
            jitter=lambda cap: self._rng.uniform(0, cap),
        )

    def _follow(
        self, payment: Payment, run: Run, attempt: Attempt, decision: Decision | None
    ) -> tuple[Attempt | None, bool]:
        """The next attempt the decision calls for, and whether it fits in this run (if
        not, a job runs it later and the payment stays `processing`)."""
        if decision is None or decision.action not in (
            Action.FAILOVER,
            Action.RETRY_LATER,
            Action.REFRESH_CREDENTIALS,
        ):
            return None, False
        if len(run.attempts) >= self.settings.max_attempts:
            return None, False
        channel = decision.channel or attempt.provider
        probe = run.spare.get(channel)
        if probe is not None:  # a tripped channel as the last resort: it must take a probe
            now = self._health_now()
            if not all(self.health.allow(k, now, last_resort=True) for k in probe):
                return None, False  # another payment took the probe meanwhile
        following = self._new_attempt(payment, attempt.seq + 1, channel, decision.reason)
        return following, self._remaining(run) - decision.after_s >= MIN_CALL_S

    async def _refresh(self, channel: str) -> None:
        refresh = getattr(self.providers.get(channel), "refresh_credentials", None)
        if refresh is not None:
            await refresh()

    async def _query(self, attempt: Attempt, outcome: CallOutcome, timeout_s: float) -> CallOutcome:
        """Ask the provider what became of the call; keep the original raw answer."""
        provider = self.providers[attempt.provider]
        queried = await query_call(
            self.clock,
            timeout_s,
            provider.query(QueryRequest(attempt.idempotency_key, attempt.payment_id)),
        )
        self._observe(attempt, queried, "query")
        if queried.status not in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED):
            return outcome
        return replace(
            outcome,
            status=queried.status,
            reference=queried.reference or outcome.reference,
            query_code=queried.raw_code,
        )

    def _new_attempt(self, payment: Payment, seq: int, channel: str, reason: str) -> Attempt:
        return Attempt(
            id=AttemptId(self.ids.new("att")),
            payment_id=payment.id,
            seq=seq,
            provider=channel,
            trace_id=payment.trace_id,
            reason=reason,
            request={
                "amount": payment.amount.minor,
                "currency": payment.amount.currency,
                "method": payment.method,
                "bank": payment.bank,
                "region": payment.region,
                "token": mask_token(payment.token),
                "customer": payment.customer.masked(),
            },
        )

    async def _authorize(
        self, payment: Payment, attempt: Attempt, timeout_s: float, *, authenticated: bool = False
    ) -> CallOutcome:
        provider = self.providers[attempt.provider]
        request = ChargeRequest(
            idempotency_key=attempt.idempotency_key,
            payment_id=payment.id,
            amount=payment.amount,
            method=payment.method,
            token=payment.token,
            bank=payment.bank,
            region=payment.region,
            metadata=payment.metadata,
            authenticated=authenticated,
        )
        outcome = await call(self.clock, timeout_s, provider.authorize(request))
        self._observe(attempt, outcome, "authorize")
        return outcome

    async def _record(
        self,
        payment: Payment,
        attempt: Attempt,
        outcome: CallOutcome,
        failure: Failure | None,
        decision: Decision | None,
        following: Attempt | None,
        inline: bool,
        after_s: float,
    ) -> None:
        """Commit the attempt's outcome, the payment's new status, the next attempt
        (written before it is called), the jobs the worker now owes and the events, in
        one transaction."""
        now = self.clock.now()
        attempt.transition(outcome.status)
        attempt.raw_code = outcome.raw_code
        attempt.raw_message = outcome.raw_message
        attempt.provider_reference = outcome.reference
        attempt.latency_ms = outcome.latency_ms
        attempt.finished_at = now if outcome.status is not AttemptStatus.UNKNOWN else None
        if failure is not None:
            attempt.unified_code = failure.code
        if decision is not None:
            attempt.decision = decision.action.value
            attempt.reason = decision.reason
            if outcome.query_code:
                attempt.reason = f"status query: {outcome.query_code}; {decision.reason}"
            if decision.alert_ops:
                code = failure.code if failure else "alert"
                self.health.flag(channel_key(attempt.provider), self._health_now(), code)
                log.warning(
                    "ops_alert",
                    payment_id=payment.id,
                    attempt_id=attempt.id,
                    provider=attempt.provider,
                    code=failure.code if failure else None,
                    raw_code=outcome.raw_code,
                    reason=decision.reason,
                )
        target = _payment_target(attempt, decision, following)
        if target in (PaymentStatus.FAILED, PaymentStatus.REQUIRES_ACTION):
            payment.failure_code = failure.code if failure else None
            payment.failure_message = outcome.raw_message
        elif target is PaymentStatus.SUCCEEDED:  # e.g. after 3-D Secure: no failure is left
            payment.failure_code = payment.failure_message = None
        if following is not None:
            following.created_at = now

        def write(conn: Connection) -> None:
            # canceled meanwhile? A status change below is refused by the payment's version
            # check (StaleWrite); without one, look: keep the record, call nothing more
            if target is None:
                current = repo.get_payment(conn, payment.id)
                if current.status is not payment.status:
                    raise Conflict("payment_changed", f"payment {payment.id} is {current.status}")
            repo.update_attempt(conn, attempt)
            emit(
                conn, self.ids.new("evt"), payment, EventType.ATTEMPT_FINISHED, now, attempt=attempt
            )
            self._settle_later(conn, attempt, now)
            if following is not None:
                repo.insert_attempt(conn, following, self.owner)
                if not inline:
                    jobs.enqueue(
                        conn,
                        self.ids.new("job"),
                        jobs.JobKind.RUN_ATTEMPT,
                        following.id,
                        now + timedelta(seconds=after_s),
                        now,
                    )
            if target is not None:
                payment.transition(target)
                repo.update_payment(conn, payment, now)
                emit(
                    conn, self.ids.new("evt"), payment, STATUS_EVENTS[target], now, attempt=attempt
                )

        try:
            await self.store.run(write)
        except Conflict:
            if attempt.status is AttemptStatus.SUCCEEDED:
                # charged after the payment was canceled: a late success, sent back
                await self._settle_success(attempt, outcome)
            else:
                await self._record_only(attempt)
            raise
        if target is not None:
            PAYMENTS.labels(payment.status.value, attempt.provider).inc()

    async def _record_only(self, attempt: Attempt) -> None:
        """Keep the audit trail of a call whose payment moved on without it."""

        now = self.clock.now()

        def write(conn: Connection) -> None:
            repo.update_attempt(conn, attempt)
            self._settle_later(conn, attempt, now)

        await self.store.run(write)

    def _settle_later(self, conn: Connection, attempt: Attempt, now: datetime) -> None:
        """An unknown outcome owes a status query: the job is written with the outcome."""
        if attempt.status is AttemptStatus.UNKNOWN:
            jobs.enqueue(
                conn,
                self.ids.new("job"),
                jobs.JobKind.SETTLE_ATTEMPT,
                attempt.id,
                now + SETTLE_FIRST_AFTER,
                now,
            )

    def _observe(self, attempt: Attempt, outcome: CallOutcome, operation: str) -> None:
        ATTEMPTS.labels(attempt.provider, outcome.status.value, outcome.raw_code or "").inc()
        ATTEMPT_LATENCY.labels(attempt.provider).observe(outcome.latency_ms / 1000)
        log.info(
            "provider_call",
            operation=operation,
            payment_id=attempt.payment_id,
            attempt_id=attempt.id,
            provider=attempt.provider,
            outcome=outcome.status.value,
            raw_code=outcome.raw_code,
            raw_message=outcome.raw_message,
            latency_ms=outcome.latency_ms,
            trace_id=attempt.trace_id,
        )

    # -- the worker's side --------------------------------------------------------------

    async def _load(self, attempt_id: str) -> tuple[Payment, list[Attempt], Attempt] | None:
        def read(conn: Connection) -> tuple[Payment, list[Attempt], Attempt] | None:
            attempt = repo.get_attempt(conn, attempt_id)
            if attempt is None:
                return None
            attempts = repo.list_attempts(conn, attempt.payment_id)
            return repo.get_payment(conn, attempt.payment_id), attempts, attempt

        return await self.store.run(read)

    async def _controls(self, payment: Payment) -> RouteControls:
        """The ops controls in force for a stored payment's scope."""
        return await self.controls.for_payment(
            payment.method, payment.bank, payment.region, payment.amount
        )

    def _worker_run(
        self,
        payment: Payment,
        attempts: list[Attempt],
        upto: Attempt,
        controls: RouteControls | None = None,
    ) -> Run:
        ctx = PaymentContext(
            payment.method,
            payment.amount.currency,
            payment.region,
            payment.bank,
            payment.amount.minor,
        )
        routed = self._route(ctx, payment.bank, controls)
        return Run(
            routed.channels,
            self.clock.monotonic(),
            self.settings.worker_deadline_s,
            [*(a for a in attempts if a.seq < upto.seq), upto],
            spare=routed.spare,
        )

    async def run_attempt(self, attempt_id: str) -> float | None:
        """Call an attempt decided after its checkout's deadline (a job). None when done,
        else seconds until it runs again. Ops may have paused a scope meanwhile: on a
        paused channel the attempt is settled by a status query instead (never a charge;
        as an attempt a crash left pending is) and the payment fails over around it; with
        its bank or region paused it waits until the pause ends or its time is up."""
        loaded = await self._load(attempt_id)
        if loaded is None:
            return None
        payment, attempts, attempt = loaded
        if (
            attempt.status is not AttemptStatus.PENDING
            or payment.status is not PaymentStatus.PROCESSING
        ):
            return None  # done already, or the payment was settled or canceled meanwhile
        controls = await self._controls(payment)
        if attempt.provider in controls.paused_channels:  # fail over around it now
            log.info("attempt_not_sent", attempt_id=attempt.id, why="channel paused by ops")
            await self.settle_attempt(attempt.id)
            return None
        if controls.paused_because is not None:  # every channel: wait for ops, or time
            left = self._budget(payment)
            if left > 0:
                log.info("attempt_waits_for_ops", attempt_id=attempt.id, left_s=round(left))
                return max(PAUSE_WAIT_S, left)
            await self.settle_attempt(attempt.id)  # no time left: nothing more is called
            return None
        try:
            await self._drive(payment, self._worker_run(payment, attempts, attempt, controls))
        except Conflict:
            return None
        return None

    async def settle_attempt(self, attempt_id: str) -> bool:
        """Ask the provider about an attempt whose outcome is unknown (a job, or the sweep
        for attempts a crash left pending). True when settled, False to ask again later."""
        loaded = await self._load(attempt_id)
        if loaded is None:
            return True
        payment, attempts, attempt = loaded
        if attempt.status not in (AttemptStatus.UNKNOWN, AttemptStatus.PENDING):
            return True
        queried = await query_call(
            self.clock,
            self.settings.provider_timeout_s,
            self.providers[attempt.provider].query(
                QueryRequest(attempt.idempotency_key, attempt.payment_id)
            ),
        )
        self._observe(attempt, queried, "query")
        if queried.status not in (
            AttemptStatus.SUCCEEDED,
            AttemptStatus.FAILED,
            AttemptStatus.REQUIRES_ACTION,
        ):
            return False
        # an attempt a crash left pending never got an answer: it was interrupted, a
        # technical failure of ours, not whatever the status query's code would mean
        outcome = CallOutcome(
            queried.status,
            attempt.raw_code or INTERRUPTED,
            attempt.raw_message or "paymend stopped before the provider's answer was recorded",
            queried.reference or attempt.provider_reference,
            attempt.latency_ms or 0,
            True,
            query_code=queried.raw_code,
        )
        if queried.status is AttemptStatus.SUCCEEDED:
            await self._settle_success(attempt, outcome)
            return True
        if queried.status is AttemptStatus.REQUIRES_ACTION:
            if payment.status is not PaymentStatus.PROCESSING:
                return True  # canceled or settled meanwhile: the held charge never completes
            failure, decision = self._awaits_authentication(attempt, outcome)
            with contextlib.suppress(Conflict):
                await self._record(payment, attempt, outcome, failure, decision, None, False, 0.0)
            return True
        if payment.status is not PaymentStatus.PROCESSING:
            attempt.transition(AttemptStatus.FAILED)
            attempt.reason = f"status query: {queried.raw_code}; the payment is {payment.status}"
            attempt.finished_at = self.clock.now()
            await self.store.run(lambda conn: repo.update_attempt(conn, attempt))
            return True
        controls = await self._controls(payment)
        run = self._worker_run(payment, attempts, attempt, controls)
        with contextlib.suppress(Conflict):  # canceled meanwhile: nothing more to call
            await self._drive(payment, run, outcome, status_known=True)
        return True

    async def _settle_success(self, attempt: Attempt, outcome: CallOutcome) -> None:
        """The provider charged. The payment succeeds, unless it settled another way
        meanwhile: then this charge is a duplicate and is refunded at once."""
        now = self.clock.now()

        def write(conn: Connection) -> None:
            payment = repo.get_payment(conn, attempt.payment_id)
            current = repo.get_attempt(conn, attempt.id)
            if current is None or current.status not in (
                AttemptStatus.UNKNOWN,
                AttemptStatus.PENDING,
                AttemptStatus.FAILED,  # reconciliation: charged after being recorded failed
            ):
                return
            others = [
                a
                for a in repo.list_attempts(conn, payment.id)
                if a.id != current.id and a.status is AttemptStatus.SUCCEEDED
            ]
            current.provider_reference = outcome.reference
            current.finished_at = now
            if (
                payment.status in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION)
                and not others
            ):
                current.transition(AttemptStatus.SUCCEEDED)
                current.reason = f"status query: {outcome.query_code}; the money had moved"
                repo.update_attempt(conn, current)
                for waiting in repo.list_attempts(conn, payment.id):
                    if waiting.status is AttemptStatus.PENDING and waiting.id != current.id:
                        waiting.transition(AttemptStatus.FAILED)
                        waiting.reason = f"not called: attempt {current.id} had succeeded"
                        repo.update_attempt(conn, waiting)
                if payment.status is PaymentStatus.REQUIRES_ACTION:
                    payment.transition(PaymentStatus.PROCESSING)
                payment.transition(PaymentStatus.SUCCEEDED)
                payment.failure_code = payment.failure_message = None
                repo.update_payment(conn, payment, now)
                emit(
                    conn,
                    self.ids.new("evt"),
                    payment,
                    EventType.PAYMENT_SUCCEEDED,
                    now,
                    attempt=current,
                )
                return
            current.transition(AttemptStatus.REVERSED)
            current.reason = (
                f"status query: {outcome.query_code}; charged after the payment was "
                f"{payment.status}: refunded automatically"
            )
            repo.update_attempt(conn, current)
            refund = self.refunds.refund_duplicate(conn, payment, current, now)
            emit(
                conn,
                self.ids.new("evt"),
                payment,
                EventType.DUPLICATE_CHARGE,
                now,
                attempt=current,
                refund=refund,
            )
            log.warning(
                "ops_alert",
                payment_id=payment.id,
                attempt_id=current.id,
                reason="a second charge for one payment: refunded automatically",
            )

        await retry_stale(self.store, write)

    async def charged_after_all(self, attempt_id: str, reference: str) -> None:
        """Reconciliation found a charge the store does not count: settle it like a late
        success (a duplicate when the payment settled otherwise: refunded at once)."""
        loaded = await self._load(attempt_id)
        if loaded is None:
            return
        attempt = loaded[2]
        outcome = CallOutcome(
            AttemptStatus.SUCCEEDED,
            attempt.raw_code,
            attempt.raw_message,
            reference,
            attempt.latency_ms or 0,
            True,
            query_code="SETTLEMENT_REPORT",
        )
        await self._settle_success(attempt, outcome)

    # -- the merchant's and the customer's side ----------------------------------------

    async def cancel(
        self, merchant_id: str, payment_id: str, claim: Claim | None = None
    ) -> PaymentView:
        """Stop a payment that is not final. A charge that still lands later is refunded.
        `claim`: the Idempotency-Key it runs under, linked to the payment with the change."""
        now = self.clock.now()

        def write(conn: Connection) -> None:
            payment = repo.get_payment(conn, payment_id, merchant_id)
            idempotency.link(conn, claim, "payment", payment.id)
            if payment.status not in (
                PaymentStatus.PROCESSING,
                PaymentStatus.REQUIRES_ACTION,
                PaymentStatus.HELD,
            ):
                raise InvalidInput(
                    "payment_not_cancelable",
                    f"a payment in status '{payment.status.value}' cannot be canceled",
                    status=409,
                )
            for waiting in repo.list_attempts(conn, payment.id):
                if waiting.status is AttemptStatus.PENDING and waiting.latency_ms is None:
                    waiting.transition(AttemptStatus.FAILED)
                    waiting.reason = "not called: the payment was canceled"
                    repo.update_attempt(conn, waiting)
            payment.transition(PaymentStatus.CANCELED)
            repo.update_payment(conn, payment, now)
            emit(conn, self.ids.new("evt"), payment, EventType.PAYMENT_CANCELED, now)

        await retry_stale(self.store, write)
        return await self.get(payment_id, merchant_id)

    async def confirm(
        self, merchant_id: str, payment_id: str, claim: Claim | None = None
    ) -> PaymentView:
        """Continue a payment after the customer completed 3-D Secure. `claim`: the
        Idempotency-Key it runs under, linked to the payment with the change."""
        view = await self.get(payment_id, merchant_id)
        payment = view.payment
        if payment.status is not PaymentStatus.REQUIRES_ACTION:
            raise InvalidInput(
                "payment_not_awaiting_action",
                f"a payment in status '{payment.status.value}' has nothing to confirm",
                status=409,
            )
        last = view.attempts[-1]
        now = self.clock.now()
        if last.status is AttemptStatus.REQUIRES_ACTION:
            attempt = last  # the provider holds the authenticated charge: complete it
        else:
            attempt = self._new_attempt(
                payment, last.seq + 1, last.provider, "customer completed 3-D Secure"
            )
            attempt.created_at = now
        payment.transition(PaymentStatus.PROCESSING)

        def write(conn: Connection) -> None:
            repo.update_payment(conn, payment, now)
            idempotency.link(conn, claim, "payment", payment.id)
            if attempt is not last:
                repo.insert_attempt(conn, attempt, self.owner)

        await self.store.run(write)
        run = Run(
            (last.provider,),
            self.clock.monotonic(),
            self.settings.checkout_deadline_s,
            [*view.attempts, *([attempt] if attempt is not last else [])],
        )
        if attempt is last:
            outcome = await call(
                self.clock,
                self._call_timeout(run),
                self.providers[attempt.provider].confirm(
                    QueryRequest(attempt.idempotency_key, payment.id)
                ),
            )
            self._observe(attempt, outcome, "confirm")
        else:
            outcome = await self._authorize(
                payment, attempt, self._call_timeout(run), authenticated=True
            )
        with contextlib.suppress(Conflict):  # canceled meanwhile: nothing more to call
            await self._drive(payment, run, outcome)
        return await self.get(payment_id, merchant_id)

    # -- read ---------------------------------------------------------------------------

    @staticmethod
    def _view(conn: Connection, p: Payment) -> PaymentView:
        return PaymentView(
            p,
            repo.list_attempts(conn, p.id),
            refunds.for_payment(conn, p.id),
            repo.recent_failures(conn, p, REPEAT_WINDOW),
        )

    async def get(self, payment_id: str, merchant_id: str | None = None) -> PaymentView:
        def read(conn: Connection) -> PaymentView:
            return self._view(conn, repo.get_payment(conn, payment_id, merchant_id))

        return await self.store.run(read)

    async def find_by_order(self, merchant_id: str, order_id: str) -> list[PaymentView]:
        def read(conn: Connection) -> list[PaymentView]:
            return [self._view(conn, p) for p in repo.find_by_order(conn, merchant_id, order_id)]

        return await self.store.run(read)

    async def refund(self, cmd: RefundCommand) -> Refund:
        return await self.refunds.refund(cmd)


def _order_taken(order_id: str, holder: Payment) -> Conflict:
    if holder.status in ORDER_PAID:
        return OrderAlreadyPaid(order_id, holder.id)
    return OrderPaymentInProgress(order_id, holder.id)


def _payment_target(
    attempt: Attempt, decision: Decision | None, following: Attempt | None
) -> PaymentStatus | None:
    if attempt.status is AttemptStatus.SUCCEEDED:
        return PaymentStatus.SUCCEEDED
    if following is not None or attempt.status is AttemptStatus.UNKNOWN:
        return None  # another attempt follows, or the worker settles it
    if decision is not None and decision.action is Action.AUTHENTICATE:
        return PaymentStatus.REQUIRES_ACTION
    if attempt.status is AttemptStatus.REQUIRES_ACTION:
        return PaymentStatus.REQUIRES_ACTION
    return PaymentStatus.FAILED

"""PaymentService: pay, cancel, confirm and read payments; the engine's facade.

The order of work is the safety argument: the payment and a pending attempt are committed
*before* the provider is called, and the outcome, the payment's new status, the next
attempt (if any) and the outbox events are committed together afterwards. A crash
anywhere leaves rows the worker can finish; the attempt id is the provider's idempotency
key, so a resend never charges twice.

Here: creating a payment (one per order unless split, refused or held by ops controls
before any call), cancel, confirm after 3-D Secure, and reads. The work on a payment
is elsewhere: engine/attempts.py (the loop: call, classify, decide, follow),
engine/recording.py (the one-transaction record), engine/settlement.py (the worker's
jobs), engine/late_success.py (a charge found late), routing/failover.py (the route).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from paymend.domain.clock import Clock
from paymend.domain.errors import (
    Conflict,
    InvalidInput,
    PaymendError,
    PaymentInFlight,
)
from paymend.domain.events import EventType
from paymend.domain.ids import PaymentId
from paymend.domain.payment import (
    Attempt,
    AttemptStatus,
    Payment,
    PaymentStatus,
    Refund,
)
from paymend.engine.attempts import AttemptLoop, Run
from paymend.engine.calls import Caller
from paymend.engine.closing import OPEN, close_waiting
from paymend.engine.commands import PayCommand, RefundCommand
from paymend.engine.controls import ControlService, RouteControls
from paymend.engine.creation import Creation, Stop
from paymend.engine.events import emit
from paymend.engine.ids import IdFactory
from paymend.engine.liveness import Owner
from paymend.engine.refunds import RefundService
from paymend.engine.risk_gate import Assessed, RiskGate, RiskNote, note_of
from paymend.engine.settings import EngineSettings
from paymend.engine.settlement import Settlement
from paymend.engine.stale import retry_stale
from paymend.failures.classify import Classifier
from paymend.health.book import Health
from paymend.observability import get_logger
from paymend.providers.base import NotificationReply, Provider
from paymend.routing.failover import Routed, Router
from paymend.routing.ranking import PaymentContext
from paymend.store import idempotency, refunds
from paymend.store import payments as repo
from paymend.store.database import Connection, Store
from paymend.store.idempotency import Claim, NewKey
from paymend.store.pii import Vault

log = get_logger("paymend.engine")
REPEAT_WINDOW = timedelta(hours=1)
CANCELABLE = frozenset(
    {PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.HELD}
)


@dataclass(slots=True)
class PaymentView:
    """A payment with its attempt timeline and refunds, as read in one transaction."""

    payment: Payment
    attempts: list[Attempt] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    repeat_failures: int = 0  # same customer, same cause, within the hour before it
    risk: RiskNote | None = None  # its risk decision; None: taken without risk control


class PaymentService:
    """The engine's front door: pay, cancel, confirm, refund and read payments, and the
    worker's entries. The parts are built and wired by `engine.runtime.build_payment_service`."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: EngineSettings,
        ids: IdFactory,
        *,
        providers: Mapping[str, Provider],
        health: Health,
        classifier: Classifier,
        pii: Vault,
        controls: ControlService,
        refunds: RefundService,
        router: Router,
        caller: Caller,
        creation: Creation,
        attempts: AttemptLoop,
        settlement: Settlement,
        owner: Owner,
        risk: RiskGate | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.ids = ids
        self.providers = providers
        self.health = health
        self.classifier = classifier
        # seals customer contact details at creation; without a data key none are stored
        self.pii = pii
        self.controls = controls
        self.refunds = refunds
        self.router = router
        self.caller = caller
        self.creation = creation
        self.attempts = attempts
        self.settlement = settlement
        self._owner = owner
        self.risk = risk  # engine/risk_gate.py; None: no risk control (the lab, tests)

    @property
    def risk(self) -> RiskGate | None:
        return self._risk

    @risk.setter
    def risk(self, gate: RiskGate | None) -> None:
        """Risk control decides before routing and counts every failure, also one the
        worker settles later (an unknown outcome, a retry it ran)."""
        self._risk = gate
        self.attempts.recorder.on_failed = gate.failed if gate else None

    @property
    def owner(self) -> str | None:
        """The process instance (engine/liveness.py) that owns the attempts this service
        calls: when it dies, the worker settles them at once. None: no instance (the
        lab, tests): an attempt is orphaned only by its age."""
        return self._owner.id

    @owner.setter
    def owner(self, instance_id: str | None) -> None:
        self._owner.id = instance_id

    def methods(self) -> set[str]:
        return {m for p in self.providers.values() for m in p.capabilities.methods}

    # -- pay ----------------------------------------------------------------------------

    def route(self, ctx: PaymentContext, controls: RouteControls) -> Routed:
        """Rank the channels for one payment around the ops controls in force."""
        return self.router.route(ctx, self._health_now(), controls.paused_channels, controls.forced)

    async def pay(self, cmd: PayCommand) -> PaymentView:
        payment_id = PaymentId(self.ids.new("pay"))
        gate = self.risk
        pending = gate.prepare(cmd, payment_id) if gate else None
        controls = await self.controls.for_payment(cmd.method, cmd.bank, cmd.region, cmd.amount)
        ctx = PaymentContext(
            cmd.method, cmd.amount.currency, cmd.region, cmd.bank, cmd.amount.minor
        )
        routed = self.route(ctx, controls)
        channels = routed.channels
        # a pause in the way: it waits (engine/waiting.py); Unavailable under the naive policy
        pauses = self.settlement.waiting.gate(cmd.method, routed, controls)
        if not channels and pauses.shut is None:
            raise InvalidInput(
                "payment_method_unavailable",
                f"no configured channel accepts {cmd.method} in {cmd.amount.currency}"
                + (f" for region {cmd.region}" if cmd.region else ""),
                param="method",
            )
        now = self.clock.now()
        payment = Payment(
            id=payment_id,
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
        # no channel (all paused): the payment waits, and this attempt is never written
        first = channels[0] if channels else ""
        attempt = self.attempts.new_attempt(payment, 1, first, f"route: {routed.reason}")
        attempt.created_at = now
        assessed: Assessed | None = None

        def decide(conn: Connection) -> Stop | None:
            """In the payment's first transaction: risk control first (its reads and
            decision), then the ops controls: a pause makes it wait or lets a probe
            through, a hold holds (engine/waiting.py)."""
            nonlocal assessed
            if gate is not None and pending is not None:
                assessed = gate.decide(conn, pending)
                stop = gate.stop_of(assessed)
                if stop is not None:
                    return stop
            stop = pauses.stop()
            attempt.reason = f"route: {pauses.reason}"
            return stop

        def also(conn: Connection) -> None:  # the decision, with the payment
            if assessed is not None:
                assessed.record(conn)

        stopped = await self.creation.first(payment, attempt, now, cmd.claim, decide, also)
        note = assessed.note if assessed else None
        if gate is not None and pending is not None and assessed is not None:
            await gate.decided(pending, assessed, payment)
        if stopped is not None:
            return PaymentView(payment, [], [], risk=note)
        self.attempts.budget.first(attempt.provider, self.clock.monotonic())
        run = Run(
            channels,
            self.clock.monotonic(),
            cmd.deadline_s or self.settings.checkout_deadline_s,
            [attempt],
            spare=routed.spare,
        )
        repeats = 0
        claim = cmd.claim.claim if isinstance(cmd.claim, NewKey) else cmd.claim

        def finish(conn: Connection) -> None:
            """In the run's last transaction: what the answer needs, and the answer."""
            nonlocal repeats
            if payment.failure_code is not None:
                repeats = repo.recent_failures(conn, payment, REPEAT_WINDOW)
            if cmd.answer is not None and claim is not None:
                view = PaymentView(payment, list(run.attempts), [], repeats, note)
                code, body = cmd.answer(view)
                idempotency.complete(conn, claim, code, body, self.clock.now())

        try:
            await self.attempts.drive(payment, run, finish=finish)
        except PaymendError as exc:
            log.warning("payment_left_in_flight", payment_id=payment.id, code=exc.code)
            raise PaymentInFlight(payment.id) from exc
        return PaymentView(payment, run.attempts, [], repeats, note)

    def _health_now(self) -> float:
        """Epoch seconds: breakers shared through Redis need a time all processes share."""
        return self.clock.now().timestamp()

    async def notified(
        self, channel: str, headers: Mapping[str, str], body: bytes
    ) -> NotificationReply:
        """A provider's notification (engine/notifications.py): verified, then settled
        as a status query's answer; the reply the provider expects."""
        from paymend.engine.notifications import Notifications

        return await Notifications(
            self.store, self.providers, self.settlement, self.refunds
        ).receive(channel, headers, body)

    async def charged_after_all(self, attempt_id: str, reference: str) -> None:
        """Reconciliation found a charge the store does not count (engine/late_success.py)."""
        await self.settlement.charged_after_all(attempt_id, reference)

    async def run_attempt(self, attempt_id: str) -> float | None:
        """A run_attempt job (engine/settlement.py)."""
        return await self.settlement.run_attempt(attempt_id)

    async def settle_attempt(self, attempt_id: str) -> bool:
        """A settle_attempt job, or an attempt a crash left pending (engine/settlement.py)."""
        return await self.settlement.settle_attempt(attempt_id)

    async def cancel(
        self, merchant_id: str, payment_id: str, claim: Claim | None = None
    ) -> PaymentView:
        """Stop a payment that is not final. What waits on the customer is closed at its
        provider first (engine/closing.py: paid meanwhile, the payment succeeds instead);
        a charge that still lands later is refunded. `claim`: the Idempotency-Key it runs
        under, linked to the payment with the change."""
        view = await self.get(payment_id, merchant_id)
        closed = {}
        if view.payment.status in CANCELABLE:  # a refused cancel calls no provider
            closed = await close_waiting(
                self.caller, self.settlement, view.attempts, self.settings.provider_timeout_s
            )
        now = self.clock.now()

        def write(conn: Connection) -> None:
            payment = repo.get_payment(conn, payment_id, merchant_id)
            idempotency.link(conn, claim, "payment", payment.id)
            if payment.status not in CANCELABLE:
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
                shut = closed.get(waiting.id)
                if shut is not None and waiting.status in OPEN:
                    waiting.transition(AttemptStatus.FAILED)
                    waiting.reason = (
                        f"closed at the provider ({shut.raw_code}): the payment was canceled"
                    )
                    repo.update_attempt(conn, waiting)
            payment.transition(PaymentStatus.CANCELED)
            repo.update_payment(conn, payment, now)
            emit(conn, self.ids.new("evt"), payment, EventType.PAYMENT_CANCELED, now)

        await retry_stale(self.store, write)
        return await self.get(payment_id, merchant_id)

    async def confirm(
        self,
        merchant_id: str,
        payment_id: str,
        claim: Claim | None = None,
        details: Mapping[str, str] | None = None,
    ) -> PaymentView:
        """Continue a payment after the customer completed 3-D Secure. `claim`: the
        Idempotency-Key it runs under, linked to the payment with the change; `details`:
        what the customer's return from the provider brought (Adyen's `redirectResult`)."""
        view = await self.get(payment_id, merchant_id)
        payment = view.payment
        if payment.status is not PaymentStatus.REQUIRES_ACTION:
            raise InvalidInput(
                "payment_not_awaiting_action",
                f"a payment in status '{payment.status.value}' has nothing to confirm",
                status=409,
            )
        if not view.attempts:  # risk control asked for 3-D Secure before any charge
            from paymend.engine.risk_challenge import charge_authenticated

            return await charge_authenticated(self, view, claim)
        last = view.attempts[-1]
        now = self.clock.now()
        if last.status is AttemptStatus.REQUIRES_ACTION and self.caller.confirms(last.provider):
            attempt = last  # the provider holds the authenticated charge: complete it
        else:
            attempt = self.attempts.new_attempt(
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
            outcome = await self.caller.confirm(attempt, self.attempts.call_timeout(run), details)
        else:
            outcome = await self.caller.authorize(
                payment,
                attempt,
                self.attempts.call_timeout(run),
                authenticated=True,
                pay_by=self.attempts.pay_by(payment),
            )
        with contextlib.suppress(Conflict):  # canceled meanwhile: nothing more to call
            await self.attempts.drive(payment, run, outcome)
        return await self.get(payment_id, merchant_id)

    # -- read ---------------------------------------------------------------------------

    @staticmethod
    def _view(conn: Connection, p: Payment) -> PaymentView:
        return PaymentView(
            p,
            repo.list_attempts(conn, p.id),
            refunds.for_payment(conn, p.id),
            repo.recent_failures(conn, p, REPEAT_WINDOW),
            note_of(conn, p.id),
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

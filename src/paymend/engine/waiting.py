"""Payments that wait out a pause: held `processing` with no attempt, called once let through.

A pause is an ops control with an end: an operator's (it ends at its `ends_at` or when
ended) or a playbook's (it ends when the playbook recovers). When one shuts every way a
new payment could go (its bank or region is paused, or every channel of its method is),
failing it at once throws away a payment the pause may let through within seconds or
minutes, well inside its `settle_within_s`: a wallet with one channel (Alipay, WeChat
Pay) has no other way. So the checkout stores it `processing` with no attempt, the
reason on its `payment.processing` event, and a `start_payment` job due shortly
(engine/creation.py); the customer reads the usual processing message ("we are
confirming, do not pay again") and the shop the usual processing answer.

Each run of the job looks again (`Waiting.start`):

- let through (the pause ended, or a playbook's pause takes it as its probe, one payment
  a second): its first attempt is written, guarded by the payment's version, then
  called (the write-before-call rule), and it goes on as any worker run with what is
  left of its time. Routing is the checkout's own: an open circuit is routed around,
  probed, or tried as the last resort exactly as for a new payment;
- a hold for review now in force: held, as its checkout would have been;
- still paused: the job runs again after a wait that doubles from 2 s to 15 s (a pause
  that ends makes every waiting job due at once: engine/controls.py), a few looks a
  minute per waiting payment, never a loop;
- its `settle_within_s` is over: it fails without any call, `issuer_unavailable` for a
  bank or region pause, `provider_unavailable` for paused channels.

Only pauses make a payment wait, never open circuits: a waiting payment is not a
circuit's probe, so payments waiting for a circuit would sit until their deadline when
no new traffic came to probe it (tests/test_crash_recovery.py). No attempt exists before
the call is decided, so a payment that never got through was never called: it fails
with nothing to query and nothing charged. The naive policy has no worker to start a
payment later: there a pause fails it at once, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from paymend.domain.errors import Conflict, StaleWrite, Unavailable
from paymend.domain.events import EventType
from paymend.domain.payment import Payment, PaymentStatus
from paymend.engine.attempts import MIN_CALL_S, AttemptLoop, Run
from paymend.engine.call_health import payment_context
from paymend.engine.controls import ControlService, RouteControls
from paymend.engine.creation import Stop
from paymend.engine.events import emit
from paymend.engine.recording import Recorder
from paymend.engine.settings import EngineSettings, Policy
from paymend.observability import PAYMENTS, get_logger
from paymend.routing.failover import Routed, Router
from paymend.store import payments as repo
from paymend.store.database import Connection, Store

log = get_logger("paymend.engine")
FIRST_LOOK_S = 2.0  # a waiting payment looks again after this, doubling...
LOOK_CAP_S = 15.0  # ...up to this: a pause's end reaches it within 15 s at worst
SCOPE_PAUSED, CHANNELS_PAUSED = "issuer_unavailable", "provider_unavailable"


def next_look(tries: int) -> float:
    """Seconds until a waiting payment looks again, after `tries` looks."""
    return float(min(LOOK_CAP_S, FIRST_LOOK_S * 2.0 ** min(max(tries - 1, 0), 10)))


def channels_paused(method: str, routed: Routed, controls: RouteControls) -> str | None:
    """Why no channel may take the payment: every one of its method is paused by ops.
    None when a channel is left (or none was ever configured for it)."""
    if routed.channels or not controls.paused_channels:
        return None
    names = ", ".join(sorted(controls.paused_channels))
    return f"every channel for {method} is paused by ops ({names})"


@dataclass(slots=True)
class PauseGate:
    """What the ops controls make of a payment before any call: wait (a pause), fail
    (a pause, where nothing could start it later), hold (for review), or go; in the
    payment's first transaction, which may run twice: the probe is taken once."""

    controls: RouteControls
    route: str  # the route's reason
    take_probe: Callable[[str | None], bool]
    waits: bool  # a worker may start it later (not the naive policy)
    shut: str | None = None  # every channel of its method paused: why
    _probe: bool | None = None

    def stop(self) -> Stop | None:
        """None: call it now (`reason` says how it passed)."""
        if self.shut is not None:
            return Stop(PaymentStatus.PROCESSING, self.shut, look_after_s=FIRST_LOOK_S)
        paused = self.controls.paused_because
        if paused is not None:
            if self._probe is None:
                self._probe = self.take_probe(self.controls.probe)
            if not self._probe:
                if self.waits:
                    return Stop(PaymentStatus.PROCESSING, paused, look_after_s=FIRST_LOOK_S)
                return Stop(PaymentStatus.FAILED, paused, SCOPE_PAUSED)
        if self.controls.held_because is not None:
            return Stop(PaymentStatus.HELD, self.controls.held_because)
        return None

    @property
    def reason(self) -> str:
        if self._probe:
            return f"{self.route}; a probe through the pause ({self.controls.paused_because})"
        return self.route


class Waiting:
    """Decides whether a new payment waits, and starts the ones that waited."""

    def __init__(
        self,
        settings: EngineSettings,
        store: Store,
        controls: ControlService,
        router: Router,
        attempts: AttemptLoop,
        recorder: Recorder,
    ) -> None:
        self.settings = settings
        self.store = store
        self.controls = controls
        self.router = router
        self.attempts = attempts
        self.recorder = recorder
        self.clock = attempts.clock

    def gate(self, method: str, routed: Routed, controls: RouteControls) -> PauseGate:
        """The gate of a new payment. Every channel of its method paused: it waits for
        one, or under the naive policy it is refused (Unavailable) as before."""
        waits = self.settings.policy is not Policy.NAIVE
        shut = channels_paused(method, routed, controls)
        if shut is not None and not waits:
            raise Unavailable(
                "payment_method_paused",
                f"every channel for {method} is paused by ops; nothing was charged",
            )
        return PauseGate(controls, routed.reason, self.controls.take_probe, waits, shut)

    async def start(self, payment_id: str, tries: int) -> float | None:
        """A `start_payment` job: call the payment if it may go now, hold it if a hold
        applies, fail it if its time is up, else look again later. None when done, else
        seconds until the next look."""

        def read(conn: Connection) -> tuple[Payment, bool]:
            p = repo.get_payment(conn, payment_id)
            return p, bool(repo.list_attempts(conn, payment_id))

        payment, started = await self.store.run(read)
        if payment.status is not PaymentStatus.PROCESSING or started:
            return None  # canceled meanwhile, or started already (a job run twice)
        return await self.look(payment, tries)

    async def look(self, payment: Payment, tries: int) -> float | None:
        """`start` with the payment as read: it may be stale by now (another worker
        started it, the shop canceled it), which the write of its attempt finds."""
        controls = await self.controls.for_payment(
            payment.method, payment.bank, payment.region, payment.amount
        )
        routed = self.router.route(
            payment_context(payment),
            self.clock.now().timestamp(),
            controls.paused_channels,
            controls.forced,
        )
        gate = PauseGate(
            controls,
            routed.reason,
            self.controls.take_probe,
            True,
            channels_paused(payment.method, routed, controls),
        )
        left = self.attempts.time_left(payment)
        if left < MIN_CALL_S:  # never let through in time
            scope = gate.shut is None and controls.paused_because is not None
            why = gate.shut or controls.paused_because or "no channel takes it now"
            code = SCOPE_PAUSED if scope else CHANNELS_PAUSED
            await self._settle(payment, PaymentStatus.FAILED, why, code)
            return None
        stop = gate.stop()
        if stop is None and routed.channels:
            await self._call(payment, routed, gate.reason)
            return None
        if stop is not None and stop.status is PaymentStatus.HELD:
            await self._settle(payment, PaymentStatus.HELD, stop.why)
            return None
        why = stop.why if stop is not None else "no channel takes it now"
        log.info("payment_waits", payment_id=payment.id, why=why, left_s=round(left))
        return min(next_look(tries), left)

    async def _call(self, payment: Payment, routed: Routed, reason: str) -> None:
        """Write the first attempt (the payment's version guards against a cancel or a
        second worker meanwhile: only one of them writes it), then call it."""
        waited = self.settings.settle_within_s - self.attempts.time_left(payment)
        attempt = self.attempts.new_attempt(
            payment, 1, routed.channels[0], f"route: {reason}; after waiting {waited:.0f}s"
        )
        attempt.created_at = now = self.clock.now()
        owner = self.recorder.owner.id

        def write(conn: Connection) -> None:
            if repo.list_attempts(conn, payment.id):
                raise Conflict("payment_changed", f"payment {payment.id} was started")
            repo.update_payment(conn, payment, now)  # the version check
            repo.insert_attempt(conn, attempt, owner)

        try:
            await self.store.run(write)
        except (Conflict, StaleWrite):
            return  # canceled, or started by another worker: nothing to call
        self.attempts.budget.first(attempt.provider, self.clock.monotonic())
        run = Run(
            routed.channels,
            self.clock.monotonic(),
            self.settings.worker_deadline_s,
            [attempt],
            spare=routed.spare,
        )
        with contextlib.suppress(Conflict):  # canceled while in flight: nothing more
            await self.attempts.drive(payment, run)

    async def _settle(
        self, payment: Payment, status: PaymentStatus, why: str, code: str | None = None
    ) -> None:
        """Settle it without any call: FAILED (its time is up: `code`) or HELD."""
        now = self.clock.now()
        extra = None
        if status is PaymentStatus.FAILED:
            payment.failure_code = code
            payment.failure_message = f"not called: waited until its deadline ({why})"
            event = EventType.PAYMENT_FAILED
        else:
            extra = {"reason": why}
            event = EventType.PAYMENT_HELD
        payment.transition(status)

        def write(conn: Connection) -> None:
            repo.update_payment(conn, payment, now)
            emit(conn, self.recorder.ids.new("evt"), payment, event, now, extra=extra)

        try:
            await self.store.run(write)
        except StaleWrite:
            return  # canceled or started meanwhile
        PAYMENTS.labels(payment.status.value, "none").inc()
        log.info("payment_not_let_through", payment_id=payment.id, status=status.value, why=why)

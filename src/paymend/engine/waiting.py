"""Payments that wait for their channel: held `processing`, called once let through.

When every way a new payment could go is shut for the moment (a pause of its bank or
region, a playbook's or an operator's, or the open circuit of every channel that takes
it, such as a wallet with one channel), failing it at once throws away a payment the
fault may let through within seconds or minutes, well inside its `settle_within_s`.
So the checkout stores it `processing` with no attempt and a `start_payment` job due
shortly (engine/creation.py); the customer reads the usual processing message ("we are
confirming, do not pay again") and the shop the usual processing answer.

Each run of the job looks again (`Waiting.start`):

- let through (the pause ended; a playbook's pause takes it as its probe, one payment a
  second; the circuit closed, is half-open and admits it, or admits its early probe, one
  every `last_resort_s`): the first attempt is written, then called (the write-before-
  call rule), and the payment goes on as any worker run, with what is left of its time;
- still shut: the job runs again after a wait that doubles from 2 s to 15 s (a
  control that ends makes every waiting job due at once: engine/controls.py), so the
  work is a few looks a minute per waiting payment, never a loop;
- its `settle_within_s` is over: it fails without any call, `issuer_unavailable` when
  its bank or region stayed paused, `provider_unavailable` when its channels stayed
  shut, with the customer message of that code.

No attempt exists before the call is decided, so a payment that never got through was
never called: it fails with nothing to query and nothing charged. An operator's pause
lets nothing through (no probe): its payments wait for the operator to end it, or fail
at their deadline.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from paymend.domain.errors import Conflict, StaleWrite
from paymend.domain.events import EventType
from paymend.domain.payment import Payment, PaymentStatus
from paymend.engine.attempts import MIN_CALL_S, AttemptLoop, Run
from paymend.engine.call_health import payment_context
from paymend.engine.controls import ControlService, RouteControls
from paymend.engine.events import emit
from paymend.engine.recording import Recorder
from paymend.engine.settings import EngineSettings
from paymend.health.keys import channel_key
from paymend.observability import PAYMENTS, get_logger
from paymend.routing.failover import Routed, Router
from paymend.store import payments as repo
from paymend.store.database import Connection, Store

log = get_logger("paymend.engine")
FIRST_LOOK_S = 2.0  # a waiting payment looks again after this, doubling...
LOOK_CAP_S = 15.0  # ...up to this: a fault's end reaches it within 15 s at worst
PAUSED, SHUT = "issuer_unavailable", "provider_unavailable"


def next_look(tries: int) -> float:
    """Seconds until a waiting payment looks again, after `tries` looks."""
    return float(min(LOOK_CAP_S, FIRST_LOOK_S * 2.0 ** min(max(tries - 1, 0), 10)))


@dataclass(frozen=True, slots=True)
class Gate:
    """Whether a payment may be called now, and if not, why (for its record)."""

    channels: tuple[str, ...]
    reason: str  # the route's reason, with the probe it takes, if any
    shut: str | None = None  # why it must wait; None: go
    code: str = SHUT  # the failure code if it waits past its deadline


class Waiting:
    """Decides whether a payment may go now, and starts the ones that waited."""

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

    def gate(self, routed: Routed, controls: RouteControls) -> Gate:
        """May this payment be called now? Takes the probe it passes as, if any: a
        playbook's pause admits one payment a second; a channel down as a whole (its own
        circuit open, and no other channel left) admits its early probe every
        `last_resort_s` (health/breaker.py). When only a scope's circuits are open (a
        bank on a channel that otherwise works) the payment goes as before: one try on
        the channel that last succeeded. Only payments with channels get here."""
        channels, reason = routed.channels, routed.reason
        if controls.paused_because is not None:
            if not self.controls.take_probe(controls.probe):
                return Gate(channels, reason, controls.paused_because, PAUSED)
            reason = f"{reason}; a probe through the pause ({controls.paused_because})"
        keys = routed.last_resort  # every circuit open: the one it would try anyway
        if keys and channel_key(channels[0]) in keys:  # down as a whole: no try is worth it
            if not self.router.take_probe(keys, self.clock.now().timestamp()):
                return Gate(channels, reason, f"{channels[0]} is down (its circuit is open)")
            reason = f"{reason}; its early probe"
        return Gate(channels, reason)

    async def start(self, payment_id: str, tries: int) -> float | None:
        """A `start_payment` job: call the payment if it may go now, fail it if its time
        is up, else look again later. None when done, else seconds until the next look."""
        payment = await self.store.run(lambda conn: repo.get_payment(conn, payment_id))
        if payment.status is not PaymentStatus.PROCESSING:
            return None  # canceled meanwhile
        controls = await self.controls.for_payment(
            payment.method, payment.bank, payment.region, payment.amount
        )
        left = self.attempts.time_left(payment)
        if left < MIN_CALL_S:  # never let through in time
            code = PAUSED if controls.paused_because is not None else SHUT
            why = controls.paused_because or "every channel that takes it was down"
            await self._give_up(payment, code, why)
            return None
        ctx = payment_context(payment)
        # a waiting payment is not spent as a circuit's probe: it goes once one is closed
        # (new payments probe, as they would be called anyway); asked before routing,
        # which would take a half-open circuit's probe slot
        if not self.router.any_closed(ctx, controls.paused_channels):
            why = "every channel that takes it is down (circuit open)"
            log.info("payment_waits", payment_id=payment.id, why=why, left_s=round(left))
            return min(next_look(tries), left)
        now = self.clock.now()
        routed = self.router.route(ctx, now.timestamp(), controls.paused_channels, controls.forced)
        if not routed.channels:  # ops paused every channel of its method meanwhile
            why = "every channel of its method paused by ops"
        else:
            gate = self.gate(routed, controls)
            if gate.shut is None:
                await self._call(payment, routed, gate)
                return None
            why = gate.shut
        log.info("payment_waits", payment_id=payment.id, why=why, left_s=round(left))
        return min(next_look(tries), left)

    async def _call(self, payment: Payment, routed: Routed, gate: Gate) -> None:
        """Write the first attempt (the payment's version guards against a cancel or a
        second worker meanwhile), then call it as a worker run."""
        waited = self.settings.settle_within_s - self.attempts.time_left(payment)
        attempt = self.attempts.new_attempt(
            payment, 1, gate.channels[0], f"route: {gate.reason}; after waiting {waited:.0f}s"
        )
        attempt.created_at = now = self.clock.now()
        owner = self.recorder.owner.id

        def write(conn: Connection) -> None:
            current = repo.get_payment(conn, payment.id)
            if current.status is not PaymentStatus.PROCESSING or repo.list_attempts(
                conn, payment.id
            ):
                raise Conflict("payment_changed", f"payment {payment.id} moved on")
            repo.update_payment(conn, payment, now)  # the version check
            repo.insert_attempt(conn, attempt, owner)

        try:
            await self.store.run(write)
        except (Conflict, StaleWrite):
            return  # canceled, or started by another worker: nothing to call
        self.attempts.budget.first(attempt.provider, self.clock.monotonic())
        run = Run(
            gate.channels,
            self.clock.monotonic(),
            self.settings.worker_deadline_s,
            [attempt],
            spare=routed.spare,
        )
        with contextlib.suppress(Conflict):  # canceled while in flight: nothing more
            await self.attempts.drive(payment, run)

    async def _give_up(self, payment: Payment, code: str, why: str) -> None:
        """Its time is up and it was never let through: failed, never called."""
        now = self.clock.now()
        payment.failure_code = code
        payment.failure_message = f"not called: waited until its deadline ({why})"
        payment.transition(PaymentStatus.FAILED)

        def write(conn: Connection) -> None:
            repo.update_payment(conn, payment, now)
            emit(conn, self.recorder.ids.new("evt"), payment, EventType.PAYMENT_FAILED, now)

        try:
            await self.store.run(write)
        except StaleWrite:
            return  # canceled meanwhile
        PAYMENTS.labels(payment.status.value, "none").inc()
        log.info("payment_not_let_through", payment_id=payment.id, code=code, why=why)

"""Manual review of held payments: an operator releases one (it is routed and charged
now) or rejects it (the customer is told the bank declined and to use another method;
a review's suspicion is never shown). Each decision is audit-logged with the change."""

from __future__ import annotations

import contextlib

from paymend.domain.errors import Conflict, InvalidInput, Unavailable
from paymend.domain.events import EventType
from paymend.domain.payment import Payment, PaymentStatus
from paymend.engine.attempts import Run
from paymend.engine.audit import Audited, audited
from paymend.engine.call_health import payment_context
from paymend.engine.events import emit
from paymend.engine.payments import PaymentService, PaymentView
from paymend.store import payments as repo
from paymend.store.database import Connection

REJECTED_CODE = "generic_decline"


async def _held(service: PaymentService, payment_id: str) -> PaymentView:
    view = await service.get(payment_id)
    if view.payment.status is not PaymentStatus.HELD:
        raise InvalidInput(
            "payment_not_held",
            f"a payment in status '{view.payment.status.value}' is not waiting for review",
            status=409,
        )
    return view


async def release(service: PaymentService, payment_id: str, actor: str, reason: str) -> PaymentView:
    """Route the held payment now and charge it as its checkout would have."""
    payment = (await _held(service, payment_id)).payment
    # no amount: holds are not asked about, the hold itself is what ops just decided on
    controls = await service.controls.for_payment(payment.method, payment.bank, payment.region)
    routed = service.route(payment_context(payment), controls)
    channels, route = routed.channels, routed.reason
    if not channels or controls.paused_because is not None:
        raise Unavailable(
            "payment_method_unavailable",
            controls.paused_because or f"no channel can take {payment.method} now; still held",
        )
    now = service.clock.now()
    payment.transition(PaymentStatus.PROCESSING)
    attempt = service.attempts.new_attempt(
        payment, 1, channels[0], f"released by {actor}; route: {route}"
    )
    attempt.created_at = now

    def write(conn: Connection) -> Audited[None]:
        repo.update_payment(conn, payment, now)
        repo.insert_attempt(conn, attempt, service.owner)
        emit(conn, service.ids.new("evt"), payment, EventType.PAYMENT_PROCESSING, now)
        details = {"channel": attempt.provider, "amount": payment.amount.minor}
        return Audited(None, "payment.release", f"payment:{payment.id}", details)

    await audited(service.store, now, actor, reason, write)
    run = Run(
        channels,
        service.clock.monotonic(),
        service.settings.checkout_deadline_s,
        [attempt],
        spare=routed.spare,
    )
    with contextlib.suppress(Conflict):  # canceled meanwhile: nothing more to call
        await service.attempts.drive(payment, run)
    return await service.get(payment.id)


async def reject(service: PaymentService, payment_id: str, actor: str, reason: str) -> PaymentView:
    """Fail the held payment without calling anyone. It counts as the customer's
    failure in risk control's velocity, as a decline would."""
    payment: Payment = (await _held(service, payment_id)).payment
    now = service.clock.now()
    payment.failure_code = REJECTED_CODE
    payment.failure_message = "declined after review"
    payment.transition(PaymentStatus.FAILED)

    def write(conn: Connection) -> Audited[None]:
        repo.update_payment(conn, payment, now)
        emit(conn, service.ids.new("evt"), payment, EventType.PAYMENT_FAILED, now)
        details = {"amount": payment.amount.minor, "code": REJECTED_CODE}
        return Audited(None, "payment.reject", f"payment:{payment.id}", details)

    await audited(service.store, now, actor, reason, write)
    if service.risk is not None:  # Redis's counters learn it as the database's rows do
        await service.risk.failed(payment)
    return await service.get(payment.id)

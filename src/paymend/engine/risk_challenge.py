"""After a risk challenge: the customer passed 3-D Secure before any charge was tried, so
the payment is routed now and its first attempt goes out authenticated."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from paymend.domain.errors import Conflict, Unavailable
from paymend.domain.events import EventType
from paymend.domain.payment import PaymentStatus
from paymend.engine.attempts import Run
from paymend.engine.call_health import payment_context
from paymend.engine.events import emit
from paymend.store import idempotency
from paymend.store import payments as repo
from paymend.store.database import Connection
from paymend.store.idempotency import Claim

if TYPE_CHECKING:
    from paymend.engine.payments import PaymentService, PaymentView


async def charge_authenticated(
    service: PaymentService, view: PaymentView, claim: Claim | None
) -> PaymentView:
    payment = view.payment
    controls = await service.controls.for_payment(
        payment.method, payment.bank, payment.region, payment.amount
    )
    routed = service.route(payment_context(payment), controls)
    if not routed.channels or controls.paused_because is not None:
        raise Unavailable(
            "payment_method_unavailable",
            controls.paused_because or f"no channel can take {payment.method} now",
        )
    now = service.clock.now()
    payment.transition(PaymentStatus.PROCESSING)
    attempt = service.attempts.new_attempt(
        payment,
        1,
        routed.channels[0],
        f"authenticated after a risk challenge; route: {routed.reason}",
    )
    attempt.created_at = now

    def write(conn: Connection) -> None:
        repo.update_payment(conn, payment, now)
        idempotency.link(conn, claim, "payment", payment.id)
        repo.insert_attempt(conn, attempt, service.owner)
        emit(conn, service.ids.new("evt"), payment, EventType.PAYMENT_PROCESSING, now)

    await service.store.run(write)
    run = Run(
        routed.channels,
        service.clock.monotonic(),
        service.settings.checkout_deadline_s,
        [attempt],
        spare=routed.spare,
    )
    outcome = await service.caller.authorize(
        payment,
        attempt,
        service.attempts.call_timeout(run),
        authenticated=True,
        pay_by=service.attempts.pay_by(payment),
    )
    with contextlib.suppress(Conflict):  # canceled meanwhile: nothing more to call
        await service.attempts.drive(payment, run, outcome)
    return await service.get(payment.id)

"""The customer's payment status page, `/pay/{token}`: what became of the payment in
plain words, the order and its amount, what to do next (pay again another way, the
help article, the shop's support), and a short feedback form. While the payment is
being confirmed the page asks again every few seconds (htmx; a meta refresh without
JavaScript), so a customer who waits sees the result without paying twice.

Shown: the order id, the amount and the texts of failures/messages for the public code
(a fraud or lost-card block reads, and links, as a plain decline). Never shown: card
data, the real failure code, the channel or a provider's answer."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paymend.console.web import FormRefused, read_form
from paymend.customers import i18n
from paymend.customers.web import locale_of, pages_of, render, runtime_of
from paymend.domain import status_links
from paymend.domain.errors import PaymendError
from paymend.domain.merchant import Merchant
from paymend.domain.payment import PaymentStatus
from paymend.engine import feedback
from paymend.engine.payments import PaymentView
from paymend.engine.runtime import Runtime
from paymend.failures.messages import CustomerMessage
from paymend.store import merchants
from paymend.store.database import Connection

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 2
WAITING = (
    PaymentStatus.CREATED,
    PaymentStatus.PROCESSING,
    PaymentStatus.HELD,
    PaymentStatus.REQUIRES_ACTION,
)
PAID = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


@dataclass(frozen=True, slots=True)
class Shown:
    """What the page says about one payment, in one locale."""

    state: str  # succeeded | processing | failed | other
    message: CustomerMessage
    order_id: str
    amount: str
    help_url: str | None
    pay_again_url: str | None
    support: str
    support_url: str | None
    polling: bool


def amount_text(minor: int, currency: str, exponent: int) -> str:
    """Exactly the minor units, written with the currency's exponent: 1234 CNY ->
    "12.34 CNY", 500 JPY -> "500 JPY"."""
    if exponent == 0:
        return f"{minor} {currency}"
    whole, frac = divmod(abs(minor), 10**exponent)
    return f"{'-' if minor < 0 else ''}{whole}.{frac:0{exponent}d} {currency}"


def shown(runtime: Runtime, view: PaymentView, merchant: Merchant, locale: str) -> Shown:
    p = view.payment
    messages = runtime.service.classifier.messages
    contact = merchant.settings.get("support_contact")
    support = str(contact or messages.files[messages.negotiate(locale)].support_fallback)
    help_url = pay_again = None
    if p.status is PaymentStatus.FAILED:
        state = "failed"
        code = p.failure_code if p.failure_code in runtime.service.classifier.catalogue else None
        message = messages.render(
            code or runtime.service.classifier.catalogue.DEFAULT,
            locale,
            support_contact=contact,
            method=p.method,
            repeat=view.repeat_failures,
        )
        help_url = f"/help/{message.code}?lang={message.locale}"
        template = merchant.settings.get("checkout_url") or runtime.config.customers.checkout_url
        if template:
            pay_again = str(template).replace("{order_id}", quote(p.order_id, safe=""))
    else:
        status = PaymentStatus.PROCESSING if p.status is PaymentStatus.CREATED else p.status
        state = "succeeded" if status in PAID else "processing" if status in WAITING else "other"
        message = messages.render_status(status.value, locale, support_contact=contact)
    linkable = support.startswith(("https://", "http://", "mailto:", "tel:"))
    return Shown(
        state,
        message,
        p.order_id,
        amount_text(p.amount.minor, p.amount.currency, p.amount.exponent),
        help_url,
        pay_again,
        support,
        support if linkable else None,
        p.status in WAITING,
    )


async def opened(request: Request, token: str) -> tuple[PaymentView, Merchant] | Response:
    """The payment a token opens, or the page that says why it opens none (4xx)."""
    key = pages_of(request).link_key
    if key is None:
        return refusal(request, "link.off", 404)
    runtime = runtime_of(request)
    check = status_links.verify(key, token, runtime.clock.now())
    if check.payment_id is None:
        expired = check.problem is status_links.LinkProblem.EXPIRED
        return refusal(
            request, "link.expired" if expired else "link.malformed", 410 if expired else 404
        )
    try:
        view = await runtime.service.get(check.payment_id)
    except PaymendError:  # signed by us for a payment since deleted: as good as no link
        return refusal(request, "link.malformed", 404)

    def read(conn: Connection) -> Merchant:
        return merchants.get(conn, view.payment.merchant_id)

    return view, await runtime.store.run(read)


def refusal(request: Request, key: str, status: int) -> Response:
    return render(request, "link.html", status, problem=i18n.translate(locale_of(request), key))


@router.get("/pay/{token}")
async def status_page(request: Request, token: str) -> Response:
    found = await opened(request, token)
    if isinstance(found, Response):
        return found
    locale = locale_of(request)
    page = shown(runtime_of(request), *found, locale)
    sent = request.query_params.get("sent") == "1"
    return render(
        request, "pay.html", token=token, shown=page, sent=sent, refused=None, poll=POLL_SECONDS
    )


@router.get("/pay/{token}/state")
async def state_panel(request: Request, token: str) -> Response:
    """The page's state panel alone: what the page's htmx asks for while processing."""
    found = await opened(request, token)
    if isinstance(found, Response):
        return found
    page = shown(runtime_of(request), *found, locale_of(request))
    return render(request, "pay_state.html", token=token, shown=page, poll=POLL_SECONDS)


@router.post("/pay/{token}/feedback")
async def give_feedback(request: Request, token: str) -> Response:
    found = await opened(request, token)
    if isinstance(found, Response):
        return found
    view, merchant = found
    locale = locale_of(request)
    try:
        form = await read_form(request)
        said = feedback.Said(
            source="status_page",
            step="status_page",
            rating=int(form["rating"]) if form.get("rating", "").isdigit() else None,
            reasons=tuple(dict.fromkeys(v for k, v in form.items() if k.startswith("reason_"))),
            text=form.get("text", ""),
            locale=locale,
        )
        await feedback.record(runtime_of(request).service, said, view)
    except FormRefused as refused:
        return _refused(request, token, view, merchant, refused.status, refused.message)
    except PaymendError as exc:
        return _refused(request, token, view, merchant, exc.status, exc.message)
    return RedirectResponse(f"/pay/{token}?lang={quote(locale)}&sent=1#feedback", status_code=303)


def _refused(
    request: Request, token: str, view: PaymentView, merchant: Merchant, status: int, why: str
) -> Response:
    page = shown(runtime_of(request), view, merchant, locale_of(request))
    return render(
        request,
        "pay.html",
        status,
        token=token,
        shown=page,
        sent=False,
        refused=why,
        poll=POLL_SECONDS,
    )

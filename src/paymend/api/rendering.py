"""How the merchant routes answer with a payment: the merchant they authenticated, the
app's runtime, and the payment as JSON in its reader's language."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import Depends, Request

from paymend.api import auth, shapes
from paymend.api.failures import customer_message_json, failure_json
from paymend.api.views import payment_json
from paymend.customers.web import pages_of, status_url
from paymend.domain.merchant import Merchant
from paymend.domain.payment import PaymentStatus
from paymend.engine.payments import PaymentView
from paymend.engine.runtime import Runtime
from paymend.failures.messages import Messages

Authed = Annotated[Merchant, Depends(auth.merchant)]
PAYMENT_NOT_FOUND = (404, ["payment_not_found"])


def runtime_of(request: Request) -> Runtime:
    """The runtime the app was built with."""
    runtime: Runtime = request.app.state.runtime
    return runtime


@functools.lru_cache(maxsize=1024)
def _negotiate(messages: Messages, accept_language: str | None, customer_locale: str | None) -> str:
    """The reader's locale: the same few headers and customer locales come again and again."""
    return messages.negotiate(accept_language, customer_locale)


def render_payment(request: Request, merchant: Merchant, view: PaymentView) -> shapes.Payment:
    """The payment as JSON, what the customer reads (and its failure) in the reader's (or
    the customer's) language."""
    classifier = runtime_of(request).service.classifier
    locale = _negotiate(
        classifier.messages, request.headers.get("accept-language"), view.payment.customer.locale
    )
    contact = merchant.settings.get("support_contact")
    runtime = runtime_of(request)
    link_key = pages_of(request).link_key
    # the server's own URL (parsed from the request's headers) only where a link needs
    # it: a failure's help link, a status link without a configured public URL
    failed = view.payment.status is PaymentStatus.FAILED
    wanted = failed or (link_key is not None and not runtime.config.customers.public_url)
    server_url = str(request.base_url).rstrip("/") if wanted else ""
    base_url = server_url if failed else ""
    return payment_json(
        view,
        failure_json(view, classifier, locale=locale, support_contact=contact, base_url=base_url),
        customer_message_json(
            view, classifier, locale=locale, support_contact=contact, base_url=base_url
        ),
        sdk_parameters=True,
        status_url=status_url(
            runtime,
            server_url,
            view.payment.id,
            link_key,
            view.payment.customer.locale,
        ),
    )

"""What the customer reads about a payment (its `customer_message`, and for a failed one
the `failure` object), the catalogue endpoint and the public help pages.

A customer only ever sees public codes: a code the catalogue shows as another (a fraud
or lost-card block, shown as `generic_decline`) links to, and is rendered as, that one.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from paymend.api import shapes
from paymend.api.checked import checked_router
from paymend.api.responses import errors
from paymend.customers.help_centre import article
from paymend.domain.errors import NotFound
from paymend.domain.payment import PaymentStatus
from paymend.engine.payments import PaymentView
from paymend.failures.classify import Classifier, default_classifier
from paymend.failures.messages import CustomerMessage

router = checked_router(tags=["failures"])


def failure_json(
    view: PaymentView,
    classifier: Classifier,
    *,
    locale: str,
    support_contact: str | None,
    base_url: str,
) -> shapes.Failure | None:
    """Why a failed payment failed, for the merchant's systems (the real `code`, its kind
    and the provider's raw answer) with the customer's text. None unless it failed: a
    payment that succeeded, or is still under way, carries no failure."""
    p = view.payment
    if p.status is not PaymentStatus.FAILED:
        return None
    code = _known(p.failure_code, classifier)
    entry = classifier.catalogue[code]
    message = classifier.messages.render(
        code, locale, support_contact=support_contact, method=p.method, repeat=view.repeat_failures
    )
    last = next((a for a in reversed(view.attempts) if a.unified_code), None)
    return {
        "code": code,
        "kind": entry.kind,
        "category": entry.category,
        "action": last.decision if last and last.decision else entry.action.value,
        "title": message.title,
        "message": message.detail,
        "suggestions": list(message.suggestions),
        "help_url": _help_url(base_url, message.code, message.locale),
        "locale": message.locale,
        "raw_code": last.raw_code if last else None,
        "raw_message": last.raw_message if last else None,
    }


def customer_message_json(
    view: PaymentView,
    classifier: Classifier,
    *,
    locale: str,
    support_contact: str | None,
    base_url: str,
) -> shapes.CustomerMessage:
    """What to show the customer for the payment's status, whatever it is: the failure's
    text once it failed (escalated on a repeat), else the status's own (confirming, being
    checked, confirm with your bank, received, canceled, refunded)."""
    p = view.payment
    if p.status is PaymentStatus.FAILED:
        message = classifier.messages.render(
            _known(p.failure_code, classifier),
            locale,
            support_contact=support_contact,
            method=p.method,
            repeat=view.repeat_failures,
        )
        help_url: str | None = _help_url(base_url, message.code, message.locale)
    else:
        status = PaymentStatus.PROCESSING if p.status is PaymentStatus.CREATED else p.status
        message = _status_message(classifier, status.value, locale, support_contact, p.method)
        help_url = None
    return {
        "status": p.status,
        "title": message.title,
        "message": message.detail,
        "suggestions": list(message.suggestions),
        "help_url": help_url,
        "locale": message.locale,
    }


@functools.lru_cache(maxsize=1024)
def _status_message(
    classifier: Classifier, status: str, locale: str, support_contact: str | None, method: str
) -> CustomerMessage:
    """A status's text, rendered once per what fills it: the catalogue is fixed while the
    process runs, and every payment that succeeds reads the same few."""
    return classifier.messages.render_status(
        status, locale, support_contact=support_contact, method=method
    )


def _known(code: str | None, classifier: Classifier) -> str:
    return (
        code if code is not None and code in classifier.catalogue else classifier.catalogue.DEFAULT
    )


def _help_url(base_url: str, public_code: str, locale: str) -> str:
    return f"{base_url}/help/{public_code}?locale={locale}"


@router.get(
    "/v1/failure-codes",
    summary="The unified failure catalogue",
    response_model=shapes.FailureCodeList,
)
async def failure_codes(
    locale: Annotated[str | None, Query(description="language of the messages")] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    classifier = default_classifier()
    chosen = classifier.messages.negotiate(locale, accept_language)
    data: list[shapes.FailureCode] = []
    for code in classifier.catalogue.codes():
        entry = classifier.catalogue[code]
        msg = classifier.messages.render(code, chosen, support_contact=None)
        data.append(
            {
                "code": code,
                "shown_to_customer_as": msg.code,
                "kind": entry.kind,
                "category": entry.category,
                "action": entry.action.value,
                "retry_same_channel": entry.retry.max > 0,
                "failover": entry.failover,
                "counts_against_health": entry.health,
                "description": entry.description,
                "customer_message": {
                    "title": msg.title,
                    "detail": msg.detail,
                    "suggestions": list(msg.suggestions),
                },
            }
        )
    return JSONResponse(shapes.FailureCodeList(object="list", locale=chosen, data=data))


@router.get(
    "/help/{code}",
    response_class=HTMLResponse,
    summary="Public help page for a failure",
    response_description="The page, in the reader's language",
    responses={
        302: {
            "description": "a code customers are shown as another: its page",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        **errors((404, ["failure_code_not_found"])),
    },
)
async def help_page(
    code: str,
    request: Request,
    locale: Annotated[str | None, Query()] = None,
    lang: Annotated[str | None, Query(description="the reader's language, as `locale`")] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> Response:
    """A code customers must not read (a fraud or lost-card block) redirects to the
    page of the code they are shown instead, so no public page ever names it. The page
    is the help centre's article (customers/help_centre.py)."""
    classifier = default_classifier()
    if code not in classifier.catalogue:
        raise NotFound("failure_code_not_found", f"no failure code '{code}'", param="code")
    chosen = classifier.messages.negotiate(lang or locale, accept_language)
    public = classifier.messages.public_code(code)
    if public != code:
        return RedirectResponse(f"/help/{public}?locale={chosen}", status_code=302)
    return article(request, code, chosen)

"""The customer-facing failure object, the catalogue endpoint and the public help pages."""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from paymend.domain.errors import NotFound
from paymend.engine.payments import PaymentView
from paymend.failures.classify import Classifier, default_classifier

router = APIRouter(tags=["failures"])
_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;"
    "padding:0 1rem;color:#222} h1{font-size:1.4rem} li{margin:.3rem 0}"
    " footer{margin-top:2rem;color:#777;font-size:.85rem}"
)


def failure_json(
    view: PaymentView,
    classifier: Classifier,
    *,
    locale: str,
    support_contact: str | None,
    base_url: str,
) -> dict[str, Any] | None:
    p = view.payment
    if p.failure_code is None:
        return None
    code = p.failure_code if p.failure_code in classifier.catalogue else "unrecognized_response"
    entry = classifier.catalogue[code]
    message = classifier.messages.render(
        code, locale, support_contact=support_contact, method=p.method, repeat=view.repeat_failures
    )
    last = next((a for a in reversed(view.attempts) if a.unified_code), None)
    return {
        "code": code,
        "kind": entry.kind.value,
        "category": entry.category,
        "action": last.decision if last and last.decision else entry.action.value,
        "title": message.title,
        "message": message.detail,
        "suggestions": list(message.suggestions),
        "help_url": f"{base_url}/help/{code}?locale={message.locale}",
        "locale": message.locale,
        "raw_code": last.raw_code if last else None,
        "raw_message": last.raw_message if last else None,
    }


@router.get("/v1/failure-codes", summary="The unified failure catalogue")
async def failure_codes(
    locale: Annotated[str | None, Query(description="language of the messages")] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    classifier = default_classifier()
    chosen = classifier.messages.negotiate(locale, accept_language)
    data = []
    for code in classifier.catalogue.codes():
        entry = classifier.catalogue[code]
        msg = classifier.messages.render(code, chosen, support_contact=None)
        data.append(
            {
                "code": code,
                "kind": entry.kind.value,
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
    return JSONResponse({"object": "list", "locale": chosen, "data": data})


@router.get("/help/{code}", response_class=HTMLResponse, summary="Public help page for a failure")
async def help_page(
    code: str,
    request: Request,
    locale: Annotated[str | None, Query()] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> HTMLResponse:
    classifier = default_classifier()
    if code not in classifier.catalogue:
        raise NotFound("failure_code_not_found", f"no failure code '{code}'", param="code")
    chosen = classifier.messages.negotiate(locale, accept_language)
    msg = classifier.messages.render(code, chosen, support_contact=None)
    items = "".join(f"<li>{html.escape(s)}</li>" for s in msg.suggestions)
    others = " · ".join(
        f'<a href="/help/{html.escape(code)}?locale={loc}">{loc}</a>'
        for loc in classifier.messages.locales
    )
    body = f"""<!doctype html>
<html lang="{html.escape(chosen)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(msg.title)}</title>
<style>{_STYLE}</style>
</head><body><main>
<h1>{html.escape(msg.title)}</h1>
<p>{html.escape(msg.detail)}</p>
<ul>{items}</ul>
</main><footer>{others} · <code>{html.escape(code)}</code></footer></body></html>"""
    return HTMLResponse(body)

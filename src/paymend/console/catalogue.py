"""The failure catalogue for staff: every unified code, whose problem it is, what paymend
does about it, and what the customer reads (in the operator's language when we have
it), linked from every payment's failure code. Read from failures/ as the API's
`/v1/failure-codes` is; nothing here is stored."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paymend.console import i18n
from paymend.console.web import PREFIX, gate, locale_of, render, runtime_of
from paymend.domain.roles import Role

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/failures")
async def failures(request: Request) -> Response:
    checked = await gate(request, Role.VIEWER)
    if checked.refusal:
        return checked.refusal
    classifier = runtime_of(request).service.classifier
    locale = classifier.messages.negotiate(locale_of(request))
    rows = []
    for code in classifier.catalogue.codes():
        entry = classifier.catalogue[code]
        told = classifier.messages.render(code, locale, support_contact=None)
        rows.append((code, entry, told))
    return render(request, "failures.html", checked.session, rows=rows)


@router.get("/failures/{code}")
async def failure(request: Request, code: str) -> Response:
    checked = await gate(request, Role.VIEWER)
    if checked.refusal:
        return checked.refusal
    classifier = runtime_of(request).service.classifier
    if code not in classifier.catalogue:
        message = i18n.translate(locale_of(request), "failure.not_found", code=code)
        return render(request, "error.html", checked.session, 404, message=message)
    locale = classifier.messages.negotiate(locale_of(request))
    entry = classifier.catalogue[code]
    told = classifier.messages.render(code, locale, support_contact=None)
    return render(request, "failure.html", checked.session, code=code, entry=entry, told=told)

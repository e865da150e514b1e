"""The failure catalogue for staff: every unified code, whose problem it is, what paymend
does about it, and what the customer reads (in the operator's language when we have
it), linked from every payment's failure code; and the providers' raw codes mapped to
each (failures/providers/*.yaml), searchable, so a code a provider's console shows leads
to its entry. Read from failures/ as the API's
`/v1/failure-codes` is; nothing here is stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from paymend.console import i18n
from paymend.console.web import PREFIX, gate, locale_of, render, runtime_of
from paymend.domain.roles import Role
from paymend.failures.classify import Classifier
from paymend.failures.codemaps import Mapped

router = APIRouter(prefix=PREFIX, include_in_schema=False)


MATCHES = 100  # provider codes listed for one search


def raw_codes(classifier: Classifier) -> list[Mapped]:
    """Every provider's raw code the maps know (failures/providers/*.yaml), by provider."""
    return [m for name in sorted(classifier.maps) for m in classifier.maps[name].codes.values()]


@router.get("/failures")
async def failures(
    request: Request, provider_code: Annotated[str | None, Query(max_length=128)] = None
) -> Response:
    """The catalogue; with `provider_code`, the providers' raw codes holding those
    characters (any case) and the unified code each maps to."""
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
    wanted = (provider_code or "").strip().casefold()
    matches = (
        [m for m in raw_codes(classifier) if wanted in m.entry.code.casefold()][:MATCHES]
        if wanted
        else None
    )
    return render(
        request,
        "failures.html",
        checked.session,
        rows=rows,
        provider_code=(provider_code or "").strip(),
        matches=matches,
    )


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
    mapped = [m for m in raw_codes(classifier) if m.entry.unified == code]
    return render(
        request,
        "failure.html",
        checked.session,
        code=code,
        entry=entry,
        told=told,
        mapped=mapped,
    )

"""Incidents for the on-call engineer: the open ones and the case library of closed ones
(searchable by words: channel, bank, region, failure code, what was said), one incident
with its diagnosis and timeline, and the operators' two steps, acknowledging it and
reviewing it once resolved (the ops role), through engine/incidents.py as the ops API."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from paymend.console import i18n
from paymend.console.web import PREFIX, action_form, gate, locale_of, render, runtime_of
from paymend.domain.errors import NotFound, PaymendError
from paymend.domain.failure import Kind
from paymend.domain.incident import Incident
from paymend.domain.roles import Role
from paymend.engine.playbooks import LEAD_S
from paymend.engine.runtime import Runtime
from paymend.health.keys import parse_key
from paymend.store import calls

router = APIRouter(prefix=PREFIX, include_in_schema=False)
LIBRARY = 100
AFFECTED = 100  # payments listed on an incident's page, newest first


@router.get("/incidents")
async def incidents(
    request: Request, q: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    checked = await gate(request, Role.VIEWER)
    if checked.refusal:
        return checked.refusal
    runtime = runtime_of(request)
    words = (q or "").strip() or None
    open_ = await runtime.incidents.search(words, "open", LIBRARY)
    closed = await runtime.incidents.search(words, "resolved", LIBRARY)
    return render(
        request, "incidents.html", checked.session, open=open_, closed=closed, q=words or ""
    )


@router.get("/incidents/{incident_id}")
async def incident(request: Request, incident_id: str) -> Response:
    checked = await gate(request, Role.VIEWER)
    if checked.refusal:
        return checked.refusal
    try:
        found = await runtime_of(request).incidents.get(incident_id)
    except NotFound:
        message = i18n.translate(locale_of(request), "incident.not_found", id=incident_id)
        return render(request, "error.html", checked.session, 404, message=message)
    notice = (request.query_params.get("done") or "")[:200] or None
    runtime, session = runtime_of(request), checked.session
    hit = None  # customers' payments: for the support role and above, and audit-logged
    if session is not None and session.operator.role.allows(Role.SUPPORT):
        hit = await affected(runtime, found)
        ids = [r.payment_id for r in hit]
        await runtime.access.note_lookup(session.operator.actor, f"incident:{found.id}", ids)
    return render(request, "incident.html", checked.session, i=found, notice=notice, payments=hit)


async def affected(runtime: Runtime, incident: Incident) -> list[Any]:
    """The payments the incident hurt: in its scope, a call from just before it fired
    (as its diagnosis reads them) until it resolved that failed for a technical reason
    (an unknown outcome, or a technical code of the catalogue), the newest call of each;
    a card declined for lack of funds was not the incident's doing."""
    try:
        channel, scope = parse_key(incident.scope_key)
    except ValueError:
        return []
    since = incident.opened_at - timedelta(seconds=LEAD_S)
    until = incident.resolved_at
    rows = await runtime.store.run(
        lambda c: calls.failed_calls_in(c, channel, scope, since, until, AFFECTED * 2)
    )
    catalogue = runtime.service.classifier.catalogue
    found: dict[str, Any] = {}
    for r in rows:
        code = r.unified_code
        technical = code is None or (code in catalogue and catalogue[code].kind is Kind.TECHNICAL)
        if technical and r.payment_id not in found:
            found[r.payment_id] = r
    return list(found.values())[:AFFECTED]


@router.post("/incidents/{incident_id}/{step}")
async def act(request: Request, incident_id: str, step: str) -> Response:
    """Acknowledge (a reason) or review (cause, fix, lessons; follow-ups one per line,
    optional) an incident."""
    if step not in ("acknowledge", "review"):
        return Response("not found", status_code=404, media_type="text/plain")
    action = await action_form(request, Role.OPS)
    if isinstance(action, Response):
        return action
    fields = ("reason",) if step == "acknowledge" else ("cause", "resolution", "lessons")
    texts = [action.form.get(f, "").strip() for f in fields]
    if not all(texts):
        return action.fail("form.fields_required")
    actor, incidents_ = action.session.operator.actor, action.runtime.incidents
    try:
        if step == "acknowledge":
            await incidents_.acknowledge(incident_id, actor, texts[0])
        else:
            tasks = action.form.get("follow_ups", "").splitlines()
            follow_ups = [task.strip() for task in tasks if task.strip()]
            await incidents_.review(incident_id, texts[0], texts[1], texts[2], actor, follow_ups)
    except PaymendError as exc:
        return action.error(exc)
    return action.done(f"/incidents/{incident_id}", f"incident.{step}_done")

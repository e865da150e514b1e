"""Customer service's actions on a payment's page (the support role), each through
engine/care.py and audit-logged as the operator on the payment, so its timeline shows
it: ask the provider now, send a notice again, send the customer a link to finish the
order another way, add a note. What reaches the customer needs its box ticked."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paymend.console.web import PREFIX, Action, action_form
from paymend.domain.errors import PaymendError
from paymend.domain.roles import Role
from paymend.engine import care

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CARE_ROLE = Role.SUPPORT
NOTE_MAX = 500  # the audit log's reason column holds the note


async def _action(request: Request, *, confirmed: bool) -> Action | Response:
    action = await action_form(request, CARE_ROLE)
    if isinstance(action, Response) or not confirmed:
        return action
    if action.form.get("confirm") != "yes":
        return action.fail("form.confirm_required")
    return action


@router.post("/payments/{payment_id}/query")
async def query(request: Request, payment_id: str) -> Response:
    action = await _action(request, confirmed=False)
    if isinstance(action, Response):
        return action
    try:
        checked = await care.check_at_provider(
            action.runtime.service, payment_id, action.session.operator.actor
        )
    except PaymendError as exc:
        return action.error(exc)
    return action.done(
        f"/payments/{payment_id}",
        "care.query_done",
        channel=checked.channel,
        told=checked.told,
        code=checked.raw_code,
        status=checked.after,
    )


@router.post("/payments/{payment_id}/resend")
async def resend(request: Request, payment_id: str) -> Response:
    action = await _action(request, confirmed=True)
    if isinstance(action, Response):
        return action
    reason = action.reason()
    if reason is None:
        return action.fail("form.reason_required")
    if action.runtime.notices is None:
        return action.fail("care.no_notices", 409)
    try:
        intent = await care.resend_notice(
            action.runtime.service,
            payment_id,
            action.form.get("notice", ""),
            action.session.operator.actor,
            reason,
        )
    except PaymendError as exc:
        return action.error(exc)
    return action.done(f"/payments/{payment_id}", "care.resend_done", kind=intent.kind)


@router.post("/payments/{payment_id}/link")
async def link(request: Request, payment_id: str) -> Response:
    action = await _action(request, confirmed=True)
    if isinstance(action, Response):
        return action
    reason = action.reason()
    if reason is None:
        return action.fail("form.reason_required")
    notices = action.runtime.notices
    if notices is None:
        return action.fail("care.no_notices", 409)
    try:
        sent = await care.send_finish_link(
            action.runtime.service,
            payment_id,
            action.session.operator.actor,
            reason,
            # the status page's link, its token signed (engine/customer_notices.py)
            notices.status_url(payment_id, action.runtime.service.clock.now()),
        )
    except PaymendError as exc:
        return action.error(exc)
    return action.done(f"/payments/{payment_id}", "care.link_done", link=sent)


@router.post("/payments/{payment_id}/note")
async def note(request: Request, payment_id: str) -> Response:
    action = await _action(request, confirmed=False)
    if isinstance(action, Response):
        return action
    text = action.form.get("note", "").strip()
    if not text or len(text) > NOTE_MAX:
        return action.fail("care.note_required", max=NOTE_MAX)
    try:
        await care.add_note(action.runtime.service, payment_id, action.session.operator.actor, text)
    except PaymendError as exc:
        return action.error(exc)
    return action.done(f"/payments/{payment_id}", "care.note_done")

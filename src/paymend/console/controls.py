"""Emergency controls from the health page (the ops role): pause a channel, bank or
region, force a route, hold large payments. Each needs a reason and an end time (it
lifts itself then, engine/controls.py), and is set in two steps: a preview that says how
many payments of the last hour it would have touched, then the confirmed form. Set,
ended and expired controls are audit-logged by the controls engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paymend.console.web import PREFIX, Action, action_form, render
from paymend.domain.errors import PaymendError
from paymend.domain.roles import Role
from paymend.engine.controls import LONGEST

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CONTROL_ROLE = Role.OPS
# what the form offers for its end (minutes); a later end is typed in as a UTC time
ENDS_IN = (15, 60, 240, 720, 1440)
KINDS = ("pause", "force_route", "hold")


def _ends_at(action: Action) -> datetime | str:
    """The end the form asks for: a UTC time (`ends_at`, from the preview or typed in),
    else `ends_in` minutes from now; a message key when it has none or a bad one."""
    now = action.runtime.clock.now()
    raw = action.form.get("ends_at", "").strip()
    if raw:
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            return "control.ends_invalid"
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    else:
        minutes = action.form.get("ends_in", "")
        if not minutes.isdigit() or int(minutes) not in ENDS_IN:
            return "control.ends_required"
        at = now + timedelta(minutes=int(minutes))
    if not now < at <= now + LONGEST:  # the engine refuses it too; this says it in words
        return "control.ends_invalid"
    return at


def _amount(raw: str) -> int | str | None:
    raw = raw.strip()
    if not raw:
        return None
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) <= 10**15 else "bad"


@dataclass(frozen=True, slots=True)
class Wanted:
    """The control a form describes, as the controls engine takes it."""

    kind: str
    scope: str
    value: str
    method: str | None
    reason: str
    amount_above: int | None
    currency: str | None
    ends_at: datetime


async def _read(request: Request) -> tuple[Action, Wanted] | Response:
    """The checked action and the control its form describes, or the page to answer."""
    action = await action_form(request, CONTROL_ROLE)
    if isinstance(action, Response):
        return action
    form = action.form
    if form.get("kind") not in KINDS:
        return action.fail("form.fields_required")
    reason = action.reason()
    if reason is None:
        return action.fail("form.reason_required")
    ends_at = _ends_at(action)
    if isinstance(ends_at, str):
        return action.fail(ends_at, longest=LONGEST.days)
    hold = form["kind"] == "hold"
    amount = _amount(form.get("amount_above", "")) if hold else None
    if isinstance(amount, str):
        return action.fail("form.amount_invalid")
    currency = form.get("currency", "").strip().upper() or None
    wanted = Wanted(
        form["kind"],
        form.get("scope", ""),
        form.get("value", "").strip(),
        form.get("method", "").strip() or None,
        reason,
        amount,
        currency if hold else None,
        ends_at,
    )
    return action, wanted


@router.post("/controls/preview")
async def preview(request: Request) -> Response:
    """What the control would do: checked as if set, the payments of the last hour it
    would have touched, and the form that sets it once confirmed. Nothing is written."""
    read = await _read(request)
    if isinstance(read, Response):
        return read
    action, w = read
    runtime = action.runtime
    try:
        control, touched = await runtime.service.controls.preview(
            w.kind, w.scope, w.value, w.method, w.reason, runtime.known,
            w.amount_above, w.currency, w.ends_at,
        )  # fmt: skip
    except PaymendError as exc:
        return action.error(exc)
    return render(request, "control_preview.html", action.session, control=control, touched=touched)


@router.post("/controls")
async def set_control(request: Request) -> Response:
    """Set the previewed control, once its box is ticked."""
    read = await _read(request)
    if isinstance(read, Response):
        return read
    action, w = read
    if action.form.get("confirm") != "yes":
        return action.fail("form.confirm_required")
    runtime = action.runtime
    try:
        control = await runtime.service.controls.set(
            w.kind, w.scope, w.value, w.method, w.reason, action.session.operator.actor,
            runtime.known, w.amount_above, w.currency, w.ends_at,
        )  # fmt: skip
    except PaymendError as exc:
        return action.error(exc)
    return action.done(
        "/health", f"control.done_{control.kind}", target=f"{control.scope}:{control.value}"
    )


@router.post("/controls/{control_id}/end")
async def resume(request: Request, control_id: str) -> Response:
    """End a control before its time, with a reason."""
    action = await action_form(request, CONTROL_ROLE)
    if isinstance(action, Response):
        return action
    reason = action.reason()
    if reason is None:
        return action.fail("form.reason_required")
    try:
        ended = await action.runtime.service.controls.end(
            control_id, reason, action.session.operator.actor
        )
    except PaymendError as exc:
        return action.error(exc)
    return action.done("/health", "control.done_end", target=f"{ended.scope}:{ended.value}")

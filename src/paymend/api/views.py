"""How payments, attempts and refunds look in API responses (PII masked)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal, cast

from paymend.api import shapes
from paymend.domain.compensation import Compensation
from paymend.domain.masking import mask_token
from paymend.domain.payment import Attempt, PaymentStatus, Refund
from paymend.domain.utc_text import api_text
from paymend.engine.payments import PaymentView
from paymend.engine.risk_gate import RiskNote


def _ts(value: datetime | None) -> str | None:
    return api_text(value) if value else None


def _at(value: datetime | None) -> str:
    """A timestamp the store always sets (its column is NOT NULL)."""
    if value is None:
        raise ValueError("a stored record without its timestamp")
    return api_text(value)


def attempt_json(a: Attempt) -> shapes.Attempt:
    return {
        "id": a.id,
        "seq": a.seq,
        "provider": a.provider,
        "status": a.status,
        "raw_code": a.raw_code,
        "raw_message": a.raw_message,
        "unified_code": a.unified_code,
        "decision": a.decision,
        "reason": a.reason,
        "latency_ms": a.latency_ms,
        "provider_reference": a.provider_reference,
        "trace_id": a.trace_id,
        "created_at": _at(a.created_at),
        "finished_at": _ts(a.finished_at),
    }


def refund_json(r: Refund) -> shapes.Refund:
    return {
        "id": r.id,
        "object": "refund",
        "payment_id": r.payment_id,
        "amount": r.amount.minor,
        "currency": r.amount.currency,
        "status": r.status,
        "kind": r.kind,
        "reason": r.reason,
        "provider": r.provider,
        "raw_code": r.raw_code,
        "created_at": _at(r.created_at),
        "updated_at": _at(r.updated_at),
    }


def compensation_json(c: Compensation) -> shapes.Compensation:
    return {
        "id": c.id,
        "object": "compensation",
        "payment_id": c.payment_id,
        "kind": c.kind,
        "amount": c.amount,
        "currency": c.currency,
        "reason": c.reason,
        "granted_by": c.granted_by,
        "created_at": _at(c.created_at),
    }


def next_action(
    view: PaymentView, *, sdk_parameters: bool = True
) -> shapes.WaitForReview | shapes.Authenticate | shapes.ProviderAction | shapes.SdkAction | None:
    """What the checkout does for a payment waiting on the customer. `sdk_parameters`:
    whether an `sdk` action carries its parameters (the merchant API, for the customer's
    browser; never the ops API: Stripe's client secret is for the customer only)."""
    p = view.payment
    if p.status is PaymentStatus.HELD:
        return {
            "type": "wait_for_review",
            "description": "the payment is being reviewed before it is charged; tell the "
            "customer it is being checked, and expect payment.processing (released) or "
            "payment.failed (declined) by webhook",
        }
    if p.status is not PaymentStatus.REQUIRES_ACTION:
        return None
    last = view.attempts[-1] if view.attempts else None
    action = last.next_action if last else None
    if last is not None and action and action.get("type") in ("redirect", "scan_qr_code"):
        url = action.get("url", "")
        if action["type"] == "redirect":
            return {
                "type": "redirect",
                "provider": last.provider,
                "url": url,
                "description": "send the customer to the URL",
            }
        return {
            "type": "scan_qr_code",
            "provider": last.provider,
            "url": url,
            "description": "show the URL as a QR code to scan with the provider's app",
        }
    if last is not None and action and action.get("type") == "sdk" and action.get("sdk") in SDKS:
        sdk = action["sdk"]
        how, confirms = SDKS[sdk]
        confirm_url = f"/v1/payments/{p.id}/confirm" if confirms else None
        then = (
            f"; then POST {confirm_url}"
            if confirms
            else "; the payment settles when the provider says the customer paid"
        )
        found: shapes.SdkAction = {
            "type": "sdk",
            "provider": last.provider,
            "sdk": cast(SdkName, sdk),
            "parameters": _parameters(action.get("parameters")) if sdk_parameters else None,
            "description": how + then,
            "confirm_url": confirm_url,
        }
        return found
    return {
        "type": "authenticate",
        "provider": last.provider if last else None,
        "description": "send the customer through the bank's 3-D Secure check, then call "
        f"POST /v1/payments/{p.id}/confirm",
        "confirm_url": f"/v1/payments/{p.id}/confirm",
    }


SdkName = Literal["wechat_jsapi", "stripe_js", "adyen_checkout"]
# the provider scripts an `sdk` next action is for: what the checkout does with them, and
# whether it confirms afterwards (a WeChat Pay order settles by itself: a confirm would
# make another order)
SDKS: dict[str, tuple[str, bool]] = {
    "wechat_jsapi": (
        "in WeChat's browser, pass `parameters` to WeixinJSBridge.invoke("
        "'getBrandWCPayRequest', parameters, callback)",
        False,
    ),
    "stripe_js": (
        "pass `parameters.client_secret` to Stripe.js stripe.handleNextAction({clientSecret})",
        True,
    ),
    "adyen_checkout": (
        "pass `parameters` (Adyen's action object) to Drop-in's or Components' "
        "handleAction(action), and its onAdditionalDetails `details` to the confirm",
        True,
    ),
}


def _parameters(text: str | None) -> dict[str, object]:
    try:
        found = json.loads(text or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def payment_json(
    view: PaymentView,
    failure: shapes.Failure | None = None,
    customer_message: shapes.CustomerMessage | None = None,
    *,
    sdk_parameters: bool = False,
    status_url: str | None = None,
) -> shapes.Payment:
    """`failure` is the localized failure object (api/failures.py), None unless it
    failed; `customer_message` what the customer reads for its status (api/failures.py);
    `sdk_parameters`, whether an `sdk` next action carries what the customer's browser
    needs (the merchant API only). The customer's email and phone appear masked only."""
    p = view.payment
    return {
        "id": p.id,
        "object": "payment",
        "status": p.status,
        "order_id": p.order_id,
        "amount": p.amount.minor,
        "currency": p.amount.currency,
        "amount_display": p.amount.format(),
        "amount_refunded": p.amount_refunded,
        "method": p.method,
        "bank": p.bank,
        "region": p.region,
        "payment_token": mask_token(p.token),
        "customer": p.customer.masked(),
        "metadata": p.metadata,
        "failure": failure,
        "customer_message": customer_message,
        "status_url": status_url,
        "next_action": next_action(view, sdk_parameters=sdk_parameters),
        "trace_id": p.trace_id,
        "created_at": _at(p.created_at),
        "updated_at": _at(p.updated_at),
        "attempts": [attempt_json(a) for a in view.attempts],
        "refunds": [refund_json(r) for r in view.refunds],
        "risk": risk_json(view.risk),
    }


def risk_json(note: RiskNote | None) -> shapes.PaymentRisk | None:
    if note is None:
        return None
    return {
        "action": cast(shapes.RiskAction, note.action),
        "rules": cast(list[shapes.FiredRule], note.rules),
        "score": note.score,
        "rules_version": note.rules_version,
    }

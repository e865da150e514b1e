"""The providers' own calls to paymend: their notifications of what became of a charge.

`POST /v1/providers/{channel}/notifications` takes the body as the provider sends it
(Alipay: a signed form; others: signed JSON). The guard passes it through unread
(api/guard.py: no media type or card-data check, only the size and read-time bounds),
because the channel's connector verifies the signature over the exact bytes before
anything of it is read. No merchant key: the provider's signature is the authentication.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import Response

from paymend.api.checked import checked_router
from paymend.api.responses import errors
from paymend.engine.runtime import Runtime

router = checked_router(tags=["providers"])
CHANNEL = r"^[a-z][a-z0-9_]{0,39}$"  # config.ChannelName


@router.post(
    "/v1/providers/{channel}/notifications",
    summary="Receive a payment provider's notification",
    description=(
        "Where a provider's asynchronous notifications go (set it as the channel's "
        "`notify_url`). The body is the provider's own signed format, verified by the "
        "channel's connector before it is read; a notification that does not verify "
        "is refused with 400 `notification_not_verified` and changes nothing. A verified "
        "one settles the attempt it names exactly as a status query would, once (the "
        "same notification again changes nothing), and is answered as the provider "
        "expects (Alipay: `success` as plain text), so it stops resending. While the "
        "attempt's own call is in flight the answer is 409 `attempt_in_flight`, and the "
        "provider sends it again later."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "Acknowledged in the provider's format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **errors(
            (400, ["notification_not_verified"]),
            (404, ["channel_not_found", "notifications_not_supported"]),
            (409, ["attempt_in_flight"]),
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The notification exactly as the provider sent it",
            "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def provider_notification(
    request: Request,
    channel: Annotated[str, Path(pattern=CHANNEL, description="the channel's name")],
) -> Response:
    runtime: Runtime = request.app.state.runtime
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    reply = await runtime.service.notified(channel, headers, body)
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)

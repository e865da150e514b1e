"""Every error leaves the API as `{"error": {"type", "code", "message", "param"}}`, with
the further fields some errors carry (`payment_id` of an order conflict)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, NotRequired, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from typing_extensions import TypedDict

from paymend.api.routes import allowed_methods
from paymend.domain.errors import PaymendError
from paymend.observability import get_logger
from paymend.observability.tracing import current_trace_id

log = get_logger("paymend.api")
ErrorType = Literal[
    "invalid_request_error", "authentication_error", "permission_error", "state_error", "api_error"
]


class ErrorDetail(TypedDict):
    type: Annotated[
        ErrorType,
        Field(
            description="`invalid_request_error`: the request (fix it); "
            "`authentication_error`: the key; `permission_error`: the role; `state_error`: "
            "the object's state; `api_error`: paymend's side (a retry may work)"
        ),
    ]
    code: Annotated[str, Field(description="stable: branch on it (docs/api.md lists every code)")]
    message: Annotated[str, Field(description="for people; may change")]
    param: Annotated[str | None, Field(description="the parameter at fault, if one is")]
    control_id: NotRequired[
        Annotated[
            str | None, Field(description="`control_exists`: the active control it would repeat")
        ]
    ]
    payment_id: NotRequired[
        Annotated[str, Field(description="an order conflict: the payment the order already has")]
    ]


class ErrorBody(TypedDict):
    """Every error paymend answers, whatever its status."""

    error: ErrorDetail


def error_body(
    code: str,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    body: ErrorBody = {
        "error": {"type": cast(ErrorType, type), "code": code, "message": message, "param": param}
    }
    error = cast(dict[str, Any], body["error"])
    # an error adds fields (e.g. `payment_id`); it never replaces the four every client reads
    error.update((k, v) for k, v in (extra or {}).items() if k not in error)
    return cast(dict[str, Any], body)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, type=type, param=param), status_code=status)


def paymend_error_response(exc: PaymendError) -> JSONResponse:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return JSONResponse(
        error_body(exc.code, exc.message, type=exc.type, param=exc.param, extra=exc.extra),
        status_code=exc.status,
        headers=headers,
    )


_PYDANTIC_CODES = {
    "missing": "parameter_missing",
    "extra_forbidden": "parameter_unknown",
    "json_invalid": "invalid_json",
    "model_attributes_type": "invalid_json",
    "dict_type": "parameter_invalid",
}


def validation_response(exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    where = tuple(first.get("loc", ()))
    # a repeated query parameter (status=a&status=b) is named, not its position
    parts = where[:2] if where[:1] == ("query",) else where
    loc = [str(p) for p in parts if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    kind = str(first.get("type", ""))
    code = _PYDANTIC_CODES.get(kind, "parameter_invalid")
    if param == "amount" and code == "parameter_invalid":
        code = "amount_invalid"
    if kind == "json_invalid":
        message = "the body is not valid JSON"
        param = None
    elif kind == "missing":
        message = f"'{param}' is required" if param else "a JSON object body is required"
    elif kind == "extra_forbidden":
        message = f"'{param}' is not a parameter of this request"
    else:
        message = f"'{param}': {first.get('msg', 'invalid')}" if param else str(first.get("msg"))
    return error_response(400, code, message, param=param)


def install(app: FastAPI) -> None:
    @app.exception_handler(PaymendError)
    async def _paymend(_request: Request, exc: PaymendError) -> JSONResponse:
        return paymend_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        answer = error_response(
            exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
        )
        if exc.status_code == 405:  # every method the path takes, not only one route's
            answer.headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        return answer

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # its type and where it was raised, never its message (paymend.observability)
        log.error("unhandled_error", trace_id=current_trace_id(), exc_info=exc)
        return error_response(
            500,
            "internal_error",
            "an unexpected error occurred; it has been logged",
            type="api_error",
        )

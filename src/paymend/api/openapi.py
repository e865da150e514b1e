"""The OpenAPI document (`/openapi.json`), made to say what paymend really answers.

FastAPI writes the document from the routes: their parameters, bodies and success
shapes (`api/shapes.py`, `api/ops_shapes.py`). Here it is completed with what FastAPI
cannot see:

- every error status a request can get, with its codes: those a route names
  (`api/responses.py`) and those every request may meet before its route, read from
  what the route is: the guard's refusals for a body (400, 408, 413, 415), the checks
  of every parameter (400), the key (401) and the role (403) it needs, a busy server
  or database (503), a head too large (431), a bug (500). FastAPI's own `422`, which
  paymend never sends, is removed;
- the two security schemes (merchant keys, operator keys) and which one each operation
  takes;
- links from an answer to the operations it leads to (a payment to its refunds, …), so
  clients and schemathesis can follow them;
- what the configuration allows where a request must name it (payment methods), and
  the characters strings may hold (`api/inputs.py`: no control characters; free text
  may hold tabs and line breaks), as patterns.

`tests/api/test_openapi_contract.py` runs schemathesis against a real server to check
that the document and the server agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from paymend.api import auth
from paymend.api.errors import ErrorBody
from paymend.api.guard import WITH_BODY, provider_signed
from paymend.api.idempotent import KEY_HEADER
from paymend.api.openapi_links import add_links
from paymend.api.responses import CODES_KEY, describe
from paymend.api.routes import Route, dependants, routes_of
from paymend.domain.card_data import FieldKind, field_kind
from paymend.domain.control import SCOPES
from paymend.domain.roles import Role
from paymend.engine.controls import VALUE_SHAPE, KnownScopes

MERCHANT_KEY = "MerchantKey"
OPERATOR_KEY = "OperatorKey"
SECURITY_SCHEMES = {
    MERCHANT_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "A merchant's secret key, `sk_…` (`paymend merchants create NAME`)",
    },
    OPERATOR_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "An operator's key, `opk_…` (`paymend operators create NAME --role …`); "
        "each operation names the role it needs",
    },
}
ERROR_SCHEMA = "Error"
RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}
_REF = "#/components/schemas/{model}"


def operation_id(route: APIRoute) -> str:
    """An operation is named by its function: `create_payment`, `lookup_payment`, …"""
    return route.name


def install(app: FastAPI, known: Callable[[], KnownScopes]) -> None:
    """Serve the completed document at `/openapi.json`, made once. `known`: what the
    configuration knows (channels, their methods, banks and regions)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            complete(document, routes_of(app))
            scopes = known()
            methods = sorted(scopes.methods or ())
            _allow_only(document, "PaymentIn", "method", methods)
            _allow_only(document, "ControlIn", "method", methods)
            describe_controls(document["components"]["schemas"]["ControlIn"], scopes)
            refuse_control_characters(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], routes: list[Route]) -> None:
    """Errors, security and links, as the module's docstring says."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    error = TypeAdapter(ErrorBody).json_schema(ref_template=_REF)
    schemas.update(error.pop("$defs", {}))
    schemas[ERROR_SCHEMA] = error
    components["securitySchemes"] = SECURITY_SCHEMES
    for route in routes:
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            operation = document["paths"][route.path_format][method.lower()]
            _describe_success(operation, schemas)
            _document_errors(operation, implied_errors(route, method))
            scheme = security_of(route)
            if scheme is not None:
                operation["security"] = [{scheme: []}]
    add_links(document)


def implied_errors(route: Route, method: str) -> dict[int, set[str]]:
    """The error statuses and codes any request to `route` may get besides those of its
    own work: from the server, the guard, the parameter checks and authentication."""
    found: dict[int, set[str]] = defaultdict(set)
    # server.py: the head's time and size, too many connections; errors.py: a bug
    found[408].add("request_timeout")
    found[431].add("request_header_too_large")
    found[500].add("internal_error")
    found[503].add("server_busy")
    # inputs.check_parameters, run before every route: any path or query parameter
    found[400] |= {"card_data_not_allowed", "parameter_invalid"}
    dependant = route.dependant
    params = [*_all(dependant, "path_params"), *_all(dependant, "query_params")]
    headers = list(_all(dependant, "header_params"))
    if any(p.field_info.is_required() for p in [*params, *headers]):
        found[400].add("parameter_missing")
    if route.body_field is not None:
        found[400] |= {"invalid_json", "parameter_missing", "parameter_unknown"}
    if method in WITH_BODY and provider_signed(route.path_format):  # read raw, bounded
        found[408].add("request_timeout")
        found[413].add("body_too_large")
    elif method in WITH_BODY:  # guard.py reads, bounds and checks the body first
        found[400] |= {"card_data_not_allowed", "invalid_json", "parameter_invalid"}
        found[408].add("request_timeout")
        found[413].add("body_too_large")
        found[415].add("unsupported_media_type")
    extra = route.openapi_extra or {}
    if any(p["name"] == KEY_HEADER for p in extra.get("parameters", [])):  # idempotent()
        found[400].add("idempotency_key_invalid")
        found[409] |= {"idempotency_key_reused", "idempotency_request_in_progress"}
    calls = {d.call for d in dependants(dependant)}
    if auth.merchant in calls:
        found[401] |= {"api_key_missing", "api_key_invalid"}
    needed = required_role(route)
    if needed is not None:
        found[401] |= {"operator_key_missing", "operator_key_invalid"}
        if needed is not Role.VIEWER:  # every operator may do what a viewer may
            found[403].add("role_insufficient")
    if security_of(route) is not None:  # the key is looked up in the database
        found[503] |= {"database_unavailable", "database_busy"}
    return found


def security_of(route: Route) -> str | None:
    calls = {d.call for d in dependants(route.dependant)}
    if auth.merchant in calls:
        return MERCHANT_KEY
    return OPERATOR_KEY if required_role(route) is not None else None


def required_role(route: Route) -> Role | None:
    for d in dependants(route.dependant):
        if isinstance(d.call, auth.RoleCheck):
            return d.call.needed
    return None


def _all(dependant: Dependant, kind: str) -> Iterator[Any]:
    yield from getattr(dependant, kind)
    for sub in dependants(dependant):
        yield from getattr(sub, kind)


def _describe_success(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A success answer is described by its shape's docstring, not "Successful Response"."""
    for status, response in operation.get("responses", {}).items():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        ref = schema.get("$ref", "")
        shape = schemas.get(ref.rsplit("/", 1)[-1], {})
        if status.startswith("2") and "description" in shape:
            response["description"] = " ".join(shape["description"].split("\n\n")[0].split())


def _document_errors(operation: dict[str, Any], implied: dict[int, set[str]]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's validation error: paymend answers 400
    statuses = {int(s) for s in responses if s.isdigit() and int(s) >= 400} | set(implied)
    error_ref = {"$ref": _REF.format(model=ERROR_SCHEMA)}
    for status in sorted(statuses):
        response = responses.setdefault(str(status), {})
        codes = sorted(set(response.pop(CODES_KEY, [])) | implied.get(status, set()))
        content = response.setdefault("content", {})
        own = content.get("application/json", {}).get("schema")
        if own is None or own == error_ref:
            response["description"] = describe(status, codes)
            content["application/json"] = {"schema": error_ref}
        else:  # an answer of the route's own (the health check's), or the error object
            response["description"] += f"; or the error object: {describe(status, codes)}"
            content["application/json"] = {"schema": {"anyOf": [own, error_ref]}}
        if status == 503:
            response["headers"] = {"Retry-After": RETRY_AFTER}
        response[CODES_KEY] = codes
    operation["responses"] = dict(sorted(responses.items()))


def describe_controls(control: dict[str, Any], known: KnownScopes) -> None:
    """What `engine/controls.py` checks of a control beyond each field alone: which
    scopes each kind takes, the names the configuration knows, and that a hold (and
    only a hold) has an amount and a currency, as one variant per kind and scope."""
    variants = []
    for kind, scopes in SCOPES.items():
        for scope in scopes:
            listed = {"channel": known.channels, "bank": known.banks, "region": known.regions}
            names = listed[scope]
            value: dict[str, Any] = {"pattern": VALUE_SHAPE.pattern}
            if names is not None:
                value = {"enum": sorted(names)}
            hold = kind == "hold"
            variant = {
                "properties": {
                    "kind": {"const": kind},
                    "scope": {"const": scope},
                    "value": value,
                    "amount_above": {"type": "integer" if hold else "null"},
                    "currency": {"type": "string" if hold else "null"},
                },
                "required": ["amount_above", "currency"] if hold else [],
            }
            variants.append(variant)
    control["oneOf"] = variants


def _allow_only(document: dict[str, Any], schema: str, field: str, values: list[str]) -> None:
    """Say which values the configuration takes for a field the code checks against it."""
    prop = document["components"]["schemas"][schema]["properties"][field]
    for branch in (prop, *prop.get("anyOf", [])):  # an optional field stays nullable
        if branch.get("type") == "string":
            branch.pop("pattern", None)
            branch["enum"] = values


# api/inputs.py: no C0 or C1 control character in a parameter, a key or an identifier;
# free text may hold tabs and line breaks
NO_CONTROL = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
FREE_TEXT = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"


def refuse_control_characters(document: dict[str, Any]) -> None:
    """Give every string of a request the pattern of what `api/inputs.py` lets through,
    unless it has a pattern of its own (which refuses control characters already)."""
    schemas = document["components"]["schemas"]
    bodies: set[str] = set()
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                # inputs.check_parameters reads path and query parameters and the one
                # header paymend keeps; Accept-Language it only reads, never refuses
                if parameter["in"] != "header" or parameter["name"] == "Idempotency-Key":
                    _constrain(parameter["schema"], NO_CONTROL)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                bodies |= set(_refs(body["schema"]))
    done: set[str] = set()
    while bodies - done:
        name = (bodies - done).pop()
        done.add(name)
        for key, prop in schemas[name].get("properties", {}).items():
            kind = field_kind(key)
            _constrain(prop, FREE_TEXT if kind is FieldKind.TEXT else NO_CONTROL)
            bodies |= set(_refs(prop))


def _constrain(schema: dict[str, Any], pattern: str) -> None:
    if schema.get("type") == "string" and "enum" not in schema:
        schema.setdefault("pattern", pattern)
    for alternative in schema.get("anyOf", []):
        _constrain(alternative, pattern)
    if isinstance(schema.get("items"), dict):
        _constrain(schema["items"], pattern)
    values = schema.get("additionalProperties")
    if isinstance(values, dict):  # metadata: its keys are keys, its values text
        _constrain(values, FREE_TEXT)
        schema.setdefault("propertyNames", {}).setdefault("pattern", NO_CONTROL)


def _refs(schema: dict[str, Any]) -> Iterator[str]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        yield ref.rsplit("/", 1)[-1]
    for alternative in schema.get("anyOf", []):
        yield from _refs(alternative)

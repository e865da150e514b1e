"""What `/openapi.json` says of every operation: the statuses it can answer with their
codes, the key it takes, where its answer leads. (Whether the server keeps to it is
tests/api/test_openapi_contract.py.)"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from paymend.api.openapi import FREE_TEXT, NO_CONTROL
from paymend.domain.payment import PaymentStatus
from tests.api.conftest import Server
from tests.helpers import WAIT_S

Document = dict[str, Any]


@pytest.fixture
def document(server: Server) -> Document:
    found: Document = httpx.get(f"{server.url}/openapi.json", timeout=WAIT_S).json()
    return found


def operations(document: Document) -> dict[str, tuple[str, str, Document]]:
    return {
        op["operationId"]: (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }


def codes(document: Document, operation: str, status: int) -> list[str]:
    found: list[str] = operations(document)[operation][2]["responses"][str(status)]["x-error-codes"]
    return found


def test_no_operation_documents_422_which_paymend_never_sends(document: Document) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for method, path, op in operations(document).values():
        assert "422" not in op["responses"], (method, path)


def test_every_error_is_the_error_object_with_its_codes(document: Document) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"type", "code", "message", "param"}
    assert {"control_id", "payment_id"} <= set(detail["properties"])  # some errors add them
    for method, path, op in operations(document).values():
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            schema = response["content"]["application/json"]["schema"]
            refs = [schema, *schema.get("anyOf", [])]
            assert {"$ref": "#/components/schemas/Error"} in refs, (method, path, status)
            assert response["x-error-codes"], (method, path, status)
            for code in response["x-error-codes"]:
                assert f"`{code}`" in response["description"]


def test_what_every_request_can_meet_before_its_route_is_documented(document: Document) -> None:
    for method, path, op in operations(document).values():
        statuses = set(op["responses"])
        assert {"400", "408", "431", "500", "503"} <= statuses, (method, path)
        assert "server_busy" in op["responses"]["503"]["x-error-codes"]
        assert "card_data_not_allowed" in op["responses"]["400"]["x-error-codes"]
        # the guard reads every body; a provider's notification in its own format
        raw = path.startswith("/v1/providers/")
        assert ("413" in statuses) == (method == "POST"), (method, path)
        assert ("415" in statuses) == (method == "POST" and not raw), (method, path)


def test_keys_and_roles_are_documented_where_they_are_needed(document: Document) -> None:
    for name, (_method, path, op) in operations(document).items():
        security = op.get("security")
        statuses = set(op["responses"])
        if path.startswith("/v1/ops/"):
            assert security == [{"OperatorKey": []}], name
            assert "operator_key_invalid" in op["responses"]["401"]["x-error-codes"]
            viewer = "**viewer**" in op["description"]
            assert ("403" in statuses) != viewer, name  # every operator may do what viewers do
        elif path.startswith(("/v1/payments", "/v1/events", "/v1/customers", "/v1/feedback")):
            assert security == [{"MerchantKey": []}], name
            assert "api_key_missing" in op["responses"]["401"]["x-error-codes"]
        else:  # the failure catalogue, help pages, health and metrics are public
            assert security is None and "401" not in statuses, name
    schemes = document["components"]["securitySchemes"]
    assert schemes["MerchantKey"]["scheme"] == schemes["OperatorKey"]["scheme"] == "bearer"


def test_a_route_documents_the_errors_of_its_own_work(document: Document) -> None:
    assert codes(document, "get_payment", 404) == ["payment_not_found"]
    assert "refund_in_progress" in codes(document, "create_refund", 409)
    assert "idempotency_key_reused" in codes(document, "create_refund", 409)
    assert "payment_in_flight" in codes(document, "create_payment", 503)
    assert "control_exists" in codes(document, "add_control", 409)
    assert "409" not in operations(document)["get_payment"][2]["responses"]
    assert "404" not in operations(document)["list_payments"][2]["responses"]


def test_every_post_that_takes_an_idempotency_key_says_so_and_its_errors(
    document: Document,
) -> None:
    taking = {
        name
        for name, (_, _, op) in operations(document).items()
        if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
    }
    assert taking == {
        "create_payment",
        "create_refund",
        "confirm_payment",
        "cancel_payment",
        "create_compensation",
    }
    for name in taking:
        (key,) = [
            p for p in operations(document)[name][2]["parameters"] if p["name"] == "Idempotency-Key"
        ]
        assert (key["in"], key["required"]) == ("header", False)
        assert key["schema"]["type"] == "string"  # a header is text or absent, never null
        assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
        assert key["schema"]["pattern"] == NO_CONTROL
        assert "idempotency_key_invalid" in codes(document, name, 400)
        assert {"idempotency_key_reused", "idempotency_request_in_progress"} <= set(
            codes(document, name, 409)
        )
    assert "idempotency_key_invalid" not in codes(document, "add_control", 400)


def test_answers_are_their_shapes_with_the_right_status(document: Document) -> None:
    ops = operations(document)

    def success(name: str) -> tuple[str, Document]:
        status, response = next(
            (s, r) for s, r in ops[name][2]["responses"].items() if s.startswith("2")
        )
        return status, response["content"]["application/json"]["schema"]

    assert success("create_payment") == ("201", {"$ref": "#/components/schemas/Payment"})
    assert success("create_refund") == ("201", {"$ref": "#/components/schemas/Refund"})
    assert success("add_control")[0] == "201"
    assert success("list_payments")[1] == {"$ref": "#/components/schemas/PaymentList"}
    schemas = document["components"]["schemas"]
    page = schemas["PaymentList"]
    assert set(page["required"]) == {"object", "data", "has_more", "next_starting_after"}
    assert schemas["Payment"]["properties"]["status"] == {
        "$ref": "#/components/schemas/PaymentStatus"
    }
    assert schemas["PaymentStatus"]["enum"] == [s.value for s in PaymentStatus]
    failure = schemas["Payment"]["properties"]["failure"]
    assert {"type": "null"} in failure["anyOf"]  # nullable where it can be null
    metrics = ops["metrics"][2]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


def test_answers_link_to_what_they_lead_to(document: Document) -> None:
    created = operations(document)["create_payment"][2]["responses"]["201"]["links"]
    assert created["GetPayment"] == {
        "operationId": "get_payment",
        "parameters": {"payment_id": "$response.body#/id"},
    }
    assert {"CreateRefund", "ConfirmPayment", "CancelPayment", "CreateCompensation"} <= set(created)
    refund = operations(document)["create_refund"][2]["responses"]["201"]["links"]
    assert refund["ListRefunds"]["parameters"] == {"payment_id": "$response.body#/payment_id"}


def test_requests_say_what_paymend_takes(document: Document) -> None:
    schemas = document["components"]["schemas"]
    payment = schemas["PaymentIn"]["properties"]
    assert payment["method"]["enum"] == ["alipay", "card", "wechat_pay"]  # the channels'
    control_method = schemas["ControlIn"]["properties"]["method"]["anyOf"]
    assert control_method == [
        {"type": "string", "enum": ["alipay", "card", "wechat_pay"]},
        {"type": "null"},  # every method
    ]
    assert payment["amount"]["minimum"] == 1
    assert "CNY" in payment["currency"]["enum"]
    assert payment["order_id"]["pattern"] == NO_CONTROL  # an identifier
    assert payment["payment_token"]["anyOf"][0]["pattern"] == FREE_TEXT
    refund = schemas["RefundIn"]["properties"]["amount"]
    assert refund["type"] == "integer"  # leave it out; null is refused
    key = next(
        p
        for p in operations(document)["create_payment"][2]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
    reason = re.compile(schemas["ControlIn"]["properties"]["reason"]["pattern"])
    assert reason.match(" paused for the ICBC outage ")  # surrounding space is stripped
    assert not reason.match("line\nbreak") and not reason.match("bidi\u202eoverride")
    review = re.compile(schemas["ReviewIn"]["properties"]["cause"]["pattern"])
    assert review.match("first line\nsecond line") and not review.match("a\u0000")
    variants = schemas["ControlIn"]["oneOf"]
    channels = [v for v in variants if v["properties"]["scope"] == {"const": "channel"}]
    assert all(v["properties"]["value"] == {"enum": ["sim_a", "sim_b"]} for v in channels)
    holds = [v for v in variants if v["properties"]["kind"] == {"const": "hold"}]
    assert all(set(v["required"]) == {"amount_above", "currency"} for v in holds)

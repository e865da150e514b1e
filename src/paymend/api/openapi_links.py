"""Links in the OpenAPI document from an answer to the operations it leads to (a
payment to its refunds, a list to its first item, …), so that clients and schemathesis's
stateful phase can follow them (https://spec.openapis.org/oas/v3.1.0#link-object)."""

from __future__ import annotations

from typing import Any

# What an answer leads to: (operation, status) -> link name -> (operation, parameters).
# Values are OpenAPI runtime expressions into the answer.
ID = "$response.body#/id"
FIRST = "$response.body#/data/0/id"
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("create_payment", "201"): {
        "GetPayment": ("get_payment", {"payment_id": ID}),
        "ListRefunds": ("list_refunds", {"payment_id": ID}),
        "CreateRefund": ("create_refund", {"payment_id": ID}),
        "ConfirmPayment": ("confirm_payment", {"payment_id": ID}),
        "CancelPayment": ("cancel_payment", {"payment_id": ID}),
        "CreateCompensation": ("create_compensation", {"payment_id": ID}),
        "ListEvents": ("list_events", {"payment_id": ID}),
        "ListPayments": ("list_payments", {"order_id": "$response.body#/order_id"}),
    },
    ("get_payment", "200"): {
        "CreateRefund": ("create_refund", {"payment_id": ID}),
        "ConfirmPayment": ("confirm_payment", {"payment_id": ID}),
        "CancelPayment": ("cancel_payment", {"payment_id": ID}),
    },
    ("confirm_payment", "200"): {
        "GetPayment": ("get_payment", {"payment_id": ID}),
        "CreateRefund": ("create_refund", {"payment_id": ID}),
    },
    ("cancel_payment", "200"): {"GetPayment": ("get_payment", {"payment_id": ID})},
    ("create_refund", "201"): {
        "ListRefunds": ("list_refunds", {"payment_id": "$response.body#/payment_id"}),
        "GetPayment": ("get_payment", {"payment_id": "$response.body#/payment_id"}),
    },
    ("create_compensation", "201"): {
        "GetPayment": ("get_payment", {"payment_id": "$response.body#/payment_id"}),
    },
    ("list_payments", "200"): {"GetPayment": ("get_payment", {"payment_id": FIRST})},
    ("list_events", "200"): {"GetEvent": ("get_event", {"event_id": FIRST})},
    ("add_control", "201"): {"EndControl": ("end_control", {"control_id": ID})},
    ("add_silence", "201"): {"EndSilence": ("end_silence", {"silence_id": ID})},
    ("list_controls", "200"): {"EndControl": ("end_control", {"control_id": FIRST})},
    ("held_payments", "200"): {
        "LookUpPayment": ("lookup_payment", {"payment_id": FIRST}),
        "ReleasePayment": ("release_payment", {"payment_id": FIRST}),
        "RejectPayment": ("reject_payment", {"payment_id": FIRST}),
    },
    ("payments_of_order", "200"): {"LookUpPayment": ("lookup_payment", {"payment_id": FIRST})},
    ("lookup_payment", "200"): {
        "MerchantKeys": ("merchant_keys", {"merchant": "$response.body#/merchant_id"}),
    },
    ("merchant_keys", "200"): {
        "RotateMerchantKey": ("rotate_merchant_key", {"merchant": "$response.body#/merchant_id"}),
        "RevokeMerchantKey": (
            "revoke_merchant_key",
            {"merchant": "$response.body#/merchant_id", "key_id": FIRST},
        ),
    },
    ("failure_codes", "200"): {"HelpPage": ("help_page", {"code": "$response.body#/data/0/code"})},
    ("list_incidents", "200"): {
        "GetIncident": ("get_incident", {"incident_id": FIRST}),
        "AcknowledgeIncident": ("acknowledge", {"incident_id": FIRST}),
        "ReviewIncident": ("review", {"incident_id": FIRST}),
    },
    ("get_incident", "200"): {
        "AcknowledgeIncident": ("acknowledge", {"incident_id": ID}),
        "ReviewIncident": ("review", {"incident_id": ID}),
    },
    ("create_operator", "201"): {
        "SetRole": ("set_role", {"name": "$response.body#/name"}),
        "RotateOperatorKey": ("rotate_operator_key", {"name": "$response.body#/name"}),
        "RevokeOperatorKey": (
            "revoke_operator_key",
            {"name": "$response.body#/name", "key_id": "$response.body#/key/id"},
        ),
    },
    ("rotate_operator_key", "201"): {
        "RevokeOperatorKey": (
            "revoke_operator_key",
            {"name": "$response.body#/operator", "key_id": "$response.body#/key/id"},
        ),
    },
    ("rotate_merchant_key", "201"): {
        "MerchantKeys": ("merchant_keys", {"merchant": "$response.body#/merchant_id"}),
        "RevokeMerchantKey": (
            "revoke_merchant_key",
            {"merchant": "$response.body#/merchant_id", "key_id": "$response.body#/key/id"},
        ),
    },
}


def add_links(document: dict[str, Any]) -> None:
    """Add each link of LINKS to its answer; a link naming a parameter its target does
    not take is a mistake here, refused while the document is made."""
    operations = {
        op["operationId"]: op for item in document["paths"].values() for op in item.values()
    }
    for (source, status), links in LINKS.items():
        response = operations[source]["responses"][status]
        out = response.setdefault("links", {})
        for name, (target, parameters) in links.items():
            declared = {p["name"] for p in operations[target].get("parameters", [])}
            unknown = set(parameters) - declared
            if unknown:
                raise ValueError(f"link {source} -> {target}: no parameter {sorted(unknown)}")
            out[name] = {"operationId": target, "parameters": parameters}

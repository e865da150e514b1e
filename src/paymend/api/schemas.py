"""Request bodies of the merchant API. Unknown fields are refused, types are strict."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.config import JsonDict

from paymend.domain.currencies import EXPONENTS
from paymend.domain.money import MAX_MINOR_UNITS

Short = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
_ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_8601(value: object) -> object:
    """Only a date and time written as ISO 8601: pydantic alone would also read `0.5`
    or `1764000000` as a Unix time, so a typo would filter silently."""
    if isinstance(value, str) and not _ISO_8601.match(value):
        raise ValueError("an ISO 8601 date and time with a zone, e.g. 2026-11-24T08:00:00Z")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601)]
_MAILBOX = r"[^@\s\x00-\x1f\x7f-\x9f]"  # no control characters, as api/inputs.py refuses
# What the domain checks with its own codes (amount_too_small, currency_unsupported, …),
# said in the document only: validating here too would change the codes.
AMOUNT_RANGE: JsonDict = {"minimum": 1, "maximum": MAX_MINOR_UNITS}
KEY_LENGTH: JsonDict = {"minLength": 1, "maxLength": 40}
Currency = Annotated[
    str,
    StringConstraints(min_length=3, max_length=3),
    Field(
        description="ISO 4217 code (any case)",
        json_schema_extra={"enum": sorted(EXPONENTS)},
    ),
]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    locale: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None
    ) = Field(
        None, description="BCP 47 tag such as zh-CN or en; picks the language of customer messages"
    )
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()-]{4,24}$")] | None = None
    email: (
        Annotated[
            str,
            StringConstraints(max_length=254, pattern=rf"^{_MAILBOX}+@{_MAILBOX}+\.{_MAILBOX}+$"),
        ]
        | None
    ) = None


class PaymentIn(BaseModel):
    """A payment request. `amount` is in minor units of `currency` (1999 CNY = ¥19.99)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "amount": 1999,
                    "currency": "CNY",
                    "method": "card",
                    "order_id": "order-1001",
                    "bank": "ICBC",
                    "region": "CN-East",
                    "payment_token": "tok_from_provider_sdk",
                    "customer": {"id": "c-42", "locale": "zh-CN"},
                }
            ]
        },
    )

    amount: StrictInt = Field(description="integer minor units", json_schema_extra=AMOUNT_RANGE)
    currency: Currency
    method: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")] = Field(
        description="card, alipay, wechat_pay, …"
    )
    order_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    bank: Short | None = None
    region: Short | None = None
    payment_token: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        None, description="token from the provider's client-side SDK; never a card number"
    )
    customer: CustomerIn | None = None
    metadata: (
        Annotated[
            dict[str, Annotated[str, StringConstraints(max_length=500)]],
            # checked by _metadata_size, said here for the document
            Field(json_schema_extra={"maxProperties": 50, "propertyNames": KEY_LENGTH}),
        ]
        | None
    ) = Field(None, description="up to 50 string pairs, returned as given")
    split_payment: StrictBool = Field(
        False,
        description="one of several payments for this order (split payment, like "
        "Alipay's and WeChat Pay's out_trade_no per part): it may be created while other "
        "split payments of the order are in flight or paid. Without it a payment is the "
        "order's only one: refused with 409 order_already_paid or "
        "order_payment_in_progress while another holds the order",
    )

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None:
            if len(v) > 50:
                raise ValueError("at most 50 keys")
            if any(not 1 <= len(k) <= 40 for k in v):
                raise ValueError("keys must be 1 to 40 characters")
        return v


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[StrictInt | None, WithJsonSchema({"type": "integer", **AMOUNT_RANGE})] = (
        Field(None, description="minor units; leave it out (never null) to refund all that is left")
    )
    reason: Annotated[str, StringConstraints(max_length=200)] | None = None

    @field_validator("amount")
    @classmethod
    def _not_null(cls, v: int | None) -> int:
        # an explicit null is a mistake, not "everything": refunding the whole payment
        # must be asked for by leaving the field out
        if v is None:
            raise ValueError("must be an integer; leave 'amount' out to refund the rest")
        return v


class ProviderDetails(BaseModel):
    """What the customer's return from the provider's page brought, passed on as it came
    (https://docs.adyen.com/online-payments/3d-secure/redirect-3ds2/web-drop-in/#handle-the-redirect)."""

    model_config = ConfigDict(extra="forbid")

    # Adyen's own names, as the return brings them (camelCase on the wire)
    redirectResult: Annotated[str, StringConstraints(min_length=1, max_length=20000)] | None = (  # noqa: N815
        Field(None, description="Adyen: the `redirectResult` query parameter of your returnUrl")
    )
    threeDSResult: Annotated[str, StringConstraints(min_length=1, max_length=20000)] | None = (  # noqa: N815
        Field(None, description="Adyen: the `threeDSResult` of the 3-D Secure component")
    )


class ConfirmIn(BaseModel):
    """The confirm call's optional body."""

    model_config = ConfigDict(extra="forbid")

    details: ProviderDetails | None = None


class CompensationIn(BaseModel):
    """A coupon or credit granted to the customer by support staff."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["coupon", "credit"]
    amount: StrictInt = Field(
        description="minor units of the payment's currency", json_schema_extra=AMOUNT_RANGE
    )
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
    granted_by: Annotated[
        str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)
    ] = Field(description="the staff member, as your support tool names them")

"""The features rules are written over, with their types, and how a payment yields them.

A payment brings its own signals (amount, currency, method, the customer) and the ones
the shop's checkout passes in the payment's `metadata` under reserved keys (device,
IP and its country, the card's fingerprint and BIN country, the billing country, when
the customer's account was opened). Velocity and history features are added by the
engine from the counters (risk/velocity.py) and the customer's record (risk/score.py).
Every feature always has a value of its type, so a rule never meets a missing one:
an unknown text is "", an unknown number -1 (ages) or 0 (counts).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Kind(StrEnum):
    NUMBER = "number"
    TEXT = "text"
    FLAG = "flag"


# metadata keys a checkout fills for risk (docs/risk.md); all optional
SIGNAL_KEYS = (
    "device_id",
    "ip",
    "ip_country",
    "country",
    "bin_country",
    "card_fingerprint",
    "customer_since",
)

# the velocity windows, name -> seconds
WINDOWS: dict[str, int] = {"10m": 600, "1h": 3600, "24h": 86400}
# whose counters: the signal each is keyed by
SUBJECTS = ("card", "customer", "device", "ip", "email")
# per subject and window: payments seen, their amount (major units), failed payments,
# declines with fraud-like codes; and, for all but the card, distinct cards seen
METRICS = ("count", "amount", "failed", "fraud")
CARD_HOLDERS = ("customer", "device", "ip", "email")

# failure codes a card tester or a thief collects (failures/catalogue.yaml)
FRAUD_LIKE_CODES = frozenset(
    {
        "suspected_fraud",
        "lost_or_stolen_card",
        "incorrect_details",
        "incorrect_pin",
        "expired_card",
        "authentication_failed",
        "transaction_not_permitted",
    }
)


def velocity_names() -> dict[str, Kind]:
    names = {f"{s}_{m}_{w}": Kind.NUMBER for s in SUBJECTS for m in METRICS for w in WINDOWS}
    names.update({f"{s}_cards_{w}": Kind.NUMBER for s in CARD_HOLDERS for w in WINDOWS})
    return names


BASE_FEATURES: dict[str, Kind] = {
    "amount": Kind.NUMBER,  # minor units
    "amount_major": Kind.NUMBER,  # in the currency's major unit (1999 CNY -> 19.99)
    "currency": Kind.TEXT,
    "method": Kind.TEXT,
    "bank": Kind.TEXT,
    "region": Kind.TEXT,
    "country": Kind.TEXT,  # billing country (ISO 3166 alpha-2), "" unknown
    "ip_country": Kind.TEXT,
    "bin_country": Kind.TEXT,
    "country_mismatch": Kind.FLAG,  # billing and IP countries both known and different
    "bin_mismatch": Kind.FLAG,  # card's country and IP country both known and different
    "customer_id": Kind.TEXT,
    "customer_age_days": Kind.NUMBER,  # since the account was opened; -1 unknown
    "device_id": Kind.TEXT,
    "ip": Kind.TEXT,
    "card_fingerprint": Kind.TEXT,
    "email_domain": Kind.TEXT,
    "hour": Kind.NUMBER,  # hour of day, UTC, 0-23
    "weekday": Kind.NUMBER,  # 0 Monday - 6 Sunday
}

HISTORY_FEATURES: dict[str, Kind] = {
    "customer_successes": Kind.NUMBER,
    "customer_refunds": Kind.NUMBER,
    "customer_chargebacks": Kind.NUMBER,  # chargebacks and fraud reports
    "card_successes": Kind.NUMBER,
    "card_chargebacks": Kind.NUMBER,
    "device_new": Kind.FLAG,  # a known customer on a device never seen with them
    "score": Kind.NUMBER,  # behaviour score 0-100, 50 for a stranger (risk/score.py)
    "card_score": Kind.NUMBER,
    "customer_limit": Kind.NUMBER,  # the customer's dynamic amount limit, major units
    "card_limit": Kind.NUMBER,
    "over_customer_limit": Kind.FLAG,  # this amount + the last 24 h above the limit
    "over_card_limit": Kind.FLAG,
}

FEATURES: dict[str, Kind] = {**BASE_FEATURES, **velocity_names(), **HISTORY_FEATURES}


@dataclass(frozen=True, slots=True)
class Subjects:
    """The keys the payment's counters and lists are looked up by ("" = unknown)."""

    card: str
    customer: str
    device: str
    ip: str
    email: str

    def items(self) -> list[tuple[str, str]]:
        return [(s, getattr(self, s)) for s in SUBJECTS if getattr(self, s)]


def card_fingerprint(metadata: dict[str, str]) -> str:
    """The shop's fingerprint of the card (its provider's, e.g. Stripe's
    `card.fingerprint`): the same card under every token. A payment token is not one:
    sandbox tokens are shared by every test payment, real ones are single-use."""
    return metadata.get("card_fingerprint", "").strip()[:128]


def email_key(email: str | None) -> str:
    """The key an email is counted and listed by: a hash of its lower-case form, so the
    risk tables hold no address."""
    clean = (email or "").strip().lower()
    return "e_" + hashlib.sha256(clean.encode()).hexdigest()[:40] if clean else ""


def subjects(
    merchant_id: str,
    customer_id: str | None,
    email: str | None,
    metadata: dict[str, str],
) -> Subjects:
    """A customer id is the shop's own, so it is counted within its shop; cards, devices,
    IPs and emails are counted across shops (a card tester tries many)."""
    return Subjects(
        card=card_fingerprint(metadata),
        customer=f"{merchant_id}/{customer_id}" if customer_id else "",
        device=metadata.get("device_id", "").strip()[:128],
        ip=metadata.get("ip", "").strip()[:64],
        email=email_key(email),
    )


def _age_days(since: str, now: datetime) -> float:
    try:
        opened = datetime.fromisoformat(since)
    except ValueError:
        return -1.0
    if opened.tzinfo is None:
        opened = opened.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - opened).total_seconds() / 86400)


def base_features(
    *,
    amount: int,
    exponent: int,
    currency: str,
    method: str,
    bank: str | None,
    region: str | None,
    metadata: dict[str, str],
    who: Subjects,
    email: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The payment's own features (BASE_FEATURES), from its request."""
    country = metadata.get("country", "").strip().upper()
    ip_country = metadata.get("ip_country", "").strip().upper()
    bin_country = metadata.get("bin_country", "").strip().upper()
    since = metadata.get("customer_since", "").strip()
    return {
        "amount": amount,
        "amount_major": amount / (10**exponent),
        "currency": currency,
        "method": method,
        "bank": bank or "",
        "region": region or "",
        "country": country,
        "ip_country": ip_country,
        "bin_country": bin_country,
        "country_mismatch": bool(country and ip_country and country != ip_country),
        "bin_mismatch": bool(bin_country and ip_country and bin_country != ip_country),
        "customer_id": who.customer.partition("/")[2],
        "customer_age_days": _age_days(since, now) if since else -1.0,
        "device_id": who.device,
        "ip": who.ip,
        "card_fingerprint": who.card,
        "email_domain": (email or "").strip().lower().rpartition("@")[2],
        "hour": now.hour,
        "weekday": now.weekday(),
    }


_ZERO = {Kind.NUMBER: 0, Kind.TEXT: "", Kind.FLAG: False}
# built once: every payment's features start from it (a copy), and what is stored of
# them is what differs from it
DEFAULTS: MappingProxyType[str, Any] = MappingProxyType(
    {name: _ZERO[kind] for name, kind in FEATURES.items()}
)


def defaults() -> dict[str, Any]:
    """A value of the right type for every feature: what a feature nobody filled is.
    (The proxy's `copy` is its dict's: a tenth of what `dict(DEFAULTS)` costs, which
    reads the proxy key by key.)"""
    return DEFAULTS.copy()

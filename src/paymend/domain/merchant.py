"""A merchant: a shop that takes payments through paymend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from paymend.domain.ids import MerchantId


@dataclass(frozen=True, slots=True)
class Merchant:
    id: MerchantId
    name: str  # unique
    created_at: datetime
    # what customers are told about the shop (support_contact), its webhook endpoint and
    # secret, its compensation cap
    settings: dict[str, Any] = field(default_factory=dict)

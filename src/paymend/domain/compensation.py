"""A compensation: a coupon or a credit granted for a failed or delayed payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CompensationKind(StrEnum):
    COUPON = "coupon"
    CREDIT = "credit"


@dataclass(frozen=True, slots=True)
class Compensation:
    id: str
    payment_id: str
    kind: CompensationKind
    amount: int  # minor units of `currency`
    currency: str
    reason: str
    granted_by: str
    created_at: datetime

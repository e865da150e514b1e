"""Provider codes no code map knew, as the attempts recorded them: what
`paymend explain-code --unmapped` lists for someone to map."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.store.tables import attempts

UNRECOGNIZED = "unrecognized_response"  # the unified code of an answer no map knew


@dataclass(frozen=True, slots=True)
class Unmapped:
    provider: str
    raw_code: str | None
    seen: int
    last_seen: datetime


def codes(conn: Connection) -> list[Unmapped]:
    """Each (provider, raw code) classified as unrecognized, most seen first."""
    rows = conn.execute(
        sa.select(
            attempts.c.provider,
            attempts.c.raw_code,
            sa.func.count().label("seen"),
            sa.func.max(attempts.c.created_at).label("last_seen"),
        )
        .where(attempts.c.unified_code == UNRECOGNIZED)
        .group_by(attempts.c.provider, attempts.c.raw_code)
        .order_by(sa.func.count().desc())
    ).all()
    return [Unmapped(r.provider, r.raw_code, r.seen, r.last_seen) for r in rows]

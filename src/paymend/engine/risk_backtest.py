"""Reads the stored decisions a backtest replays (risk/backtest.py)."""

from __future__ import annotations

from datetime import datetime

from paymend.risk.backtest import Report, Stored, replay
from paymend.risk.rules import RuleSet
from paymend.store import risk as repo
from paymend.store.database import Connection, Store


async def backtest(store: Store, candidate: RuleSet, since: datetime | None = None) -> Report:
    def read(conn: Connection) -> list[Stored]:
        rows = repo.replayable(conn, since)
        reported = repo.reported(conn, [r["payment_id"] for r in rows])
        return [
            Stored(
                r["payment_id"],
                r["verdict"],
                dict(r["features"]),
                list(r["fired"]),
                r["status"],
                r["payment_id"] in reported,
            )
            for r in rows
        ]

    return replay(await store.run(read), candidate)

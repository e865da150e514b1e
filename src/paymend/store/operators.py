"""Operators: the people of the ops API, each with a role and their own keys
(store/keys.py). The audit log names them `operator:<name>`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.errors import Conflict, NotFound
from paymend.domain.roles import Role
from paymend.store import keys
from paymend.store.keys import ApiKey
from paymend.store.tables import operators


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    name: str
    role: Role
    created_at: datetime

    @property
    def actor(self) -> str:
        """How the audit log names this operator's actions."""
        return f"operator:{self.name}"


def create(conn: Connection, operator_id: str, name: str, role: Role, now: datetime) -> Operator:
    if conn.execute(sa.select(operators.c.id).where(operators.c.name == name)).first():
        raise Conflict("operator_exists", f"an operator named '{name}' exists", param="name")
    conn.execute(
        operators.insert().values(id=operator_id, name=name, role=role.value, created_at=now)
    )
    return Operator(operator_id, name, role, now)


def get(conn: Connection, name: str) -> Operator:
    row = conn.execute(sa.select(operators).where(operators.c.name == name)).first()
    if row is None:
        raise NotFound("operator_not_found", f"no operator '{name}'", param="operator")
    return _operator(row)


def every(conn: Connection) -> list[Operator]:
    return [_operator(r) for r in conn.execute(sa.select(operators).order_by(operators.c.name))]


def set_role(conn: Connection, name: str, role: Role) -> tuple[Operator, Role]:
    """Give the operator another role; returns it and the role it had."""
    before = get(conn, name)
    conn.execute(operators.update().where(operators.c.id == before.id).values(role=role.value))
    return Operator(before.id, before.name, role, before.created_at), before.role


def set_password(conn: Connection, name: str, password_hash: str | None) -> Operator:
    """Store the operator's console password hash (None: no console log-in)."""
    op = get(conn, name)
    conn.execute(
        operators.update().where(operators.c.id == op.id).values(password_hash=password_hash)
    )
    return op


def with_password(conn: Connection, name: str) -> tuple[Operator, str | None] | None:
    """The operator of this name and their password hash; None when there is none."""
    row = conn.execute(sa.select(operators).where(operators.c.name == name)).first()
    return None if row is None else (_operator(row), row.password_hash)


def authenticate(conn: Connection, digest: str, now: datetime) -> tuple[Operator, ApiKey] | None:
    """The operator whose working key has this hash, and that key."""
    key = keys.find_working(conn, keys.OPERATOR, digest, now)
    if key is None:
        return None
    row = conn.execute(sa.select(operators).where(operators.c.id == key.owner_id)).one()
    return _operator(row), key


def _operator(r: sa.Row[Any]) -> Operator:
    return Operator(r.id, r.name, Role(r.role), r.created_at)

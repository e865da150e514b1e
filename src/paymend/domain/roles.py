"""Operator roles: what a person may do through the ops API.

The roles are ranked; each may do everything the ones below it may. `viewer` reads the
operational state (controls, incidents, the audit log); `support` also reads payments,
which carry customers' (masked) data, to answer customers; `ops` changes routing and
decides held payments and incidents; `admin` manages operators and every key.
"""

from __future__ import annotations

from enum import Enum


class Role(Enum):
    VIEWER = "viewer"
    SUPPORT = "support"
    OPS = "ops"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether an operator of this role may do what `needed` may."""
        return self.rank >= needed.rank


_RANKS = {role: i for i, role in enumerate(Role)}
ROLE_NAMES = tuple(r.value for r in Role)

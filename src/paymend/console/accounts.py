"""Operators' passwords and console sessions.

Passwords are hashed with argon2id (argon2-cffi, its RFC 9106 low-memory profile): a
slow, salted hash, so a stolen table does not give the passwords away. A log-in starts a
session: a random token in the browser's cookie, its SHA-256 hash in the database
(store/sessions.py), so logging out or a password change ends it everywhere at once. A
session ends after `console.session_idle` unused and `console.session_max` after log-in,
both on the injected clock. Failed log-ins are counted by name and by address, and past a
few in a window further tries are refused unchecked. Logging in (and failing to), out
and setting a password are audit-logged.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput
from paymend.engine.audit import Audited, audited
from paymend.store import operators, sessions
from paymend.store.database import Connection, Store
from paymend.store.operators import Operator

MIN_PASSWORD = 12
# failed log-ins refused for the rest of a window: guessing one operator's password, or
# many operators' from one address, stops after a few tries; the rightful operator waits
# out the window at worst (OWASP's authentication cheat sheet: throttle by account and IP)
LIMIT_WINDOW = timedelta(minutes=15)
LIMIT_PER_NAME = 5
LIMIT_PER_IP = 20
LOGIN_ACTOR = "console"  # who failed a log-in is not known: the audit names the name typed
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is an attack
_HASHER = PasswordHasher()


@functools.cache
def _dummy() -> str:
    """The hash verified when the name is unknown, so a wrong name costs the same time
    as a wrong password. Made when `Accounts` is built, not on import: a hash is a tenth
    of a second, which every CLI command would pay."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            "password_invalid",
            f"a password of {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            param="password",
        )
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` is the one `stored` hashes (always the same work: an operator
    without a password costs as much as a wrong one)."""
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The CSRF token of a session: derived from its secret token, so a page on another
    site, which cannot read the cookie, cannot know it (and nothing more is stored)."""
    return hmac.new(token.encode(), b"paymend-console-csrf", hashlib.sha256).hexdigest()


class LogInsLimited(Exception):
    """Too many failed log-ins of this name or from this address lately."""

    def __init__(self, minutes: int) -> None:
        super().__init__(f"too many failed log-ins; try again within {minutes} minutes")
        self.minutes = minutes


@dataclass(frozen=True, slots=True)
class Session:
    operator: Operator
    token: str
    started_at: datetime

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


class Accounts:
    def __init__(self, store: Store, clock: Clock, idle_s: float, max_s: float) -> None:
        self.store = store
        self.clock = clock
        self.idle = timedelta(seconds=idle_s)
        self.max = timedelta(seconds=max_s)
        _dummy()  # ready before the first log-in, which must not take longer for it

    async def set_password(self, name: str, password: str | None, actor: str) -> Operator:
        """Set (None: remove) an operator's console password; their sessions end."""
        hashed = None if password is None else hash_password(password)
        now = self.clock.now()

        def change(conn: Connection) -> Audited[Operator]:
            op = operators.set_password(conn, name, hashed)
            ended = sessions.end_all(conn, op.id, now)
            action = "operator.password.set" if hashed else "operator.password.remove"
            return Audited(op, action, op.actor, {"sessions_ended": ended})

        return await audited(self.store, now, actor, None, change)

    async def log_in(self, name: str, password: str, ip: str = "") -> Session | None:
        """A new session when the password is the operator's; None otherwise (the same
        answer for an unknown name, a wrong password, or an operator without one).
        LogInsLimited, before any password is checked, when this name or address (`ip`)
        failed too often lately; each failure and each refusal is audit-logged."""
        name, now = name[:64], self.clock.now()
        since = now - LIMIT_WINDOW
        by_name, by_ip = await self.store.run(
            lambda conn: sessions.failures_since(conn, name, ip, since)
        )
        if by_name >= LIMIT_PER_NAME or (ip and by_ip >= LIMIT_PER_IP):
            details = {"ip": ip, "failures_by_name": by_name, "failures_by_ip": by_ip}

            def refused(_conn: Connection) -> Audited[None]:
                return Audited(None, "operator.login_limited", f"operator:{name}", details)

            await audited(self.store, now, LOGIN_ACTOR, None, refused)
            raise LogInsLimited(int(LIMIT_WINDOW.total_seconds() // 60))
        found = None
        if len(password) <= MAX_PASSWORD:
            found = await self.store.run(lambda conn: operators.with_password(conn, name))
        stored = found[1] if found else None
        if found is None or not verify_password(stored, password):

            def failed(conn: Connection) -> Audited[None]:
                sessions.note_failure(conn, name, ip, now, since)
                return Audited(None, "operator.login_failed", f"operator:{name}", {"ip": ip})

            await audited(self.store, now, LOGIN_ACTOR, None, failed)
            return None
        op, token = found[0], secrets.token_urlsafe(32)

        def change(conn: Connection) -> Audited[None]:
            sessions.start(conn, token_hash(token), op.id, now, now + self.max)
            return Audited(None, "operator.login", op.actor, {"via": "console"})

        await audited(self.store, now, op.actor, None, change)
        return Session(op, token, now)

    async def session(self, token: str) -> Session | None:
        """The working session of this cookie token, if any (it is marked seen)."""
        now = self.clock.now()
        found = await self.store.run(
            lambda conn: sessions.find(conn, token_hash(token), now, self.idle)
        )
        return None if found is None else Session(found[0], token, found[1])

    async def log_out(self, session: Session) -> None:
        now = self.clock.now()

        def change(conn: Connection) -> Audited[None]:
            sessions.end(conn, token_hash(session.token), now)
            return Audited(None, "operator.logout", session.operator.actor, {"via": "console"})

        await audited(self.store, now, session.operator.actor, None, change)

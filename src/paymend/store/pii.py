"""Customer contact details at rest: sealed, masked, and found again by a blind index.

A customer's email and phone are what a leaked database would hurt most, and paymend
needs them only to reach the customer (notifications) and to recognise a returning one
(escalating messages, search). So the store keeps three things of each, never the
clear text:

- the value *sealed* with AES-256-GCM under the data key (`PAYMEND_DATA_KEY`), bound to
  its payment and field so a sealed value cannot be moved to another row;
- the *masked* form (`l***@example.com`, `+86****5678`) for responses, webhooks and logs;
- a *blind index*: HMAC-SHA256 of the normalised value under a key derived from the data
  key, so equal emails or phones match in SQL without anything being decrypted.

A sealed value names the key it was sealed with (`pm1.<key id>.<nonce+ciphertext>`), so
the key can be rotated: old keys (`PAYMEND_DATA_KEYS_OLD`) keep opening what they
sealed, and `paymend pii reseal` moves every row to the current key. Without a data key
only the masked forms are kept. Only code that must reach the customer calls `open` or
`contact`; everything else reads the masked forms.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import Connection

from paymend.domain.payment import Customer
from paymend.store.tables import payments

Field = Literal["email", "phone", "openid"]  # openid: store/notice_prefs.py
FIELDS: tuple[Field, ...] = ("email", "phone")
KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "pm1"  # the format of a sealed value; a new format gets a new prefix
_INDEX_INFO = b"paymend blind index v1"


class DataKeyError(ValueError):
    """A data key that cannot be used: paymend refuses to start rather than guess."""


class SealedValueError(ValueError):
    """A sealed value no configured key opens (wrong key, altered, or another row's)."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """A 32-byte AES key; its id is derived from it, so two keys never share one."""

    secret: bytes

    @property
    def id(self) -> str:
        return hashlib.sha256(b"paymend key id\x00" + self.secret).hexdigest()[:12]

    def index_key(self) -> bytes:
        """The blind index's HMAC key: derived (HKDF), never the encryption key itself."""
        return HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=_INDEX_INFO).derive(self.secret)

    @classmethod
    def parse(cls, text: str, name: str = "PAYMEND_DATA_KEY") -> DataKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise DataKeyError(
                f"{name}: not base64 (make one with `paymend pii new-key`)"
            ) from None
        if len(raw) != KEY_BYTES:
            raise DataKeyError(
                f"{name}: must be base64 of {KEY_BYTES} bytes, got {len(raw)} "
                "(make one with `paymend pii new-key`)"
            )
        return cls(raw)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(os.urandom(KEY_BYTES))

    def encoded(self) -> str:
        return base64.b64encode(self.secret).decode()


@dataclass(frozen=True, slots=True)
class Contact:
    """A customer's contact details in clear: only for code that must reach them."""

    email: str | None
    phone: str | None


class Vault:
    """Seals, opens and indexes contact details under the data keys; without a current
    key it seals nothing (`enabled` is False) and the store keeps masked forms only."""

    def __init__(self, current: DataKey | None, old: Iterable[DataKey] = ()) -> None:
        self.current = current
        self._keys = {k.id: k for k in (*old, *([current] if current else []))}
        self._index_key = current.index_key() if current else None

    @classmethod
    def from_settings(cls, data_key: str | None, old_keys: str | None = None) -> Vault:
        """From the environment's values: the current key and a comma-separated list of
        earlier ones (which open, never seal)."""
        current = DataKey.parse(data_key) if data_key and data_key.strip() else None
        old = [
            DataKey.parse(part, "PAYMEND_DATA_KEYS_OLD")
            for part in (old_keys or "").split(",")
            if part.strip()
        ]
        if old and current is None:
            raise DataKeyError("PAYMEND_DATA_KEYS_OLD is set but PAYMEND_DATA_KEY is not")
        return cls(current, old)

    @property
    def enabled(self) -> bool:
        return self.current is not None

    def seal(self, field: Field, value: str, payment_id: str) -> str:
        if self.current is None:
            raise DataKeyError("no data key: contact details cannot be sealed")
        nonce = os.urandom(NONCE_BYTES)
        body = AESGCM(self.current.secret).encrypt(nonce, value.encode(), _aad(field, payment_id))
        return f"{PREFIX}.{self.current.id}.{_b64(nonce + body)}"

    def open(self, field: Field, sealed: str, payment_id: str) -> str:
        prefix, key_id, body = _split(sealed)
        key = self._keys.get(key_id)
        if prefix != PREFIX or key is None:
            raise SealedValueError(f"sealed with unknown key '{key_id}' (format {prefix})")
        blob = _unb64(body)
        try:
            clear = AESGCM(key.secret).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(field, payment_id)
            )
        except InvalidTag:
            raise SealedValueError("sealed value does not open: altered or another row's") from None
        return clear.decode()

    def key_id(self, sealed: str) -> str:
        return _split(sealed)[1]

    def blind_index(self, field: Field, value: str) -> str | None:
        """HMAC-SHA256 of the normalised value: equal for equal contacts, and useless to
        anyone without the key (no dictionary of emails can be hashed against it)."""
        if self._index_key is None:
            return None
        norm = normalize_email(value) if field == "email" else normalize_phone(value)
        if not norm:
            return None
        msg = f"{field}\x00{norm}".encode()
        return hmac.new(self._index_key, msg, hashlib.sha256).hexdigest()


def normalize_email(email: str) -> str:
    """Case and surrounding space do not make another mailbox in practice."""
    return email.strip().lower()


def normalize_phone(phone: str) -> str:
    """E.164 as far as the number tells: `+` and digits only, a `00` international
    prefix read as `+`. A number given without its country code stays national digits
    (paymend does not guess the country), so a shop should send one form consistently."""
    digits = re.sub(r"\D", "", phone)
    if phone.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("00") and len(digits) > 2:
        return "+" + digits[2:]
    return digits


def customer_columns(vault: Vault | None, payment_id: str, customer: Customer) -> dict[str, Any]:
    """The payment row's customer columns: masked forms in `customer`, sealed values and
    blind indexes beside it (None without a key). The clear text goes nowhere else."""
    values: dict[str, Any] = {
        "customer": customer.masked(),
        "customer_id": customer.id,
    }
    for field in FIELDS:
        clear = customer.email if field == "email" else customer.phone
        sealed = index = None
        if clear and vault is not None and vault.enabled:
            sealed = vault.seal(field, clear, payment_id)
            index = vault.blind_index(field, clear)
        values[f"customer_{field}_sealed"] = sealed
        values[f"customer_{field}_index"] = index
    return values


def contact(conn: Connection, vault: Vault, payment_id: str) -> Contact:
    """The customer's email and phone in clear, for a notification to them. Nothing but
    code that must reach the customer calls this."""
    row = conn.execute(
        sa.select(payments.c.customer_email_sealed, payments.c.customer_phone_sealed).where(
            payments.c.id == payment_id
        )
    ).one()
    email, phone = row
    return Contact(
        vault.open("email", email, payment_id) if email else None,
        vault.open("phone", phone, payment_id) if phone else None,
    )


def reseal(conn: Connection, vault: Vault, limit: int = 500) -> int:
    """Move up to `limit` rows sealed under an older key to the current one, with their
    blind indexes; returns how many moved (0: every row is current)."""
    if vault.current is None:
        raise DataKeyError("PAYMEND_DATA_KEY is not set: nothing to reseal under")
    current = f"{PREFIX}.{vault.current.id}.%"
    stale = sa.or_(
        sa.and_(
            payments.c.customer_email_sealed.is_not(None),
            payments.c.customer_email_sealed.not_like(current),
        ),
        sa.and_(
            payments.c.customer_phone_sealed.is_not(None),
            payments.c.customer_phone_sealed.not_like(current),
        ),
    )
    rows = conn.execute(
        sa.select(payments.c.id, payments.c.customer_email_sealed, payments.c.customer_phone_sealed)
        .where(stale)
        .order_by(payments.c.id)
        .limit(limit)
    ).all()
    for pid, email, phone in rows:
        values: dict[str, Any] = {}
        pairs: tuple[tuple[Field, str | None], ...] = (("email", email), ("phone", phone))
        for field, sealed in pairs:
            if sealed:
                clear = vault.open(field, sealed, pid)
                values[f"customer_{field}_sealed"] = vault.seal(field, clear, pid)
                values[f"customer_{field}_index"] = vault.blind_index(field, clear)
        conn.execute(payments.update().where(payments.c.id == pid).values(**values))
    return len(rows)


def _aad(field: Field, payment_id: str) -> bytes:
    return f"paymend:{field}:{payment_id}".encode()


def _split(sealed: str) -> tuple[str, str, str]:
    parts = sealed.split(".")
    if len(parts) != 3:
        raise SealedValueError("not a sealed value")
    return parts[0], parts[1], parts[2]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealedValueError("not a sealed value") from None

"""Whether the configured encryption keys open this database (`afterglow run` at start-up,
`afterglow keys check`).

A wrong key used to be found by the first patient whose message met it. Now the first start
stores a known text encrypted with the keys; every later start must open it, or refuses. A
database that already holds encrypted text but no check value (made before this existed) gets
one only once a stored token opens with the configured keys.

With no key configured and no key file, a first start makes a key; it is written to the key
file only here, after the database is found to hold nothing encrypted. A key file that went
missing beside a database with encrypted rows is an error, never a fresh key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db.crypto import Cipher, CryptoKeyError, save_new_key_file
from bot.db.engine import make_session_factory
from bot.db.models import KeyCheck
from bot.services.errors import UserError
from bot.services.maintenance import encrypted_columns

CHECK_TEXT = "afterglow key check"


class KeysDoNotOpen(UserError):
    """The configured keys cannot open what this database holds."""


@dataclass(frozen=True)
class KeyCheckResult:
    written: bool  # this call stored the check value (a first start)
    created_at: datetime  # when the check value was first stored


async def verify(engine: AsyncEngine, cipher: Cipher, *, now: datetime) -> KeyCheckResult:
    async with make_session_factory(engine)() as session, session.begin():
        if cipher.new_key_file is not None:
            if (found := await _any_encrypted(session)) is not None:
                raise KeysDoNotOpen(
                    f"AFTERGLOW_KEY_FILE: there is no key file at {cipher.new_key_file}, but "
                    f"this database already holds encrypted data ({found}); restore the key "
                    "file from your backup or set AFTERGLOW_ENCRYPTION_KEYS. A new key would "
                    "not open it, so none was made"
                )
            save_new_key_file(cipher)
        check = await session.scalar(select(KeyCheck).order_by(KeyCheck.id).limit(1))
        if check is not None:
            if _opens(cipher, check.value_enc) != CHECK_TEXT:
                raise KeysDoNotOpen(
                    "AFTERGLOW_ENCRYPTION_KEYS: none of the configured keys opens this database "
                    f"(its check value was stored {check.created_at:%Y-%m-%d}); configure the "
                    "keys it was created with"
                )
            return KeyCheckResult(False, check.created_at)
        for column in encrypted_columns():
            if column.table.name == KeyCheck.__tablename__:
                continue
            token = await session.scalar(select(column).where(column.is_not(None)).limit(1))
            if token is not None and _opens(cipher, token) is None:
                raise KeysDoNotOpen(
                    "AFTERGLOW_ENCRYPTION_KEYS: none of the configured keys opens the text "
                    f"already stored in {column.table.name}.{column.name}; configure the keys "
                    "this database was created with"
                )
        session.add(KeyCheck(value_enc=cipher.encrypt(CHECK_TEXT), created_at=now))
    return KeyCheckResult(True, now)


async def _any_encrypted(session: AsyncSession) -> str | None:
    """`table.column` of the first encrypted value found, the check value included."""
    for column in encrypted_columns():
        if await session.scalar(select(column).where(column.is_not(None)).limit(1)) is not None:
            return f"{column.table.name}.{column.name}"
    return None


def _opens(cipher: Cipher, token: bytes) -> str | None:
    try:
        return cipher.decrypt(token)
    except CryptoKeyError:
        return None

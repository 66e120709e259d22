"""Whether the configured encryption keys open this database (`afterglow run` at start-up,
`afterglow keys check`).

A wrong key used to be found by the first patient whose message met it. Now the first start
stores a known text encrypted with the keys; every later start must open it, or refuses. A
database that already holds encrypted text but no check value (made before this existed) gets
one only once a stored token opens with the configured keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.crypto import Cipher, CryptoKeyError
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


def _opens(cipher: Cipher, token: bytes) -> str | None:
    try:
        return cipher.decrypt(token)
    except CryptoKeyError:
        return None

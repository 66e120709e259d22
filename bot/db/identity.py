"""Who a patient is on Telegram, kept apart from what they wrote.

A leaked database or backup must not say which Telegram account belongs to a clinic's patient.
So a patient row holds no Telegram id in clear: `telegram_index` is a keyed HMAC of the user
id (an update carries the id; lookups compare HMACs), and `telegram_enc` the user and chat ids
encrypted, for sending. The same goes for the user who opened an invite. Therapists are staff:
their ids stay in clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.db.crypto import Cipher
from bot.db.models import Patient


@dataclass(frozen=True)
class TelegramUser:
    """A Telegram user as the database may see them: the id, and its HMACs to look it up."""

    id: int
    indexes: tuple[bytes, ...]  # newest key first; a write stores `index`

    @property
    def index(self) -> bytes:
        return self.indexes[0]


def telegram_user(cipher: Cipher, user_id: int) -> TelegramUser:
    return TelegramUser(user_id, cipher.indexes(user_id))


def seal(cipher: Cipher, user_id: int, chat_id: int) -> bytes:
    return cipher.encrypt(f"{user_id}:{chat_id}")


def unseal(cipher: Cipher, token: bytes) -> tuple[int, int]:
    user, _, chat = cipher.decrypt(token).partition(":")
    return int(user), int(chat)


def link(patient: Patient, cipher: Cipher, user: TelegramUser, chat_id: int) -> None:
    patient.telegram_index = user.index
    patient.telegram_enc = seal(cipher, user.id, chat_id)


def unlink(patient: Patient) -> None:
    patient.telegram_index = None
    patient.telegram_enc = None


def chat_of(patient: Patient, cipher: Cipher) -> int | None:
    """The chat to send to (None: not linked, or erased)."""
    if patient.telegram_enc is None:
        return None
    return unseal(cipher, patient.telegram_enc)[1]


def user_of(patient: Patient, cipher: Cipher) -> int | None:
    if patient.telegram_enc is None:
        return None
    return unseal(cipher, patient.telegram_enc)[0]


def columns(cipher: Cipher, user_id: int, chat_id: int | None = None) -> dict[str, bytes]:
    """A linked patient's identity columns, for inserts written without the ORM (benches,
    fixtures). A private chat's id is the user's id."""
    return {
        "telegram_index": cipher.indexes(user_id)[0],
        "telegram_enc": seal(cipher, user_id, user_id if chat_id is None else chat_id),
    }

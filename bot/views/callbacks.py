"""Callback data codec: short signed strings carrying an action and ids.

The signature stops forged or tampered button data before any lookup; the handler still
re-checks that the pressing user may act on the ids (ownership lives in the database).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

HELP = "help"  # unsigned on purpose: answered from static text, even with the database down
_SIG_BYTES = 8
MAX_BYTES = 64


@dataclass(frozen=True)
class Callback:
    action: str
    args: tuple[str, ...]

    def int_arg(self, index: int) -> int:
        return int(self.args[index])


class CallbackCodec:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"afterglow/callback/" + secret).digest()

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:_SIG_BYTES]
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def encode(self, action: str, *args: int | str) -> str:
        parts = [action, *(str(arg) for arg in args)]
        if any(":" in part or not part for part in parts):
            raise ValueError(
                "callback parts must be non-empty and contain no ':'"  # not shown: a bug
            )
        body = ":".join(parts)
        data = f"{body}:{self._sign(body)}"
        if len(data.encode()) > MAX_BYTES:
            raise ValueError("callback data over Telegram's 64 bytes")  # not shown: a bug
        return data

    def decode(self, data: str | None) -> Callback | None:
        """None for anything not made by this codec (forged, truncated, from another bot)."""
        if not data or len(data.encode()) > MAX_BYTES:
            return None
        body, _, signature = data.rpartition(":")
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        action, *args = body.split(":")
        return Callback(action, tuple(args))

"""Telegram Mini App `initData`: is it signed by Telegram for this bot, and recent?

The algorithm is Telegram's ("Validating data received via the Mini App"): the data-check
string is every field but `hash`, sorted by key, as `key=value` lines; the secret key is
HMAC-SHA256 of the bot token keyed with "WebAppData"; the hash must equal HMAC-SHA256 of the
data-check string under that key. Pure: no network, no database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

MAX_AGE = timedelta(hours=1)
# A device clock a little ahead of ours is not an attack; more than this is not a clock.
CLOCK_SKEW = timedelta(minutes=5)


class BadInitData(Exception):
    """Why the data was refused; safe to log (it never holds the data itself)."""


def _secret(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def _check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields))


def user_id(init_data: str, *, bot_token: str, now: datetime) -> int:
    """The Telegram user id the data was signed for, or BadInitData."""
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise BadInitData("not a query string") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise BadInitData("a field appears twice")
    given = fields.pop("hash", "")
    expected = hmac.new(
        _secret(bot_token), _check_string(fields).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadInitData("signature does not match")
    try:
        signed_at = datetime.fromtimestamp(int(fields["auth_date"]), UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        raise BadInitData("no auth_date") from None
    if now - signed_at > MAX_AGE:
        raise BadInitData("older than an hour")
    if signed_at - now > CLOCK_SKEW:
        raise BadInitData("auth_date in the future")
    try:
        user = json.loads(fields["user"])
        uid = user["id"]
    except (KeyError, ValueError, TypeError):
        raise BadInitData("no user") from None
    if not isinstance(uid, int) or isinstance(uid, bool):
        raise BadInitData("no user")
    return uid


def sign(fields: dict[str, str], *, bot_token: str) -> str:
    """initData as Telegram would send it for `fields` (the demo and the tests use it)."""
    digest = hmac.new(
        _secret(bot_token), _check_string(fields).encode(), hashlib.sha256
    ).hexdigest()
    return urlencode({**fields, "hash": digest})


def for_user(user: int, *, bot_token: str, at: datetime, first_name: str = "Therapist") -> str:
    return sign(
        {
            "auth_date": str(int(at.timestamp())),
            "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
            "user": json.dumps({"id": user, "first_name": first_name}, separators=(",", ":")),
        },
        bot_token=bot_token,
    )

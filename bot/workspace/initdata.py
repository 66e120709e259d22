"""Telegram Mini App `initData`: is it signed by Telegram for this bot, and recent?

The algorithm is Telegram's ("Validating data received via the Mini App"): the data-check
string is every field but `hash`, sorted by key, as `key=value` lines; the secret key is
HMAC-SHA256 of the bot token keyed with "WebAppData"; the hash must equal HMAC-SHA256 of the
data-check string under that key. Pure: no network, no database. The refusals are for the
log (the page says only "open it again"), so they are not translated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

MAX_AGE = timedelta(hours=1)
# A device clock a little ahead of ours is not an attack; more than this is not a clock.
CLOCK_SKEW = timedelta(minutes=5)


class BadInitData(Exception):
    """Why the data was refused; safe to log (it never holds the data itself)."""


@dataclass(frozen=True)
class MiniAppUser:
    id: int
    language_code: str | None  # Telegram's IETF tag of the user's app ("de", "es-MX")


def _secret(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def _check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields))


def user_id(init_data: str, *, bot_token: str, now: datetime) -> int:
    """The Telegram user id the data was signed for, or BadInitData."""
    return user(init_data, bot_token=bot_token, now=now).id


def _language_code(person: object) -> str | None:
    code = person.get("language_code") if isinstance(person, dict) else None
    return code if isinstance(code, str) and code else None


def user(init_data: str, *, bot_token: str, now: datetime) -> MiniAppUser:
    """The Telegram user the data was signed for, or BadInitData."""
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise BadInitData("not a query string") from None  # not shown: a log reason
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise BadInitData("a field appears twice")  # not shown: a log reason
    given = fields.pop("hash", "")
    expected = hmac.new(
        _secret(bot_token), _check_string(fields).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadInitData("signature does not match")  # not shown: a log reason
    try:
        signed_at = datetime.fromtimestamp(int(fields["auth_date"]), UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        raise BadInitData("no auth_date") from None  # not shown: a log reason
    if now - signed_at > MAX_AGE:
        raise BadInitData("older than an hour")  # not shown: a log reason
    if signed_at - now > CLOCK_SKEW:
        raise BadInitData("auth_date in the future")  # not shown: a log reason
    try:
        person = json.loads(fields["user"])
        uid = person["id"]
    except (KeyError, ValueError, TypeError):
        raise BadInitData("no user") from None  # not shown: a log reason
    if not isinstance(uid, int) or isinstance(uid, bool):
        raise BadInitData("no user")  # not shown: a log reason
    return MiniAppUser(uid, _language_code(person))


def language_hint(init_data: str) -> str | None:
    """The user's language code from data not (yet) checked: only to word a refusal in."""
    try:
        return _language_code(json.loads(dict(parse_qsl(init_data)).get("user", "")))
    except (ValueError, RecursionError):
        return None


def sign(fields: dict[str, str], *, bot_token: str) -> str:
    """initData as Telegram would send it for `fields` (the demo and the tests use it)."""
    digest = hmac.new(
        _secret(bot_token), _check_string(fields).encode(), hashlib.sha256
    ).hexdigest()
    return urlencode({**fields, "hash": digest})


def for_user(
    user: int, *, bot_token: str, at: datetime, first_name: str = "Therapist",
    language_code: str | None = None,
) -> str:  # fmt: skip
    fields: dict[str, object] = {"id": user, "first_name": first_name}
    if language_code is not None:
        fields["language_code"] = language_code
    return sign(
        {
            "auth_date": str(int(at.timestamp())),
            "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
            "user": json.dumps(fields, separators=(",", ":")),
        },
        bot_token=bot_token,
    )

"""Mini App initData: Telegram's signature, freshness and user, and nothing else passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.workspace import initdata

TOKEN = "123456:TEST-token_abc"
NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)

# Telegram's own example (core.telegram.org, "Validating data received via the Mini App"),
# recomputed for our test token: the data-check string is the sorted key=value lines.
FIELDS = {
    "auth_date": str(int(NOW.timestamp())),
    "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
    "user": json.dumps({"id": 279058397, "first_name": "Vladislav"}, separators=(",", ":")),
}


def test_a_signed_payload_gives_its_user() -> None:
    data = initdata.sign(FIELDS, bot_token=TOKEN)
    assert initdata.user_id(data, bot_token=TOKEN, now=NOW) == 279058397


def test_the_hash_is_hmac_of_the_sorted_check_string_under_the_webappdata_key() -> None:
    import hashlib
    import hmac

    secret = hmac.new(b"WebAppData", TOKEN.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{k}={FIELDS[k]}" for k in sorted(FIELDS))
    expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    assert dict(parse_qsl(initdata.sign(FIELDS, bot_token=TOKEN)))["hash"] == expected


@pytest.mark.parametrize(
    ("age", "ok"),
    [(timedelta(0), True), (timedelta(hours=1), True), (timedelta(hours=1, seconds=1), False),
     (-timedelta(minutes=4), True), (-timedelta(minutes=6), False)],
)  # fmt: skip
def test_data_is_accepted_for_an_hour(age: timedelta, ok: bool) -> None:
    data = initdata.for_user(7, bot_token=TOKEN, at=NOW - age)
    if ok:
        assert initdata.user_id(data, bot_token=TOKEN, now=NOW) == 7
    else:
        with pytest.raises(initdata.BadInitData):
            initdata.user_id(data, bot_token=TOKEN, now=NOW)


@pytest.mark.parametrize(
    "broken",
    [
        "",
        "hash=abc",
        "not a query string",
        "auth_date=1&auth_date=2&hash=x",
    ],
)
def test_malformed_data_is_refused(broken: str) -> None:
    with pytest.raises(initdata.BadInitData):
        initdata.user_id(broken, bot_token=TOKEN, now=NOW)


def test_signed_but_without_a_user_is_refused() -> None:
    data = initdata.sign({"auth_date": FIELDS["auth_date"]}, bot_token=TOKEN)
    with pytest.raises(initdata.BadInitData, match="no user"):
        initdata.user_id(data, bot_token=TOKEN, now=NOW)


@given(
    key=st.sampled_from(sorted(FIELDS)),
    extra=st.text(alphabet="0123456789abcdefxyz", min_size=1, max_size=5),
)
def test_any_changed_field_breaks_the_signature(key: str, extra: str) -> None:
    fields = dict(parse_qsl(initdata.sign(FIELDS, bot_token=TOKEN)))
    fields[key] = fields[key] + extra
    with pytest.raises(initdata.BadInitData):
        initdata.user_id(urlencode(fields), bot_token=TOKEN, now=NOW)


def test_another_bots_signature_is_refused() -> None:
    data = initdata.sign(FIELDS, bot_token="999:other-bot")
    with pytest.raises(initdata.BadInitData, match="signature"):
        initdata.user_id(data, bot_token=TOKEN, now=NOW)

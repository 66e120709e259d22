"""Callback data codec: signed, opaque, at most 64 bytes, None for anything forged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.views.callbacks import MAX_BYTES, Callback, CallbackCodec

SECRET = b"123456789:AAH-bot-token"
BIG_ID = 10**12


@pytest.fixture
def codec() -> CallbackCodec:
    return CallbackCodec(SECRET)


ROUND_TRIPS = [
    ("ack", ()),
    ("got", (1,)),
    ("scale", (BIG_ID, 10)),
    ("checkin", (BIG_ID, "very-good")),
    ("sched", (BIG_ID, "postpone", 999_999_999_999)),
    ("alert-ack", (BIG_ID,)),
    ("patient", ("p-7f3a",)),
]


@pytest.mark.parametrize(("action", "args"), ROUND_TRIPS)
def test_round_trip_fits_telegram_limit(
    codec: CallbackCodec, action: str, args: tuple[int | str, ...]
) -> None:
    data = codec.encode(action, *args)
    assert len(data.encode()) <= MAX_BYTES
    assert codec.decode(data) == Callback(action, tuple(str(arg) for arg in args))


def test_int_arg(codec: CallbackCodec) -> None:
    decoded = codec.decode(codec.encode("scale", BIG_ID, 7))
    assert decoded is not None
    assert (decoded.int_arg(0), decoded.int_arg(1)) == (BIG_ID, 7)


def test_same_input_same_data_other_secret_differs(codec: CallbackCodec) -> None:
    assert codec.encode("got", 5) == CallbackCodec(SECRET).encode("got", 5)
    assert codec.encode("got", 5) != CallbackCodec(b"other").encode("got", 5)


def _tamper_id(data: str) -> str:
    return data.replace(":42:", ":43:", 1)


def _flip_last(data: str) -> str:
    return data[:-1] + ("A" if data[-1] != "A" else "B")


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_tamper_id, id="tampered-id"),
        pytest.param(_flip_last, id="tampered-signature"),
        pytest.param(lambda d: d[:-1], id="truncated-1"),
        pytest.param(lambda d: d[:-4], id="truncated-4"),
        pytest.param(lambda d: d[: d.rindex(":")], id="signature-dropped"),
        pytest.param(lambda d: d[: d.rindex(":") + 1], id="empty-signature"),
        pytest.param(lambda d: d[2:], id="front-truncated"),
        pytest.param(lambda d: "x" + d, id="prefixed"),
        pytest.param(lambda d: d + ":1", id="extra-part"),
        pytest.param(lambda d: d.upper(), id="upper-cased"),
    ],
)
def test_modified_data_decodes_to_none(codec: CallbackCodec, mutate) -> None:
    data = codec.encode("got", 42, "yes")
    assert codec.decode(mutate(data)) is None


@pytest.mark.parametrize(
    "data",
    [None, "", ":", "::", "help", "got:42", "got:42:", "got:42:AAAAAAAAAAA", ":AAAAAAAAAAA"],
)
def test_forged_or_empty_data_decodes_to_none(codec: CallbackCodec, data: str | None) -> None:
    assert codec.decode(data) is None


def test_other_secret_decodes_to_none(codec: CallbackCodec) -> None:
    assert codec.decode(CallbackCodec(b"another bot").encode("got", 42)) is None


def test_over_64_bytes_is_none_even_when_correctly_signed(codec: CallbackCodec) -> None:
    body = "got:" + "9" * 60
    data = f"{body}:{codec._sign(body)}"
    assert len(data.encode()) > MAX_BYTES
    assert codec.decode(data) is None


def test_non_ascii_signature_decodes_to_none(codec: CallbackCodec) -> None:
    assert codec.decode("got:42:é") is None


def test_non_ascii_body_decodes_to_none(codec: CallbackCodec) -> None:
    signature = codec.encode("got", 42).rsplit(":", 1)[1]
    assert codec.decode(f"gót:42:{signature}") is None


@pytest.mark.parametrize(
    ("action", "args"),
    [("a:b", ()), ("got", ("x:y",)), ("got", ("",)), ("", (1,)), ("got", (1, ":"))],
)
def test_encode_rejects_colon_and_empty_parts(
    codec: CallbackCodec, action: str, args: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match="':'"):
        codec.encode(action, *args)


def test_encode_rejects_over_64_bytes(codec: CallbackCodec) -> None:
    with pytest.raises(ValueError, match="64"):
        codec.encode("got", "x" * 60)


SLUGS = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
IDS = st.integers(min_value=0, max_value=BIG_ID)


@given(action=SLUGS, delivery_id=IDS, value=SLUGS)
def test_round_trip_property(action: str, delivery_id: int, value: str) -> None:
    codec = CallbackCodec(SECRET)
    data = codec.encode(action, delivery_id, value)
    assert len(data.encode()) <= MAX_BYTES
    assert codec.decode(data) == Callback(action, (str(delivery_id), value))


@given(
    delivery_id=IDS,
    value=SLUGS,
    position=st.integers(min_value=0),
    replacement=st.characters(min_codepoint=33, max_codepoint=126),
)
def test_single_character_change_is_rejected(
    delivery_id: int, value: str, position: int, replacement: str
) -> None:
    codec = CallbackCodec(SECRET)
    data = codec.encode("got", delivery_id, value)
    index = position % len(data)
    changed = data[:index] + replacement + data[index + 1 :]
    if changed != data:
        assert codec.decode(changed) is None

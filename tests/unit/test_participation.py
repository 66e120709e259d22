"""Pure parts of the patient controls: argument parsing, quiet-hours rules, keyboards."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from bot.domain.schedule import QuietHours
from bot.domain.timezones import COMMON_ZONES
from bot.handlers.controls import parse_days, quiet_from_code
from bot.services.errors import UserError
from bot.services.participation import parse_quiet_hours
from bot.views import controls as cr
from bot.views.callbacks import MAX_BYTES, CallbackCodec

CODEC = CallbackCodec(b"123456:TEST-token")


@pytest.mark.parametrize(
    ("args", "days"),
    [([], None), (["1"], 1), (["7"], 7), (["7d"], 7), (["7", "days"], 7), (["90"], 90)],
)
def test_parse_days_accepts(args: list[str], days: int | None) -> None:
    assert parse_days(args) == days


@pytest.mark.parametrize(
    "args", [["0"], ["91"], ["-3"], ["2.5"], ["soon"], ["7", "weeks"], ["1000000000000"]]
)
def test_parse_days_rejects(args: list[str]) -> None:
    with pytest.raises(ValueError, match="1 to 90"):
        parse_days(args)


def test_quiet_codes_round_trip_through_callback_data() -> None:
    for preset in cr.QUIET_PRESETS:
        assert quiet_from_code(cr.quiet_code(preset)) == preset
    for bad in ("22:00-07:00", "2200", "22000-0700", ""):
        with pytest.raises(ValueError):
            quiet_from_code(bad)


def test_quiet_hours_rules() -> None:
    assert parse_quiet_hours("22:00-07:30") == QuietHours(time(22), time(7, 30))
    assert parse_quiet_hours("00:00-00:00").start == time(0)  # none at all is allowed
    assert parse_quiet_hours("07:00-23:00").end == time(23)  # exactly 16 hours
    for bad, why in (
        ("25:00-07:00", "look like"),
        ("22:00", "look like"),
        ("08:00-07:00", "at most 16 hours"),
        ("06:59-23:00", "at most 16 hours"),
    ):
        with pytest.raises(UserError, match=why):
            parse_quiet_hours(bad)


def test_settings_keyboard_fits_telegram_and_marks_current_choice() -> None:
    quiet = QuietHours(time(22), time(7))
    offered = ("en", "es", "de")
    markup = cr.settings_keyboard(
        CODEC, 987654321, "America/Argentina/ComodRivadavia", None, quiet, "es", offered
    )
    buttons = [b for row in markup.inline_keyboard for b in row]
    for button in buttons:
        assert isinstance(button.callback_data, str)
        assert len(button.callback_data.encode()) <= MAX_BYTES
    texts = [b.text for b in buttons]
    assert "ComodRivadavia" in texts and "✓ Quiet 22:00–07:00" in texts
    assert "✓ Español" in texts and "English" in texts and "Deutsch" in texts
    assert len(texts) == len(offered) + 1 + len(COMMON_ZONES) + len(cr.QUIET_PRESETS)
    # One language offered: no language row at all.
    single = cr.settings_keyboard(CODEC, 1, "UTC", None, quiet, "en", ("en",))
    assert "English" not in [b.text for row in single.inline_keyboard for b in row]

    # A zone name too long for callback data is left out; typing it still works.
    long_zone = "America/" + "X" * 50
    markup = cr.settings_keyboard(CODEC, 1, long_zone, long_zone, quiet, "en", offered)
    assert all("X" * 10 not in b.text for row in markup.inline_keyboard for b in row)


def test_texts_escape_and_count() -> None:
    assert "&lt;b&gt;" in cr.therapist_stopped("<b>")
    assert "1 message from your break" in cr.resumed(1, 0)
    assert "3 older messages that came due a while ago were skipped" in cr.resumed(0, 3)
    until = datetime(2026, 3, 13, 14, 0, tzinfo=UTC)
    assert "until Fri 13 Mar 10:00 (your time)" in cr.paused(until, "America/New_York", again=False)
    card = cr.settings_card(None, QuietHours(time(0), time(0)), until, "en")
    assert "Time zone: <b>UTC</b> (it's 14:00 there now)" in card and "<b>none</b>" in card
    assert "Language: <b>English</b>" in card

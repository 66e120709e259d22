"""The one clock: a system clock and a fake one that moves only when told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock, SystemClock

START = datetime(2024, 3, 31, 0, 30, tzinfo=UTC)


def test_system_clock_is_aware_utc() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


def test_fake_clock_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2024, 1, 1, 12, 0))


@pytest.mark.parametrize(
    "start",
    [
        START,
        START.astimezone(ZoneInfo("Europe/Berlin")),
        START.astimezone(timezone(timedelta(hours=-7))),
    ],
)
def test_fake_clock_reports_utc(start: datetime) -> None:
    now = FakeClock(start).now()
    assert now == START
    assert now.tzinfo is UTC


def test_fake_clock_stands_still() -> None:
    clock = FakeClock(START)
    assert clock.now() == clock.now() == START


def test_advance_accumulates_and_returns_now() -> None:
    clock = FakeClock(START)
    assert clock.advance(timedelta(hours=1)) == START + timedelta(hours=1)
    assert clock.advance(timedelta(days=6, minutes=5)) == START + timedelta(
        days=6, hours=1, minutes=5
    )
    assert clock.now() == START + timedelta(days=6, hours=1, minutes=5)
    assert clock.now().tzinfo is UTC


def test_set_converts_to_utc() -> None:
    clock = FakeClock(START)
    clock.set(datetime(2024, 7, 1, 9, 0, tzinfo=ZoneInfo("America/New_York")))
    assert clock.now() == datetime(2024, 7, 1, 13, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_set_rejects_naive() -> None:
    clock = FakeClock(START)
    with pytest.raises(ValueError):
        clock.set(datetime(2024, 1, 1, 12, 0))

"""Dates and times as the reader reads them: English exactly as the bot has always written
them ("Wed 04 Mar 09:00"), Spanish and German with their own names and order (Babel), in the
patient's time zone across daylight-saving changes, and UTC when no zone is known."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot import i18n
from bot.dates import day_month, local, local_date

NEW_YORK, BERLIN = "America/New_York", "Europe/Berlin"
MOMENTS = [
    datetime(2026, 3, 4, 9, 0, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2026, 5, 18, 17, 45, tzinfo=UTC),
    datetime(2026, 9, 7, 12, 5, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
    # New York springs forward on 8 Mar 2026 at 02:00 and falls back on 1 Nov at 02:00.
    datetime(2026, 3, 8, 6, 59, tzinfo=UTC),
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
    # Berlin springs forward on 29 Mar 2026 at 02:00 and falls back on 25 Oct at 03:00.
    datetime(2026, 3, 29, 0, 59, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
]


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN, "UTC", "Asia/Kolkata"])
@pytest.mark.parametrize("moment", MOMENTS)
def test_english_is_what_strftime_always_gave(moment: datetime, zone: str) -> None:
    there = moment.astimezone(ZoneInfo(zone))
    with i18n.using("en"):
        assert local(moment, zone) == there.strftime("%a %d %b %H:%M")
        assert local_date(moment, zone) == there.strftime("%a %d %b")
        assert day_month(there.replace(tzinfo=None)) == there.strftime("%d %b")


def test_english_across_daylight_saving_changes() -> None:
    spring_ny = [local(m, NEW_YORK) for m in MOMENTS[5:7]]
    assert spring_ny == ["Sun 08 Mar 01:59", "Sun 08 Mar 03:00"]
    autumn_ny = [local(m, NEW_YORK) for m in MOMENTS[7:9]]
    assert autumn_ny == ["Sun 01 Nov 01:30", "Sun 01 Nov 01:30"]  # the hour happens twice
    spring_berlin = [local(m, BERLIN) for m in MOMENTS[9:11]]
    assert spring_berlin == ["Sun 29 Mar 01:59", "Sun 29 Mar 03:00"]
    autumn_berlin = [local(m, BERLIN) for m in MOMENTS[11:13]]
    assert autumn_berlin == ["Sun 25 Oct 02:30", "Sun 25 Oct 02:30"]
    assert local(MOMENTS[4], BERLIN) == "Fri 01 Jan 00:30"  # a new year, there already


def test_spanish_and_german() -> None:
    moment = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    with i18n.using("es"):
        assert local(moment, None) == "mié 4 mar 09:00"
        assert local(moment, BERLIN) == "mié 4 mar 10:00"
        assert local_date(moment, NEW_YORK) == "mié 4 mar"
        assert local(MOMENTS[4], BERLIN) == "vie 1 ene 00:30"
        assert day_month(datetime(2026, 12, 4)) == "4 dic"
    with i18n.using("de"):
        assert local(moment, None) == "Mi., 4. März 09:00"
        assert local(moment, NEW_YORK) == "Mi., 4. März 04:00"
        assert local_date(moment, BERLIN) == "Mi., 4. März"
        assert local(MOMENTS[10], BERLIN) == "So., 29. März 03:00"
        assert local(MOMENTS[7], NEW_YORK) == "So., 1. Nov. 01:30"
        assert day_month(datetime(2026, 10, 4)) == "4. Okt."
    assert local(moment, None) == "Wed 04 Mar 09:00"  # back to the source language


def test_no_zone_is_utc() -> None:
    moment = datetime(2026, 3, 4, 23, 30, tzinfo=ZoneInfo(NEW_YORK))  # 04:30 UTC on the 5th
    assert local(moment, None) == local(moment, "UTC") == "Thu 05 Mar 04:30"
    assert local_date(moment, None) == "Thu 05 Mar"


def test_a_language_without_its_own_pattern_uses_englishs_with_its_own_names() -> None:
    moment = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    with i18n.using("fr"):
        assert local(moment, None) == "mer. 04 mars 09:00"
        assert local_date(moment, None) == "mer. 04 mars"
    with i18n.using("xx"):  # no such locale: English names too
        assert local(moment, None) == "Wed 04 Mar 09:00"

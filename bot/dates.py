"""Dates and times as the reader sees them: in their language (Babel's CLDR names) and in
the patient's (or the clinic's) time zone. Used by every surface — chat views, services'
refusals, the workspace — so a date reads the same everywhere.

English keeps the bot's long-standing "Wed 04 Mar 09:00"; a language without its own
pattern uses English's with its own month and day names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime

from bot import i18n

__all__ = ["day_month", "local", "local_date"]

# CLDR patterns (https://unicode.org/reports/tr35/tr35-dates.html#Date_Field_Symbol_Table).
DATETIME_PATTERNS = {
    "en": "EEE dd MMM HH:mm",  # not shown: a date pattern
    "es": "EEE d MMM HH:mm",  # not shown: a date pattern
    "de": "EEE, d. MMM HH:mm",  # not shown: a date pattern
}
DATE_PATTERNS = {
    "en": "EEE dd MMM",  # not shown: a date pattern
    "es": "EEE d MMM",  # not shown: a date pattern
    "de": "EEE, d. MMM",  # not shown: a date pattern
}
DAY_MONTH_PATTERNS = {  # chart axis ticks
    "en": "dd MMM",  # not shown: a date pattern
    "es": "d MMM",  # not shown: a date pattern
    "de": "d. MMM",  # not shown: a date pattern
}


@cache
def _babel_locale(language: str) -> Locale:
    try:
        return Locale.parse(language)
    except (ValueError, UnknownLocaleError):
        return Locale.parse(i18n.SOURCE_LANGUAGE)


def _dated(moment: datetime, tz: ZoneInfo | None, patterns: Mapping[str, str]) -> str:
    """`moment` in `tz` (None: a naive local wall-clock time, shown as it is)."""
    language = i18n.current()
    pattern = patterns.get(language, patterns[i18n.SOURCE_LANGUAGE])
    if tz is not None:
        moment = moment.astimezone(tz)
    return format_datetime(moment, pattern, tzinfo=tz, locale=_babel_locale(language))


def local(moment: datetime, zone: str | None) -> str:
    """Weekday, day, month and time in `zone` (UTC when None): "Wed 04 Mar 09:00"."""
    return _dated(moment, ZoneInfo(zone or "UTC"), DATETIME_PATTERNS)


def local_date(moment: datetime, zone: str | None) -> str:
    """Weekday, day and month in `zone` (UTC when None): "Wed 04 Mar"."""
    return _dated(moment, ZoneInfo(zone or "UTC"), DATE_PATTERNS)


def day_month(wall_clock: datetime) -> str:
    """A naive local date as a short label, "04 Mar" (a chart's axis)."""
    return _dated(wall_clock.replace(tzinfo=None), None, DAY_MONTH_PATTERNS)

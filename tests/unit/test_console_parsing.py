"""Pure parts of the therapist console: command parsing, postpone times, CSV/JSON export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.domain.schedule import QuietHours
from bot.handlers.console import parse_add, parse_postpone_args
from bot.services.errors import UserError
from bot.services.exports import COLUMNS, ExportRow, filename, to_csv, to_json
from bot.services.schedule_edits import Postpone, postponed_time

NY = ZoneInfo("America/New_York")
QUIET = QuietHours(time(21, 0), time(8, 0))


def test_parse_add_keeps_the_therapists_words_whole() -> None:
    assert parse_add("/add river-7 +2h chk-mood") == ("river-7", "+2h", "chk-mood")
    assert parse_add("/add@afterglow_bot lake +1d@09:00  How was it?\nTake time. ") == (
        "lake",
        "+1d@09:00",
        "How was it?\nTake time.",
    )
    for bad in ("/add", "/add river-7", "/add river-7 +2h", "/add river-7 +2h   "):
        with pytest.raises(UserError, match="Usage: /add"):
            parse_add(bad)


def test_parse_postpone_args() -> None:
    assert parse_postpone_args(["3", "+2h"]) == (None, 3, "+2h")
    assert parse_postpone_args(["lake", "12", "+1d@10:00"]) == ("lake", 12, "+1d@10:00")
    for bad in ([], ["3"], ["x", "+2h"], ["0", "+2h"], ["a", "b", "c", "d"], ["-1", "+1h"]):
        with pytest.raises(UserError, match="Usage: /postpone"):
            parse_postpone_args(bad)


def test_postpone_an_hour_or_to_the_next_morning() -> None:
    now = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # 10:00 in New York (EDT)
    due = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)  # 20:00 New York
    later = postponed_time(Postpone.HOUR, due, now, NY, QUIET)
    assert later == datetime(2026, 3, 11, 12, 0, tzinfo=UTC)  # 21:00 is quiet → 08:00 next day
    assert postponed_time(Postpone.HOUR, due, now, NY, QuietHours(time(0), time(0))) == datetime(
        2026, 3, 11, 1, 0, tzinfo=UTC
    )
    morning = postponed_time(Postpone.MORNING, due, now, NY, QUIET)
    assert morning.astimezone(NY).replace(tzinfo=None) == datetime(2026, 3, 11, 9, 0)
    # Overdue: counted from now, never earlier than now.
    past = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    assert postponed_time(Postpone.HOUR, past, now, NY, QUIET) == datetime(
        2026, 3, 10, 15, 0, tzinfo=UTC
    )
    # Quiet hours ending after nine move the morning to their end.
    late_quiet = QuietHours(time(22, 0), time(10, 0))
    morning = postponed_time(Postpone.MORNING, due, now, NY, late_quiet)
    assert morning.astimezone(NY).replace(tzinfo=None) == datetime(2026, 3, 11, 10, 0)


def _row(**values: object) -> ExportRow:
    blank: dict[str, object] = {c: None for c in COLUMNS}
    blank["flagged"] = False
    blank.update(values)
    return ExportRow(**blank)  # type: ignore[arg-type]


def test_csv_has_a_header_round_trips_text_and_defuses_formulas() -> None:
    rows = [
        _row(type="delivery", delivery_id=7, answer='line one\nline "two", three', flagged=True),
        _row(type="note", answer='=HYPERLINK("http://x")', question="+1 plus"),
        _row(type="note", answer="ünïcødé ✓"),
    ]
    data = to_csv(rows)
    parsed = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert list(parsed[0]) == list(COLUMNS)
    assert parsed[0]["answer"] == 'line one\nline "two", three'
    assert parsed[0]["delivery_id"] == "7" and parsed[0]["flagged"] == "true"
    assert parsed[0]["state"] == ""
    assert parsed[1]["answer"] == '\'=HYPERLINK("http://x")'
    assert parsed[1]["question"] == "'+1 plus"
    assert parsed[2]["answer"] == "ünïcødé ✓"
    raw = list(csv.DictReader(io.StringIO(to_csv(rows, spreadsheet_safe=False).decode())))
    assert raw[1]["answer"] == '=HYPERLINK("http://x")'


def test_json_keeps_types_and_nulls() -> None:
    data = json.loads(to_json([_row(type="delivery", delivery_id=3, answer="ok")]))
    assert data == [
        {
            **{c: None for c in COLUMNS},
            "type": "delivery",
            "delivery_id": 3,
            "answer": "ok",
            "flagged": False,
        }
    ]


def test_filename() -> None:
    now = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    assert filename("river-7", now) == "afterglow-river-7-20260310.csv"
    assert filename("a/b c", now, "json") == "afterglow-a_b_c-20260310.json"

"""The chart's date ticks (computed, not matplotlib's locator) and a drawable chart for any
shape of data: empty series, one point, different scales, totals alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.questionnaires import PROFILES
from bot.services.trends import Series, TotalSeries, TrendData
from bot.views.charts import MAX_TICKS, _date_ticks, trend_png

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 1, 1, 19, tzinfo=UTC)


@given(st.lists(st.integers(0, 800 * 24), min_size=1, max_size=40))
def test_ticks_are_few_ordered_and_inside_the_data(hours: list[int]) -> None:
    moments = [START + timedelta(hours=h) for h in hours]
    ticks = _date_ticks(moments, BERLIN)
    assert 1 <= len(ticks) <= MAX_TICKS
    assert ticks == sorted(ticks)
    first = min(moments).astimezone(BERLIN).date()
    last = max(moments).astimezone(BERLIN).date()
    assert all(first <= t.date() <= last + timedelta(days=MAX_TICKS) for t in ticks)


def test_a_year_is_labelled_by_month_starts() -> None:
    ticks = _date_ticks([START, START + timedelta(days=364)], BERLIN)
    assert all(t.day == 1 for t in ticks) and ticks[0] == datetime(2026, 1, 1)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 3), st.booleans())
def test_any_shape_of_data_draws_a_png(points: int, with_totals: bool) -> None:
    mood = Series(
        "chk-mood", "mood", 0, 10, [(START + timedelta(days=d), 5) for d in range(points)]
    )
    energy = Series("chk-energy", "energy", 1, 5, [(START, 3)] if points else [])
    totals = (
        [TotalSeries("phq9", 0, 27, PROFILES["phq9"].bands, [(START, 12)])] if with_totals else []
    )
    data = TrendData(1, "x", "Europe/Berlin", [mood, energy], [START], totals)
    if data.empty:
        return
    assert trend_png(data).startswith(b"\x89PNG")

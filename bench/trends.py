"""`/trends` rendering: a year of daily check-ins (mood every evening, energy every other
morning, a session every two weeks) drawn as the PNG the therapist gets.

    python -m bench.trends [--quick]

Reported: ms per chart (median and worst of the timed renders, after one warm-up that pays for
matplotlib's import and font cache), PNG size; goal ≤ 100 ms (issue 17). The baseline in the
same process is the same chart with markers on every point and matplotlib's tight_layout, the
straightforward way to draw it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import base_parser, print_table, write_results

GOAL_MS = 100.0


def year_of_check_ins() -> Any:
    from bot.services.trends import Series, TrendData

    rng = random.Random(17)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    mood = Series(
        "chk-mood-today",
        "mood",
        0,
        10,
        [(start + timedelta(days=d, hours=19), rng.randint(0, 10)) for d in range(365)],
    )
    energy = Series(
        "chk-energy",
        "energy",
        1,
        5,
        [(start + timedelta(days=d, hours=8), rng.randint(1, 5)) for d in range(0, 365, 2)],
    )
    sessions = [start + timedelta(days=14 * k, hours=15) for k in range(26)]
    return TrendData(1, "bench", "Europe/Berlin", [mood, energy], sessions)


def naive_png(data: Any) -> bytes:
    """The baseline: every point marked, tight_layout, default compression."""
    import io

    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax: Any = fig.add_subplot()
    for series in data.series:
        span = series.high - series.low
        ax.plot(
            [t.replace(tzinfo=None) for t, _ in series.points],
            [100.0 * (v - series.low) / span for _, v in series.points],
            marker="o",
            markersize=3,
            label=series.key,
        )
    for start in data.sessions:
        ax.axvline(start.replace(tzinfo=None), color="#888888", linestyle="--")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))  # type: ignore[no-untyped-call]
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def measure(name: str, render: Any, data: Any, runs: int) -> dict[str, Any]:
    render(data)  # warm-up
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        size = len(render(data))
        times.append((time.perf_counter() - started) * 1000)
    return {
        "chart": name,
        "points": sum(len(s.points) for s in data.series),
        "median_ms": round(statistics.median(times), 1),
        "worst_ms": round(max(times), 1),
        "png_kib": round(size / 1024, 1),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from bot.views.charts import trend_png

    data = year_of_check_ins()
    runs = 5 if args.quick else 20
    base = measure("baseline: markers, tight_layout", naive_png, data, runs)
    mine = measure("Afterglow /trends", trend_png, data, runs)
    mine["ratio_to_baseline"] = round(base["median_ms"] / mine["median_ms"], 2)
    mine["goal_met"] = mine["median_ms"] <= GOAL_MS
    return [base, mine]


COLUMNS = [
    ("chart", "chart", ""),
    ("points", "points", ","),
    ("median_ms", "median ms", ".1f"),
    ("worst_ms", "worst ms", ".1f"),
    ("png_kib", "PNG KiB", ".1f"),
    ("ratio_to_baseline", "× faster", ".2f"),
    ("goal_met", f"≤ {GOAL_MS:.0f} ms", ""),
]


def main(argv: list[str] | None = None) -> None:
    args = base_parser(__doc__ or "").parse_args(argv)
    rows = run(args)
    print_table("A year of check-ins as a chart", rows, COLUMNS)
    write_results("trends", params={"quick": args.quick}, rows=rows, pg_url=None)


if __name__ == "__main__":
    main()

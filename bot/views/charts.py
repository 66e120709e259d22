"""The `/trends` chart as PNG bytes: check-in values over time, sessions as vertical markers,
dates in the patient's local time. Nothing inside the image names the patient or quotes them:
the legend names the check-ins by their prompt key, the axes say what they measure.

matplotlib's object API on an Agg canvas (no display, no pyplot state, so a chart can be drawn
in a worker thread) with the DejaVu fonts it ships; imported on first use, so a bot that never
draws a chart never pays for the import.
"""

from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

from bot.services.trends import TrendData

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 110  # ~880 × 440 px: sharp on a phone, small to send
MARKERS_UP_TO = 90  # points per series


def trend_png(data: TrendData) -> bytes:
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tz = ZoneInfo(data.timezone)
    scales = {(s.low, s.high) for s in data.series if s.points}
    shared = len(scales) == 1
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax: Any = fig.add_subplot()
    for series in data.series:
        if not series.points:
            continue
        when = [t.astimezone(tz).replace(tzinfo=None) for t, _ in series.points]
        if shared:
            values: list[float] = [float(v) for _, v in series.points]
        else:  # different scales: each as a share of its own range
            span = series.high - series.low
            values = [100.0 * (v - series.low) / span for _, v in series.points]
        # Markers help a few weeks read as answers; a year of them only costs drawing time.
        marker = "o" if len(values) <= MARKERS_UP_TO else None
        ax.plot(when, values, marker=marker, markersize=3, linewidth=1.2, label=series.key)
    if data.sessions:  # one collection for all of them: a line artist each costs a draw each
        ax.vlines(
            [start.astimezone(tz).replace(tzinfo=None) for start in data.sessions],
            0,
            1,
            transform=ax.get_xaxis_transform(),
            colors="#888888",
            linestyles="--",
            linewidth=1,
        )
    if shared:
        low, high = next(iter(scales))
        ax.set_ylim(low - 0.5, high + 0.5)
        ax.set_ylabel("check-in value")
    else:
        ax.set_ylim(-5, 105)
        ax.set_ylabel("% of each check-in's scale")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))  # type: ignore[no-untyped-call]
    ax.set_xlabel(f"date ({data.timezone}); dashed lines: sessions")
    ax.grid(True, alpha=0.3)
    if any(s.points for s in data.series):
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.autofmt_xdate()
    # Fixed margins instead of tight_layout (which draws the figure once more to measure it);
    # a light PNG compression: a third of the encoding time for a slightly larger file.
    fig.subplots_adjust(left=0.08, right=0.98, top=0.97, bottom=0.2)
    out = io.BytesIO()
    fig.savefig(out, format="png", pil_kwargs={"compress_level": 1})
    return out.getvalue()

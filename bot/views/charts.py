"""The `/trends` and `/progress` charts as PNG bytes (and the workspace's as SVG, drawn by the
same code): check-in values over time (and, for the
therapist, questionnaire totals on their bands), sessions as vertical markers, dates in the
patient's local time. The image holds no text but its axis labels: no name, no words of the
patient, no legend (the axis label names each line by its content key and colour).

matplotlib's object API on an Agg canvas (no display, no pyplot state, so a chart can be drawn
in a worker thread) with the DejaVu fonts it ships; imported on first use, so a bot that never
draws a chart never pays for the import.
"""

from __future__ import annotations

import io
import threading
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.dates import day_month
from bot.i18n import N_, _
from bot.services.trends import Series, TotalSeries, TrendData

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 100  # 800 × 400 px: sharp on a phone, small to send
TOTALS_HEIGHT_IN = 2.4  # the totals panel under the check-ins, when there are totals
MARKERS_UP_TO = 90  # points per series
BAND_SHADES = ("#e8f3e8", "#fbf3dc", "#fbe6d4", "#f6d9d9", "#efd2e6")  # low → high


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _sessions(ax: Any, data: TrendData, tz: ZoneInfo) -> None:
    if data.sessions:  # one collection for all of them: a line artist each costs a draw each
        ax.vlines(
            [_local(start, tz) for start in data.sessions],
            0,
            1,
            transform=ax.get_xaxis_transform(),
            colors="#888888",
            linestyles="--",
            linewidth=1,
        )


# matplotlib's default colour cycle, named for the axis label (translated where used)
COLOURS = (
    N_("blue"),
    N_("orange"),
    N_("green"),
    N_("red"),
    N_("purple"),
    N_("brown"),
    N_("pink"),
    N_("grey"),
)


def _named(keys: list[str]) -> str:
    """ "chk-mood (blue), chk-energy (orange)": the lines in drawing order, by colour."""
    return ", ".join(f"{key} ({_(COLOURS[i % len(COLOURS)])})" for i, key in enumerate(keys))


def _checkins(ax: Any, series: list[Series], tz: ZoneInfo) -> None:
    scales = {(s.low, s.high) for s in series}
    shared = len(scales) == 1
    for s in series:
        when = [_local(t, tz) for t, _ in s.points]
        if shared:
            values: list[float] = [float(v) for _, v in s.points]
        else:  # different scales: each as a share of its own range
            span = s.high - s.low
            values = [100.0 * (v - s.low) / span for _, v in s.points]
        # Markers help a few weeks read as answers; a year of them only costs drawing time.
        marker = "o" if len(values) <= MARKERS_UP_TO else None
        ax.plot(when, values, marker=marker, markersize=3, linewidth=1.2)
    if shared:
        low, high = next(iter(scales))
        ax.set_ylim(low - 0.5, high + 0.5)
        # i18n: a chart's axis label; {lines} names each line: "chk-mood (blue), chk-sleep (orange)"
        label = _("value: {lines}")
    else:
        ax.set_ylim(-5, 105)
        # i18n: a chart's axis label (check-ins on different scales, each as a percentage of
        # its own); {lines} names each line: "chk-mood (blue), chk-sleep (orange)"
        label = _("% of scale: {lines}")
    ax.set_ylabel(label.format(lines=_named([s.key for s in series])), fontsize=8)


def _totals(ax: Any, totals: list[TotalSeries], tz: ZoneInfo) -> None:
    first = totals[0]
    for shade, band in zip(BAND_SHADES * 2, first.bands, strict=False):
        ax.axhspan(band.min - 0.5, band.max + 0.5, color=shade, zorder=0)
    for t in totals:
        ax.plot(
            [_local(at, tz) for at, _ in t.points],
            [float(v) for _, v in t.points],
            marker="o",
            markersize=4,
            linewidth=1.4,
        )
    ax.set_ylim(first.low - 0.5, first.high + 0.5)
    lines = _named([t.key for t in totals])
    if len(totals) > 1:
        # i18n: a chart's axis label: questionnaire totals by colour; the shaded bands are
        # those of the questionnaire {key}
        label = _("total: {lines}; {key} bands").format(lines=lines, key=first.key)
    else:
        # i18n: a chart's axis label: questionnaire totals by colour
        label = _("total: {lines}").format(lines=lines)
    ax.set_ylabel(label, fontsize=8)


MAX_TICKS = 8


def _date_ticks(moments: list[datetime], tz: ZoneInfo) -> list[datetime]:
    """Up to MAX_TICKS local dates to label: the firsts of months over a long span, evenly
    spaced days over a short one."""
    if not moments:
        return []
    first, last = (_local(m, tz) for m in (min(moments), max(moments)))
    days = (last - first).days
    if days >= 60:
        months = []
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            months.append(datetime(year, month, 1))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        step = -(-len(months) // MAX_TICKS)
        return [m for m in months[::step] if first.date() <= m.date() <= last.date()] or [first]
    step_days = max(1, -(-days // (MAX_TICKS - 1)))
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    return [start + timedelta(days=k * step_days) for k in range(days // step_days + 1)]


_LOCK = threading.Lock()
_FIGURES: dict[float, Any] = {}


def trend_png(data: TrendData) -> bytes:
    return _chart(data, "png")


def trend_svg(data: TrendData) -> bytes:
    """The same chart as SVG for the workspace page: text stays text (readable, selectable,
    scaled by the browser), and no hash salt so the same data draws the same bytes."""
    from matplotlib import rc_context

    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "afterglow"}):
        return _chart(data, "svg")


def _chart(data: TrendData, fmt: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tz = ZoneInfo(data.timezone)
    series = [s for s in data.series if s.points]
    totals = [t for t in data.totals if t.points]
    panels = [p for p in (series and "checkins", totals and "totals") if p]
    height = HEIGHT_IN + (TOTALS_HEIGHT_IN if len(panels) == 2 else 0)
    with _LOCK:  # one figure per size, redrawn: its renderer keeps the text layouts it measured
        fig = _FIGURES.get(height)
        if fig is None:
            fig = _FIGURES[height] = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
            FigureCanvasAgg(fig)
        fig.clear()
        return _draw(fig, data, series, totals, panels, tz, fmt)


def _draw(
    fig: Any,
    data: TrendData,
    series: list[Series],
    totals: list[TotalSeries],
    panels: list[str],
    tz: ZoneInfo,
    fmt: str,
) -> bytes:
    import matplotlib.dates as mdates

    axes: list[Any] = (
        [fig.add_subplot()]
        if len(panels) < 2
        else list(fig.subplots(2, 1, sharex=True, height_ratios=[HEIGHT_IN, TOTALS_HEIGHT_IN]))
    )
    for ax, panel in zip(axes, panels, strict=False):
        if panel == "checkins":
            _checkins(ax, series, tz)
        else:
            _totals(ax, totals, tz)
        _sessions(ax, data, tz)
        ax.grid(True, axis="y", alpha=0.3)  # the sessions mark the time axis already
    bottom = axes[-1]
    # Ticks computed here (month starts, or evenly spaced days for a short span) instead of
    # matplotlib's AutoDateLocator, whose rrule arithmetic is a third of a year chart's time.
    ticks = _date_ticks(
        [t for s in series for t, _ in s.points]
        + [t for t in data.sessions]
        + [t for s in totals for t, _ in s.points],
        tz,
    )
    positions = [mdates.date2num(t) for t in ticks]  # type: ignore[no-untyped-call]
    bottom.set_xticks(positions, [day_month(t) for t in ticks])
    # i18n: a chart's axis label; {zone} is the time zone of the dates
    bottom.set_xlabel(_("date ({zone}); dashed lines: sessions").format(zone=data.timezone))
    # Fixed margins instead of tight_layout (which draws the figure once more to measure it);
    # a light PNG compression: a third of the encoding time for a slightly larger file.
    fig.subplots_adjust(left=0.08, right=0.98, top=0.97, bottom=0.13 if len(panels) < 2 else 0.09)
    out = io.BytesIO()
    if fmt == "png":
        fig.savefig(out, format="png", pil_kwargs={"compress_level": 1})
    else:
        fig.savefig(out, format=fmt, metadata={"Date": None})
    return out.getvalue()

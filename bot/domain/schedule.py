"""Schedule engine: turns "a session happened at T" into delivery times, and re-plans them.

Pure functions over aware datetimes. Every instant that goes in or comes out is an aware
datetime; results are always in UTC. Local (wall-clock) reasoning happens only in the
patient's IANA zone, through `resolve_local`, so DST is handled in exactly one place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Literal, cast
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_MISFIRE_GRACE",
    "DEFAULT_QUIET_HOURS",
    "OFFSET_GRAMMAR",
    "Action",
    "Decision",
    "Offset",
    "OffsetError",
    "Planned",
    "QuietHours",
    "Replan",
    "decide",
    "defer_quiet",
    "expand",
    "parse_offset",
    "replan_session_moved",
    "replan_zone",
    "resolve_local",
    "resume",
    "step_time",
]

Unit = Literal["m", "h", "d"]

OFFSET_GRAMMAR = "use +<n>m, +<n>h or +<n>d, optionally followed by @HH:MM (e.g. +2h, +1d@09:00)"
DEFAULT_MISFIRE_GRACE = timedelta(hours=6)  # SPEC default of AFTERGLOW_MISFIRE_GRACE

_UNIT_LENGTH: dict[str, timedelta] = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
# A typo like "+9000d" should fail loudly rather than schedule something years away.
_MAX_SPAN = timedelta(days=365)
# Nine digits is far beyond _MAX_SPAN in any unit, and keeps int() away from huge inputs.
_OFFSET_RE = re.compile(r"\+([0-9]{1,9})([mhd])(?:@([0-9]{2}):([0-9]{2}))?")
_QUIET_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*[-–]\s*([0-9]{1,2}):([0-9]{2})")


class OffsetError(ValueError):
    """A step offset that does not follow the grammar; the message is meant for clinicians."""

    def __init__(self, text: str, problem: str = "") -> None:
        self.text = text
        # Bad input gets echoed back into chat messages, so keep it short.
        shown = text if len(text) <= 40 else text[:40] + "…"
        why = f" ({problem})" if problem else ""
        super().__init__(f"bad offset {shown!r}{why}: {OFFSET_GRAMMAR}")


@dataclass(frozen=True)
class Offset:
    """A template step's offset from the session start, e.g. ``+2h`` or ``+1d@09:00``."""

    amount: int
    unit: Unit
    at: time | None = None

    def __post_init__(self) -> None:
        # Validated here too so an Offset built in code is as trustworthy as a parsed one.
        text = f"+{self.amount}{self.unit}"
        if self.unit not in _UNIT_LENGTH or isinstance(self.amount, bool) or self.amount < 0:
            raise OffsetError(text)
        if self.length > _MAX_SPAN:
            raise OffsetError(text, "longer than 365 days")
        if self.at is not None and (
            self.at.tzinfo is not None or self.at.second or self.at.microsecond
        ):
            raise OffsetError(f"{text}@{self.at}", "@ takes a plain HH:MM")

    @property
    def length(self) -> timedelta:
        return self.amount * _UNIT_LENGTH[self.unit]

    def __str__(self) -> str:
        at = f"@{self.at:%H:%M}" if self.at is not None else ""
        return f"+{self.amount}{self.unit}{at}"


def parse_offset(text: str) -> Offset:
    """Parse ``+<n>(m|h|d)[@HH:MM]``; surrounding whitespace is ignored, nothing else is."""
    stripped = text.strip()
    match = _OFFSET_RE.fullmatch(stripped)
    if match is None:
        raise OffsetError(stripped)
    amount, unit, hh, mm = match.groups()
    at = None
    if hh is not None:
        if int(hh) > 23 or int(mm) > 59:
            raise OffsetError(stripped, "no such time of day")
        at = time(int(hh), int(mm))
    try:
        return Offset(int(amount), cast(Unit, unit), at)
    except OffsetError as exc:
        raise OffsetError(stripped, "longer than 365 days") from exc


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock window ``[start, end)`` in which nothing is delivered.

    ``start > end`` wraps midnight (21:00-08:00); ``start == end`` means no quiet hours.
    """

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """Parse ``HH:MM-HH:MM`` (an en dash is accepted too, as clinicians copy it from docs)."""
        match = _QUIET_RE.fullmatch(text.strip())
        if match is not None:
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if max(h1, h2) <= 23 and max(m1, m2) <= 59:
                return cls(time(h1, m1), time(h2, m2))
        raise ValueError(
            f"bad quiet hours {text.strip()[:40]!r}: use HH:MM-HH:MM, e.g. 21:00-08:00 "
            "(the same time twice means no quiet hours)"
        )

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


DEFAULT_QUIET_HOURS = QuietHours(time(21, 0), time(8, 0))


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)


def resolve_local(naive_local: datetime, tz: ZoneInfo) -> datetime:
    """Local wall-clock time in ``tz`` -> aware UTC instant.

    A time skipped by a DST gap moves forward by the gap's length (02:30 in a 02:00->03:00
    gap is 03:30); a time that happens twice resolves to its first occurrence.
    """
    if naive_local.tzinfo is not None:
        raise ValueError(f"resolve_local expects a naive local time, got {naive_local!r}")
    # PEP 495: with fold=0 a gap time uses the offset from before the transition, which lands
    # exactly gap-length later on the wall clock, and an ambiguous time is its first occurrence.
    return naive_local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _next_wall_time(day: date, wall: time, tz: ZoneInfo, after: datetime) -> datetime:
    """First instant after ``after`` at which the clock in ``tz`` reads ``wall`` on ``day``,
    or failing that on a later day.

    Like `resolve_local`, a gap moves it forward and the first occurrence of a repeated time
    wins, but the second one is used when only it is still after ``after``. That matters in the
    second pass of a fall-back hour, where the first occurrence has already gone by.
    """
    while True:
        naive = datetime.combine(day, wall)
        for fold in (0, 1):
            # For gap times fold=1 is the earlier instant, so it can't win where fold=0 lost.
            candidate = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
            if candidate > after:
                return candidate
        day += timedelta(days=1)


def step_time(offset: Offset, session_start: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of one template step, before quiet hours are applied.

    * ``+<n>m`` / ``+<n>h``: that much real elapsed time after the session (``+0m`` is the
      session start itself).
    * ``+<n>d``: the same local wall-clock time ``n`` local calendar days later.
    * ``@HH:MM``: HH:MM local on the local day reached (for ``d``: ``n`` days after the
      session's local date). If that is not after the session start, it moves to the next
      day (see `_next_wall_time` for the rare repeated-hour case).
    """
    start = _require_aware(session_start, "session_start")
    if offset.at is None:
        if offset.unit != "d" or offset.amount == 0:
            return start + offset.length
        local = start.astimezone(tz).replace(tzinfo=None, fold=0)
        return resolve_local(local + offset.length, tz)
    day: date
    if offset.unit == "d":
        day = start.astimezone(tz).date() + offset.length
    else:
        day = (start + offset.length).astimezone(tz).date()
    return _next_wall_time(day, offset.at, tz, after=start)


def _offset_change(since: datetime, until: datetime, tz: ZoneInfo) -> datetime | None:
    """The first instant in ``(since, until]`` at which ``tz`` changes its UTC offset, or None
    if both ends have the same offset (real zones never change twice within a day)."""
    old = since.astimezone(tz).utcoffset()
    if until.astimezone(tz).utcoffset() == old:
        return None
    # tzdata transitions fall on whole seconds, so bisecting over whole seconds finds it.
    lo, hi = math.floor(since.timestamp()), math.ceil(until.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == old:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _quiet_end(local: datetime, tz: ZoneInfo, quiet: QuietHours) -> datetime:
    """End (UTC) of the quiet period that contains the aware local time ``local``: the next
    time the wall clock reads ``quiet.end``, or earlier if the clocks change to a time outside
    quiet hours first (back to before the start, or forward over the end).

    An end skipped by a jump forward is read like any skipped time, the gap's length later
    (`resolve_local`), unless that is inside quiet hours again: then the period ended when the
    clocks jumped, so a short awake stretch right after the jump is not lost for a day.
    """
    # From today, not tomorrow, even after the start: when the clocks go back, the end can come
    # round again later the same night.
    end = _next_wall_time(local.date(), quiet.end, tz, after=local)
    change = _offset_change(local, end, tz)
    if change is None or quiet.contains(change.astimezone(tz).time()):
        return end
    end_wall = end.astimezone(tz).time()
    if end_wall != quiet.end and not quiet.contains(end_wall):
        return end  # skipped by the jump, and moving it forward by the gap stays awake
    return change


def defer_quiet(t: datetime, tz: ZoneInfo, quiet: QuietHours) -> datetime:
    """Move ``t`` to the end of the quiet period it falls in; otherwise return it unchanged."""
    t = _require_aware(t, "t")
    # One round reaches the end of the quiet period. That end is inside quiet hours again only
    # when the clocks jump forward straight into the next period (02:30-02:15 on the night of
    # a 02:00->03:00 jump): a second round then finds the next day's end. 4 leaves a margin.
    for _ in range(4):
        local = t.astimezone(tz)
        if not quiet.contains(local.time()):
            break
        t = _quiet_end(local, tz, quiet)
    return t


def expand(
    offsets: Sequence[Offset], session_start: datetime, tz: ZoneInfo, quiet: QuietHours
) -> list[datetime]:
    """One UTC delivery time per offset, in the same order.

    Each step is placed by `step_time`, moved out of quiet hours, and never scheduled before
    the step preceding it, so the template's order survives quiet-hour deferrals.
    """
    times: list[datetime] = []
    for offset in offsets:
        t = defer_quiet(step_time(offset, session_start, tz), tz, quiet)
        times.append(max(t, times[-1]) if times else t)
    return times


@dataclass(frozen=True)
class Slot:
    """One planned step: its time, and whether it is skipped because it was overtaken."""

    at: datetime
    skipped: bool = False


def plan(
    offsets: Sequence[Offset], session_start: datetime, tz: ZoneInfo, quiet: QuietHours
) -> list[Slot]:
    """Like `expand`, but a step that the rules push past a later step is skipped instead of
    bunching up: a session logged at 22:00 does not deliver "this evening's" reflection next
    evening together with next day's prompts. Kept steps stay in template order."""
    natural = [defer_quiet(step_time(o, session_start, tz), tz, quiet) for o in offsets]
    slots: list[Slot] = []
    earliest_later: datetime | None = None
    for at in reversed(natural):
        overtaken = earliest_later is not None and at > earliest_later
        slots.append(Slot(at, skipped=overtaken))
        if not overtaken:
            earliest_later = at
    return slots[::-1]


class Action(Enum):
    SEND = "send"
    WAIT = "wait"
    DEFER = "defer"
    MISS = "miss"


@dataclass(frozen=True)
class Decision:
    """What to do with a due delivery now; ``until`` is when to look again (WAIT, DEFER)."""

    action: Action
    until: datetime | None = None


def decide(
    due_at: datetime, now: datetime, grace: timedelta, tz: ZoneInfo, quiet: QuietHours
) -> Decision:
    """The single rule for whether a scheduled delivery goes out at ``now``.

    * WAIT until ``due_at`` while it is in the future.
    * MISS once it is more than ``grace`` late (exactly ``grace`` late still counts).
    * DEFER to the end of quiet hours if ``now`` is inside them (e.g. after downtime), unless
      that end is more than ``grace`` after ``due_at``: then MISS, so nothing goes out hours
      late.
    * SEND otherwise.
    """
    due_at = _require_aware(due_at, "due_at")
    now = _require_aware(now, "now")
    if due_at > now:
        return Decision(Action.WAIT, due_at)
    if now - due_at > grace:
        return Decision(Action.MISS)
    if quiet.contains(now.astimezone(tz).time()):
        until = defer_quiet(now, tz, quiet)
        if until - due_at > grace:
            return Decision(Action.MISS)
        return Decision(Action.DEFER, until)
    return Decision(Action.SEND)


@dataclass(frozen=True)
class Planned:
    """A pending delivery as the planner sees it; ``offset`` is None for a one-off."""

    id: int
    offset: Offset | None
    due_at: datetime


@dataclass(frozen=True)
class Replan:
    """Outcome of a re-plan; every input id is in exactly one of the three fields."""

    moved: dict[int, datetime]
    missed: list[int]
    unchanged: list[int]


def _settle(
    due: datetime, now: datetime, grace: timedelta, tz: ZoneInfo, quiet: QuietHours
) -> datetime | None:
    """New due time for a delivery whose intended time is ``due``; None means missed."""
    decision = decide(due, now, grace, tz, quiet)
    if decision.action is Action.MISS:
        return None
    if decision.action is Action.SEND:
        return now
    if decision.action is Action.DEFER:
        return decision.until
    return defer_quiet(due, tz, quiet)


def _collect(pending: Sequence[Planned], new: dict[int, datetime | None]) -> Replan:
    moved: dict[int, datetime] = {}
    missed: list[int] = []
    unchanged: list[int] = []
    for p in pending:
        t = new[p.id]
        if t is None:
            missed.append(p.id)
        elif t != p.due_at:
            moved[p.id] = t
        else:
            unchanged.append(p.id)
    return Replan(moved, missed, unchanged)


def _replan_steps(
    pending: Sequence[Planned],
    session_start: datetime,
    tz: ZoneInfo,
    settle: Callable[[datetime], datetime | None],
) -> dict[int, datetime | None]:
    """Recompute template steps and keep them in their current order.

    The current due times came from `expand`, so sorting by them (id breaks ties) recovers the
    step order without the caller having to pass it.
    """
    new: dict[int, datetime | None] = {}
    floor: datetime | None = None
    steps = sorted((p for p in pending if p.offset is not None), key=lambda p: (p.due_at, p.id))
    for p in steps:
        assert p.offset is not None
        t = settle(step_time(p.offset, session_start, tz))
        if t is not None:
            t = floor = t if floor is None else max(t, floor)
        new[p.id] = t
    return new


def replan_zone(
    pending: Sequence[Planned],
    session_start: datetime,
    old_tz: ZoneInfo,
    new_tz: ZoneInfo,
    quiet: QuietHours,
    now: datetime,
) -> Replan:
    """Re-plan after the patient's time zone and/or quiet hours changed.

    Template steps are recomputed in ``new_tz`` so they keep their local meaning (a
    ``+1d@09:00`` step stays at 09:00 local). One-offs keep their instant but leave the new
    quiet hours. Nothing lands before ``now``: a step whose new time has passed goes out now
    (or at the end of quiet hours), and nothing is marked missed, because the patient's own
    settings change should not cost them a prompt. For a quiet-hours-only change pass the
    same zone twice. ``old_tz`` is accepted for symmetry at call sites; the recomputation
    needs only the new zone.
    """
    del old_tz
    now = _require_aware(now, "now")

    def settle(t: datetime) -> datetime:
        return defer_quiet(max(t, now), new_tz, quiet)

    new = _replan_steps(pending, session_start, new_tz, settle)
    new.update({p.id: settle(p.due_at) for p in pending if p.offset is None})
    return _collect(pending, new)


def replan_session_moved(
    pending: Sequence[Planned],
    new_session_start: datetime,
    tz: ZoneInfo,
    quiet: QuietHours,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_MISFIRE_GRACE,
) -> Replan:
    """Re-plan after a therapist edited the session's start time.

    Template steps are recomputed from the new start; one-offs were timed from when they were
    added, not from the session, so they stay. A step whose new time has already passed is
    judged like a late delivery (`decide`): within ``grace`` it goes out now (or at the end
    of quiet hours), beyond it it is missed, so moving a session back a week does not
    flood the patient.
    """
    now = _require_aware(now, "now")
    new = _replan_steps(pending, new_session_start, tz, lambda t: _settle(t, now, grace, tz, quiet))
    new.update({p.id: p.due_at for p in pending if p.offset is None})
    return _collect(pending, new)


def resume(
    held: Sequence[Planned],
    now: datetime,
    grace: timedelta,
    tz: ZoneInfo,
    quiet: QuietHours,
) -> Replan:
    """Re-plan held deliveries after a pause or downtime ends at ``now``.

    Same rule as `decide`: more than ``grace`` late (or only sendable beyond that, because
    we are in quiet hours) is missed; otherwise a due one goes out now, or at the end of the
    quiet hours, and a future one keeps its time (moved out of quiet hours if needed).
    """
    now = _require_aware(now, "now")
    return _collect(held, {p.id: _settle(p.due_at, now, grace, tz, quiet) for p in held})

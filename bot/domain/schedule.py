"""Schedule engine: turns "a session happened at T" into delivery times, and re-plans them.

Pure functions over aware datetimes. Every instant that goes in or comes out is an aware
datetime; results are always in UTC. Local (wall-clock) reasoning happens only in the
patient's IANA zone, through `resolve_local`, so DST is handled in exactly one place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Literal, cast
from zoneinfo import ZoneInfo

from bot.i18n import N_, _

__all__ = [
    "DEFAULT_MISFIRE_GRACE",
    "DEFAULT_QUIET_HOURS",
    "MAX_OCCURRENCES",
    "OFFSET_GRAMMAR",
    "STEP_OFFSET_GRAMMAR",
    "Action",
    "Decision",
    "DurationError",
    "Every",
    "Occurrence",
    "Offset",
    "OffsetError",
    "Planned",
    "QuietHours",
    "Replan",
    "StepTiming",
    "decide",
    "defer_quiet",
    "expand",
    "format_duration",
    "occurrence_time",
    "parse_duration",
    "parse_offset",
    "plan_course",
    "replan_session_moved",
    "replan_zone",
    "resolve_local",
    "resume",
    "step_time",
]

Unit = Literal["m", "h", "d"]

OFFSET_GRAMMAR = N_(
    "use +<n>m, +<n>h or +<n>d, optionally followed by @HH:MM (e.g. +2h, +1d@09:00)"
)
# Templates may also place preparation steps before a planned session.
STEP_OFFSET_GRAMMAR = N_(
    "use +<n>m, +<n>h or +<n>d (or -<n>m, -<n>h, -<n>d before a planned session), "
    "optionally followed by @HH:MM (e.g. +2h, +1d@09:00, -1d@19:00)"
)
MAX_OCCURRENCES = 60  # SPEC: a recurring step's count is at most 60
DEFAULT_MISFIRE_GRACE = timedelta(hours=6)  # SPEC default of AFTERGLOW_MISFIRE_GRACE

_UNIT_LENGTH: dict[str, timedelta] = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
# A typo like "+9000d" should fail loudly rather than schedule something years away.
_MAX_SPAN = timedelta(days=365)
# Nine digits is far beyond _MAX_SPAN in any unit, and keeps int() away from huge inputs.
_OFFSET_RE = re.compile(r"([+-])([0-9]{1,9})([mhd])(?:@([0-9]{2}):([0-9]{2}))?")
_DURATION_RE = re.compile(r"([0-9]{1,9})([mhd])")
_QUIET_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*[-–]\s*([0-9]{1,2}):([0-9]{2})")


class OffsetError(ValueError):
    """A step offset that does not follow the grammar; the message is meant for clinicians."""

    def __init__(self, text: str, problem: str = "", *, grammar: str = OFFSET_GRAMMAR) -> None:
        self.text = text
        # Bad input gets echoed back into chat messages, so keep it short.
        shown = repr(text if len(text) <= 40 else text[:40] + "…")
        # In the reader's language where there is one (a therapist's chat), else English.
        message = (
            _("bad offset {offset} ({problem}): {grammar}").format(
                offset=shown, problem=_(problem), grammar=_(grammar)
            )
            if problem
            else _("bad offset {offset}: {grammar}").format(offset=shown, grammar=_(grammar))
        )
        super().__init__(message)


@dataclass(frozen=True)
class Offset:
    """A template step's offset from the session start, e.g. ``+2h``, ``+1d@09:00``, or, for
    a preparation step before a planned session, ``-1d@19:00``."""

    amount: int
    unit: Unit
    at: time | None = None
    before: bool = False

    def __post_init__(self) -> None:
        # Validated here too so an Offset built in code is as trustworthy as a parsed one.
        text = f"{'-' if self.before else '+'}{self.amount}{self.unit}"
        if self.unit not in _UNIT_LENGTH or isinstance(self.amount, bool) or self.amount < 0:
            raise OffsetError(text)
        if self.length > _MAX_SPAN:
            raise OffsetError(text, N_("longer than 365 days"))
        if self.at is not None and (
            self.at.tzinfo is not None or self.at.second or self.at.microsecond
        ):
            raise OffsetError(f"{text}@{self.at}", N_("@ takes a plain HH:MM"))

    @property
    def length(self) -> timedelta:
        """The magnitude; `before` says which side of the session it is on."""
        return self.amount * _UNIT_LENGTH[self.unit]

    def __str__(self) -> str:
        at = f"@{self.at:%H:%M}" if self.at is not None else ""
        return f"{'-' if self.before else '+'}{self.amount}{self.unit}{at}"


def parse_offset(text: str, *, allow_before: bool = False) -> Offset:
    """Parse ``+<n>(m|h|d)[@HH:MM]``; surrounding whitespace is ignored, nothing else is.

    With ``allow_before`` (template steps) ``-<n>...`` is accepted too: a preparation step."""
    grammar = STEP_OFFSET_GRAMMAR if allow_before else OFFSET_GRAMMAR
    stripped = text.strip()
    match = _OFFSET_RE.fullmatch(stripped)
    if match is None or (match.group(1) == "-" and not allow_before):
        raise OffsetError(stripped, grammar=grammar)
    sign, amount, unit, hh, mm = match.groups()
    at = None
    if hh is not None:
        if int(hh) > 23 or int(mm) > 59:
            raise OffsetError(stripped, N_("no such time of day"), grammar=grammar)
        at = time(int(hh), int(mm))
    try:
        return Offset(int(amount), cast(Unit, unit), at, before=sign == "-")
    except OffsetError as exc:
        raise OffsetError(stripped, N_("longer than 365 days"), grammar=grammar) from exc


class DurationError(ValueError):
    """A duration (`every`, `remind`, `expires`) that does not follow ``<n>m|h|d``."""


def parse_duration(text: str, *, units: str = "mhd") -> timedelta:
    """``<n>m``, ``<n>h`` or ``<n>d`` (only the given units), more than zero, at most 365 days."""
    stripped = str(text).strip()
    match = _DURATION_RE.fullmatch(stripped)
    allowed = ", ".join(f"<n>{u}" for u in units)
    if match is None or match.group(2) not in units:
        raise DurationError(f"bad duration {stripped[:40]!r}: use {allowed} (e.g. 1{units[-1]})")
    value = int(match.group(1)) * _UNIT_LENGTH[match.group(2)]
    if value <= timedelta(0):
        raise DurationError(f"bad duration {stripped!r}: it must be more than zero")
    if value > _MAX_SPAN:
        raise DurationError(f"bad duration {stripped!r}: longer than 365 days")
    return value


def format_duration(value: timedelta) -> str:
    """The inverse of `parse_duration` for whole minutes: 1d, 24h -> 1d, 90m."""
    minutes = int(value.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


@dataclass(frozen=True)
class Every:
    """How a recurring step repeats: every ``n`` local days (wall clock kept) or ``n`` hours."""

    amount: int
    unit: Literal["h", "d"]

    def __post_init__(self) -> None:
        if self.unit not in ("h", "d") or isinstance(self.amount, bool) or self.amount < 1:
            raise DurationError(f"bad repeat {self.amount}{self.unit}: use <n>d or <n>h, n ≥ 1")

    @property
    def length(self) -> timedelta:
        return self.amount * _UNIT_LENGTH[self.unit]

    @classmethod
    def parse(cls, text: str) -> Every:
        stripped = str(text).strip()
        match = re.fullmatch(r"([0-9]{1,4})([hd])", stripped)
        if match is None:
            raise DurationError(f"bad repeat {stripped[:40]!r}: use <n>d or <n>h (e.g. 1d, 12h)")
        if int(match.group(1)) == 0:
            raise DurationError(f"bad repeat {stripped!r}: it must be at least 1{match.group(2)}")
        return cls(int(match.group(1)), cast(Literal["h", "d"], match.group(2)))

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


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


def _prev_wall_time(day: date, wall: time, tz: ZoneInfo, before: datetime) -> datetime:
    """Last instant before ``before`` at which the clock in ``tz`` reads ``wall`` on ``day``,
    or failing that on an earlier day (the mirror of `_next_wall_time`)."""
    while True:
        naive = datetime.combine(day, wall)
        for fold in (0, 1):
            candidate = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
            if candidate < before:
                return candidate
        day -= timedelta(days=1)


def step_time(offset: Offset, session_start: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of one template step, before quiet hours are applied.

    * ``+<n>m`` / ``+<n>h``: that much real elapsed time after the session (``+0m`` is the
      session start itself).
    * ``+<n>d``: the same local wall-clock time ``n`` local calendar days later.
    * ``@HH:MM``: HH:MM local on the local day reached (for ``d``: ``n`` days after the
      session's local date). If that is not after the session start, it moves to the next
      day (see `_next_wall_time` for the rare repeated-hour case).
    * ``-...`` (a preparation step): the same rules mirrored, before the session; an
      ``@HH:MM`` that is not before the start moves to the day before.
    """
    start = _require_aware(session_start, "session_start")
    sign = -1 if offset.before else 1
    if offset.at is None:
        if offset.unit != "d" or offset.amount == 0:
            return start + sign * offset.length
        local = start.astimezone(tz).replace(tzinfo=None, fold=0)
        return resolve_local(local + sign * offset.length, tz)
    day: date
    if offset.unit == "d":
        day = start.astimezone(tz).date() + sign * offset.length
    else:
        day = (start + sign * offset.length).astimezone(tz).date()
    if offset.before:
        return _prev_wall_time(day, offset.at, tz, before=start)
    return _next_wall_time(day, offset.at, tz, after=start)


def occurrence_time(
    offset: Offset, every: Every | None, occurrence: int, session_start: datetime, tz: ZoneInfo
) -> datetime:
    """The UTC instant of occurrence ``occurrence`` (0 is the first) of a step, before quiet
    hours: the first is `step_time`; each later one ``every`` further on — whole local days
    keep the wall-clock time across DST changes, hours are real elapsed time."""
    return _repeat(step_time(offset, session_start, tz), every, occurrence, tz)


def _repeat(first: datetime, every: Every | None, occurrence: int, tz: ZoneInfo) -> datetime:
    if every is None or occurrence == 0:
        return first
    if every.unit == "d":
        local = first.astimezone(tz).replace(tzinfo=None, fold=0)
        return resolve_local(local + occurrence * every.length, tz)
    return first + occurrence * every.length


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
    for _round in range(4):
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


@dataclass(frozen=True)
class StepTiming:
    """What the planner needs of a template step: where it sits, and how it repeats."""

    offset: Offset
    every: Every | None = None
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_OCCURRENCES or (self.count > 1) != (self.every is not None):
            raise ValueError(f"a recurring step needs every and a count of 2-{MAX_OCCURRENCES}")


@dataclass(frozen=True)
class Occurrence:
    """One delivery a session plans: ``occurrence`` counts a recurring step's repeats from 0
    (None for a step that happens once)."""

    step: int
    occurrence: int | None
    at: datetime
    skipped: bool = False


def plan_course(
    steps: Sequence[StepTiming],
    session_start: datetime,
    tz: ZoneInfo,
    quiet: QuietHours,
    now: datetime,
) -> list[Occurrence]:
    """Every delivery of a session's template, in template order (repeats in their order).

    * Steps after the session that happen once follow `plan`: a step pushed past a later one
      is skipped rather than bunching up.
    * A recurring step's repeats are each placed like a step and moved out of quiet hours; a
      repeat that quiet hours push onto (or before) the previous kept one is skipped, so
      hourly repeats do not pile up at the end of the night.
    * A preparation step (``-1d@19:00``) is skipped when its time has already passed at
      planning (``now``), never sent late, and when quiet hours push it to the session's
      start or later, where preparing is no longer possible.
    """
    start = _require_aware(session_start, "session_start")
    now = _require_aware(now, "now")
    once = [i for i, s in enumerate(steps) if s.every is None and not s.offset.before]
    slots = dict(zip(once, plan([steps[i].offset for i in once], start, tz, quiet), strict=True))
    out: list[Occurrence] = []
    for index, step in enumerate(steps):
        if index in slots:
            out.append(Occurrence(index, None, slots[index].at, slots[index].skipped))
            continue
        previous: datetime | None = None
        first = step_time(step.offset, start, tz)
        for k in range(step.count):
            at = defer_quiet(_repeat(first, step.every, k, tz), tz, quiet)
            skipped = previous is not None and at <= previous
            if step.offset.before and (at <= now or at >= start):
                skipped = True
            if not skipped:
                previous = at
            out.append(Occurrence(index, k if step.every is not None else None, at, skipped))
    return out


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
    every: Every | None = None
    occurrence: int = 0

    def natural(self, session_start: datetime, tz: ZoneInfo) -> datetime:
        """Where its step puts it, before quiet hours (only for template steps)."""
        assert self.offset is not None
        return occurrence_time(self.offset, self.every, self.occurrence, session_start, tz)


@dataclass(frozen=True)
class Replan:
    """Outcome of a re-plan; every input id is in exactly one of the fields."""

    moved: dict[int, datetime]
    missed: list[int]
    unchanged: list[int]
    # Preparation steps that now fall in the past or at/after the session: never sent.
    skipped: list[int] = field(default_factory=list)


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


_SKIP = datetime.min.replace(tzinfo=UTC)  # a preparation step that can no longer be sent


def _collect(pending: Sequence[Planned], new: dict[int, datetime | None]) -> Replan:
    moved: dict[int, datetime] = {}
    missed: list[int] = []
    unchanged: list[int] = []
    skipped: list[int] = []
    for p in pending:
        t = new[p.id]
        if t is None:
            missed.append(p.id)
        elif t == _SKIP:
            skipped.append(p.id)
        elif t != p.due_at:
            moved[p.id] = t
        else:
            unchanged.append(p.id)
    return Replan(moved, missed, unchanged, skipped)


def _replan_steps(
    pending: Sequence[Planned],
    session_start: datetime,
    tz: ZoneInfo,
    settle: Callable[[datetime], datetime | None],
    *,
    now: datetime,
    quiet: QuietHours,
) -> dict[int, datetime | None]:
    """Recompute template steps and keep them in their current order.

    The current due times came from the planner, so sorting by them (id breaks ties)
    recovers the step order without the caller having to pass it. A preparation step is
    never settled late: past or no longer before the session, it is skipped.
    """
    new: dict[int, datetime | None] = {}
    floor: datetime | None = None
    steps = sorted((p for p in pending if p.offset is not None), key=lambda p: (p.due_at, p.id))
    for p in steps:
        assert p.offset is not None
        natural = p.natural(session_start, tz)
        if p.offset.before:
            at = defer_quiet(natural, tz, quiet)
            new[p.id] = _SKIP if at <= now or at >= session_start else at
            continue
        t = settle(natural)
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

    new = _replan_steps(pending, session_start, new_tz, settle, now=now, quiet=quiet)
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
    new = _replan_steps(
        pending,
        new_session_start,
        tz,
        lambda t: _settle(t, now, grace, tz, quiet),
        now=now,
        quiet=quiet,
    )
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

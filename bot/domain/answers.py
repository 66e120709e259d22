"""How long a sent prompt takes answers, and when it is reminded: one rule per step.

A template step may say `remind: [24h, 48h]` (at most two, after sending) and `expires: 72h`;
without them the defaults of its kind apply (SPEC "Reminders and answer windows per step").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.schedule import DurationError, parse_duration

MAX_REMINDERS = 2
# Kinds a patient answers; the others (education) take no answer, so no window, no reminder.
ANSWERED_KINDS = ("reflection", "checkin", "questionnaire")
# Kinds reminded by default (AFTERGLOW_NUDGE_AFTER); check-ins are one tap, never chased.
REMINDED_KINDS = ("reflection", "questionnaire")


@dataclass(frozen=True)
class AnswerPolicy:
    reminders: tuple[timedelta, ...]  # after sending, increasing
    window: timedelta | None  # None: takes no answer

    def closes_at(self, sent_at: datetime) -> datetime | None:
        return sent_at + self.window if self.window is not None else None

    def reminder_at(
        self, sent_at: datetime, already: int, last: datetime | None = None
    ) -> datetime | None:
        """When reminder number ``already + 1`` is due, or None when there is none: no more
        delays, or the answer window closes first. ``last`` is when the previous reminder
        actually went out: one held back by quiet hours keeps its distance to the next, so
        two never arrive together in the morning."""
        if already >= len(self.reminders):
            return None
        at = sent_at + self.reminders[already]
        if last is not None and already > 0:
            at = max(at, last + self.reminders[already] - self.reminders[already - 1])
        closes = self.closes_at(sent_at)
        return at if closes is None or at < closes else None


def policy(
    kind: str,
    remind: str | None,
    expires: str | None,
    *,
    nudge_after: timedelta,
    answer_window: timedelta,
) -> AnswerPolicy:
    """The step's own `remind` / `expires` (as stored on the delivery: "24h,48h", "" for
    none, NULL for the default), else its kind's defaults.

    * Education takes no answer: no window, no reminders, whatever the step says.
    * Reflections and questionnaires are reminded once after ``nudge_after`` by default;
      check-ins are not.
    * Everything answered closes after ``expires``, by default ``answer_window``.
    """
    if kind not in ANSWERED_KINDS:
        return AnswerPolicy((), None)
    default: tuple[timedelta, ...] = (nudge_after,) if kind in REMINDED_KINDS else ()
    try:
        delays = default if remind is None else tuple(map(parse_duration, _parts(remind)))
        window = parse_duration(expires) if expires else answer_window
    except DurationError:
        # Written by the planner from checked content, so never expected: a damaged value
        # falls back to the defaults rather than stopping the prompt.
        delays, window = default, answer_window
    return AnswerPolicy(tuple(sorted(delays))[:MAX_REMINDERS], window)


def _parts(remind: str) -> list[str]:
    return [part for part in remind.split(",") if part.strip()]

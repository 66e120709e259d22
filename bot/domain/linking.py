"""Which question a patient's text answers, and when messages join into one reply.

Nothing here knows Telegram or the database: the service gathers the facts (the question the
message replies to, the newest open reflection and check-in, the patient's last text reply, when
the bot last asked anything) and `file()` decides, by one rule:

- a bare number or choice label answers the check-in it replies to, or the newest open check-in
  when no open reflection is newer (a tap's meaning, typed);
- otherwise the message joins the patient's last text reply when it continues it: the pause
  since that reply's last message is at most `JOIN_PAUSE`, its first message is at most
  `JOIN_CAP` old (the window never slides without bound), nothing was sent to the patient in
  between (a new question closes the window of everything before it), the message does not
  reply to a different question, and the joined text stays under `MAX_JOINED_CHARS`;
- otherwise it answers the open reflection it replies to, else the newest open reflection sent
  in the last `FALLBACK_WINDOW`;
- otherwise it is kept as a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

FALLBACK_WINDOW = timedelta(hours=48)  # SPEC: most recent open reflection within 48 h
JOIN_PAUSE = timedelta(minutes=3)  # SPEC: several messages within 3 minutes are one answer
JOIN_CAP = timedelta(minutes=10)
MAX_JOINED_CHARS = 20_000

JOIN_WINDOW = JOIN_PAUSE  # the name earlier code and docs use


@dataclass(frozen=True)
class Question:
    delivery_id: int
    kind: str  # "reflection", "checkin" or "education"
    sent_at: datetime | None
    closed: bool
    closes_at: datetime | None = None  # the step's own answer window, when it has one


def is_open(question: Question, now: datetime, answer_window: timedelta) -> bool:
    """Sent, not closed, and inside its answer window (the step's own, else
    ``answer_window``); education is never answered by text."""
    if question.kind not in ("reflection", "checkin") or question.closed:
        return False
    if question.sent_at is None:
        return False
    if question.closes_at is not None:
        return now <= question.closes_at
    return now - question.sent_at <= answer_window


def _open_of_kind(
    question: Question | None, kind: str, now: datetime, answer_window: timedelta
) -> Question | None:
    if question is None or question.kind != kind or not is_open(question, now, answer_window):
        return None
    return question


def choose_target(
    replied_to: Question | None,
    latest_unanswered: Question | None,
    now: datetime,
    answer_window: timedelta,
) -> int | None:
    """The reflection free text answers: reply-to wins when it points at an open reflection;
    else the latest unanswered one, if it was sent within the fallback window."""
    explicit = _open_of_kind(replied_to, "reflection", now, answer_window)
    if explicit is not None:
        return explicit.delivery_id
    latest = _open_of_kind(latest_unanswered, "reflection", now, answer_window)
    if latest is not None:
        assert latest.sent_at is not None
        if now - latest.sent_at <= FALLBACK_WINDOW:
            return latest.delivery_id
    return None


def checkin_target(
    replied_to: Question | None,
    latest_reflection: Question | None,
    latest_checkin: Question | None,
    now: datetime,
    answer_window: timedelta,
) -> int | None:
    """The check-in a typed number or label would answer: the open one replied to, else the
    newest open check-in unless an open reflection was sent after it."""
    explicit = _open_of_kind(replied_to, "checkin", now, answer_window)
    if explicit is not None:
        return explicit.delivery_id
    checkin = _open_of_kind(latest_checkin, "checkin", now, answer_window)
    if checkin is None or now - (checkin.sent_at or now) > FALLBACK_WINDOW:
        return None
    reflection = _open_of_kind(latest_reflection, "reflection", now, answer_window)
    if reflection is not None and (reflection.sent_at, reflection.delivery_id) > (
        checkin.sent_at,
        checkin.delivery_id,
    ):
        return None
    return checkin.delivery_id


@dataclass(frozen=True)
class Previous:
    """The patient's last text reply (an answer or a note)."""

    delivery_id: int | None
    received_at: datetime  # its first message
    updated_at: datetime  # its latest message
    length: int


def joins(
    previous: Previous | None,
    explicit_target: int | None,
    now: datetime,
    added_length: int,
    last_asked: datetime | None = None,
) -> bool:
    """Whether a message continues `previous` (see the module's rule)."""
    if previous is None or now - previous.updated_at > JOIN_PAUSE:
        return False
    if now - previous.received_at > JOIN_CAP:
        return False
    if last_asked is not None and last_asked >= previous.updated_at:
        return False
    if explicit_target is not None and explicit_target != previous.delivery_id:
        return False
    return previous.length + added_length <= MAX_JOINED_CHARS


@dataclass(frozen=True)
class Facts:
    """What the service knows about a message's surroundings."""

    replied_to: Question | None  # the prompt (or its reminder) the message replies to
    latest_reflection: Question | None  # the newest sent, unclosed reflection
    latest_checkin: Question | None  # the newest sent, unanswered check-in
    previous: Previous | None  # the patient's last text reply
    last_asked: datetime | None  # when anything (a prompt, a reminder) was last sent


@dataclass(frozen=True)
class Choice:
    delivery_id: int
    value: str


@dataclass(frozen=True)
class Join:
    pass


@dataclass(frozen=True)
class Answer:
    delivery_id: int


@dataclass(frozen=True)
class Note:
    pass


Filing = Choice | Join | Answer | Note


def file(
    facts: Facts,
    *,
    now: datetime,
    answer_window: timedelta,
    added_length: int,
    choice_value: Callable[[int], str | None],
) -> Filing:
    """Where a message goes (see the module's rule). `choice_value(delivery_id)` reads the
    message as an answer to that check-in: the value, or None when it is not one."""
    checkin = checkin_target(
        facts.replied_to, facts.latest_reflection, facts.latest_checkin, now, answer_window
    )
    if checkin is not None:
        value = choice_value(checkin)
        if value is not None:
            return Choice(checkin, value)
    explicit = _open_of_kind(facts.replied_to, "reflection", now, answer_window)
    explicit_target = explicit.delivery_id if explicit is not None else None
    if joins(facts.previous, explicit_target, now, added_length, facts.last_asked):
        return Join()
    target = choose_target(facts.replied_to, facts.latest_reflection, now, answer_window)
    return Answer(target) if target is not None else Note()

"""Which question a patient's free text answers, and when messages join into one reply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

FALLBACK_WINDOW = timedelta(hours=48)  # SPEC: most recent open reflection within 48 h
JOIN_WINDOW = timedelta(minutes=3)
MAX_JOINED_CHARS = 20_000


@dataclass(frozen=True)
class Question:
    delivery_id: int
    is_reflection: bool
    sent_at: datetime | None
    closed: bool


def is_open(question: Question, now: datetime, answer_window: timedelta) -> bool:
    return (
        question.is_reflection
        and not question.closed
        and question.sent_at is not None
        and now - question.sent_at <= answer_window
    )


def choose_target(
    replied_to: Question | None,
    latest_unanswered: Question | None,
    now: datetime,
    answer_window: timedelta,
) -> int | None:
    """Reply-to wins when it points at an open reflection; else the latest unanswered one."""
    if replied_to is not None and is_open(replied_to, now, answer_window):
        return replied_to.delivery_id
    if latest_unanswered is not None and is_open(latest_unanswered, now, answer_window):
        assert latest_unanswered.sent_at is not None
        if now - latest_unanswered.sent_at <= FALLBACK_WINDOW:
            return latest_unanswered.delivery_id
    return None


@dataclass(frozen=True)
class Previous:
    delivery_id: int | None
    updated_at: datetime
    length: int


def joins(
    previous: Previous | None,
    explicit_target: int | None,
    now: datetime,
    added_length: int,
) -> bool:
    """Several messages in a row are one answer: join unless the patient replied to another
    question, paused for more than a few minutes, or the answer would grow unreasonably."""
    if previous is None or now - previous.updated_at > JOIN_WINDOW:
        return False
    if explicit_target is not None and explicit_target != previous.delivery_id:
        return False
    return previous.length + added_length <= MAX_JOINED_CHARS

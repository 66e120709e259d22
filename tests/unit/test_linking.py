"""Which question a free-text answer belongs to, and when messages join into one reply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.linking import (
    FALLBACK_WINDOW,
    JOIN_CAP,
    JOIN_WINDOW,
    MAX_JOINED_CHARS,
    Previous,
    Question,
    choose_target,
    joins,
)

NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=72)
SECOND = timedelta(seconds=1)

REPLIED = 1
LATEST = 2


def reflection(delivery_id: int, age: timedelta | None, *, closed: bool = False) -> Question:
    sent_at = None if age is None else NOW - age
    return Question(delivery_id, kind="reflection", sent_at=sent_at, closed=closed)


def education(delivery_id: int, age: timedelta) -> Question:
    return Question(delivery_id, kind="education", sent_at=NOW - age, closed=False)


FRESH = reflection(LATEST, timedelta(hours=2))

CHOOSE = [
    # (case, replied_to, latest_unanswered, expected)
    ("reply-to open reflection wins", reflection(REPLIED, timedelta(hours=30)), FRESH, REPLIED),
    ("reply-to open, nothing else", reflection(REPLIED, timedelta(hours=1)), None, REPLIED),
    ("reply-to beyond 48h but in window", reflection(REPLIED, timedelta(hours=60)), None, REPLIED),
    ("reply-to closed falls back", reflection(REPLIED, timedelta(1), closed=True), FRESH, LATEST),
    ("reply-to too old falls back", reflection(REPLIED, WINDOW + SECOND), FRESH, LATEST),
    ("reply-to education falls back", education(REPLIED, timedelta(hours=1)), FRESH, LATEST),
    ("reply-to unsent falls back", reflection(REPLIED, None), FRESH, LATEST),
    ("reply-to closed, no fallback", reflection(REPLIED, timedelta(1), closed=True), None, None),
    ("no reply, latest fresh", None, FRESH, LATEST),
    ("no reply, latest at 48h", None, reflection(LATEST, FALLBACK_WINDOW), LATEST),
    ("no reply, latest past 48h", None, reflection(LATEST, FALLBACK_WINDOW + SECOND), None),
    ("no reply, latest closed", None, reflection(LATEST, timedelta(1), closed=True), None),
    ("no reply, latest not reflection", None, education(LATEST, timedelta(hours=1)), None),
    ("no reply, latest unsent", None, reflection(LATEST, None), None),
    ("nothing at all", None, None, None),
]


@pytest.mark.parametrize(
    ("replied_to", "latest", "expected"),
    [case[1:] for case in CHOOSE],
    ids=[case[0] for case in CHOOSE],
)
def test_choose_target(
    replied_to: Question | None, latest: Question | None, expected: int | None
) -> None:
    assert choose_target(replied_to, latest, NOW, WINDOW) == expected


@pytest.mark.parametrize(
    ("age", "expected"), [(WINDOW - SECOND, REPLIED), (WINDOW, REPLIED), (WINDOW + SECOND, None)]
)
def test_answer_window_boundary_for_reply_to(age: timedelta, expected: int | None) -> None:
    assert choose_target(reflection(REPLIED, age), None, NOW, WINDOW) == expected


def test_short_answer_window_closes_before_fallback_window() -> None:
    window = timedelta(hours=24)
    latest = reflection(LATEST, timedelta(hours=30))
    assert choose_target(None, latest, NOW, window) is None
    assert choose_target(None, reflection(LATEST, window), NOW, window) == LATEST


def previous(
    age: timedelta,
    *,
    delivery_id: int | None = 7,
    length: int = 100,
    started: timedelta | None = None,
) -> Previous:
    return Previous(
        delivery_id=delivery_id,
        received_at=NOW - (age if started is None else started),
        updated_at=NOW - age,
        length=length,
    )


JOINS = [
    # (case, previous, explicit_target, added_length, expected)
    ("no previous message", None, None, 10, False),
    ("just now", previous(SECOND), None, 10, True),
    ("exactly 3 minutes", previous(JOIN_WINDOW), None, 10, True),
    ("just over 3 minutes", previous(JOIN_WINDOW + SECOND), None, 10, False),
    ("reply to the same question", previous(SECOND), 7, 10, True),
    ("reply to a different question", previous(SECOND), 8, 10, False),
    ("explicit reply, previous unlinked", previous(SECOND, delivery_id=None), 8, 10, False),
    ("unlinked previous, no reply", previous(SECOND, delivery_id=None), None, 10, True),
    ("exactly at size cap", previous(SECOND, length=MAX_JOINED_CHARS - 10), None, 10, True),
    ("over size cap", previous(SECOND, length=MAX_JOINED_CHARS - 10), None, 11, False),
    ("first message at the cap", previous(SECOND, started=JOIN_CAP), None, 10, True),
    ("first message past the cap", previous(SECOND, started=JOIN_CAP + SECOND), None, 10, False),
]


@pytest.mark.parametrize(
    ("prev", "explicit", "added", "expected"),
    [case[1:] for case in JOINS],
    ids=[case[0] for case in JOINS],
)
def test_joins(prev: Previous | None, explicit: int | None, added: int, expected: bool) -> None:
    assert joins(prev, explicit, NOW, added) is expected


def test_windows_match_spec() -> None:
    assert (timedelta(hours=48), timedelta(minutes=3)) == (FALLBACK_WINDOW, JOIN_WINDOW)


@pytest.mark.parametrize(
    ("asked_ago", "expected"),
    [(None, True), (timedelta(minutes=1), True), (SECOND, False), (timedelta(0), False)],
    ids=["nothing asked", "asked before the last message", "asked since", "asked now"],
)
def test_a_question_sent_since_closes_the_join(asked_ago: timedelta | None, expected: bool) -> None:
    last = previous(timedelta(seconds=30))
    asked = None if asked_ago is None else NOW - asked_ago
    assert joins(last, None, NOW, 10, asked) is expected

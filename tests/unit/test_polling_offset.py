"""Which offset the poller confirms: never an update still being handled, unless so many are
that newer updates (a crisis message) could not be fetched at all."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from telegram import Update

from bot.telegram import polling
from bot.telegram.polling import Poller


class _App:
    """Just enough of an Application for `Poller._take`: tasks are recorded, never run."""

    def __init__(self) -> None:
        self.tasks: list[Coroutine[Any, Any, Any]] = []

    def create_task(self, coroutine: Coroutine[Any, Any, Any], **_: Any) -> None:
        coroutine.close()
        self.tasks.append(coroutine)


def take(poller: Poller, *ids: int) -> list[bool]:
    return [poller._take(Update(update_id)) for update_id in ids]


def test_the_offset_stops_at_the_oldest_update_in_flight() -> None:
    poller = Poller(_App())
    assert take(poller, 10, 11, 12) == [True, True, True]
    assert poller.offset() == 10
    assert take(poller, 10, 11, 12, 13) == [False, False, False, True]  # asked again: skipped
    poller._in_flight.discard(10)
    poller._next = 11
    assert poller.offset() == 11


def test_a_flood_in_flight_does_not_stop_newer_updates_from_being_fetched() -> None:
    poller = Poller(_App())
    first = 100
    take(poller, *range(first, first + polling.MAX_UNCONFIRMED - 1))
    assert poller.offset() == first
    take(poller, first + polling.MAX_UNCONFIRMED - 1)
    assert poller.offset() == first + polling.MAX_UNCONFIRMED  # everything taken is confirmed


def test_a_page_of_finished_updates_behind_one_slow_one_is_confirmed() -> None:
    """One slow handler and a hundred finished after it: without confirming them, every poll
    would return the same page and nothing newer would ever be fetched."""
    poller = Poller(_App())
    take(poller, *range(5, 5 + polling.PAGE))
    for update_id in range(6, 5 + polling.PAGE):  # all but the first finish
        poller._in_flight.discard(update_id)
        poller._next = update_id + 1
    assert poller.offset() == 5
    assert poller.offset(jammed=True) == 5 + polling.PAGE

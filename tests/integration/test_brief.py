"""The pre-session brief: two hours before a planned session its therapist gets one protected
message about the patient since their last session, in their own words where a reflection
asks for it; once, moved with the session, never for a cancelled one, off with 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import SessionState, TreatmentSession
from bot.emulator.people import EmuUser
from tests.integration.world import World, running
from tests.support.pg import backends

MARK = "Before the session with river"


@pytest.fixture(params=backends())
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(request.param, tmp_path) as w:
        yield w


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def briefs(world: World, dr: EmuUser) -> list[dict[str, object]]:
    return [m for m in world.state.sent_messages(dr.id) if MARK in str(m.get("text", ""))]


async def course(world: World) -> tuple[EmuUser, EmuUser]:
    """A session logged now (Tue 10:00 New York), the next planned Thu 12:00 (16:00 UTC)."""
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    await world.say(dr, "/session river")
    await world.say(dr, "/session river 2026-03-12 12:00 course")
    return dr, pat


async def test_the_brief_comes_two_hours_before_once_with_the_patients_words(
    world: World,
) -> None:
    dr, pat = await course(world)
    await world.run_until(utc(11, 23, 5), step=timedelta(minutes=30))  # Wed 19:05: intention
    intention = next(
        m for m in reversed(world.state.sent_messages(pat.id)) if "session is tomorrow" in m["text"]
    )
    await world.say(pat, "To stop bracing all the time.", reply_to=intention["message_id"])
    mood = next(
        m for m in reversed(world.state.sent_messages(pat.id)) if "How is your mood" in m["text"]
    )
    await world.tap(pat, mood["message_id"], "6")

    await world.run_until(utc(12, 13, 55), step=timedelta(minutes=30))
    assert briefs(world, dr) == []
    await world.run_until(utc(12, 14, 10), step=timedelta(minutes=5))
    [brief] = briefs(world, dr)
    text = str(brief["text"])
    assert "Thu 12 Mar 12:00 (America/New_York)" in text
    assert "prompts answered:" in text and "chk-mood: 6 → 6 (1 answer)" in text
    assert "To stop bracing all the time." in text and "no safety alerts" in text
    call = next(c for c in world.state.calls_to("sendMessage") if MARK in str(c.params.get("text")))
    assert call.params.get("protect_content")
    await world.tap(dr, int(brief["message_id"]), "Open river")  # the card, as a new message
    assert world.last(dr)["message_id"] != brief["message_id"]
    assert "Status: active" in world.last(dr)["text"] and len(briefs(world, dr)) == 1

    for _ in range(5):
        await world.tick()
    await world.run_until(utc(12, 16, 30), step=timedelta(minutes=10))
    assert len(briefs(world, dr)) == 1


async def test_no_brief_for_a_cancelled_session_and_one_for_the_moved_time(world: World) -> None:
    dr, _ = await course(world)
    await world.say(dr, "/session river 2026-03-14 12:00 course")
    await world.say(dr, "/sessions river")
    board = world.last(dr)["message_id"]
    await world.tap(dr, board, "1 · Cancel")  # Thursday's
    await world.tap(dr, board, "Yes, cancel the session")
    await world.tap(dr, board, "1 · Move")  # Saturday's, now the first planned: one day on
    await world.tap(dr, board, "+1 day")
    await world.run_until(utc(15, 13, 55), step=timedelta(minutes=30))
    assert briefs(world, dr) == []  # not Thursday (cancelled), not Saturday (moved)
    await world.run_until(utc(15, 14, 10), step=timedelta(minutes=5))
    [brief] = briefs(world, dr)
    assert "Sun 15 Mar 12:00" in str(brief["text"])


@pytest.mark.parametrize("backend", backends())
async def test_brief_before_zero_turns_it_off(backend: str, tmp_path: Path) -> None:
    async with running(backend, tmp_path, brief_before="0") as world:
        dr, _ = await course(world)
        await world.run_until(utc(12, 16, 30), step=timedelta(minutes=30))
        assert briefs(world, dr) == []


async def test_two_replicas_claim_one_brief(world: World) -> None:
    import asyncio

    from bot.services import brief

    await course(world)
    now = utc(12, 14, 30)

    async def replica() -> int:
        async with world.rt.sessions() as session, session.begin():
            due = await brief.claim_due(
                session,
                now=now,
                before=timedelta(hours=2),
                content=world.rt.content,
                cipher=world.rt.cipher,
            )
            return len(due)

    if world.rt.engine.dialect.name == "sqlite":
        counts = [await replica(), await replica()]  # one writer at a time
    else:
        counts = list(await asyncio.gather(replica(), replica()))
    assert sorted(counts) == [0, 1]


async def test_a_brief_telegram_refuses_is_tried_again_at_the_next_tick(world: World) -> None:
    dr, _ = await course(world)
    world.clock.set(utc(12, 14, 5))
    world.state.fail("sendMessage", status=500, description="Internal Server Error", chat_id=dr.id)
    await world.tick()
    assert briefs(world, dr) == []
    async with world.rt.sessions() as session:
        [planned] = [
            s
            for s in await session.scalars(select(TreatmentSession))
            if s.state is SessionState.PLANNED
        ]
        assert planned.briefed_at is None  # given back, not lost
    await world.tick()
    await world.tick()
    assert len(briefs(world, dr)) == 1

"""Course of treatment, the failure paths and the re-planning: overlapping sessions, moving
(into quiet hours, across DST, by a stale button), cancelling after the start, a crash while a
planned session becomes the anchor, and two replicas anchoring at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.db.models import (
    AuditEntry,
    DeliveryState,
    SessionState,
    Therapist,
    TreatmentSession,
)
from bot.emulator.people import EmuUser
from bot.services import course, sessions
from bot.services.errors import NotFound
from bot.views import render
from tests.integration.world import World, running
from tests.support.pg import backends

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "course_spec"
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(params=backends())
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(request.param, tmp_path, content_dirs=str(FIXTURE)) as w:
        yield w


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


async def all_sessions(world: World) -> list[TreatmentSession]:
    async with world.rt.sessions() as session:
        rows = await session.scalars(select(TreatmentSession).order_by(TreatmentSession.id))
        return list(rows)


def message(world: World, person: EmuUser, message_id: int) -> dict[str, Any]:
    return next(m for m in world.state.sent_messages(person.id) if m["message_id"] == message_id)


def alert(world: World) -> str:
    return str(world.state.calls_to("answerCallbackQuery")[-1].params.get("text", ""))


async def planned(world: World, zone: str = "America/New_York") -> tuple[EmuUser, EmuUser]:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river", zone=zone)
    return dr, pat


async def listing(world: World, dr: EmuUser) -> int:
    await world.say(dr, "/sessions river")
    return int(world.last(dr)["message_id"])


async def move(world: World, dr: EmuUser, listing_id: int, label: str, n: int = 1) -> None:
    await world.tap(dr, listing_id, f"{n} · Move")
    await world.tap(dr, listing_id, label)


# --- planning refusals ----------------------------------------------------------------------


async def test_an_overlapping_session_is_refused_and_nothing_is_written(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river 2026-03-13 12:00 spec-prep")
    before = len(await world.deliveries("river"))
    await world.say(dr, "/session river 2026-03-13 13:30 spec-prep")
    assert "already has a session" in world.last(dr)["text"]
    assert "/sessions river" in world.last(dr)["text"]
    assert len(await all_sessions(world)) == 1
    assert len(await world.deliveries("river")) == before


async def test_planning_in_the_past_beyond_the_back_dating_limit_is_refused(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river 2026-01-10 12:00 spec-prep")
    assert "within 30 days" in world.last(dr)["text"]
    await world.say(dr, "/session river 2026-09-10 12:00 spec-prep")  # 184 days ahead
    assert f"up to {sessions.PLAN_AHEAD.days} days ahead" in world.last(dr)["text"]
    assert await all_sessions(world) == []


async def test_the_reply_to_a_planned_session_is_compact_and_local(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river 2026-03-13 12:00 course")
    text = world.last(dr)["text"]
    assert text.startswith("Session planned for river on Fri 13 Mar 12:00")
    assert "Before the session" in text and "After the session" in text
    assert "daily checkin 20:00 × 6: chk-mood-today (Sat 14 Mar – Thu 19 Mar)" in text


# --- moving ---------------------------------------------------------------------------------


async def test_moving_a_day_later_re_plans_its_steps_without_telling_the_patient(
    world: World,
) -> None:
    dr, pat = await planned(world)
    await world.say(dr, "/session river 2026-03-13 12:00 spec-prep")
    told = len(world.state.sent_messages(pat.id))
    [s] = await all_sessions(world)
    before = {d.prompt_key: d.due_at for d in await world.deliveries("river")}
    board = await listing(world, dr)
    await move(world, dr, board, "+1 day")
    assert "Moved: Fri 13 Mar 12:00 → Sat 14 Mar 12:00" in message(world, dr, board)["text"]
    [s] = await all_sessions(world)
    assert s.started_at == utc(3, 14, 16) and s.state is SessionState.PLANNED
    after = {d.prompt_key: d.due_at for d in await world.deliveries("river")}
    assert after == {key: due + timedelta(days=1) for key, due in before.items()}
    assert len(world.state.sent_messages(pat.id)) == told
    # The press on the menu drawn for Friday is stale now: nothing moves twice.
    await world.tap(dr, board, "1 · Move")
    await world.say(dr, "/sessions river")
    assert "Sat 14 Mar 12:00" in world.last(dr)["text"]


async def test_moving_into_the_evening_sends_nothing_in_quiet_hours(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river 2026-03-13 18:30 spec-prep")  # +1h is 19:30
    board = await listing(world, dr)
    await move(world, dr, board, "+1 hour")
    await world.tap(dr, board, "1 · Move")
    await world.tap(dr, board, "+1 hour")  # 20:30: +1h would be 21:30, inside quiet hours
    [s] = await all_sessions(world)
    assert s.started_at.astimezone(NY).strftime("%H:%M") == "20:30"
    rows = {d.prompt_key: d for d in await world.deliveries("river")}
    first = rows["edu-session-is-a-start"].due_at.astimezone(NY)
    assert (first.day, first.strftime("%H:%M")) == (14, "08:00")  # the end of quiet hours
    for d in rows.values():
        if d.state is DeliveryState.SCHEDULED:
            local = d.due_at.astimezone(NY).time()
            assert not (local.hour >= 21 or local.hour < 8), (d.prompt_key, local)


async def test_moving_across_the_dst_change_keeps_wall_clock_times(world: World) -> None:
    dr, _ = await planned(world, zone="Europe/Berlin")
    world.clock.set(utc(3, 20, 9))
    await world.say(dr, "/session river 2026-03-28 10:00 spec-prep")  # Saturday, CET
    board = await listing(world, dr)
    await move(world, dr, board, "+1 day")  # Sunday 29 March, CEST from 02:00
    [s] = await all_sessions(world)
    assert s.started_at == utc(3, 29, 8)  # still 10:00 in Berlin
    local = {
        d.prompt_key: d.due_at.astimezone(BERLIN).strftime("%d %H:%M")
        for d in await world.deliveries("river")
    }
    assert local == {
        "ref-question-for-therapist": "28 19:00",
        "edu-session-is-a-start": "29 11:00",
        "ref-this-time": "29 19:30",
        "chk-energy": "30 09:30",
    }


async def test_moving_into_the_past_or_onto_another_session_is_refused(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river 2026-03-10 10:30 spec-prep")  # in 30 minutes
    await world.say(dr, "/session river 2026-03-11 12:00 spec-prep")
    board = await listing(world, dr)
    await move(world, dr, board, "−1 hour", n=1)
    assert "in the past" in alert(world)
    await world.tap(dr, board, "◀ Sessions")
    await move(world, dr, board, "+1 hour", n=2)  # Wednesday 13:00; the listing is back
    await move(world, dr, board, "−1 day", n=2)  # Tuesday 13:00: 2.5 hours from the first
    assert "already has a session" in alert(world)
    starts = [s.started_at for s in await all_sessions(world)]
    assert starts == [utc(3, 10, 14, 30), utc(3, 11, 17)]


# --- cancelling -----------------------------------------------------------------------------


async def test_cancelling_after_the_start_is_refused(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river 2026-03-11 10:00 spec-prep")
    board = await listing(world, dr)
    await world.run_until(utc(3, 11, 14, 30), step=timedelta(minutes=30))
    await world.tap(dr, board, "1 · Cancel")
    assert "already started" in alert(world)
    [s] = await all_sessions(world)
    assert s.state is SessionState.STARTED and s.cancelled_at is None
    rows = await world.deliveries("river")
    assert not any(d.state is DeliveryState.CANCELLED for d in rows)
    # The new listing shows it as done, with no buttons for it.
    await world.say(dr, "/sessions river")
    labels = [b["text"] for row in world.last(dr)["reply_markup"]["inline_keyboard"] for b in row]
    assert not any("Cancel" in label or "Move" in label for label in labels)


async def test_another_therapist_cannot_move_or_cancel(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river 2026-03-13 12:00 spec-prep")
    [s] = await all_sessions(world)
    other = await world.therapist("Dr Okafor")
    async with world.rt.sessions() as session:
        other_id = await session.scalar(select(Therapist.id).where(Therapist.name == "Dr Okafor"))
    assert other_id is not None
    for verb in ("cancel", "move"):
        async with world.rt.sessions() as session, session.begin():
            with pytest.raises(NotFound):
                if verb == "cancel":
                    await course.cancel_session(
                        session, therapist_id=other_id, session_id=s.id, now=utc(3, 10, 14)
                    )
                else:
                    await course.move_session(
                        session,
                        therapist_id=other_id,
                        session_id=s.id,
                        shift="+1d",
                        now=utc(3, 10, 14),
                        grace=timedelta(hours=6),
                    )
    await world.say(other, "/sessions river")
    assert "no patient called" in world.last(other)["text"]
    [s] = await all_sessions(world)
    assert s.state is SessionState.PLANNED and s.started_at == utc(3, 13, 16)


# --- anchoring: crash and replicas ----------------------------------------------------------


async def test_a_crash_while_anchoring_leaves_it_planned_and_the_next_tick_anchors_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river")  # logged now: the standard template
    await world.say(dr, "/session river 2026-03-12 12:00 spec-prep")
    real = course.cancel_earlier
    calls = 0

    async def crash_after_cancelling(*args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        await real(*args, **kwargs)  # the cancellations are written ...
        raise ConnectionError("the database went away")  # ... and the commit never happens

    monkeypatch.setattr(course, "cancel_earlier", crash_after_cancelling)
    world.clock.set(utc(3, 12, 16, 1))
    await world.tick()  # sending goes on; the anchoring is rolled back
    assert calls == 1
    states = [s.state for s in await all_sessions(world)]
    assert states == [SessionState.STARTED, SessionState.PLANNED]
    assert not any(d.state is DeliveryState.CANCELLED for d in await world.deliveries("river"))

    monkeypatch.setattr(course, "cancel_earlier", real)
    await world.tick()
    await world.tick()
    logged, later = await all_sessions(world)
    assert later.state is SessionState.STARTED and later.anchored_at == utc(3, 12, 16, 1)
    rows = await world.deliveries("river")
    cancelled = [d for d in rows if d.state is DeliveryState.CANCELLED]
    assert cancelled and all(d.session_id == logged.id for d in cancelled)
    assert all(d.due_at >= later.started_at for d in cancelled)
    async with world.rt.sessions() as session:
        starts = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "session.start")
        )
    assert starts == 1


async def test_two_replicas_anchoring_at_once_anchor_once(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river")
    await world.say(dr, "/session river 2026-03-12 12:00 spec-prep")
    now = utc(3, 12, 16, 1)

    async def replica() -> list[int]:
        async with world.rt.sessions() as session, session.begin():
            return await course.start_due(session, now=now)

    if world.rt.engine.dialect.name == "sqlite":
        results = [await replica(), await replica()]  # one writer at a time
    else:
        results = list(await asyncio.gather(replica(), replica()))
    assert sorted(len(r) for r in results) == [0, 1]
    rows = await world.deliveries("river")
    assert sum(d.state is DeliveryState.CANCELLED for d in rows) > 0


async def test_the_tick_reports_the_session_it_anchored(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river 2026-03-12 12:00 spec-prep")
    [s] = await all_sessions(world)
    world.clock.set(utc(3, 12, 16))
    assert (await world.tick()).anchored == [s.id]
    assert (await world.tick()).anchored == []
    assert render.cadence("1d") == "daily" and render.cadence("12h") == "every 12 h"


# --- re-planning recurring steps and showing them -------------------------------------------


async def test_a_zone_change_keeps_every_repeat_at_its_local_time(world: World) -> None:
    dr, pat = await planned(world)
    await world.say(dr, "/session river 2026-03-13 12:00 course")
    await world.say(pat, "/settings zone Berlin")
    assert world.last(pat)["text"].startswith("Time zone set to Europe/Berlin.")
    checkins = [d for d in await world.deliveries("river") if d.prompt_key == "chk-mood-today"]
    assert len(checkins) == 6
    assert {d.due_at.astimezone(BERLIN).strftime("%H:%M") for d in checkins} == {"20:00"}
    assert [d.occurrence for d in checkins] == [0, 1, 2, 3, 4, 5]
    # The session itself keeps its instant; the preparation the evening before follows Berlin.
    [s] = await all_sessions(world)
    assert s.started_at == utc(3, 13, 16)
    intention = next(d for d in await world.deliveries("river") if d.prompt_key == "ref-intention")
    assert intention.due_at.astimezone(BERLIN).strftime("%d %H:%M") == "12 19:00"


async def test_schedule_folds_the_repeats_of_a_recurring_step(world: World) -> None:
    dr, _ = await planned(world)
    await world.say(dr, "/session river 2026-03-13 12:00 course")
    await world.say(dr, "/schedule river")
    text = world.last(dr)["text"]
    lines = [line for line in text.splitlines() if "chk-mood-today" in line]
    assert len(lines) == 1, lines
    assert "(then daily × 5 more, to Thu 19 Mar)" in lines[0]
    assert "before the session" in next(
        line for line in text.splitlines() if "ref-intention" in line
    )


async def test_a_stopped_patient_gets_nothing_when_a_planned_session_starts(world: World) -> None:
    dr, pat = await planned(world)
    await world.say(dr, "/session river 2026-03-11 10:00 spec-prep")
    await world.say(pat, "/stop")
    await world.tap(pat, world.last(pat)["message_id"], "Stop")
    told = len(world.state.sent_messages(pat.id))
    await world.run_until(utc(3, 12, 2), step=timedelta(minutes=15))
    assert len(world.state.sent_messages(pat.id)) == told
    [s] = await all_sessions(world)
    assert s.state is SessionState.STARTED  # it happened; nothing of it is sent
    rows = await world.deliveries("river")
    assert rows and all(d.sent_at is None for d in rows)
    assert not any(d.state in (DeliveryState.SCHEDULED, DeliveryState.HELD) for d in rows)

"""`/trends`: a therapist gets their patient's check-ins as a chart (a protected PNG); nobody
else gets anything, and reading it is audit-logged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import AuditEntry
from bot.emulator.people import EmuUser
from tests.integration.world import World, running
from tests.support.pg import backends


@pytest.fixture(params=backends())
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(request.param, tmp_path) as w:
        yield w


async def answer_mood(world: World, pat: EmuUser, value: str) -> None:
    """Tap `value` on the latest mood check-in the patient got."""
    asked = [
        m for m in world.state.sent_messages(pat.id) if "How is your mood" in m.get("text", "")
    ]
    assert asked, [m.get("text", "")[:40] for m in world.state.sent_messages(pat.id)]
    await world.tap(pat, asked[-1]["message_id"], value)


async def test_trends_sends_a_protected_chart_of_the_check_ins(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    await world.say(dr, "/session river")
    await world.run_until(datetime(2026, 3, 11, 23, 5, tzinfo=UTC), step=timedelta(minutes=30))
    await answer_mood(world, pat, "7")
    await world.run_until(datetime(2026, 3, 13, 23, 5, tzinfo=UTC), step=timedelta(minutes=30))

    await world.say(dr, "/trends river")
    [photo] = world.state.sent_photos(dr.id)
    assert photo.content.startswith(b"\x89PNG\r\n\x1a\n") and len(photo.content) > 5_000
    assert photo.caption is not None and "river" in photo.caption
    call = world.state.calls_to("sendPhoto")[-1].params
    assert call.get("protect_content") in (True, "true", "True")
    async with world.rt.sessions() as session:
        reads = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "trends.read"))
        )
    assert len(reads) == 1 and reads[0].actor.startswith("therapist:")


async def test_trends_refuses_everyone_else_and_says_when_there_is_nothing(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    await world.say(dr, "/trends river")
    assert "has not answered a check-in" in world.last(dr)["text"]
    await world.say(dr, "/trends")
    assert world.last(dr)["text"].startswith("Usage: /trends")

    other = await world.therapist("Dr Okafor")
    await world.say(other, "/trends river")
    assert "no patient called" in world.last(other)["text"]
    await world.say(pat, "/trends river")
    assert world.last(pat)["text"].startswith("Sorry, that command isn't available")
    assert world.state.sent_photos() == []


async def test_progress_shows_a_patient_their_own_check_ins_only_when_the_clinic_allows(
    world: World, tmp_path: Path
) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    await world.say(pat, "/progress")
    assert "not switched on" in world.last(pat)["text"]
    assert world.state.sent_photos() == []
    await world.say(dr, "/progress")
    assert world.last(dr)["text"].startswith("Sorry, that command isn't available")


@pytest.mark.parametrize("backend", backends())
async def test_progress_when_switched_on(backend: str, tmp_path: Path) -> None:
    async with running(backend, tmp_path, show_scores_to_patient=True) as world:
        dr = await world.therapist()
        pat = await world.enrolled_patient(dr, "river")
        other = await world.enrolled_patient(dr, "lake")
        await world.say(pat, "/progress")
        assert "nothing to chart yet" in world.last(pat)["text"]
        await world.say(dr, "/session river")
        await world.run_until(datetime(2026, 3, 11, 23, 5, tzinfo=UTC), step=timedelta(minutes=30))
        await answer_mood(world, pat, "4")
        await world.say(pat, "/progress")
        [photo] = world.state.sent_photos(pat.id)
        assert photo.content.startswith(b"\x89PNG") and photo.caption
        assert "Only you and your therapist" in photo.caption and "river" not in photo.caption
        await world.say(other, "/progress")
        assert "nothing to chart yet" in world.last(other)["text"]
        from bot.views.menus import patient_menu

        shown = [c.command for c in patient_menu(world.rt.settings.show_scores_to_patient)]
        assert "progress" in shown and "progress" not in [c.command for c in patient_menu(False)]

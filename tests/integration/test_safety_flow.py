"""Crisis language end to end: help at once, an alert that cannot be missed, help that works
with the database down, and a crisis reply that a burst of prompts cannot delay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, select, text

from bot.app import build_application, build_runtime
from bot.config import Settings
from bot.db import identity
from bot.db.models import Alert, Base, Delivery, DeliveryState, Patient, PatientStatus, PromptKind
from bot.emulator import BotApiState, EmulatorServer
from bot.services import therapists
from bot.telegram.polling import Poller
from tests.integration.world import World, running
from tests.support.pg import backends

ONCALL = -100123


@pytest.fixture(params=backends())
async def clinic(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(
        request.param, tmp_path, oncall_chat_id=ONCALL, clinic_phone="+1 555 0100"
    ) as w:
        yield w


HELP_MARK = "you do not have to face this alone"  # from prompts/safety/resources.yaml


def resources_sent(world: World, chat_id: int) -> int:
    return sum(HELP_MARK in m.get("text", "") for m in world.state.sent_messages(chat_id))


async def test_crisis_words_get_help_at_once_and_alert_the_therapist(clinic: World) -> None:
    world = clinic
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    await world.say(pat, "honestly everyone would be better off without me")

    help_message = world.last(pat)["text"]
    assert "988" in help_message and "+1 555 0100" in help_message
    assert "not monitored in real time" in help_message
    alert = world.last(dr)
    assert "Safety alert" in alert["text"] and "river" in alert["text"]
    assert "better off without me" in alert["text"]
    async with world.rt.sessions() as session:
        flagged = await session.scalar(text("SELECT flagged FROM replies"))
        row = await session.scalar(select(Alert))
    assert flagged and row is not None and row.notified_at is not None

    await world.tap(dr, alert["message_id"], "Acknowledge")
    acknowledged = world.last(dr)
    assert "Acknowledged by Dr Rivera" in acknowledged["text"]
    async with world.rt.sessions() as session:
        row = await session.scalar(select(Alert))
    assert row is not None and row.acknowledged_by == dr.id

    # Nobody escalates an acknowledged alert.
    world.clock.advance(timedelta(minutes=30))
    await world.tick()
    assert world.state.sent_messages(ONCALL) == []


async def test_unacknowledged_alert_escalates_to_on_call_once(clinic: World) -> None:
    world = clinic
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "lake")
    await world.say(pat, "I'm not suicidal, I just keep thinking about ending it all")
    assert "Safety alert" in world.last(dr)["text"]  # negation still alerts

    world.clock.advance(timedelta(minutes=14))
    await world.tick()
    assert world.state.sent_messages(ONCALL) == []
    world.clock.advance(timedelta(minutes=2))
    await world.tick()
    await world.tick()
    escalations = world.state.sent_messages(ONCALL)
    assert len(escalations) == 1
    assert "not acknowledged after 16 min" in escalations[0]["text"]  # the real wait
    assert "Dr Rivera" in escalations[0]["text"]

    # Someone in the on-call chat acknowledges; a stranger elsewhere cannot.
    stranger = world.person("Mallory")
    await world.say(stranger, "hi")
    data = escalations[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await world.state.press(stranger, world.last(stranger)["message_id"], data, check=False)
    await world.feed()
    assert world.state.calls_to("answerCallbackQuery")[-1].params.get("text") == (
        "This button is no longer valid."
    )
    oncall_person = world.person("On-call nurse")
    await world.state.press(
        oncall_person, escalations[0]["message_id"], data, chat_id=ONCALL, check=False
    )
    await world.feed()
    async with world.rt.sessions() as session:
        row = await session.scalar(select(Alert))
    assert row is not None and row.acknowledged_by == oncall_person.id


async def test_ordinary_integration_talk_does_not_alert(clinic: World) -> None:
    world = clinic
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "fern")
    for line in ("I killed it at work today", "this session blew my mind", "ego death felt calm"):
        await world.say(pat, line)
    assert resources_sent(world, pat.id) == 0
    assert not any("Safety alert" in t for t in world.texts(dr))


async def test_lowest_mood_on_a_check_in_alerts(clinic: World) -> None:
    world = clinic
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "moss")
    await world.say(dr, "/session moss")
    await world.run_until(world.clock.now() + timedelta(days=1, hours=12))
    mood = next(
        m for m in world.state.sent_messages(pat.id) if "How is your mood" in m.get("text", "")
    )
    await world.tap(pat, mood["message_id"], "0")
    assert resources_sent(world, pat.id) == 1
    alert = world.last(dr)["text"]
    assert "Check-in risk flag" in alert and "moss" in alert


async def test_a_failed_alert_is_sent_again_by_the_tick(clinic: World) -> None:
    world = clinic
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "reed")
    world.state.fail("sendMessage", status=500, description="Internal Server Error", chat_id=dr.id)
    await world.say(pat, "I want to kill myself")
    assert not any("Safety alert" in t for t in world.texts(dr))
    world.clock.advance(timedelta(minutes=1))
    await world.tick()
    assert sum("Safety alert" in t for t in world.texts(dr)) == 1


async def test_help_works_with_the_database_down(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dune")
    await world.say(dr, "/session dune")
    await world.tick()
    prompt = world.last(pat)

    await world.rt.engine.dispose()
    world.rt.engine.sync_engine.pool._creator = _refuse  # type: ignore[attr-defined]

    await world.tap(pat, prompt["message_id"], "Need help now")
    assert HELP_MARK in world.last(pat)["text"]
    await world.say(pat, "/crisis")
    assert HELP_MARK in world.last(pat)["text"]
    await world.say(pat, "I can't go on")  # screening answers first, then the store fails
    assert any(HELP_MARK in t for t in world.texts(pat)[-2:])


def _refuse(*_: object) -> object:
    raise OSError("database is down")


async def test_a_burst_of_prompts_does_not_delay_a_crisis_reply(tmp_path: Path) -> None:
    """1,000 prompts due at once go out at 25/s (40 s); the crisis reply must not queue."""
    token = "999000:BURST"
    state = BotApiState(token=token, bot_username="clinic_bot")
    async with EmulatorServer(state) as server:
        settings = Settings(
            _env_file=None,
            bot_token=token,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/burst.db",
            telegram_api_url=server.api_url,
            encryption_keys=Fernet.generate_key().decode(),
            dispatch_interval=0.2,
        )
        rt = build_runtime(settings)
        async with rt.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        now = datetime.now(UTC)
        people = [state.user(20_000 + i, f"P{i}") for i in range(1001)]
        for person in people:
            await state.send_text(person, "hi")
        state.drain_updates()
        async with rt.sessions() as session, session.begin():
            await therapists.add(
                session, user=identity.telegram_user(rt.cipher, 1), name="Dr", now=now
            )
            await session.execute(
                insert(Patient),
                [
                    {
                        "therapist_id": 1,
                        "pseudonym": f"p{i}",
                        **identity.columns(rt.cipher, p.id),
                        "status": PatientStatus.ACTIVE,
                        "timezone": "UTC",
                        "quiet_start": now.time().replace(
                            hour=0, minute=0, second=0, microsecond=0
                        ),
                        "quiet_end": now.time().replace(hour=0, minute=0, second=0, microsecond=0),
                        "language": "en",
                        "created_at": now,
                    }
                    for i, p in enumerate(people)
                ],
            )
            await session.execute(
                insert(Delivery),
                [
                    {
                        "patient_id": i + 1,
                        "prompt_key": "edu-window",
                        "kind": PromptKind.EDUCATION,
                        "state": DeliveryState.SCHEDULED,
                        "due_at": now,
                        "planned_at": now,
                        "updated_at": now,
                    }
                    for i in range(1000)
                ],
            )
        app = build_application(rt)  # the real rate limiter and the JobQueue dispatcher
        app.bot_data["dispatcher"].batch = 40  # so the test can stop soon after its check
        await app.initialize()
        await app.start()
        poller = Poller(app, timeout=1)  # as `afterglow run` polls
        await poller.start()
        try:
            # 30 prompts take ~1.2 s at 25/s; the deadline only turns a stuck dispatcher into a
            # failure instead of a hung run.
            burst_deadline = time.monotonic() + 10
            while len(state.sent_messages()) < 30:  # the burst is under way
                sent = len(state.sent_messages())
                assert time.monotonic() < burst_deadline, f"the burst never got going ({sent} sent)"
                await asyncio.sleep(0.05)
            in_crisis = people[-1]
            started = time.monotonic()
            await state.send_text(in_crisis, "I don't want to be alive anymore")
            while not any(
                HELP_MARK in m.get("text", "") for m in state.sent_messages(in_crisis.id)
            ):
                assert time.monotonic() - started < 2.0, "crisis reply delayed beyond 2 s"
                await asyncio.sleep(0.02)
            assert len(state.sent_messages()) < 900  # the burst was still going on
        finally:
            app.bot_data["dispatcher"].stopping = True
            await poller.stop()
            await app.stop()
            await app.shutdown()
            await rt.engine.dispose()


async def test_a_long_alert_full_of_html_characters_still_arrives(clinic: World) -> None:
    world = clinic
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "ivy")
    message = "I want to die\n" + "you & me <3 " * 340  # ~4,000 characters, escaping x2
    await world.say(pat, message)
    alert = world.last(dr)["text"]  # the emulator refuses malformed HTML and > 4096 visible
    assert "Safety alert" in alert and "you & me <3" in alert


async def test_a_deactivated_therapist_is_not_sent_patient_text(clinic: World) -> None:
    world = clinic
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "oak")
    async with world.rt.sessions() as session, session.begin():
        await session.execute(text("UPDATE therapists SET active = false"))
    before = len(world.state.sent_messages(dr.id))
    await world.say(pat, "I want to end my life")
    assert len(world.state.sent_messages(dr.id)) == before
    escalations = world.state.sent_messages(ONCALL)
    assert len(escalations) == 1 and "oak" in escalations[0]["text"]

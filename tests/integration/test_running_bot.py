"""The bot as it runs in production: polling over HTTP, the dispatcher on PTB's JobQueue."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet

from bot.app import build_application, build_runtime
from bot.config import Settings
from bot.db import identity
from bot.db.models import Base
from bot.demo import run_demo
from bot.dispatch.dispatcher import Dispatcher, TickReport
from bot.emulator import BotApiState, EmulatorServer
from bot.services import enrollment, therapists
from bot.telegram.polling import Poller

TOKEN = "555000:RUNNING-bot"


def awake_zone() -> str:
    """A zone where it is daytime right now, so quiet hours don't hold the first prompt."""
    now = datetime.now(UTC)
    for hours in range(-12, 15):
        zone = f"Etc/GMT{-hours:+d}" if hours else "UTC"  # Etc/GMT signs are inverted
        if 10 <= now.astimezone(ZoneInfo(zone)).hour < 18:
            return zone
    raise AssertionError("no daytime zone found")


async def wait_for(predicate: object, seconds: float) -> float:
    assert callable(predicate)
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_first_prompt_goes_out_on_the_first_tick_after_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = BotApiState(token=TOKEN, bot_username="clinic_bot")
    async with EmulatorServer(state) as server:
        settings = Settings(
            _env_file=None,
            bot_token=TOKEN,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/run.db",
            telegram_api_url=server.api_url,
            encryption_keys=Fernet.generate_key().decode(),
            dispatch_interval=1.0,
        )
        rt = build_runtime(settings)
        async with rt.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        therapist, patient = state.user(1, "Dr T"), state.user(2, "P")
        async with rt.sessions() as session, session.begin():
            now = rt.clock.now()
            await therapists.add(
                session, user=identity.telegram_user(rt.cipher, therapist.id), name="Dr T", now=now
            )
            token = await enrollment.invite_patient(
                session, therapist_id=1, pseudonym="p1", now=now
            )
        app = build_application(rt)
        await app.initialize()
        await app.start()
        poller = Poller(app, timeout=1)  # as `afterglow run` polls
        await poller.start()
        try:
            await state.send_text(patient, f"/start {token}")
            await wait_for(lambda: state.sent_messages(patient.id), 5)
            await state.press_button(patient, state.last_sent(patient.id)["message_id"], "English")
            await wait_for(lambda: "I agree" in str(state.last_sent(patient.id)), 5)
            await state.press_button(patient, state.last_sent(patient.id)["message_id"], "I agree")
            await wait_for(lambda: "which time zone" in state.last_sent(patient.id)["text"], 5)
            await state.send_text(patient, awake_zone())
            await wait_for(lambda: "all set" in state.last_sent(patient.id)["text"], 5)

            # Events, not seconds (a wall-clock bound flakes on a busy machine): per dispatcher
            # tick, whether the therapist had been told "Session logged" when it began and
            # whether the patient's first prompt was out when it ended.
            count = len(state.sent_messages(patient.id))
            ticks: list[tuple[bool, bool]] = []
            dispatcher: Dispatcher = app.bot_data["dispatcher"]
            real_tick = dispatcher.tick

            def logged() -> bool:
                sent = state.sent_messages(therapist.id)
                return any("Session logged" in m.get("text", "") for m in sent)

            async def observed_tick() -> TickReport:
                began_after_session = logged()
                report = await real_tick()
                ticks.append((began_after_session, len(state.sent_messages(patient.id)) > count))
                return report

            monkeypatch.setattr(dispatcher, "tick", observed_tick)
            await state.send_text(therapist, "/session p1")
            await wait_for(lambda: any(began for began, _ in ticks), 5)
            # Ticks never overlap and queue in order, so this is the first to start after it.
            prompt_out = next(out for began, out in ticks if began)
            assert prompt_out, f"the first prompt waited past the next tick: {ticks}"
            assert state.last_sent(patient.id)["has_protected_content"] is True
        finally:
            await poller.stop()
            await app.stop()
            await app.shutdown()


async def test_demo_shows_a_week_of_integration() -> None:
    lines: list[str] = []
    assert await run_demo(days=7, out=lines.append) == 0
    transcript = "\n".join(lines)
    assert "Session logged for river-7" in transcript
    assert "Replies from river-7" in transcript
    assert "Soft. Like something loosened in my chest." in transcript
    assert "You answered: 7" in transcript
    assert "17 prompts delivered to the patient" in transcript
    assert "1 of 5" in transcript  # the weekly questionnaire, answered item by item:
    assert "item 5 of 5: My days felt steady enough" in transcript  # in /replies
    assert "Tue 17 Mar" in transcript  # the seventh day after the session


async def test_demo_answers_sit_under_their_questions_and_the_reminder_names_its_own() -> None:
    """Seen: an answer about calling a sister under the self-compassion question, "one small
    step" left unanswered; the reminder directly under the week's mood check-in, 38 hours
    after its reflection; therapist messages cut at their first line."""
    lines: list[str] = []
    assert await run_demo(days=7, out=lines.append) == 0
    transcript = "\n".join(lines)
    replies = transcript[transcript.index("Replies from river-7") :]
    for question, said in (
        ("one small step", "Calling my sister back."),
        ("good friend feeling", "That it's okay to be tired"),
        ("favourite loop", "I said 'I'm so stupid'"),
    ):
        block = replies[replies.index(question) :]
        assert block.split("\n", 2)[1].strip().startswith(said), question

    reminder = next(line for line in lines[1].splitlines() if "A gentle reminder about" in line)
    assert "“What is one small step" in reminder
    assert reminder.startswith("[Mon 16 Mar 19:30]")  # a day after its reflection, not 38 h
    assert "https://t.me/afterglow_demo_bot?start=" in transcript  # the invite's second line

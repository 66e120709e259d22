"""A running Afterglow against the fake Bot API: real Application, real Update objects,
a fake clock, and a database per test (SQLite file or a fresh PostgreSQL database)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select
from telegram import Update

from bot.app import PTBApp, build_application, build_runtime
from bot.clock import FakeClock
from bot.config import Settings
from bot.db import identity
from bot.db.models import Base, Delivery, Patient, Therapist
from bot.dispatch.dispatcher import Dispatcher, TickReport
from bot.emulator import BotApiState
from bot.emulator.people import EmuUser
from bot.emulator.request import FakeBotApi
from bot.runtime import Runtime
from bot.services import therapists
from tests.support.pg import database_url

TOKEN = "123456:TEST-token_abc"
START = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # a Tuesday afternoon
LINK = re.compile(r"https://t\.me/\S+\?start=[A-Za-z0-9_-]+")


@dataclass
class World:
    state: BotApiState
    app: PTBApp
    rt: Runtime
    clock: FakeClock
    dispatcher: Dispatcher
    _next_user: int = field(default=5000)

    async def feed(self) -> None:
        """Process every queued update the way the running bot would."""
        for raw in self.state.drain_updates():
            await self.app.process_update(Update.de_json(raw, self.app.bot))

    async def say(self, person: EmuUser, text: str, *, reply_to: int | None = None) -> None:
        await self.state.send_text(person, text, reply_to=reply_to)
        await self.feed()

    async def tap(self, person: EmuUser, message_id: int, label: str) -> None:
        await self.state.press_button(person, message_id, label)
        await self.feed()

    async def tick(self) -> TickReport:
        return await self.dispatcher.tick()

    def last(self, person: EmuUser) -> dict[str, Any]:
        return self.state.last_sent(person.id)

    def texts(self, person: EmuUser) -> list[str]:
        return [m.get("text", "") for m in self.state.sent_messages(person.id)]

    def person(self, name: str, language_code: str = "en") -> EmuUser:
        self._next_user += 1
        return self.state.user(self._next_user, name, language_code=language_code)

    async def therapist(self, name: str = "Dr Rivera", language_code: str = "en") -> EmuUser:
        """A therapist added by id who has also opened the bot (their /start confirmed the
        chat), so alerts reach them; `unconfirmed_therapist` stops before that."""
        person = await self.unconfirmed_therapist(name, language_code)
        async with self.rt.sessions() as session, session.begin():
            therapist_id = await session.scalar(
                select(Therapist.id).where(Therapist.telegram_user_id == person.id)
            )
            assert therapist_id is not None
            await therapists.confirm_chat(
                session, therapist_id=therapist_id, chat_id=person.id, now=self.clock.now()
            )
        return person

    async def unconfirmed_therapist(
        self, name: str = "Dr Rivera", language_code: str = "en"
    ) -> EmuUser:
        person = self.person(name, language_code)
        async with self.rt.sessions() as session, session.begin():
            await therapists.add(
                session,
                user=identity.telegram_user(self.rt.cipher, person.id),
                name=name,
                now=self.clock.now(),
            )
        return person

    async def open_invite(
        self, person: EmuUser, link: str, language: str = "English"
    ) -> dict[str, Any]:
        """Open an invite link and choose the language on the first screen (when more than
        one is offered); returns the consent message."""
        await self.state.open_link(person, link)
        await self.feed()
        first = self.last(person)
        if first.get("text", "").startswith("Choose your language"):
            await self.tap(person, first["message_id"], language)
        return self.last(person)

    async def enrolled_patient(
        self,
        therapist: EmuUser,
        pseudonym: str,
        zone: str = "America/New_York",
        *,
        language: str = "English",
        agree: str = "I agree",
        all_set: str = "You're all set",
    ) -> EmuUser:
        await self.say(therapist, f"/invite {pseudonym}")
        link = LINK.search(self.last(therapist)["text"])
        assert link, self.last(therapist)["text"]
        patient = self.person(pseudonym.title())
        await self.open_invite(patient, link.group(0), language)
        await self.tap(patient, self.last(patient)["message_id"], agree)
        await self.say(patient, zone)
        assert all_set in self.last(patient)["text"]
        return patient

    async def deliveries(self, pseudonym: str) -> list[Delivery]:
        async with self.rt.sessions() as session:
            rows = await session.scalars(
                select(Delivery)
                .join(Patient, Patient.id == Delivery.patient_id)
                .where(Patient.pseudonym == pseudonym)
                .order_by(Delivery.due_at, Delivery.id)
            )
            return list(rows)

    async def run_until(self, moment: datetime, step: timedelta = timedelta(minutes=5)) -> None:
        """Advance the clock in steps, ticking the dispatcher like the job queue would."""
        while self.clock.now() < moment:
            self.clock.advance(min(step, moment - self.clock.now()))
            await self.tick()


def test_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "database_url": database_url,
        "encryption_keys": Fernet.generate_key().decode(),
        "clinic_timezone": "America/New_York",
        "clinic_name": "Lakeside KAP Clinic",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def make_world(database_url: str, **overrides: Any) -> World:
    clock = FakeClock(START)
    state = BotApiState(token=TOKEN, bot_username="afterglow_test_bot", clock=clock.now)
    rt = build_runtime(test_settings(database_url, **overrides), clock=clock)
    async with rt.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    app = build_application(rt, request=FakeBotApi(state), rate_limit=False, dispatch_job=False)
    await app.initialize()
    return World(state, app, rt, clock, app.bot_data["dispatcher"])


@asynccontextmanager
async def running(backend: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[World]:
    """A World on a fresh database of `backend`; with `oncall_chat_id`, that chat exists
    (the clinic's on-call group the bot was added to)."""
    async with database_url(backend, tmp_path) as url:
        world = await make_world(url, **overrides)
        if (oncall := overrides.get("oncall_chat_id")) is not None:
            world.state.register_chat(oncall, title="On-call")
        try:
            yield world
        finally:
            await close_world(world)


async def close_world(world: World) -> None:
    await world.app.shutdown()
    await world.rt.engine.dispose()

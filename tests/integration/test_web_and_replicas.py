"""Webhook intake, health and metrics endpoints and several replicas (leader election itself:
test_leadership.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select

from bot.db import identity
from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, PromptKind, Therapist
from bot.dispatch.leader import Leadership
from bot.web import SECRET_HEADER, WEBHOOK_PATH, build_web
from tests.integration.world import World, close_world, make_world
from tests.support.pg import PG_URL, SKIP_REASON, backends, database_url, fresh_database

SECRET = "s3cret-webhook-token"


@pytest.fixture(params=backends())
async def hooked(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with database_url(request.param, tmp_path) as url:
        w = await make_world(
            url, mode="webhook", webhook_url="https://bot.example.org", webhook_secret=SECRET
        )
        try:
            yield w
        finally:
            await close_world(w)


def client(world: World, leadership: Leadership | None = None) -> httpx.AsyncClient:
    web = build_web(world.app, world.rt, leadership or Leadership(world.rt.engine))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot")


async def test_webhook_checks_the_secret_and_handles_duplicates_once(hooked: World) -> None:
    world = hooked
    pat = world.person("Visitor")
    raw = await world.state.send_text(pat, "/start")
    world.state.drain_updates()
    async with client(world) as http:
        for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"}):
            response = await http.post(WEBHOOK_PATH, json=raw, headers=headers)
            assert response.status_code == 403
        assert world.app.update_queue.empty()

        for _ in range(3):  # Telegram redelivers
            response = await http.post(WEBHOOK_PATH, json=raw, headers={SECRET_HEADER: SECRET})
            assert response.status_code == 200
            # Handled before the answer: a crash after a 200 cannot lose the update.
            assert len(world.state.sent_messages(pat.id)) == 1  # one effect
        assert (
            await http.post(WEBHOOK_PATH, content=b"{", headers={SECRET_HEADER: SECRET})
        ).status_code == 400
    assert world.app.update_queue.empty()


async def test_health_readiness_and_metrics(world: World) -> None:
    leadership = Leadership(world.rt.engine)
    async with client(world, leadership) as http:
        assert (await http.get("/healthz")).text == "ok"
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True

        leadership.is_leader = True  # a leader whose dispatcher never ticked is not ready
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and "dispatcher" in ready.json()["problems"][0]
        await world.tick()
        assert (await http.get("/readyz")).status_code == 200

        dr = await world.therapist()
        await world.enrolled_patient(dr, "gum")
        await world.say(dr, "/session gum")
        await world.tick()
        text = (await http.get("/metrics")).text
        assert 'afterglow_deliveries{state="sent"} 1.0' in text
        assert (
            'afterglow_deliveries{state="scheduled"} 16.0' in text
        )  # the standard template but its first step
        assert "afterglow_dispatch_lag_seconds_bucket" in text
        assert "afterglow_telegram_errors_total" in text

        await world.rt.engine.dispose()
        world.rt.engine.sync_engine.pool._creator = _refuse  # type: ignore[attr-defined]
        down = await http.get("/readyz")
        assert down.status_code == 503 and "database" in down.json()["problems"][0]


def _refuse(*_: object) -> object:
    raise OSError("database is down")


pg_only = pytest.mark.skipif(not PG_URL, reason=SKIP_REASON)


@pg_only
async def test_two_replicas_send_each_of_1000_prompts_exactly_once() -> None:
    async with fresh_database() as url:
        key = Fernet.generate_key().decode()  # replicas of one clinic share its keys
        first = await make_world(url, encryption_keys=key)
        second = await make_world(url, encryption_keys=key)
        second.state = first.state  # one Telegram for both replicas
        second.app.bot._request = first.app.bot._request  # type: ignore[attr-defined]
        try:
            now = first.clock.now()
            second.clock.set(now)
            people = [first.state.user(10_000 + i, f"P{i}") for i in range(1000)]
            for person in people:
                await first.state.send_text(person, "hi")  # Telegram knows the chat
            first.state.drain_updates()
            async with first.rt.sessions() as session, session.begin():
                therapist_id = (
                    await session.execute(
                        insert(Therapist).values(name="Dr", telegram_user_id=1, created_at=now)
                    )
                ).inserted_primary_key[0]
                rows = [
                    {
                        "therapist_id": therapist_id,
                        "pseudonym": f"p{i}",
                        **identity.columns(first.rt.cipher, person.id),
                        "status": PatientStatus.ACTIVE,
                        "timezone": "UTC",
                        "quiet_start": now.time().replace(hour=3),
                        "quiet_end": now.time().replace(hour=4),
                        "language": "en",
                        "created_at": now,
                    }
                    for i, person in enumerate(people)
                ]
                await session.execute(insert(Patient), rows)
                ids = (await session.scalars(select(Patient.id).order_by(Patient.id))).all()
                await session.execute(
                    insert(Delivery),
                    [
                        {
                            "patient_id": pid,
                            "prompt_key": "edu-window",
                            "kind": PromptKind.EDUCATION,
                            "state": DeliveryState.SCHEDULED,
                            "due_at": now - timedelta(minutes=1),
                            "planned_at": now,
                            "updated_at": now,
                        }
                        for pid in ids
                    ],
                )
            await asyncio.gather(first.tick(), second.tick(), first.tick(), second.tick())
            sent = Counter(m["chat"]["id"] for m in first.state.sent_messages())
            assert len(sent) == 1000 and set(sent.values()) == {1}
            async with first.rt.sessions() as session:
                states = dict(
                    (
                        await session.execute(
                            select(Delivery.state, func.count()).group_by(Delivery.state)
                        )
                    ).all()
                )
            assert states == {DeliveryState.SENT: 1000}
        finally:
            await close_world(second)
            await close_world(first)

"""The dispatcher's claim, `sending` mark and group-committed outcomes.

A claim is only a lease: rows stay `scheduled` until the moment before their own API call, so
at most IN_FLIGHT rows are ever `sending` (what a crash can turn into `unknown`), and a change a
therapist or patient commits between the claim and the send still wins.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from bot.db import identity
from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, PromptKind, Therapist
from bot.dispatch import dispatcher as dispatcher_module
from bot.dispatch.dispatcher import IN_FLIGHT, TickReport
from tests.integration.world import World

FIRST_CHAT = 900_000


async def seed(world: World, patients: int, per_patient: int = 1) -> list[int]:
    """`patients` active patients whose chats are open, each with `per_patient` prompts due."""
    now = world.clock.now()
    async with world.rt.engine.begin() as conn:
        therapist_id = (
            await conn.execute(
                insert(Therapist)
                .values(name="Dr Claim", telegram_user_id=1, chat_id=1, active=True, created_at=now)
                .returning(Therapist.id)
            )
        ).scalar_one()
        ids = []
        for i in range(patients):
            person = world.state.user(FIRST_CHAT + i, f"P{i}")
            await world.state.send_text(person, "hi")  # a bot may only write to who wrote first
            patient_id = (
                await conn.execute(
                    insert(Patient)
                    .values(
                        therapist_id=therapist_id,
                        pseudonym=f"claim{i}",
                        **identity.columns(world.rt.cipher, person.id),
                        status=PatientStatus.ACTIVE,
                        timezone="UTC",
                        quiet_start=time(0, 0),
                        quiet_end=time(0, 0),
                        language="en",
                        consent_version="1",
                        consent_at=now,
                        created_at=now,
                    )
                    .returning(Patient.id)
                )
            ).scalar_one()
            for step in range(per_patient):
                delivery_id = (
                    await conn.execute(
                        insert(Delivery)
                        .values(
                            patient_id=patient_id,
                            prompt_key="edu-window",
                            kind=PromptKind.EDUCATION,
                            state=DeliveryState.SCHEDULED,
                            due_at=now - timedelta(seconds=per_patient - step),
                            planned_at=now,
                            updated_at=now,
                            attempts=0,
                        )
                        .returning(Delivery.id)
                    )
                ).scalar_one()
                ids.append(delivery_id)
    world.state.drain_updates()
    return ids


async def count(world: World, *conditions: Any) -> int:
    async with world.rt.engine.connect() as conn:
        return int(
            await conn.scalar(select(func.count()).select_from(Delivery).where(*conditions)) or 0
        )


async def send_claimed(world: World, jobs: list[Any], report: TickReport) -> None:
    """The second half of a tick, for jobs a test claimed itself (and then interfered with)."""
    ledger = dispatcher_module.Ledger(
        world.rt.engine,
        instance=world.rt.instance,
        lease=dispatcher_module.LEASE,
        now=world.clock.now,
    )
    try:
        await world.dispatcher._send_all(jobs, ledger, report)
    finally:
        await ledger.close()


async def test_at_most_in_flight_rows_are_sending_and_commits_are_shared(world: World) -> None:
    await seed(world, patients=3 * IN_FLIGHT)
    sending_seen: list[int] = []
    original = world.state.call

    async def watching(method: str, params: Any) -> tuple[int, dict[str, Any]]:
        if method == "sendMessage":
            sending_seen.append(await count(world, Delivery.state == DeliveryState.SENDING))
        return await original(method, params)

    world.state.call = watching  # type: ignore[method-assign]
    report = await world.tick()
    assert report.sent == 3 * IN_FLIGHT
    assert max(sending_seen) <= IN_FLIGHT
    assert max(sending_seen) > 1  # sends really overlapped
    # Marks and outcomes of overlapping sends share transactions.
    assert report.commits < 2 * report.sent
    assert await count(world, Delivery.claimed_by.is_not(None)) == 0


async def test_a_chats_prompts_still_go_in_order(world: World) -> None:
    await seed(world, patients=2, per_patient=4)
    await world.tick()
    for i in range(2):
        sent = [m["message_id"] for m in world.state.sent_messages(FIRST_CHAT + i)]
        assert len(sent) == 4
    async with world.rt.sessions() as session:
        rows = (await session.scalars(select(Delivery).order_by(Delivery.due_at))).all()
    by_patient: dict[int, list[Delivery]] = {}
    for row in rows:
        by_patient.setdefault(row.patient_id, []).append(row)
    for deliveries in by_patient.values():
        ids = [d.telegram_message_id or 0 for d in deliveries]
        assert ids == sorted(ids) and all(d.state is DeliveryState.SENT for d in deliveries)


async def test_changes_after_the_claim_win(world: World) -> None:
    """Postponed, skipped and paused between the claim and the send: none of them goes out."""
    ids = await seed(world, patients=4)
    dispatcher = world.dispatcher
    report = TickReport()
    jobs = await dispatcher._claim(report)
    assert {job.delivery_id for job in jobs} == set(ids)
    assert await count(world, Delivery.state == DeliveryState.SENDING) == 0
    later = world.clock.now() + timedelta(hours=1)
    async with world.rt.engine.begin() as conn:
        await conn.execute(update(Delivery).where(Delivery.id == ids[0]).values(due_at=later))
        await conn.execute(
            update(Delivery).where(Delivery.id == ids[1]).values(state=DeliveryState.SKIPPED)
        )
        await conn.execute(
            update(Delivery).where(Delivery.id == ids[2]).values(state=DeliveryState.HELD)
        )
    await send_claimed(world, jobs, report)
    assert report.sent == 1
    assert len(world.state.sent_messages()) == 1
    async with world.rt.sessions() as session:
        postponed = await session.get(Delivery, ids[0])
        assert postponed is not None
        assert postponed.state is DeliveryState.SCHEDULED and postponed.claimed_by is None
        assert postponed.attempts == 0


async def test_another_replicas_live_claim_is_left_alone_until_it_runs_out(world: World) -> None:
    ids = await seed(world, patients=2)
    async with world.rt.engine.begin() as conn:
        await conn.execute(
            update(Delivery)
            .where(Delivery.id == ids[0])
            .values(claimed_by="other", lease_until=world.clock.now() + timedelta(seconds=20))
        )
    report = await world.tick()
    assert report.sent == 1 and report.claimed == [ids[1]]
    world.clock.advance(timedelta(seconds=21))
    report = await world.tick()
    assert report.sent == 1 and report.claimed == [ids[0]]
    assert await count(world, Delivery.state == DeliveryState.SENT) == 2


async def test_stopping_sends_nothing_more_and_frees_the_claims(world: World) -> None:
    await seed(world, patients=3 * IN_FLIGHT)
    original = world.state.call
    calls = 0

    async def stop_after_first(method: str, params: Any) -> tuple[int, dict[str, Any]]:
        nonlocal calls
        if method == "sendMessage":
            calls += 1
            world.dispatcher.stopping = True
        return await original(method, params)

    world.state.call = stop_after_first  # type: ignore[method-assign]
    report = await world.tick()
    # Only what was already marked went out; everything else is free for the next leader.
    assert 1 <= report.sent <= IN_FLIGHT
    assert await count(world, Delivery.state == DeliveryState.SENDING) == 0
    assert await count(world, Delivery.claimed_by.is_not(None)) == 0
    world.dispatcher.stopping = False
    world.state.call = original  # type: ignore[method-assign]
    report = await world.tick()
    assert await count(world, Delivery.state == DeliveryState.SENT) == 3 * IN_FLIGHT


async def test_a_failed_commit_sends_nothing_unmarked_and_loses_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(world, patients=IN_FLIGHT)
    original = dispatcher_module.Ledger._commit
    failures = 0

    async def broken_once(self: Any, marks: Any, outcomes: Any) -> None:
        nonlocal failures
        if failures == 0 and marks:
            failures += 1
            # The database refuses the first group of marks: their waiters get the error.
            for _, future in marks:
                future.set_exception(ConnectionError("database went away"))
            return
        await original(self, marks, outcomes)

    monkeypatch.setattr(dispatcher_module.Ledger, "_commit", broken_once)
    with pytest.raises(ConnectionError):
        await world.tick()
    # What was refused was neither sent nor left stuck: the rows are free and go out next tick.
    assert await count(world, Delivery.state == DeliveryState.SENDING) == 0
    assert await count(world, Delivery.claimed_by.is_not(None)) == 0
    await world.tick()
    assert await count(world, Delivery.state == DeliveryState.SENT) == IN_FLIGHT
    for i in range(IN_FLIGHT):
        assert len(world.state.sent_messages(FIRST_CHAT + i)) == 1


async def test_claims_left_by_a_crash_are_freed_at_start_up_on_sqlite(world: World) -> None:
    ids = await seed(world, patients=2)
    async with world.rt.engine.begin() as conn:
        await conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(
                claimed_by="previous-life", lease_until=world.clock.now() + timedelta(seconds=30)
            )
        )
    await world.dispatcher.recover(startup=True)
    report = await world.tick()
    expected = 2 if world.rt.engine.dialect.name == "sqlite" else 0
    assert report.sent == expected


async def test_a_claim_that_ran_out_is_decided_afresh_not_sent_late(world: World) -> None:
    """A long 429 pause outlasts the claim: the rows are not marked, and the next tick
    applies the grace rule and quiet hours to them again."""
    ids = await seed(world, patients=3)
    dispatcher = world.dispatcher
    report = TickReport()
    jobs = await dispatcher._claim(report)
    world.clock.advance(dispatcher_module.CLAIM_LEASE + timedelta(seconds=1))
    await send_claimed(world, jobs, report)
    assert report.sent == 0 and world.state.sent_messages() == []
    assert await count(world, Delivery.state == DeliveryState.SCHEDULED) == len(ids)
    assert await count(world, Delivery.claimed_by.is_not(None)) == 0
    report = await world.tick()
    assert report.sent == len(ids)

"""Every scheduled prompt is sent once, on time, or visibly not — with faults injected."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from telegram.error import NetworkError, TimedOut

from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus
from bot.emulator.updates import EmuUser
from bot.services import sessions
from tests.integration.world import World


async def log_session(world: World, therapist: EmuUser, pseudonym: str, template: str) -> None:
    async with world.rt.sessions() as session, session.begin():
        therapist_row = await world_therapist_id(world, therapist)
        await sessions.log_session(
            session,
            therapist_id=therapist_row,
            pseudonym=pseudonym,
            local_start=None,
            template_name=template,
            content=world.rt.content,
            grace=world.rt.settings.misfire_grace,
            now=world.clock.now(),
        )


async def world_therapist_id(world: World, therapist: EmuUser) -> int:
    from bot.db import queries

    async with world.rt.sessions() as session:
        row = await queries.therapist_by_user(session, therapist.id)
        assert row is not None
        return row.id


def prompt_messages(world: World, person: EmuUser) -> list[dict[str, object]]:
    return [m for m in world.state.sent_messages(person.id) if m.get("has_protected_content")]


async def states(world: World, pseudonym: str) -> Counter[DeliveryState]:
    return Counter(d.state for d in await world.deliveries(pseudonym))


async def test_429s_and_a_blocked_patient(world: World) -> None:
    dr = await world.therapist()
    people = [await world.enrolled_patient(dr, f"p{i}") for i in range(12)]
    blocked = people[3]
    await world.state.block(blocked)
    world.state.drain_updates()  # the my_chat_member update is lost: the 403 path must cope
    world.state.fail_ratio("sendMessage", 0.1, status=429, retry_after=1, seed=7)
    for i in range(12):
        await log_session(world, dr, f"p{i}", "standard")

    await world.tick()
    for _ in range(30):  # retries back off for up to a few minutes
        world.clock.advance(timedelta(minutes=2))
        await world.tick()
    world.state.clear_faults()

    for i, person in enumerate(people):
        got = prompt_messages(world, person)
        if person is blocked:
            assert got == []
            continue
        texts = [str(m["text"]) for m in got]
        assert len(texts) == len(set(texts)), f"p{i} got a duplicate"
        assert len(texts) == 1, f"p{i}: {len(texts)}"
    blocked_states = await states(world, "p3")
    assert blocked_states[DeliveryState.HELD] == 17  # the standard template
    async with world.rt.sessions() as session:
        status = await session.scalar(select(Patient.status).where(Patient.pseudonym == "p3"))
    assert status is PatientStatus.UNREACHABLE
    notices = [t for t in world.texts(dr) if "can no longer be reached" in t]
    assert len(notices) == 1 and "p3" in notices[0]

    # Unblocking brings the held prompts back under the grace rule.
    await world.state.unblock(blocked)
    await world.feed()
    assert "reachable again" in world.last(dr)["text"]
    await world.tick()
    assert len(prompt_messages(world, blocked)) == 1  # the +0m one, still within grace


async def test_bad_request_fails_with_its_reason(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "ash")
    world.state.fail("sendMessage", status=400, description="Bad Request: chat not found")
    await log_session(world, dr, "ash", "standard")
    report = await world.tick()
    assert report.failed == 1
    failed = [d for d in await world.deliveries("ash") if d.state is DeliveryState.FAILED]
    assert failed and "chat not found" in (failed[0].last_error or "").lower()


async def test_timeout_after_delivery_is_unknown_and_never_resent(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "oak")
    world.state.fail("sendMessage", exception=TimedOut, delivered=True)
    await log_session(world, dr, "oak", "standard")
    report = await world.tick()
    assert report.unknown == 1
    for _ in range(5):
        world.clock.advance(timedelta(minutes=1))
        await world.tick()
    assert len(prompt_messages(world, pat)) == 1  # it did arrive, exactly once
    assert (await states(world, "oak"))[DeliveryState.UNKNOWN] == 1


async def test_connection_refused_retries_with_backoff_then_sends(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "elm")
    world.state.fail("sendMessage", exception=NetworkError("httpx.ConnectError: refused"), times=2)
    await log_session(world, dr, "elm", "standard")
    assert (await world.tick()).retry == 1
    [first] = [d for d in await world.deliveries("elm") if d.retry_at is not None]
    assert first.state is DeliveryState.SCHEDULED and first.attempts == 1
    assert await world.tick() == type(await world.tick())()  # not before retry_at
    for _ in range(10):
        world.clock.advance(timedelta(minutes=1))
        await world.tick()
    assert len(prompt_messages(world, pat)) == 1
    sent = [d for d in await world.deliveries("elm") if d.state is DeliveryState.SENT]
    assert sent[0].attempts == 3


async def test_crash_mid_send_leaves_unknown_not_a_resend(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "fir")
    await log_session(world, dr, "fir", "standard")
    first = (await world.deliveries("fir"))[0]
    # A replica claimed it and died before recording the outcome.
    async with world.rt.sessions() as session, session.begin():
        await session.execute(
            update(Delivery)
            .where(Delivery.id == first.id)
            .values(
                state=DeliveryState.SENDING,
                claimed_by="dead-replica",
                lease_until=world.clock.now() - timedelta(seconds=1),
            )
        )
    await world.tick()
    assert (await states(world, "fir"))[DeliveryState.UNKNOWN] == 1
    assert prompt_messages(world, pat) == []


async def test_outages_follow_the_grace_rule_and_respect_quiet_hours(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "yew")  # America/New_York; now 10:00 local
    await log_session(world, dr, "yew", "standard")
    await world.tick()
    zone = ZoneInfo("America/New_York")

    # Up to the morning after, then a 2 h outage: 09:00 and 09:30 are sent late, within grace.
    await world.run_until(world.clock.now() + timedelta(hours=22, minutes=50))  # 08:50 local
    world.clock.advance(timedelta(hours=2))  # down from 08:50 to 10:50
    report = await world.tick()
    assert report.sent == 2 and report.missed == 0

    # A 30 h outage: everything due more than 6 h ago is missed, the rest goes out.
    world.clock.advance(timedelta(hours=30))  # 16:50 local, two days after the session
    report = await world.tick()
    assert report.missed == 3  # day-1 evening steps and the day-2 morning step
    assert report.sent == 0

    await world.run_until(world.clock.now() + timedelta(days=6))
    final = await world.deliveries("yew")
    for delivery in final:
        if delivery.sent_at is not None:
            local = delivery.sent_at.astimezone(zone).time()
            assert not (local.hour >= 21 or local.hour < 8), delivery
            assert delivery.sent_at - delivery.due_at <= world.rt.settings.misfire_grace
    counts = Counter(d.state for d in final)
    assert counts[DeliveryState.MISSED] == 3
    assert len(prompt_messages(world, pat)) == counts[DeliveryState.SENT] + sum(
        1 for d in final if d.nudged_at is not None
    )


async def test_one_nudge_after_a_day_never_in_quiet_hours(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "bay")
    await world.say(dr, "/session bay short")
    # Evening reflection at 20:00 local (00:00 UTC); a day later is 20:00 again, not quiet.
    await world.run_until(world.clock.now() + timedelta(hours=10, minutes=5))
    reflection = next(
        d for d in await world.deliveries("bay") if d.kind.value == "reflection" and d.sent_at
    )
    await world.run_until(reflection.sent_at + timedelta(hours=24, minutes=10))  # type: ignore[operator]

    def nudges_for(message_id: int | None) -> list[dict[str, object]]:
        return [
            m
            for m in world.state.sent_messages(pat.id)
            if str(m.get("text", "")).startswith("A gentle reminder")
            and (m.get("reply_to_message") or {}).get("message_id") == message_id
        ]

    assert len(nudges_for(reflection.telegram_message_id)) == 1
    # It names its question: other prompts may have arrived between the two (issue 13).
    question = world.rt.content.prompt(reflection.prompt_key or "").text
    named = str(nudges_for(reflection.telegram_message_id)[0]["text"])
    assert named.startswith("A gentle reminder about “" + question[:20])
    await world.run_until(world.clock.now() + timedelta(hours=30))
    assert len(nudges_for(reflection.telegram_message_id)) == 1  # never twice
    for delivery in await world.deliveries("bay"):
        if delivery.nudged_at is not None:
            local = delivery.nudged_at.astimezone(ZoneInfo("America/New_York")).time()
            assert 8 <= local.hour < 21, local
    # Answering the reminder answers the original question.
    first_nudge = nudges_for(reflection.telegram_message_id)[0]
    await world.say(pat, "Quiet, finally.", reply_to=first_nudge["message_id"])
    refreshed = next(d for d in await world.deliveries("bay") if d.id == reflection.id)
    assert refreshed.state is DeliveryState.ANSWERED


async def test_one_broken_row_does_not_stop_everyone_elses_prompts(world: World) -> None:
    dr = await world.therapist()
    a = await world.enrolled_patient(dr, "alpha")
    b = await world.enrolled_patient(dr, "beta")
    await log_session(world, dr, "alpha", "standard")
    await log_session(world, dr, "beta", "standard")
    first = (await world.deliveries("alpha"))[0]
    async with world.rt.sessions() as session, session.begin():
        await session.execute(  # the clinic removed an override prompt after planning
            update(Delivery).where(Delivery.id == first.id).values(prompt_key="gone-prompt")
        )
    report = await world.tick()
    assert report.failed == 1 and report.sent == 1
    broken = next(d for d in await world.deliveries("alpha") if d.id == first.id)
    assert broken.state is DeliveryState.FAILED
    assert "no longer in the content library" in (broken.last_error or "")
    assert prompt_messages(world, a) == [] and len(prompt_messages(world, b)) == 1

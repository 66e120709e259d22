"""The product end to end: invite, consent, time zone, session, prompts out, replies in."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from telegram import Update

from bot.db.models import DeliveryState
from tests.integration.world import LINK, World


async def test_whole_journey(world: World) -> None:
    dr = await world.therapist()
    await world.say(dr, "/help")
    assert "/invite" in world.last(dr)["text"]

    pat = await world.enrolled_patient(dr, "river-7")

    await world.say(dr, "/session river-7")
    plan = world.last(dr)["text"]
    assert "Session logged for river-7" in plan and "Will be sent" in plan

    report = await world.tick()  # the +0m step goes out at once
    assert report.sent == 1
    first = world.last(pat)
    assert first["has_protected_content"] is True
    labels = [b["text"] for row in first["reply_markup"]["inline_keyboard"] for b in row]
    assert "Need help now" in labels

    # Evening reflection (+0d@20:00 New York): answer by replying to it, in two messages.
    await world.run_until(world.clock.now() + timedelta(hours=12))
    sent = [d for d in await world.deliveries("river-7") if d.state is DeliveryState.SENT]
    reflection = next(d for d in sent if d.kind.value == "reflection")
    await world.say(
        pat, "I felt lighter than I have in years.", reply_to=reflection.telegram_message_id
    )
    assert world.last(pat)["text"].startswith("Thank you, saved as your answer to “")
    await world.say(pat, "And a bit scared of losing it.")
    assert world.last(pat)["text"].startswith("Added to your answer to “")

    # Next morning's check-in: one tap records it and edits the message.
    await world.run_until(world.clock.now() + timedelta(hours=14))
    checkin = next(
        m for m in world.state.sent_messages(pat.id) if "How did you sleep" in m.get("text", "")
    )
    await world.tap(pat, checkin["message_id"], "Well")
    edited = next(
        m for m in world.state.sent_messages(pat.id) if m["message_id"] == checkin["message_id"]
    )
    assert "You answered: Well" in edited["text"]

    await world.say(dr, "/replies river-7")
    listing = world.last(dr)["text"]
    assert "I felt lighter than I have in years.\nAnd a bit scared of losing it." in listing
    assert "Well" in listing


async def test_reply_text_is_encrypted_at_rest(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "lake")
    secret = "purple elephant memory from 1994"
    await world.say(pat, secret)
    assert "note" in world.last(pat)["text"]
    async with world.rt.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT body_enc FROM replies"))).all()
    assert rows and all(secret.encode() not in bytes(row[0]) for row in rows)
    if world.rt.engine.dialect.name == "sqlite":
        path = world.rt.settings.database_url.split("///", 1)[1]
        await world.rt.engine.dispose()
        for suffix in ("", "-wal"):
            file = Path(path + suffix)
            if file.exists():
                assert secret.encode() not in file.read_bytes()


async def test_check_in_answers_are_encrypted_at_rest(world: World) -> None:
    """A tapped or typed check-in value is health data too (a mood of 1, "barely slept")."""
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "lake")
    await world.say(dr, "/session lake")
    await world.run_until(world.clock.now() + timedelta(hours=30))
    sleep = next(m for m in world.state.sent_messages(pat.id) if "How did you sleep" in m["text"])
    await world.tap(pat, sleep["message_id"], "Barely at all")
    await world.say(dr, "/replies lake")
    assert "Barely at all" in world.last(dr)["text"]  # read back through the key
    async with world.rt.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT choice_value_enc FROM replies"))).all()
    assert rows and all(row[0] is not None and b"barely" not in bytes(row[0]) for row in rows)


async def test_patient_cannot_use_therapist_commands(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "oak")
    for command in ("/invite someone", "/session oak", "/replies oak"):
        await world.say(pat, command)
        reply = world.last(pat)["text"]
        assert reply.startswith("Sorry, that command isn't available"), command
        assert "oak" not in reply


async def test_stranger_learns_nothing(world: World) -> None:
    stranger = world.person("Eve")
    for command in ("/start", "/replies oak", "hello"):
        await world.say(stranger, command)
        assert "private service" in world.last(stranger)["text"]


async def test_therapist_cannot_read_another_therapists_patient(world: World) -> None:
    a = await world.therapist("Dr A")
    b = await world.therapist("Dr B")
    pat = await world.enrolled_patient(a, "willow")
    await world.say(pat, "my private note")
    await world.say(b, "/replies willow")
    assert "no patient called" in world.last(b)["text"]
    await world.say(b, "/session willow")
    assert "no patient called" in world.last(b)["text"]


async def test_invite_links_are_single_use_and_expire(world: World) -> None:
    dr = await world.therapist()
    await world.say(dr, "/invite fern")
    link = LINK.search(world.last(dr)["text"]).group(0)  # type: ignore[union-attr]
    first, second = world.person("One"), world.person("Two")
    await world.open_invite(first, link)
    await world.tap(first, world.last(first)["message_id"], "I agree")
    await world.open_invite(second, link)
    assert "already been used" in world.last(second)["text"]

    await world.say(dr, "/invite moss")
    old = LINK.search(world.last(dr)["text"]).group(0)  # type: ignore[union-attr]
    world.clock.advance(timedelta(days=8))
    late = world.person("Late")
    await world.open_invite(late, old)
    assert "expired" in world.last(late)["text"]

    unknown = world.person("Guess")
    await world.say(unknown, "/start AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert "isn't valid" in world.last(unknown)["text"]


async def test_declining_stores_nothing(world: World) -> None:
    dr = await world.therapist()
    await world.say(dr, "/invite birch")
    link = LINK.search(world.last(dr)["text"]).group(0)  # type: ignore[union-attr]
    pat = world.person("Birch")
    await world.open_invite(pat, link)
    await world.tap(pat, world.last(pat)["message_id"], "No, thanks")
    assert "Nothing about you has been stored" in world.last(pat)["text"]
    async with world.rt.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT telegram_index, telegram_enc, consent_at FROM patients")
            )
        ).all()
    assert stored == [(None, None, None)]


async def test_forged_callback_data_is_rejected(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "cedar")
    await world.say(dr, "/session cedar")
    await world.tick()
    message_id = world.last(pat)["message_id"]
    for forged in ("ok:1:AAAAAAAAAAA", "ck:1:0", "ca:1", "x" * 64):
        await world.state.press(pat, message_id, forged, check=False)
        await world.feed()
        answer = world.state.calls_to("answerCallbackQuery")[-1].params
        assert answer.get("text") == "This button is no longer valid."


async def test_someone_elses_button_is_rejected(world: World) -> None:
    dr = await world.therapist()
    a = await world.enrolled_patient(dr, "ash")
    b = await world.enrolled_patient(dr, "elm")
    await world.say(dr, "/session ash")
    await world.tick()
    got_it = world.last(a)
    data = next(
        btn["callback_data"]
        for row in got_it["reply_markup"]["inline_keyboard"]
        for btn in row
        if btn["text"] == "Got it"
    )
    # b replays a's genuine, correctly signed button data in their own chat.
    await world.say(b, "hello")
    await world.state.press(b, world.last(b)["message_id"], data, check=False)
    await world.feed()
    answer = world.state.calls_to("answerCallbackQuery")[-1].params
    assert answer.get("text") == "This button is no longer valid."


async def test_onboarding_re_asks_for_a_bad_zone_and_accepts_a_city(world: World) -> None:
    dr = await world.therapist()
    await world.say(dr, "/invite pine")
    link = LINK.search(world.last(dr)["text"]).group(0)  # type: ignore[union-attr]
    pat = world.person("Pine")
    await world.open_invite(pat, link)
    await world.tap(pat, world.last(pat)["message_id"], "I agree")
    await world.say(pat, "Atlantis")
    assert "couldn't find that time zone" in world.last(pat)["text"]
    await world.say(pat, "berlin")
    assert "Europe/Berlin" in world.last(pat)["text"]


async def test_second_start_does_not_re_enrol(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "maple")
    await world.say(pat, "/start")
    assert "How this works" in world.last(pat)["text"]
    await world.say(dr, "/invite other")
    link = LINK.search(world.last(dr)["text"]).group(0)  # type: ignore[union-attr]
    await world.open_invite(pat, link)
    assert "already set up" in world.last(pat)["text"]
    async with world.rt.engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT pseudonym, status FROM patients ORDER BY id"))
        ).all()
    assert [tuple(r) for r in rows] == [("maple", "active"), ("other", "invited")]


async def test_voice_photo_and_sticker_get_a_kind_request_and_nothing_is_stored(
    world: World,
) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "reed")
    for send in (world.state.send_voice, world.state.send_photo, world.state.send_sticker):
        await send(pat)
        await world.feed()
        assert "only keep written answers" in world.last(pat)["text"]
    async with world.rt.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM replies"))).scalar() == 0


async def test_the_same_update_twice_has_one_effect(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dune")
    raw = await world.state.send_text(pat, "a note I wrote once")
    world.state.drain_updates()
    for _ in range(3):
        await world.app.process_update(Update.de_json(raw, world.app.bot))
    async with world.rt.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM replies"))).scalar() == 1
    acks = [t for t in world.texts(pat) if t.startswith("Thank you, I've kept this")]
    assert len(acks) == 1


async def test_a_new_session_cancels_the_previous_pending_prompts(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "iris")
    await world.say(dr, "/session iris")
    await world.tick()
    world.clock.advance(timedelta(days=2))
    await world.say(dr, "/session iris short")
    assert "were cancelled" in world.last(dr)["text"]
    states = [d.state for d in await world.deliveries("iris")]
    assert DeliveryState.CANCELLED in states
    assert states.count(DeliveryState.SCHEDULED) + states.count(DeliveryState.SENT) >= 7


async def test_session_arguments_are_checked(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "sage")
    cases = {
        "/session": "Usage",
        "/session sage 2026-03-40 10:00": "not a date",
        "/session sage 2026-03-10": "Give the time too",
        "/session sage nosuchtemplate": "There is no template",
        "/session sage 2025-01-01 10:00": "within 30 days",
        "/session ghost": "no patient called",
    }
    for command, expected in cases.items():
        await world.say(dr, command)
        assert expected in world.last(dr)["text"], command
    assert await world.deliveries("sage") == []


async def test_session_at_a_local_time_plans_in_the_patients_zone(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "kauri", zone="Australia/Sydney")
    await world.say(dr, "/session kauri 2026-03-11 10:00")
    assert "Wed 11 Mar 10:00 (Australia/Sydney)" in world.last(dr)["text"]
    deliveries = await world.deliveries("kauri")
    assert deliveries[0].due_at.isoformat() == "2026-03-10T23:00:00+00:00"
    del pat


async def test_the_same_update_handled_concurrently_has_one_effect(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "tern")
    raw = await world.state.send_text(pat, "written once, delivered twice at the same moment")
    world.state.drain_updates()
    await asyncio.gather(
        *(world.app.process_update(Update.de_json(raw, world.app.bot)) for _ in range(2))
    )
    async with world.rt.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM replies"))).scalar() == 1
        recorded = (
            await conn.execute(
                text("SELECT count(*) FROM processed_updates WHERE update_id = :u"),
                {"u": raw["update_id"]},
            )
        ).scalar()
    assert recorded == 1
    assert not any("went wrong" in t for t in world.texts(pat))

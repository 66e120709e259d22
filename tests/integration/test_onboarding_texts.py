"""What people see around the consent step (issue 13). Seen before: "This link has already
been used. If that wasn't you…" after a second tap on Agree, an old Agree after declining,
reopening a link one declined, and Agree after the therapist sent a replacement; "please open
that link to start" to someone looking at the consent screen; a deactivated therapist treated
as a stranger; a therapist's second /start welcomed as a new registration."""

from __future__ import annotations

from typing import Any

from bot.emulator.people import EmuUser
from bot.services import enrollment, therapists
from bot.views import render
from tests.integration.world import LINK, World

ALARM = "If that wasn't you"


def _data(message: dict[str, Any], label: str) -> str:
    rows = message["reply_markup"]["inline_keyboard"]
    return next(b["callback_data"] for row in rows for b in row if b["text"] == label)


def _alert(world: World) -> str:
    return str(world.state.calls_to("answerCallbackQuery")[-1].params.get("text", ""))


async def _invited(world: World, dr: EmuUser, pseudonym: str) -> str:
    await world.say(dr, f"/invite {pseudonym}")
    link = LINK.search(world.last(dr)["text"])
    assert link is not None
    return link.group(0)


async def _open(world: World, person: EmuUser, link: str) -> dict[str, Any]:
    return await world.open_invite(person, link)


async def _press(world: World, person: EmuUser, message: dict[str, Any], data: str) -> None:
    await world.state.press(person, message["message_id"], data, check=False)
    await world.feed()


async def test_a_second_tap_on_agree_is_calm(world: World) -> None:
    dr = await world.therapist()
    pat = world.person("Fern")
    consent = await _open(world, pat, await _invited(world, dr, "fern"))
    agree = _data(consent, "I agree")
    await world.tap(pat, consent["message_id"], "I agree")
    await _press(world, pat, consent, agree)
    assert ALARM not in _alert(world) and "already agreed" in _alert(world)


async def test_an_old_agree_after_declining_and_reopening_ones_own_declined_link(
    world: World,
) -> None:
    dr = await world.therapist()
    pat = world.person("Birch")
    link = await _invited(world, dr, "birch")
    consent = await _open(world, pat, link)
    agree = _data(consent, "I agree")
    await world.tap(pat, consent["message_id"], "No, thanks")
    await _press(world, pat, consent, agree)
    assert ALARM not in _alert(world) and "declined" in _alert(world)
    again = await _open(world, pat, link)
    assert ALARM not in again["text"] and "declined, so nothing was stored" in again["text"]


async def test_agree_after_the_therapist_sent_a_replacement(world: World) -> None:
    dr = await world.therapist()
    pat = world.person("Moss")
    consent = await _open(world, pat, await _invited(world, dr, "moss"))
    await _invited(world, dr, "moss")  # a new link replaces the first
    await world.tap(pat, consent["message_id"], "I agree")
    assert ALARM not in _alert(world) and "newer link" in _alert(world)


async def test_someone_else_using_the_link_is_still_alarming(world: World) -> None:
    dr = await world.therapist()
    link = await _invited(world, dr, "oak")
    first, second = world.person("One"), world.person("Two")
    consent = await _open(world, first, link)
    await world.tap(first, consent["message_id"], "I agree")
    assert "another Telegram account" in (await _open(world, second, link))["text"]


async def test_the_consent_screen_answers_as_the_consent_step(world: World) -> None:
    dr = await world.therapist()
    pat = world.person("Reed")
    await _open(world, pat, await _invited(world, dr, "reed"))
    for said, hint in (
        ("what is this?", render.CONSENT_STEP_HINT),
        ("/mydata", render.CONSENT_STEP_HINT),
        ("/stop", render.CONSENT_DECLINE_HINT),
    ):
        await world.say(pat, said)
        shown = world.last(pat)
        assert shown["text"].startswith(render.plain(hint)), said
        assert "please open that link" not in shown["text"]
        await world.tap(pat, shown["message_id"], "No, thanks") if said == "/stop" else None
    assert "Nothing about you has been stored" in world.last(pat)["text"]


async def test_a_deactivated_therapist_is_told_so(world: World) -> None:
    dr = await world.therapist("Dr Gone")
    async with world.rt.sessions() as session, session.begin():
        await therapists.deactivate(session, ident="Dr Gone", now=world.clock.now())
    await world.say(dr, "/patients")
    assert "has been deactivated" in world.last(dr)["text"]
    await world.say(dr, "hello?")
    assert "has been deactivated" in world.last(dr)["text"]


async def test_a_therapist_starting_again_is_welcomed_back(world: World) -> None:
    dr = await world.therapist("Dr Rivera")
    await world.say(dr, "/start")
    assert world.last(dr)["text"].startswith("Welcome back, Dr Rivera.")


async def test_an_enrolled_patient_opening_a_therapist_link_is_told_why(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "maple")
    async with world.rt.sessions() as session, session.begin():
        token = await enrollment.invite_therapist(session, name="Dr New", now=world.clock.now())
    await world.say(pat, f"/start {token}")
    said = world.last(pat)["text"]
    assert "already set up as a patient" in said and "another Telegram account" in said

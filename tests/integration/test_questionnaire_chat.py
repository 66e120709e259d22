"""A questionnaire in chat: one message moving item by item, Back, the thank-you, a risk item
taking the crisis path once, a total notice, a stale tap, and the window closing on an
unfinished one. Item texts are placeholders (tests/fixtures/questionnaire_chat)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.db.models import Alert, AlertKind, Delivery, DeliveryState, Reply, ReplyKind
from bot.emulator.people import EmuUser
from tests.integration.world import World, running
from tests.support.pg import backends

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "questionnaire_chat"
HELP_MARK = "you do not have to face this alone"  # from prompts/safety/resources.yaml


@pytest.fixture(params=backends())
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(request.param, tmp_path, content_dirs=str(FIXTURE)) as w:
        yield w


def labels(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def data_of(message: dict[str, Any], label: str) -> str:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            if button["text"] == label:
                return str(button["callback_data"])
    raise LookupError(label)


def shown(world: World, person: EmuUser, message_id: int) -> dict[str, Any]:
    return next(m for m in world.state.sent_messages(person.id) if m["message_id"] == message_id)


async def started(world: World, template: str) -> tuple[EmuUser, EmuUser, int]:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    await world.say(dr, f"/session river 2026-03-10 09:59 {template}")
    await world.tick()
    message = world.last(pat)
    assert "1 of" in message["text"], message["text"]
    return dr, pat, int(message["message_id"])


async def rows(world: World) -> tuple[Delivery, list[Reply], list[Alert]]:
    async with world.rt.sessions() as session:
        [delivery] = list(await session.scalars(select(Delivery)))
        replies = list(await session.scalars(select(Reply).order_by(Reply.item)))
        alerts = list(await session.scalars(select(Alert)))
    return delivery, replies, alerts


async def test_nine_items_on_one_message_with_back_and_a_thank_you(world: World) -> None:
    dr, pat, mid = await started(world, "q-nine")
    first = shown(world, pat, mid)
    assert "Placeholder nine" in first["text"] and "The last two weeks" in first["text"]
    assert "Placeholder item 1" in first["text"]
    assert labels(first)[:4] == ["Choice 0", "Choice 1", "Choice 2", "Choice 3"]
    assert "◀ Back" not in labels(first)
    for n in range(1, 9):
        await world.tap(pat, mid, "Choice 2" if n == 8 else "Choice 0")
        assert f"{n + 1} of 9" in shown(world, pat, mid)["text"]
    assert "Placeholder item 9" in shown(world, pat, mid)["text"]

    await world.tap(pat, mid, "◀ Back")  # item 8 again, its answer marked
    again = shown(world, pat, mid)
    assert "8 of 9" in again["text"] and "✓ Choice 2" in labels(again)
    await world.tap(pat, mid, "✓ Choice 2")
    await world.tap(pat, mid, "Choice 0")
    done = shown(world, pat, mid)["text"]
    assert "Thank you" in done and "score" not in done.lower()  # scores stay off by default

    delivery, replies, alerts = await rows(world)
    assert delivery.state is DeliveryState.ANSWERED and delivery.answered_at is not None
    assert [r.item for r in replies] == list(range(1, 10))
    assert all(r.kind is ReplyKind.ITEM and r.choice_value_enc for r in replies)
    assert all(r.choice_value_enc != b"2" and r.choice_value_enc != b"0" for r in replies)
    assert [world.rt.cipher.decrypt(r.choice_value_enc or b"") for r in replies][7] == "2"
    assert alerts == [] and not any(HELP_MARK in t for t in world.texts(pat))

    await world.say(dr, "/replies river 3")
    listing = world.last(dr)["text"]
    assert "Placeholder nine, item 9 of 9" in listing and "Choice 0 (0)" in listing


async def test_a_risk_item_takes_the_crisis_path_once_even_after_back(world: World) -> None:
    dr, pat, mid = await started(world, "q-three")  # item 2 at 3 or above is a risk
    await world.tap(pat, mid, "Choice 1")
    await world.tap(pat, mid, "Choice 3")
    assert sum(HELP_MARK in t for t in world.texts(pat)) == 1
    alert = world.last(dr)["text"]
    assert "Questionnaire risk item" in alert and "river" in alert
    assert "Placeholder three, item 2 of 3" in alert and "Choice 3" in alert
    await world.tap(pat, mid, "◀ Back")
    await world.tap(pat, mid, "✓ Choice 3")  # the same risk answer again
    await world.tap(pat, mid, "Choice 0")
    delivery, replies, alerts = await rows(world)
    assert [a.kind for a in alerts] == [AlertKind.QUESTIONNAIRE]
    assert alerts[0].reply_id == replies[1].id and replies[1].flagged
    assert sum(HELP_MARK in t for t in world.texts(pat)) == 1
    assert delivery.state is DeliveryState.ANSWERED


async def test_a_total_at_its_rule_tells_the_therapist(world: World) -> None:
    dr, pat, mid = await started(world, "q-three")  # total 7 or more: a notice
    told = len(world.state.sent_messages(dr.id))
    for label in ("Choice 3", "Choice 2", "Choice 2"):
        await world.tap(pat, mid, label)
    notices = world.state.sent_messages(dr.id)[told:]
    assert [n for n in notices if "finished" in n["text"] and "total of 7" in n["text"]]
    assert "(high)" in notices[-1]["text"]


async def test_a_stale_tap_changes_nothing(world: World) -> None:
    _, pat, mid = await started(world, "q-three")
    old = data_of(shown(world, pat, mid), "Choice 1")  # item 1's button
    await world.tap(pat, mid, "Choice 1")
    await world.state.press(pat, mid, old, check=False)  # a second tap on item 1
    await world.feed()
    assert world.state.calls_to("answerCallbackQuery")[-1].params.get("text") == "Already saved."
    delivery, replies, _ = await rows(world)
    assert delivery.position == 1 and len(replies) == 1
    assert "2 of 3" in shown(world, pat, mid)["text"]


async def test_an_unfinished_questionnaire_closes_partial_or_missed(world: World) -> None:
    _, pat, mid = await started(world, "q-three")  # expires: 2h
    await world.tap(pat, mid, "Choice 1")
    await world.run_until(world.clock.now() + timedelta(hours=2, minutes=10))
    delivery, _, _ = await rows(world)
    assert delivery.state is DeliveryState.PARTIAL and delivery.closed_at is not None
    await world.tap(pat, mid, "Choice 1")
    answer = world.state.calls_to("answerCallbackQuery")[-1].params
    assert answer.get("show_alert") and "closed" in answer["text"]
    _, replies, _ = await rows(world)
    assert len(replies) == 1


async def test_a_newer_questionnaire_closes_the_unfinished_one(world: World) -> None:
    _, pat, mid = await started(world, "q-twice")  # three now, the nine an hour later
    await world.run_until(world.clock.now() + timedelta(hours=1, minutes=5))
    async with world.rt.sessions() as session:
        first, second = list(await session.scalars(select(Delivery).order_by(Delivery.id)))
    assert first.state is DeliveryState.MISSED and second.state is DeliveryState.SENT
    await world.tap(pat, mid, "Choice 1")
    assert "closed" in world.state.calls_to("answerCallbackQuery")[-1].params["text"]


async def answer_three(world: World, pat: EmuUser, mid: int, labels_: tuple[str, ...]) -> None:
    for label in labels_:
        await world.tap(pat, mid, label)


async def test_scores_list_totals_bands_change_and_marks_for_the_therapist_only(
    world: World,
) -> None:
    dr, pat, mid = await started(world, "q-three")
    await answer_three(world, pat, mid, ("Choice 2", "Choice 2", "Choice 2"))  # 6, high
    await world.say(dr, "/session river q-three")  # logged again now: a second one
    await world.tick()
    await answer_three(
        world, pat, world.last(pat)["message_id"], ("Choice 1", "Choice 1", "Choice 0")
    )  # 2: low, half or less of 6: a response, and the lowest band: remission
    await world.say(dr, "/scores river")
    text = world.last(dr)["text"]
    assert "Scores of river" in text
    lines = [line for line in text.splitlines() if line.startswith("•")]
    assert len(lines) == 2
    assert "Placeholder three: 6 (high) · baseline" in lines[0]
    assert "Placeholder three: 2 (low) · −4 from baseline · response · remission" in lines[1]
    assert world.state.calls_to("sendMessage")[-1].params.get("protect_content")

    await world.say(dr, "/patients")
    board = world.last(dr)["message_id"]
    await world.tap(dr, board, next(b for b in labels(world.last(dr)) if "river" in b))
    card = shown(world, dr, board)["text"]
    assert "Latest score:" in card and "Placeholder three: <b>2</b>" not in card
    assert "Placeholder three: 2 (low)" in card

    other = await world.therapist("Dr Okafor")
    await world.say(other, "/scores river")
    assert "no patient called" in world.last(other)["text"]
    await world.say(pat, "/scores river")
    assert world.last(pat)["text"].startswith("Sorry, that command isn't available")


async def test_the_fhir_export_is_a_valid_r4_bundle_with_loinc_totals(world: World) -> None:
    from fhir.resources.R4B.bundle import Bundle

    from bot.services import maintenance

    dr, pat, mid = await started(world, "q-nine")
    for _ in range(9):
        await world.tap(pat, mid, "Choice 1")  # total 9: mild; item 9 at 1 is a risk
    await world.say(dr, "/session river q-three")
    await world.tick()
    await world.tap(pat, world.last(pat)["message_id"], "Choice 2")  # one answer, still open
    async with world.rt.sessions() as session, session.begin():
        result = await maintenance.export_patient(
            session,
            pseudonym="river",
            fmt="fhir",
            content=world.rt.content,
            cipher=world.rt.cipher,
            now=world.clock.now(),
        )
    assert result.filename.endswith(".fhir.json")
    bundle = Bundle.model_validate_json(result.data)  # raises on anything FHIR R4 refuses
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry or []]
    assert kinds.count("Patient") == 1 and kinds.count("QuestionnaireResponse") == 2
    raw = json.loads(result.data)
    [patient] = [e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert patient == {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:afterglow:pseudonym", "value": "river"}],
    }
    totals = [
        e["resource"]
        for e in raw["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["system"] == "http://loinc.org"
    ]
    assert [(t["code"]["coding"][0]["code"], t["valueInteger"]) for t in totals] == [("44261-6", 9)]
    statuses = sorted(
        e["resource"]["status"]
        for e in raw["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    assert statuses == ["completed", "in-progress"]
    assert "Placeholder item 9" in result.data.decode()


async def test_trends_draws_questionnaire_totals_too(world: World) -> None:
    dr, pat, mid = await started(world, "q-three")
    await answer_three(world, pat, mid, ("Choice 1", "Choice 1", "Choice 1"))
    await world.say(dr, "/trends river")  # no check-ins yet: the totals alone make a chart
    [photo] = world.state.sent_photos(dr.id)
    assert photo.content.startswith(b"\x89PNG")


async def test_a_questionnaire_risk_alert_escalates_like_any_other(tmp_path: Path) -> None:
    async with running(
        "sqlite", tmp_path, content_dirs=str(FIXTURE), oncall_chat_id=-100500
    ) as world:
        dr, pat, mid = await started(world, "q-three")
        await world.tap(pat, mid, "Choice 0")
        await world.tap(pat, mid, "Choice 3")  # item 2: the risk rule
        assert "Questionnaire risk item" in world.last(dr)["text"]
        await world.run_until(world.clock.now() + timedelta(minutes=20), step=timedelta(minutes=1))
        oncall = [str(m.get("text", "")) for m in world.state.sent_messages(-100500)]
        assert any("river" in text for text in oncall), oncall


async def test_a_crash_between_two_answers_loses_and_doubles_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.services import questionnaires

    _, pat, mid = await started(world, "q-three")
    await world.tap(pat, mid, "Choice 1")  # item 1, committed
    real = questionnaires._alerted

    async def crash(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("the database went away mid-answer")

    monkeypatch.setattr(questionnaires, "_alerted", crash)
    await world.tap(pat, mid, "Choice 3")  # item 2 (a risk answer): the transaction dies
    delivery, replies, alerts = await rows(world)
    assert delivery.position == 1 and [r.item for r in replies] == [1] and alerts == []
    assert "2 of 3" in shown(world, pat, mid)["text"]  # the message still asks item 2

    monkeypatch.setattr(questionnaires, "_alerted", real)
    await world.tap(pat, mid, "Choice 3")  # the patient taps again
    await world.tap(pat, mid, "Choice 0")
    delivery, replies, alerts = await rows(world)
    assert [r.item for r in replies] == [1, 2, 3] and len(alerts) == 1
    assert delivery.state is DeliveryState.ANSWERED

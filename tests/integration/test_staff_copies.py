"""Patient words in staff chats: protected, audit-logged, and deleted again by /forgetme.

Seen in the security review: alerts to therapists and on-call and `/replies` listings carried
patient text without `protect_content`; escalations were not audit-logged with the chat they
went to; `/forgetme` left the bot's alert and `/replies` messages in the therapist's chat; and
no test showed that reading replies writes an audit entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.db.models import Alert, AuditEntry, StaffMessage
from bot.emulator.people import EmuUser
from tests.integration.world import World, close_world, make_world, running
from tests.support.pg import backends

ONCALL = -100555
CRISIS = "i want to end my life"
WORDS = "the pier at night looked like an ending"


@pytest.fixture(params=backends())
async def clinic(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(
        request.param, tmp_path, oncall_chat_id=ONCALL, alert_escalate_after="20s"
    ) as w:
        yield w


async def audit(world: World, action: str) -> list[AuditEntry]:
    async with world.rt.sessions() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return list(rows)


def holding(world: World, chat_id: int, words: str) -> list[dict[str, Any]]:
    return [m for m in world.state.sent_messages(chat_id) if words in m.get("text", "")]


async def _alerted(world: World) -> tuple[EmuUser, EmuUser]:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "wren")
    await world.say(pat, WORDS)
    await world.say(pat, CRISIS)
    world.clock.advance(timedelta(seconds=25))
    await world.tick()  # not acknowledged: on-call is told
    return dr, pat


async def test_alerts_and_escalations_are_protected_and_audited(clinic: World) -> None:
    world = clinic
    dr, _ = await _alerted(world)
    (alert,) = holding(world, dr.id, CRISIS)
    (escalation,) = holding(world, ONCALL, CRISIS)
    assert alert["has_protected_content"] is True
    assert escalation["has_protected_content"] is True

    (notified,) = await audit(world, "alert.notified")
    (escalated,) = await audit(world, "alert.escalated")
    assert notified.detail["chat"] == dr.id
    assert escalated.detail["chat"] == ONCALL and escalated.actor == "system"
    assert escalated.patient_id is not None
    assert CRISIS not in repr(escalated.detail)


async def test_an_escalation_with_no_oncall_chat_is_audited_as_reaching_nobody(
    tmp_path: Path,
) -> None:
    world = await make_world(f"sqlite+aiosqlite:///{tmp_path}/n.db", alert_escalate_after="20s")
    try:
        await _alerted(world)
        (escalated,) = await audit(world, "alert.escalated")
        assert escalated.detail["chat"] is None
    finally:
        await close_world(world)


async def test_reading_replies_is_protected_and_audited_by_command_and_button(
    world: World,
) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "wren")
    await world.say(pat, WORDS)

    await world.say(dr, "/replies wren")
    listing = world.last(dr)
    assert WORDS in listing["text"] and listing["has_protected_content"] is True
    (read,) = await audit(world, "replies.read")
    assert read.actor.startswith("therapist:") and read.patient_id is not None

    await world.say(dr, "/patients")
    card = world.last(dr)
    await world.tap(dr, card["message_id"], "wren")
    await world.tap(dr, world.last(dr)["message_id"], "Replies")
    assert WORDS in world.last(dr)["text"] and world.last(dr)["has_protected_content"] is True
    assert len(await audit(world, "replies.read")) == 2


async def test_forgetme_deletes_the_staff_copies_telegram_still_allows(clinic: World) -> None:
    world = clinic
    dr, pat = await _alerted(world)
    alert_ids = [m["message_id"] for m in holding(world, dr.id, CRISIS)]
    assert len(alert_ids) == 1 and holding(world, ONCALL, CRISIS)
    world.clock.advance(timedelta(hours=49))
    await world.say(dr, "/replies wren")  # the alert is 49 hours old now: too old to delete
    world.clock.advance(timedelta(hours=1))
    await world.say(dr, "/replies wren")
    assert len(holding(world, dr.id, WORDS)) == 2

    await world.say(pat, "/forgetme")
    await world.tap(pat, world.last(pat)["message_id"], "Delete everything")

    # The two listings are gone from the therapist's chat; the 50-hour-old alert and
    # escalation stay (Telegram refuses after 48 hours), as docs/operations.md says.
    assert [m["message_id"] for m in holding(world, dr.id, CRISIS)] == alert_ids
    assert holding(world, ONCALL, CRISIS)
    assert world.last(dr)["text"] == "wren asked to delete their data; it has been erased."
    async with world.rt.sessions() as session:
        assert not (await session.scalars(select(StaffMessage))).all()
        alert = await session.scalar(select(Alert))
        assert alert is not None and alert.text_enc is None  # the record stays, its words go


async def test_forgetme_soon_after_an_alert_deletes_it_from_both_chats(clinic: World) -> None:
    world = clinic
    dr, pat = await _alerted(world)
    await world.say(dr, "/replies wren")
    await world.say(dr, "/export wren")
    exported = world.last(dr)
    assert "document" in exported and exported["has_protected_content"] is True
    await world.say(pat, "/forgetme")
    await world.tap(pat, world.last(pat)["message_id"], "Delete everything")
    assert not holding(world, dr.id, CRISIS) and not holding(world, dr.id, WORDS)
    still = {m["message_id"] for m in world.state.sent_messages(dr.id)}
    assert exported["message_id"] not in still, "the export file went too"
    assert not holding(world, ONCALL, CRISIS)

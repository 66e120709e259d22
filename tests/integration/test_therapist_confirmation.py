"""`therapist add --telegram-id` is confirmed by the therapist's own /start before alerts go there.

Seen in the security review: an id typed in by the operator was never confirmed by the account
holder, yet crisis alerts (with the patient's words) went straight to that id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import AuditEntry
from tests.integration.world import World, running
from tests.support.pg import backends

ONCALL = -100444
CRISIS = "i want to end my life"


@pytest.fixture(params=backends())
async def clinic(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(request.param, tmp_path, oncall_chat_id=ONCALL) as w:
        yield w


async def test_alerts_reach_an_added_therapist_only_after_their_own_start(clinic: World) -> None:
    world = clinic
    dr = await world.unconfirmed_therapist("Dr Okafor")
    # Using the bot before /start (an /invite) is not a confirmation of the alert chat: the
    # operator may have typed someone else's id, and that person may never write at all.
    pat = await world.enrolled_patient(dr, "moss")
    before = len(world.state.sent_messages(dr.id))

    await world.say(pat, CRISIS)
    assert len(world.state.sent_messages(dr.id)) == before, "no alert to an unconfirmed id"
    oncall = world.state.sent_messages(ONCALL)
    assert len(oncall) == 1 and CRISIS in oncall[0]["text"]

    await world.say(dr, "/start")
    assert "Safety alerts for your patients will reach you in this chat" in world.last(dr)["text"]
    await world.say(dr, "/start")
    assert "Safety alerts" not in world.last(dr)["text"]  # said once

    world.clock.advance(timedelta(minutes=1))
    await world.say(pat, "i want to kill myself")
    assert "i want to kill myself" in world.last(dr)["text"]
    async with world.rt.sessions() as session:
        entries = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "therapist.chat_confirmed")
        )
        assert len(list(entries)) == 1

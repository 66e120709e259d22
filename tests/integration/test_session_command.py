"""`/session` as a therapist types it: back-dated sessions and arguments that are almost right
(issue 13). Seen before: a session logged three days back listed all 16 steps as upcoming, then
eight were silently marked missed; `/session dup 10:00` answered "There is no template '10:00'";
`/invite river 7` gave only the usage line."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.db.models import DeliveryState, TreatmentSession
from tests.integration.world import World


def _buttons(message: dict[str, object]) -> list[str]:
    markup = message.get("reply_markup") or {}
    assert isinstance(markup, dict)
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def _sessions(world: World) -> int:
    async with world.rt.sessions() as session:
        return int(await session.scalar(select(func.count(TreatmentSession.id))) or 0)


async def test_a_mostly_past_session_asks_first_and_then_says_what_is_too_late(
    world: World,
) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    await world.say(dr, "/session dup 2026-03-06 10:00")  # four days ago, New York time
    ask = world.last(dr)
    assert "Nothing is logged yet" in ask["text"] and "too late to send" in ask["text"]
    assert _buttons(ask) == ["Log it anyway", "Cancel"]
    assert await world.deliveries("dup") == [] and await _sessions(world) == 0

    confirm = ask["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await world.tap(dr, ask["message_id"], "Log it anyway")
    done = next(m for m in world.state.sent_messages(dr.id) if m["message_id"] == ask["message_id"])
    assert done["text"].startswith("Session logged for dup")
    assert "Too late to send" in done["text"] and "Will be sent" in done["text"]
    rows = await world.deliveries("dup")
    missed = [d for d in rows if d.state is DeliveryState.MISSED]
    waiting = [d for d in rows if d.state is DeliveryState.SCHEDULED]
    assert (
        missed
        and waiting
        and len(missed) + len(waiting) + sum(d.state is DeliveryState.SKIPPED for d in rows)
        == len(rows)
    )
    assert all(d.due_at < world.clock.now() for d in missed)
    assert all(d.due_at >= world.clock.now() - timedelta(hours=6) for d in waiting)
    for item in missed:
        assert item.prompt_key in done["text"].split("Will be sent")[0]

    # A second press (a stale copy of the button) does not log it twice.
    await world.state.press(dr, ask["message_id"], confirm, check=False)
    await world.feed()
    assert "already logged" in world.state.calls_to("answerCallbackQuery")[-1].params["text"]
    assert await _sessions(world) == 1
    await world.tick()
    assert not any("edu-after-session" in t for t in world.texts(pat))


async def test_cancel_logs_nothing(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "dup")
    await world.say(dr, "/session dup 2026-03-06 09:00")
    ask = world.last(dr)
    await world.tap(dr, ask["message_id"], "Cancel")
    assert await _sessions(world) == 0 and await world.deliveries("dup") == []


async def test_a_session_an_hour_ago_sends_its_first_step_and_asks_nothing(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    await world.say(dr, "/session dup 2026-03-10 09:00")  # 13:00 UTC; now is 14:00 UTC
    plan = world.last(dr)["text"]
    assert plan.startswith("Session logged for dup") and "Too late" not in plan
    await world.tick()
    rows = await world.deliveries("dup")
    assert rows[0].offset == "+0m" and rows[0].state is DeliveryState.SENT
    assert world.texts(pat)[-1]


async def test_almost_right_arguments_say_what_was_wrong(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "dup")
    await world.say(dr, "/session dup 10:00")
    assert "The date is missing" in world.last(dr)["text"]
    assert "template" not in world.last(dr)["text"]
    await world.say(dr, "/invite river 7")
    assert "without spaces" in world.last(dr)["text"]
    assert "/invite river-7" in world.last(dr)["text"]

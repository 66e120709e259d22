"""At AFTERGLOW_LOG_LEVEL=DEBUG a whole journey leaves no health data or identity in the log.

Third-party libraries (aiosqlite, asyncpg, SQLAlchemy, python-telegram-bot, httpx) log bound
values, API parameters and updates at DEBUG; only the bot's own loggers may go below INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.logs import setup_logging
from tests.integration.world import World


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.args!r}")


@pytest.fixture
def debug_log() -> Iterator[_Capture]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    setup_logging("text", "DEBUG")
    capture = _Capture()
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


async def test_a_debug_journey_logs_no_pseudonym_ids_answers_or_text(
    world: World, debug_log: _Capture
) -> None:
    # Ids no timestamp or counter would produce by chance.
    world._next_user = 738_291_000
    dr = await world.therapist("Dr Quenby")
    pat = await world.enrolled_patient(dr, "heron-94", zone="Europe/Lisbon")
    await world.say(dr, "/session heron-94")
    await world.tick()
    await world.run_until(world.clock.now() + timedelta(hours=30))
    sent = world.state.sent_messages(pat.id)
    checkin = next(m for m in sent if "How did you sleep" in m.get("text", ""))
    await world.tap(pat, checkin["message_id"], "Barely at all")
    await world.say(pat, "My grandmother's violin sounded different today.")
    await world.say(pat, "I keep thinking I want to kill myself tonight.")
    await world.say(dr, "/replies heron-94")
    await world.say(pat, "/mydata")

    assert any(line.startswith("bot") for line in debug_log.lines), "the bot's own DEBUG is kept"
    log = "\n".join(debug_log.lines)
    for secret in (
        "heron-94",
        str(pat.id),
        str(dr.id),
        "Dr Quenby",
        "Europe/Lisbon",
        "Barely at all",
        "'barely'",
        "violin",
        "kill myself",
    ):
        assert secret not in log, f"{secret!r} appears in the DEBUG log"

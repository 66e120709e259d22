"""A local Telegram Bot API emulator: one in-memory core (BotApiState) used in-process by the
tests' fake and over HTTP (EmulatorServer) by `afterglow demo`."""

from typing import TYPE_CHECKING, Any

from bot.emulator.faults import ApiError
from bot.emulator.state import BotApiState, RecordedCall
from bot.emulator.store import SentDocument
from bot.emulator.transcript import TranscriptEntry, render_transcript
from bot.emulator.updates import EmuUser

if TYPE_CHECKING:
    from bot.emulator.server import EmulatorServer

__all__ = [
    "ApiError",
    "BotApiState",
    "EmuUser",
    "EmulatorServer",
    "RecordedCall",
    "SentDocument",
    "TranscriptEntry",
    "render_transcript",
]


def __getattr__(name: str) -> Any:
    # The HTTP server pulls in uvicorn and starlette; in-process tests never need them.
    if name == "EmulatorServer":
        from bot.emulator.server import EmulatorServer

        return EmulatorServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

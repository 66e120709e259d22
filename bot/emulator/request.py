"""The in-process fake Telegram Bot API: PTB's own request layer answered by the emulator core.

    state = BotApiState()
    app = fake_application_builder(state).build()   # real Application, no network
    alice = state.user(1001, "Alice")
    await state.send_text(alice, "/start")
    await feed_updates(app, state)                   # process queued updates in-process
    assert state.last_sent(alice.id)["text"] == ...

The same BotApiState sits behind bot.emulator.EmulatorServer for the demo, so the fake the
tests trust and the emulator the demo shows are one piece of logic.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from telegram import Update
from telegram._utils.types import ODVInput
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest, RequestData

from bot.emulator import BotApiState

UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}


class FakeBotApi(BaseRequest):
    """A `telegram.request.BaseRequest` that answers from a BotApiState in-process.

    Injected faults with an `exception` are raised here, so PTB sees e.g. a real TimedOut.
    """

    def __init__(self, state: BotApiState, *, read_timeout: float | None = 5.0) -> None:
        self.state = state
        self._read_timeout = read_timeout

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        segments = urlparse(url).path.rstrip("/").split("/")
        api_method, token = segments[-1], segments[-2].removeprefix("bot")
        if token != self.state.token:
            return 401, json.dumps(UNAUTHORIZED).encode()
        params: dict[str, Any] = dict(request_data.parameters) if request_data else {}
        if request_data is not None:
            for part, (filename, content, mime_type) in request_data.multipart_data.items():
                data = content if isinstance(content, bytes) else content.read()
                params[part] = {"filename": filename, "content": data, "mime_type": mime_type}
        status, body = await self.state.call(api_method, params)
        return status, json.dumps(body).encode()


def fake_application_builder(
    state: BotApiState,
) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    """ApplicationBuilder wired to the fake; add handlers and call .build()."""
    return (
        ApplicationBuilder()
        .token(state.token)
        .request(FakeBotApi(state))
        .get_updates_request(FakeBotApi(state))
    )


async def feed_updates(app: Application[Any, Any, Any, Any, Any, Any], state: BotApiState) -> int:
    """Process every queued update through the real handlers, in order; returns how many."""
    processed = 0
    while updates := state.drain_updates():
        for data in updates:
            update = Update.de_json(data, app.bot)
            await app.process_update(update)
            processed += 1
    return processed


__all__ = ["FakeBotApi", "fake_application_builder", "feed_updates"]

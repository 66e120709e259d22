"""The emulator in its own process, as a Telegram stand-in over local HTTP.

    python -m bench.emuproc --chats 2000 [--enforce]

prints one JSON line `{"port": …}` when it listens, serves until its stdin closes, and answers
`GET /stats` (`?arrivals=1` adds the arrival times of every accepted message).

`--enforce` makes it behave like Telegram's flood control: at most `--overall` messages in any
one-second window for the whole bot and `--per-chat` seconds between two messages to one chat;
past either it answers 429 with `retry_after` (rejected calls do not count toward the windows).
A separate process keeps the server's CPU off the bot's core and its clock honest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.common import FIRST_USER_ID, ROOT, TOKEN, open_chats
from bot.emulator import BotApiState, EmulatorServer

_FORWARDS = {"forwardmessage", "forwardmessages", "copymessage", "copymessages"}


def counts_as_message(method: str) -> bool:
    """Telegram's limits count messages put into chats, not edits or callback answers."""
    name = method.lower()
    return (name.startswith("send") and name != "sendchataction") or name in _FORWARDS


class EnforcingState(BotApiState):
    """A BotApiState that answers 429 past an overall and a per-chat message rate."""

    def __init__(
        self,
        *,
        overall_per_second: int | None = None,
        per_chat_interval: float | None = None,
        retry_after: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.overall_per_second = overall_per_second
        self.per_chat_interval = per_chat_interval
        self.retry_after = retry_after
        self._window: deque[float] = deque()
        self._last_by_chat: dict[str, float] = {}
        self.arrivals: list[float] = []  # monotonic time of every accepted message
        self.rejected: Counter[str] = Counter()

    def forget_arrivals(self) -> None:
        """Start the windows afresh (after a set-up that is not the bot's limiter's doing)."""
        self._window.clear()
        self._last_by_chat.clear()

    async def call(self, method: str, params: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        if not counts_as_message(method):
            return await super().call(method, params)
        now = time.monotonic()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        chat = str(params.get("chat_id"))
        reason = None
        if self.overall_per_second is not None and len(self._window) >= self.overall_per_second:
            reason = "overall"
        elif self.per_chat_interval is not None:
            last = self._last_by_chat.get(chat)
            if last is not None and now - last < self.per_chat_interval:
                reason = "per_chat"
        if reason is not None:
            self.rejected[reason] += 1
            return 429, {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {self.retry_after}",
                "parameters": {"retry_after": self.retry_after},
            }
        status, body = await super().call(method, params)
        if status == 200:
            self._window.append(now)
            self._last_by_chat[chat] = now
            self.arrivals.append(now)
        return status, body


async def serve(args: argparse.Namespace) -> None:
    state = EnforcingState(
        token=TOKEN,
        overall_per_second=args.overall if args.enforce else None,
        per_chat_interval=args.per_chat if args.enforce else None,
    )
    await open_chats(state, args.chats, first_user_id=args.first_user_id)
    started = time.monotonic()

    async def stats(request: Request) -> JSONResponse:
        body: dict[str, Any] = {
            "messages": len(state.arrivals),
            "too_many": dict(state.rejected),
            "started": started,
            "now": time.monotonic(),
        }
        if request.query_params.get("arrivals"):
            body["arrivals"] = state.arrivals
        return JSONResponse(body)

    server = EmulatorServer(state)
    server.app.router.routes.insert(0, Route("/stats", stats, methods=["GET"]))
    async with server:
        print(json.dumps({"port": server.port}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


class EmulatorProcess:
    """Parent side: start `python -m bench.emuproc` and talk to it.

    async with EmulatorProcess(chats=1000) as emu:
        settings = bench_settings(url, telegram_api_url=emu.api_url)
    """

    def __init__(
        self,
        *,
        chats: int,
        enforce: bool = False,
        overall: int = 30,
        per_chat: float = 1.0,
        first_user_id: int = FIRST_USER_ID,
    ) -> None:
        self.args = [
            "--chats",
            str(chats),
            "--first-user-id",
            str(first_user_id),
            "--overall",
            str(overall),
            "--per-chat",
            str(per_chat),
        ] + (["--enforce"] if enforce else [])
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> EmulatorProcess:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.emuproc",
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout=120)
        if not line:
            raise RuntimeError("the emulator process did not start")
        self.port = int(json.loads(line)["port"])
        return self

    async def stats(self, *, arrivals: bool = False) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=30) as client:
            response = await client.get("/stats", params={"arrivals": "1"} if arrivals else {})
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

    async def __aexit__(self, *_exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chats", type=int, default=0)
    parser.add_argument("--first-user-id", type=int, default=FIRST_USER_ID)
    parser.add_argument("--enforce", action="store_true")
    parser.add_argument("--overall", type=int, default=30)
    parser.add_argument("--per-chat", type=float, default=1.0)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()

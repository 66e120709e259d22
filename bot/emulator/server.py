"""The emulator over HTTP, so an unmodified bot (e.g. `afterglow demo`) can talk to it.

PTB calls POST {base_url}{token}/{method}; base_url is "http://127.0.0.1:PORT/bot".
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.emulator.state import BotApiState
from bot.telegram.http_server import EmbeddedServer

logger = logging.getLogger(__name__)

# Parameters whose value is a plain string on the wire. PTB form-encodes every other value as
# JSON (RequestParameter.json_value), so "123" means the number 123 only outside this set;
# a message text "123" must stay text.
STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "business_connection_id",
        "url",
        "secret_token",
        "ip_address",
        "language_code",
        "action",
        "document",
        "data",
        "description",
        "short_description",
        "name",
        "title",
        "emoji",
        "query",
    }
)

UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}
NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}
BAD_GATEWAY = {"ok": False, "error_code": 502, "description": "Bad Gateway"}


def decode_form_value(name: str, value: str) -> Any:
    if name in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def read_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {
        key: decode_form_value(key, value) for key, value in request.query_params.items()
    }
    if request.method != "POST":
        return params
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await request.body()
        if body:
            decoded = json.loads(body)
            if isinstance(decoded, dict):
                params.update(decoded)
        return params
    async with request.form() as form:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                params[key] = {
                    "filename": value.filename or key,
                    "content": await value.read(),
                    "mime_type": value.content_type or "application/octet-stream",
                }
            else:
                params[key] = decode_form_value(key, value)
    return params


class EmulatorServer:
    def __init__(self, state: BotApiState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self.port = port
        self._server: EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
            ]
        )

    @property
    def api_url(self) -> str:
        """Value for AFTERGLOW_TELEGRAM_API_URL (the bot appends /bot<token>/<method>)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Value for PTB's ApplicationBuilder().base_url()."""
        return f"{self.api_url}/bot"

    async def _api(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.state.token:
            return JSONResponse(UNAUTHORIZED, status_code=401)
        method = str(request.path_params["method"])
        try:
            params = await read_params(request)
        except ValueError:
            return JSONResponse(
                {"ok": False, "error_code": 400, "description": "Bad Request: invalid request"},
                status_code=400,
            )
        if self._stopping and method.lower() == "getupdates":
            params["timeout"] = 0
        try:
            status, body = await self.state.call(method, params)
        except Exception as error:  # an injected fault meant for the in-process fake
            logger.debug("emulator: injected %r answered as 502", error)
            return JSONResponse(BAD_GATEWAY, status_code=502)
        return JSONResponse(body, status_code=status)

    async def _file(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.state.token:
            return JSONResponse(UNAUTHORIZED, status_code=401)
        return JSONResponse(NOT_FOUND, status_code=404)

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._stopping = False
        self._server = EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("emulator server stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._stopping = True
        self.state.release_pollers()
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
        except TimeoutError:
            self._server.force_exit = True
            await self._task
        finally:
            self._server = None
            self._task = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

"""The workspace served over real HTTP on a loopback port, beside a World, for a real
browser: Debian's Chromium driven by Playwright (`executable_path`, no browser download)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from bot.dispatch.leader import Leadership
from bot.telegram.http_server import EmbeddedServer
from bot.web import build_web
from tests.integration.world import World

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
# What the environment's probe found needed on this closed network: no background calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    given = os.environ.get("AFTERGLOW_TEST_CHROMIUM")
    if given:
        return given
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def served(world: World, port: int | None = None) -> AsyncIterator[str]:
    """The web app of `world` at http://127.0.0.1:<port>; yields the base URL."""
    port = port or free_port()
    web = build_web(world.app, world.rt, Leadership(world.rt.engine))
    config = uvicorn.Config(web, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    path = chromium_path()
    assert path is not None
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()

"""The workspace as a therapist's browser sees it: the real web app (bot/web.py) over ASGI,
beside the World's bot, so a test can ask for a link in Telegram, sign in with it, act in
the workspace and then look at the chat again."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from bot.dispatch.leader import Leadership
from bot.emulator.people import EmuUser
from bot.web import build_web
from bot.workspace import initdata
from tests.integration.world import TOKEN, World

ORIGIN = "http://127.0.0.1:8080"
SIGNIN_LINK = re.compile(r"https?://\S+/app/signin\?token=([A-Za-z0-9_-]+)")
CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]*)">')


@dataclass
class Browser:
    http: httpx.AsyncClient
    csrf: str = ""

    async def get(self, path: str) -> httpx.Response:
        answer = await self.http.get(path)
        if found := CSRF.search(answer.text):
            self.csrf = found.group(1) or self.csrf
        return answer

    async def post(self, path: str, **fields: str) -> httpx.Response:
        """A form post as the page's own form sends it: its CSRF token, our origin."""
        data = {"csrf": self.csrf, **fields}
        return await self.http.post(
            path, data=data, headers={"Origin": ORIGIN}, follow_redirects=True
        )


@asynccontextmanager
async def browser(world: World) -> AsyncIterator[Browser]:
    web = build_web(world.app, world.rt, Leadership(world.rt.engine))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web), base_url=ORIGIN, follow_redirects=False
    ) as http:
        yield Browser(http)


async def dashboard_link(world: World, therapist: EmuUser) -> str:
    """The sign-in token from the therapist's /dashboard answer."""
    await world.say(therapist, "/dashboard")
    found = SIGNIN_LINK.search(world.last(therapist)["text"])
    assert found, world.last(therapist)["text"]
    return found.group(1)


async def sign_in(world: World, therapist: EmuUser, into: Browser) -> Browser:
    token = await dashboard_link(world, therapist)
    answer = await into.http.post("/app/signin", data={"token": token}, headers={"Origin": ORIGIN})
    assert answer.status_code == 303, answer.text
    page = await into.get("/app/patients")
    assert page.status_code == 200, page.text
    return into


def mini_app_header(user_id: int, world: World) -> dict[str, str]:
    data = initdata.for_user(user_id, bot_token=TOKEN, at=world.clock.now())
    return {"Authorization": f"tma {data}"}

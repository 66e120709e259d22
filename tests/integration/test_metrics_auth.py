"""AFTERGLOW_METRICS_TOKEN: the counters and readiness details need a Bearer token.

Seen: /metrics (with a live crisis-alert counter) and /readyz details answered anyone who could
reach the port, which listens on 0.0.0.0.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.app import warn_open_metrics
from bot.dispatch.leader import Leadership
from bot.web import build_web
from tests.integration.world import World, close_world, make_world
from tests.integration.world import test_settings as settings_for

TOKEN = "scrape-0123456789-abcdef"


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    world: World = await make_world(f"sqlite+aiosqlite:///{tmp_path}/m.db", metrics_token=TOKEN)
    web = build_web(world.app, world.rt, Leadership(world.rt.engine))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=web), base_url="http://bot"
        ) as http:
            yield http
    finally:
        await close_world(world)


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", TOKEN, "Bearer "]
)
async def test_metrics_refuse_without_the_token(
    guarded: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    answer = await guarded.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert "afterglow_" not in answer.text
    ready = await guarded.get("/readyz", headers=headers)
    assert ready.json() == {"ready": True}  # a load balancer still learns ready or not


async def test_metrics_and_details_with_the_token(guarded: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = await guarded.get("/metrics", headers=headers)
    assert answer.status_code == 200 and "afterglow_alerts_total" in answer.text
    ready = (await guarded.get("/readyz", headers=headers)).json()
    assert ready == {"ready": True, "leader": False, "problems": []}
    assert (await guarded.get("/healthz")).text == "ok"  # liveness needs nothing


def test_start_warns_when_metrics_are_open_to_the_network(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        warn_open_metrics(settings_for(url))
        assert "AFTERGLOW_METRICS_TOKEN is not set" in caplog.text
        caplog.clear()
        warn_open_metrics(settings_for(url, http_host="127.0.0.1"))
        warn_open_metrics(settings_for(url, metrics_token=TOKEN))
        assert caplog.text == ""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.world import World, close_world, make_world
from tests.pg import backends, database_url


@pytest.fixture(params=backends())
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with database_url(request.param, tmp_path) as url:
        w = await make_world(url)
        try:
            yield w
        finally:
            await close_world(w)

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.engine import make_engine
from bot.db.models import Base
from tests.integration.world import World, running
from tests.support.pg import backends, database_url


@pytest.fixture(params=backends())
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(request.param, tmp_path) as w:
        yield w


@pytest.fixture(params=backends())
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty schema on each backend, for tests of services and queries below the bot."""
    async with database_url(request.param, tmp_path) as url:
        db = make_engine(url)
        async with db.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        try:
            yield db
        finally:
            await db.dispose()

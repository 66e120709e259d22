"""The migrations build exactly the models' schema, and come back down cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bot.db import migrate
from bot.db.engine import make_engine
from bot.db.models import Base
from tests.pg import backends, database_url


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _inspect(url: str, fn: object) -> object:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", backends())
async def test_upgrade_to_head_then_down_to_base(backend: str, tmp_path: Path) -> None:
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        tables = await _inspect(url, _tables)
        assert {"patients", "deliveries", "replies", "alerts", "audit_log"} <= tables  # type: ignore[operator]
        assert "(head)" in await asyncio.to_thread(migrate.current, url)

        await asyncio.to_thread(migrate.downgrade, url, "base")
        assert await _inspect(url, _tables) <= {"alembic_version"}  # type: ignore[operator]

        await asyncio.to_thread(migrate.upgrade, url)  # and up again: downgrade left no debris
        assert "(head)" in await asyncio.to_thread(migrate.current, url)


@pytest.mark.parametrize("backend", backends())
async def test_models_and_migrations_agree(backend: str, tmp_path: Path) -> None:
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        assert await _inspect(url, _diff) == []

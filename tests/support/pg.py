"""Throwaway PostgreSQL databases for tests, when AFTERGLOW_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

PG_URL = os.environ.get("AFTERGLOW_TEST_POSTGRES_URL", "")
SKIP_REASON = "AFTERGLOW_TEST_POSTGRES_URL is not set (no PostgreSQL for this run)"


def backends() -> list[object]:
    """sqlite always; postgres as a visible skip when no server was given."""
    return [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.skipif(not PG_URL, reason=SKIP_REASON)),
    ]


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new empty database, dropped afterwards: tests never see each other's rows."""
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"afterglow_t_{uuid.uuid4().hex[:12]}"
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@asynccontextmanager
async def database_url(backend: str, tmp_path: os.PathLike[str]) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/afterglow-test.db"
    else:
        async with fresh_database() as url:
            yield url

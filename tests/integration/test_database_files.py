"""The SQLite database and its -wal/-shm are private to the service's user, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.db.engine import make_engine


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("loose_umask")
async def test_new_sqlite_files_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "afterglow.db"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
            await conn.execute(text("INSERT INTO t VALUES ('kept')"))
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(f.exists() for f in files), "WAL mode keeps -wal and -shm while open"
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    finally:
        await engine.dispose()


async def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "afterglow.db"
    db.touch(mode=0o640)
    db.chmod(0o640)
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    async with engine.begin() as conn:
        await conn.execute(text("SELECT 1"))
    await engine.dispose()
    assert stat.S_IMODE(db.stat().st_mode) == 0o640

"""The key file: made once for an empty database, never re-made beside encrypted data.

Seen: with AFTERGLOW_ENCRYPTION_KEYS unset, a missing key file was silently re-created on
start, so a database whose key file was lost (a volume mix-up, a restore without the key)
started with a new key that opens none of its replies.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import build_runtime, check_start
from bot.config import ConfigError
from bot.db.models import Base
from bot.runtime import Runtime
from tests.integration.world import test_settings as settings_for
from tests.support.pg import backends, database_url


@pytest.fixture(params=backends())
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url(request.param, tmp_path) as url:
        yield url


async def _start(url: str, key_file: Path) -> Runtime:
    rt = build_runtime(settings_for(url, encryption_keys=None, key_file=key_file))
    async with rt.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        await check_start(rt)
    finally:
        await rt.engine.dispose()
    return rt


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
async def test_first_start_writes_the_key_file_private(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "afterglow.key"
    rt = await _start(db_url, key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    assert rt.cipher.new_key_file is None
    # The restart reads the same key and opens the check value the first start stored.
    await _start(db_url, key_file)


async def test_a_lost_key_file_is_not_re_made_beside_encrypted_data(
    db_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "afterglow.key"
    await _start(db_url, key_file)
    key_file.unlink()

    with pytest.raises(ConfigError) as refused:
        await _start(db_url, key_file)
    message = str(refused.value)
    assert "\n" not in message
    assert f"no key file at {key_file}" in message and "already holds encrypted data" in message
    assert not key_file.exists()


async def test_encrypted_replies_without_a_check_value_also_refuse_a_new_key(
    db_url: str, tmp_path: Path
) -> None:
    """A database from before the check value existed holds encrypted replies only."""
    rt = build_runtime(settings_for(db_url))
    async with rt.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.execute(
            text(
                "INSERT INTO therapists (id, name, active, created_at) "
                "VALUES (1, 'Dr A', true, '2026-01-01 00:00:00')"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO patients (id, therapist_id, pseudonym, status, quiet_start, "
                "quiet_end, language, created_at) VALUES (1, 1, 'p', 'active', '21:00:00', "
                "'08:00:00', 'en', '2026-01-01 00:00:00')"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO replies (patient_id, kind, body_enc, flagged, received_at, "
                "updated_at) VALUES (1, 'text', :token, false, '2026-01-01 00:00:00', "
                "'2026-01-01 00:00:00')"
            ),
            {"token": rt.cipher.encrypt("an old reply")},
        )
    await rt.engine.dispose()

    key_file = tmp_path / "afterglow.key"
    with pytest.raises(ConfigError, match=r"replies\.body_enc"):
        await _start(db_url, key_file)
    assert not key_file.exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "afterglow.key"
    key_file.write_text("x" * 43 + "=\n")
    key_file.chmod(mode)
    url = f"sqlite+aiosqlite:///{tmp_path}/a.db"
    with pytest.raises(ConfigError, match=f"chmod 600 {key_file}"):
        build_runtime(settings_for(url, encryption_keys=None, key_file=key_file))

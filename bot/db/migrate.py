"""Alembic driven from code, so `afterglow db …` works from any folder and from a wheel."""

from __future__ import annotations

import io
from typing import TextIO

from alembic import command
from alembic.config import Config

from bot.db.crypto import Cipher, load_cipher
from bot.paths import shipped_dir


def alembic_config(
    database_url: str, *, stdout: TextIO | None = None, cipher: Cipher | None = None
) -> Config:
    config = Config(stdout=stdout) if stdout is not None else Config()
    # Migrations that encrypt or decrypt existing values take the service's keys from here;
    # without it they read them from the settings themselves (`afterglow db upgrade`).
    config.attributes["cipher"] = cipher
    config.set_main_option("script_location", str(shipped_dir("migrations")))
    # ConfigParser treats % as interpolation; database passwords may contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, cipher: Cipher | None = None) -> None:
    command.upgrade(alembic_config(database_url, cipher=cipher), revision)


def downgrade(database_url: str, revision: str, *, cipher: Cipher | None = None) -> None:
    command.downgrade(alembic_config(database_url, cipher=cipher), revision)


def migration_cipher(given: Cipher | None) -> Cipher:
    """The keys for a migration that must encrypt or decrypt rows: the caller's, else those
    the settings name. Never a new key: a database with rows to convert already has one."""
    if given is not None:
        return given
    from bot.config import load_settings

    settings = load_settings()
    return load_cipher(settings.encryption_keys, settings.key_file)


def current(database_url: str) -> str:
    buffer = io.StringIO()
    command.current(alembic_config(database_url, stdout=buffer))
    return buffer.getvalue().strip()

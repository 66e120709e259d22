"""Alembic driven from code, so `afterglow db …` works from any folder and from a wheel."""

from __future__ import annotations

import io
from typing import TextIO

from alembic import command
from alembic.config import Config

from bot.paths import shipped_dir


def alembic_config(database_url: str, *, stdout: TextIO | None = None) -> Config:
    config = Config(stdout=stdout) if stdout is not None else Config()
    config.set_main_option("script_location", str(shipped_dir("migrations")))
    # ConfigParser treats % as interpolation; database passwords may contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str:
    buffer = io.StringIO()
    command.current(alembic_config(database_url, stdout=buffer))
    return buffer.getvalue().strip()

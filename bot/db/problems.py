"""A database that cannot be opened or reached, said in one line naming the variable — like
every other configuration error — instead of a driver traceback."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

VARIABLE = "AFTERGLOW_DATABASE_URL"


def describe(exc: BaseException, url: str) -> str | None:
    """The one line for `exc`, or None when it is not about reaching the database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"{VARIABLE}: not a database URL"
    where = parsed.render_as_string(hide_password=True)
    missing = missing_folder(url)
    if missing is not None:
        return missing
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return f"{VARIABLE}: cannot reach the database at {where}: {reason}"
    if isinstance(exc, DBAPIError):
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return f"{VARIABLE}: cannot use the database at {where}: {first or type(exc.orig).__name__}"
    if isinstance(exc, SQLAlchemyError):
        return f"{VARIABLE}: cannot use the database at {where}: {type(exc).__name__}"
    return None


def missing_folder(url: str) -> str | None:
    """The one line for a SQLite file whose folder does not exist; None otherwise."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    folder = Path(parsed.database).expanduser().parent
    if parsed.database == ":memory:" or folder.is_dir():
        return None
    return f"{VARIABLE}: the folder {folder} does not exist (create it first)"

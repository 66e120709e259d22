"""`afterglow backup PATH`: a consistent copy of the live database, safe while the bot runs.

SQLite: the SQLite online backup API copies every page inside one read transaction, so the copy
is the database as of one commit; in WAL mode the bot's writers carry on meanwhile. The copy
is a single file (rollback journal, no `-wal`), created 0600, checked with `integrity_check`.

PostgreSQL: `pg_dump` does the same job better than anything here could, so the command to run
is printed instead, built from the configured URL without its password.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# libpq's names for what asyncpg calls `ssl`; other driver-only options would make pg_dump
# refuse the URI, so only parameters libpq knows are carried over.
_LIBPQ_PARAMETERS = frozenset(
    {
        "host",
        "port",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "application_name",
        "connect_timeout",
        "options",
        "target_session_attrs",
        "service",
    }
)
_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


class BackupError(Exception):
    """A backup that could not be made, said in one line for the operator."""


@dataclass(frozen=True)
class SqliteBackup:
    source: Path
    target: Path
    size: int  # bytes


def is_sqlite(url: str) -> bool:
    return _parse(url).get_backend_name() == "sqlite"


def is_postgres(url: str) -> bool:
    return _parse(url).get_backend_name() == "postgresql"


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise BackupError("AFTERGLOW_DATABASE_URL: not a database URL") from None


def sqlite_file(url: str) -> Path:
    """The database file a SQLite URL names (relative paths from the working directory)."""
    parsed = _parse(url)
    database = parsed.database or ""
    if database.startswith("file:"):  # a SQLite URI (`?uri=true`): the path is its path part
        database = unquote(urlparse(database).path)
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has no file to back up")
    return Path(database).expanduser()


def backup_sqlite(source: Path, target: Path) -> SqliteBackup:
    """Copy `source` to the new file `target` (never overwritten), mode 0600, and check it.

    Safe beside the running bot: the copy reads one snapshot and never blocks its writers.
    """
    if not source.is_file():
        raise BackupError(f"no database file at {source} (AFTERGLOW_DATABASE_URL)")
    if not target.parent.is_dir():
        raise BackupError(f"no folder {target.parent} to write {target.name} into")
    try:
        # O_EXCL: an existing file (or a symlink planted there) is never written through.
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise BackupError(f"{target} already exists: a backup never overwrites a file") from None
    except OSError as exc:
        raise BackupError(f"cannot create {target}: {exc.strerror or exc}") from None
    try:
        _copy(source, target)
    except BaseException:
        # A partial copy must not pass for a backup later.
        for leftover in (target, *_companions(target)):
            leftover.unlink(missing_ok=True)
        raise
    return SqliteBackup(source, target, target.stat().st_size)


def _companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-journal", "-wal", "-shm")]


def _copy(source: Path, target: Path) -> None:
    # mode=rw: the source must exist (never create an empty database by mistake); read-only
    # opens of a WAL database fail when its -shm cannot be created.
    uri = f"{source.resolve().as_uri()}?mode=rw"
    try:
        with (
            closing(sqlite3.connect(uri, uri=True, timeout=30)) as src,
            closing(sqlite3.connect(target, timeout=30)) as dst,
        ):
            # pages=-1: the whole database in one step, so in one read transaction; a
            # stepwise copy restarts whenever the bot commits and may never finish.
            src.backup(dst, pages=-1)
            # The copy inherits WAL mode from the header; one self-contained file is what a
            # backup should be (the bot switches a restored file back to WAL).
            dst.execute("PRAGMA journal_mode=DELETE")
            problems = [str(row[0]) for row in dst.execute("PRAGMA integrity_check")]
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy {source}: {exc}") from None
    if problems != ["ok"]:
        raise BackupError(f"the copy of {source} failed its integrity check: {problems[0]}")


def pg_dump_command(url: str, target: Path) -> str:
    """The shell line that dumps the configured PostgreSQL database to `target`, file mode 0600
    (the umask in a subshell), password left out: pg_dump asks for it or reads ~/.pgpass or
    PGPASSWORD."""
    parsed = _parse(url)
    query: dict[str, str] = {}
    for key, value in parsed.query.items():
        text = value if isinstance(value, str) else value[-1]
        if key == "ssl" and text in _SSL_MODES:
            query["sslmode"] = text
        elif key in _LIBPQ_PARAMETERS:
            query[key] = text
    libpq = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=query,
    ).render_as_string(hide_password=False)
    dump = shlex.join(["pg_dump", "--format=custom", f"--file={target}", f"--dbname={libpq}"])
    return f"(umask 077 && {dump})"

"""The `afterglow` command line: every verb has --help, every error is one line and exit 1."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from typer.core import TyperCommand

from bot.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from bot.db.crypto import Cipher
    from bot.domain.safety import Screener

T = TypeVar("T")

app = typer.Typer(
    help="Afterglow: scheduled integration prompts for KAP clinics, on Telegram.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
therapist_app = typer.Typer(help="Manage the clinic's therapists.", no_args_is_help=True)
content_app = typer.Typer(help="Prompt and template content.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys for stored text.", no_args_is_help=True)
safety_app = typer.Typer(
    help="Crisis screening: try it on text, measure it on labelled messages.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(therapist_app, name="therapist")
app.add_typer(content_app, name="content")
app.add_typer(keys_app, name="keys")
app.add_typer(safety_app, name="safety")
i18n_app = typer.Typer(
    help="The bot's text catalogues (gettext, Babel): extract, update, compile, check.",
    no_args_is_help=True,
)
app.add_typer(i18n_app, name="i18n")


def fail(message: str) -> NoReturn:
    typer.echo(f"afterglow: {message}", err=True)
    raise typer.Exit(1)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))


# click's UsageError (missing option, bad value, unknown option), whether typer vendors click
# (typer ≥ 0.2x: `typer._click`) or uses the click package: found from a public typer class.
_USAGE_ERRORS: tuple[type[Exception], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


class OneLineCommand(TyperCommand):
    """A verb whose usage errors are one line on stderr (exit 2), not click's usage block."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except _USAGE_ERRORS as exc:
            text = str(getattr(exc, "format_message", exc.__str__)())
            message = " ".join(text.split())
            names, at = [], ctx
            while at.parent is not None:  # the verb's path without the program's name
                names.append(at.info_name)
                at = at.parent
            verb = " ".join(reversed(names))
            typer.echo(f"afterglow {verb}: {message} (see --help)", err=True)
            raise typer.Exit(2) from None


def with_engine(work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run work that manages its own transactions against the configured database."""
    from sqlalchemy.exc import DBAPIError

    from bot.db import problems
    from bot.db.engine import make_engine
    from bot.services import audit
    from bot.services.errors import UserError

    url = settings().database_url
    if (missing := problems.missing_folder(url)) is not None:
        fail(missing)

    async def main() -> T:
        engine = make_engine(url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        # Whoever ran the command on this host is the operator its audit entries name.
        with audit.as_operator(audit.os_account()):
            return asyncio.run(main())
    except UserError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(problems.describe(exc, url) or f"cannot reach the database: {exc}")
    except DBAPIError as exc:
        # The driver's first line only; engines hide bound parameters.
        detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        fail(
            f"database error ({type(exc.orig).__name__}: {detail}); "
            "is the schema current? (`afterglow db upgrade`)"
        )


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work against the configured database and commit it."""
    from bot.db.engine import make_session_factory

    async def one(engine: AsyncEngine) -> T:
        async with make_session_factory(engine)() as session, session.begin():
            return await work(session)

    return with_engine(one)


def now() -> datetime:
    from bot.clock import SystemClock

    return SystemClock().now()


@app.command(cls=OneLineCommand)
def run(
    migrate: Annotated[
        bool, typer.Option(help="Upgrade the database schema before starting.")
    ] = True,
) -> None:
    """Run the service (polling or webhook, per AFTERGLOW_MODE)."""
    from bot.app import run_service
    from bot.logs import setup_logging

    config = settings()
    try:
        config.require_token()
    except ConfigError as exc:
        fail(str(exc))
    setup_logging(config.log_format, config.log_level)
    try:
        run_service(config, migrate_first=migrate)
    except ConfigError as exc:
        fail(str(exc))


@app.command(cls=OneLineCommand)
def demo(
    days: Annotated[int, typer.Option(min=1, max=14, help="Simulated days after the session.")] = 7,
    language: Annotated[str, typer.Option(help="The patient's language: en, es or de.")] = "en",
) -> None:
    """Show a week of integration: the real bot against a built-in Telegram emulator."""
    from bot.demo import run_demo
    from bot.domain.languages import BUILT_IN

    if language not in BUILT_IN:
        fail(f"--language: choose one of {', '.join(BUILT_IN)}")
    sys.exit(asyncio.run(run_demo(days=days, language=language)))


@db_app.command("upgrade", cls=OneLineCommand)
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or upgrade the schema."""
    from bot.db import migrate

    url = settings().database_url
    _alembic(lambda: migrate.upgrade(url, revision))
    typer.echo(f"database at {migrate.current(url) or 'base'}")


@db_app.command("downgrade", cls=OneLineCommand)
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")],
) -> None:
    """Step the schema back (`base` removes it)."""
    from bot.db import migrate

    url = settings().database_url
    _alembic(lambda: migrate.downgrade(url, revision))
    typer.echo(f"database at {migrate.current(url) or 'base'}")


@db_app.command("current", cls=OneLineCommand)
def db_current() -> None:
    """Print the schema revision."""
    from bot.db import migrate

    url = settings().database_url
    typer.echo(_alembic(lambda: migrate.current(url)) or "base (empty database)")


def _alembic(step: Callable[[], T]) -> T:
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from bot.db import problems

    if (missing := problems.missing_folder(settings().database_url)) is not None:
        fail(missing)  # before connecting: a failed SQLite open leaves a worker thread behind
    from bot.db.crypto import CryptoKeyError

    try:
        return step()
    except CommandError as exc:
        fail(str(exc).splitlines()[0])
    except CryptoKeyError as exc:  # a migration that encrypts stored values needs the keys
        fail(str(exc))
    except (OSError, SQLAlchemyError) as exc:
        line = problems.describe(exc, settings().database_url)
        if line is None:
            raise
        fail(line)


@therapist_app.command("add", cls=OneLineCommand)
def therapist_add(
    telegram_id: Annotated[int, typer.Option("--telegram-id", help="Their numeric Telegram id.")],
    name: Annotated[str, typer.Option("--name", help="Name shown to clinic staff.")],
) -> None:
    """Register a therapist by Telegram user id."""
    from bot.db.identity import telegram_user
    from bot.services import therapists

    # The keys find a patient with this id (patients' ids are stored only as keyed HMACs).
    user = telegram_user(_cipher(settings()), telegram_id)
    ident = in_transaction(lambda s: therapists.add(s, user=user, name=name, now=now()))
    typer.echo(
        f"therapist #{ident} added; safety alerts reach them once they send /start to the bot "
        "(until then their patients' alerts go to on-call)"
    )


@therapist_app.command("invite", cls=OneLineCommand)
def therapist_invite(
    name: Annotated[str, typer.Option("--name", help="Name shown to clinic staff.")],
    bot_username: Annotated[
        str | None,
        typer.Option(help="The bot's @username (asked from Telegram if omitted)."),
    ] = None,
) -> None:
    """Print a single-use deep link (7 days) that registers a therapist."""
    from bot.services import enrollment

    username = bot_username or _bot_username()
    token = in_transaction(lambda s: enrollment.invite_therapist(s, name=name, now=now()))
    typer.echo(enrollment.deep_link(username.lstrip("@"), token))


def _bot_username() -> str:
    from telegram import Bot
    from telegram.error import TelegramError

    config = settings()
    try:
        token = config.require_token()
    except ConfigError:
        fail("give --bot-username, or set AFTERGLOW_BOT_TOKEN so it can be asked from Telegram")

    async def ask() -> str:
        async with Bot(token, base_url=config.bot_base_url) as bot:
            return bot.username

    try:
        return asyncio.run(ask())
    except (TelegramError, OSError) as exc:
        fail(
            f"cannot ask Telegram for the bot's username ({type(exc).__name__}): use --bot-username"
        )


@therapist_app.command("list", cls=OneLineCommand)
def therapist_list() -> None:
    """List therapists with their patient counts."""
    from bot.services import therapists

    rows = in_transaction(therapists.listing)
    if not rows:
        typer.echo("no therapists yet: use `afterglow therapist invite --name NAME`")
    for row in rows:
        state = "active" if row.active else "inactive"
        telegram = row.telegram_user_id or "-"
        typer.echo(f"#{row.id}\t{row.name}\ttelegram={telegram}\t{state}\tpatients={row.patients}")


@therapist_app.command("deactivate", cls=OneLineCommand)
def therapist_deactivate(
    therapist: Annotated[str, typer.Argument(help="Therapist id (#N) or exact name.")],
    reassign_to: Annotated[
        str | None,
        typer.Option(
            "--reassign-to",
            metavar="THERAPIST",
            help="Move their patients and open alerts to this therapist (id or exact name).",
        ),
    ] = None,
    hold: Annotated[
        bool,
        typer.Option(
            "--hold",
            help="Hold their patients' prompts until someone takes them over; alerts go to "
            "on-call.",
        ),
    ] = False,
) -> None:
    """Stop a therapist from using the bot (their patients' data stays).

    A therapist with patients in care needs --reassign-to or --hold. Run it again with
    --reassign-to later to hand held patients to a new therapist.
    """
    from bot.services import therapists

    done = in_transaction(
        lambda s: therapists.deactivate(
            s, ident=therapist, now=now(), reassign_to=reassign_to, hold=hold
        )
    )
    typer.echo(f"therapist #{done.id} ({done.name}) deactivated")
    if done.to_name is not None:
        typer.echo(
            f"  {done.reassigned} patient(s) and {done.alerts_moved} open alert(s) moved to "
            f"{done.to_name}"
        )
    elif hold:
        typer.echo(
            f"  {done.held} patient(s) on hold: prompts held, crisis alerts go to on-call; "
            "hand them over with --reassign-to"
        )
        if settings().oncall_chat_id is None:
            typer.echo(
                "  warning: AFTERGLOW_ONCALL_CHAT_ID is not set, so their crisis alerts reach "
                "nobody",
                err=True,
            )


@content_app.command("check", cls=OneLineCommand)
def content_check(
    dirs: Annotated[
        list[Path] | None, typer.Argument(help="Extra content folders to check.")
    ] = None,
) -> None:
    """Validate the built-in content, AFTERGLOW_CONTENT_DIRS and DIRS; name file and line."""
    from bot.domain.content import builtin_dir, check_content, format_problems

    folders = [builtin_dir(), *settings().content_paths, *(dirs or [])]
    library, problems = check_content(folders)
    if problems:
        typer.echo(format_problems(problems), err=True)
        typer.echo(f"afterglow: {len(problems)} problem(s) in content", err=True)
        raise typer.Exit(1)
    assert library is not None
    typer.echo(
        f"content ok: {len(library.prompts)} prompts, {len(library.templates)} templates, "
        f"{len(library.questionnaires)} questionnaire(s) from {len(folders)} folder(s)"
    )
    total = len(library.prompts) + len(library.questionnaires)
    for language, missing in library.missing_translations().items():
        typer.echo(f"  {language}: {total - len(missing)} of {total} translated", nl=not missing)
        if missing:  # sent in the default language meanwhile (counted in /metrics)
            typer.echo(f"; missing: {', '.join(missing)}")
    for language in settings().offered_languages:
        if language != "en" and language not in library.languages():
            typer.echo(f"  {language}: offered, but no content is translated into it")


@i18n_app.command("extract", cls=OneLineCommand)
def i18n_extract() -> None:
    """Collect every bot text marked for translation into bot/locale/afterglow.pot."""
    from bot import catalogues

    typer.echo(f"wrote {catalogues.extract()}")


@i18n_app.command("update", cls=OneLineCommand)
def i18n_update() -> None:
    """Merge the template into each language's .po (new texts empty, for the translator)."""
    from bot import catalogues

    for path in catalogues.update():
        typer.echo(f"updated {path}")


@i18n_app.command("compile", cls=OneLineCommand)
def i18n_compile() -> None:
    """Compile each .po into the .mo the bot reads (and the wheel ships)."""
    from bot import catalogues

    for path in catalogues.compile_all():
        typer.echo(f"compiled {path}")


@i18n_app.command("check", cls=OneLineCommand)
def i18n_check() -> None:
    """Every translation keeps its placeholders; every catalogue is compiled and current."""
    from bot import catalogues

    problems = catalogues.check()
    for problem in problems:
        where = f" {problem.msgid[:60]!r}" if problem.msgid else ""
        typer.echo(f"{problem.language}:{where} {problem.problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo("catalogues ok")


def _screener() -> Screener:
    from bot.domain.content import builtin_dir
    from bot.domain.safety import SafetyContentError, load_screener

    try:
        return load_screener([builtin_dir(), *settings().content_paths])
    except SafetyContentError as exc:
        fail(str(exc))


@safety_app.command("check", cls=OneLineCommand)
def safety_check(
    text: Annotated[str, typer.Argument(help="The text to screen (quote it).")],
) -> None:
    """Print whether TEXT would alert, and why: each phrase, concept rule or model that fires.

    Nothing is stored or logged. Exit 0 either way.
    """
    matches = _screener().screen_all(text)
    if not matches:
        typer.echo("no alert: no phrase, concept rule or model matched")
        return
    typer.echo("ALERT: the patient would get the crisis resources and the therapist an alert")
    for match in matches:
        typer.echo(f"  - {match.explain()}")


@safety_app.command("eval", cls=OneLineCommand)
def safety_eval(
    file: Annotated[
        Path,
        typer.Argument(
            help="Labelled messages: YAML list of {label, text}, CSV with label,text columns, "
            "or JSON Lines. Labels: risk or safe; optional category."
        ),
    ],
) -> None:
    """Measure the screener on your own labelled messages: recall, false alerts, every miss.

    Nothing is stored or logged; the messages are only read from FILE.
    """
    from bot.domain.safety.evaluation import LabelledFileError, evaluate, read_labelled

    try:
        items = read_labelled(file)
    except LabelledFileError as exc:
        fail(str(exc))
    if not items:
        fail(f"{file}: no labelled messages")
    report = evaluate(_screener(), items)
    typer.echo(report.summary())
    if any(item.category for item in items):
        for line in report.category_lines():
            typer.echo(f"  {line}")
    for item in report.missed:
        typer.echo(f"MISSED ({item.category or 'risk'}): {item.text}")
    for item, match in report.false_alerts:
        typer.echo(f"FALSE ALERT ({item.category or 'safe'}; {match.explain()}): {item.text}")


def _cipher(config: Settings) -> Cipher:
    """The configured keys; never a fresh key file (a new key could decrypt nothing)."""
    from bot.db.crypto import CryptoKeyError, load_cipher

    if not config.encryption_keys and not config.key_file.exists():
        fail(
            f"no encryption keys: set AFTERGLOW_ENCRYPTION_KEYS (newest first) or "
            f"AFTERGLOW_KEY_FILE (no key file at {config.key_file})"
        )
    try:
        return load_cipher(config.encryption_keys, config.key_file)
    except CryptoKeyError as exc:
        fail(str(exc))


@keys_app.command("check", cls=OneLineCommand)
def keys_check() -> None:
    """Check that the configured keys open this database (as `afterglow run` does first).

    A database without a check value yet (a new one, or one made before checks existed) gets
    one, once a stored token has opened with the keys.
    """
    from bot.services import keycheck

    cipher = _cipher(settings())
    result = with_engine(lambda engine: keycheck.verify(engine, cipher, now=now()))
    if result.written:
        typer.echo("keys ok: check value stored now")
    else:
        typer.echo(f"keys ok: they open the check value stored {result.created_at:%Y-%m-%d}")


@keys_app.command("rotate", cls=OneLineCommand)
def keys_rotate(
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows re-encrypted per transaction.")
    ] = 500,
) -> None:
    """Re-encrypt all stored text with the newest key (the first one listed).

    Keep the older keys listed after the new one until this succeeds. Safe to run again.
    """
    from bot.services import maintenance

    cipher = _cipher(settings())
    result = with_engine(
        lambda engine: maintenance.rotate_keys(engine, cipher, now=now(), batch_size=batch_size)
    )
    changed = f", changed meanwhile {result.changed}" if result.changed else ""
    typer.echo(f"re-encrypted {result.rotated}, already current {result.current}{changed}")
    for column in result.columns:
        typer.echo(
            f"  {column.table}.{column.column}: re-encrypted {column.rotated}, "
            f"already current {column.current}"
        )
    typer.echo(f"  patients.telegram_index: moved to the newest key {result.reindexed}")
    if cipher.key_count == 1:
        typer.echo("note: only one key is configured; list the new key first, then the old")


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"
    FHIR = "fhir"


@app.command("export", cls=OneLineCommand)
def export(
    patient: Annotated[
        str, typer.Option("--patient", metavar="PSEUDONYM", help="The patient's pseudonym.")
    ],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="File format.")],
    therapist: Annotated[
        str | None,
        typer.Option(
            "--therapist",
            metavar="ID",
            help="Therapist id (#N), needed when several therapists use the pseudonym.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="New file (created mode 0600) or folder to write to; default standard output.",
        ),
    ] = None,
) -> None:
    """Export one patient's prompts and replies, decrypted (audit-logged)."""
    from bot.domain.content import ContentError, load_content
    from bot.services import maintenance

    therapist_id: int | None = None
    if therapist is not None:
        ident = therapist.strip().lstrip("#")
        if not ident.isdigit():
            fail(f"--therapist must be a therapist id like 3 or #3, got {therapist!r}")
        therapist_id = int(ident)
    if output is not None and not output.is_dir():
        if output.exists():
            fail(f"{output} already exists: choose a new file name")
        if not output.parent.is_dir():
            fail(f"no folder {output.parent} to write {output.name} into")
    config = settings()
    cipher = _cipher(config)
    try:
        content = load_content(config.content_paths)
    except ContentError as exc:
        first = str(exc).splitlines()[0]
        fail(f"content has problems (run `afterglow content check`), first: {first}")
    result = in_transaction(
        lambda s: maintenance.export_patient(
            s,
            pseudonym=patient,
            fmt=fmt.value,
            content=content,
            cipher=cipher,
            now=now(),
            therapist_id=therapist_id,
        )
    )
    if output is None:
        typer.echo(result.data, nl=False)
        return
    target = output / result.filename if output.is_dir() else output
    try:
        _write_private(target, result.data)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")
    typer.echo(
        f"wrote {result.rows} row(s) for patient #{result.patient_id} "
        f"(therapist #{result.therapist_id}) to {target}"
    )


def _write_private(path: Path, data: bytes) -> None:
    """A new file only the operator can read: exports hold patients' decrypted words."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@app.command("backup", cls=OneLineCommand)
def backup(
    path: Annotated[
        Path,
        typer.Argument(help="New file for the copy (created mode 0600; never overwritten)."),
    ],
) -> None:
    """A consistent copy of the SQLite database, safe while the bot runs (audit-logged).

    For PostgreSQL it prints the pg_dump line to run instead (without the password).
    """
    from bot.db import backup as db_backup
    from bot.services import audit

    url = settings().database_url
    try:
        if db_backup.is_postgres(url):
            if os.path.lexists(path):
                fail(f"{path} already exists: a backup never overwrites a file")
            typer.echo(db_backup.pg_dump_command(url, path))
            typer.echo(
                "note: run it on a host with pg_dump; it asks for the password "
                "(or reads ~/.pgpass or PGPASSWORD)",
                err=True,
            )
            return
        if not db_backup.is_sqlite(url):
            fail("backup knows SQLite and PostgreSQL databases only")
        source = db_backup.sqlite_file(url)
        done = db_backup.backup_sqlite(source, path)
    except db_backup.BackupError as exc:
        fail(str(exc))

    async def record(session: AsyncSession) -> None:
        audit.record(
            session,
            at=now(),
            actor=audit.OPERATOR,
            action="backup",
            path=str(done.target.resolve()),
            bytes=done.size,
        )

    in_transaction(record)
    typer.echo(f"backup of {source} written to {path} ({done.size} bytes, integrity ok)")


@app.command("purge", cls=OneLineCommand)
def purge(
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            help="Delete replies received more than DAYS days ago (at least 1).",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change nothing.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows deleted per transaction.")
    ] = 500,
) -> None:
    """Retention: delete replies received more than DAYS days ago.

    Also clears therapists' free-text prompts sent before then and old update-id records.
    """
    from bot.services import maintenance

    result = with_engine(
        lambda engine: maintenance.purge(
            engine, older_than_days=older_than, now=now(), dry_run=dry_run, batch_size=batch_size
        )
    )
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {result.replies} replies ({result.alerts_unlinked} alerts unlinked), "
        f"{'would clear' if dry_run else 'cleared'} {result.prompt_texts} therapist prompt "
        f"texts, {verb} {result.processed_updates} processed updates: all from before "
        f"{result.cutoff.isoformat(timespec='seconds')}"
    )


def main() -> None:
    logging.captureWarnings(True)
    app()

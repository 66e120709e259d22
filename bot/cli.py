"""The `afterglow` command line: every verb has --help, every error is one line and exit 1."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ConfigError, Settings, load_settings

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
app.add_typer(db_app, name="db")
app.add_typer(therapist_app, name="therapist")
app.add_typer(content_app, name="content")


def fail(message: str) -> NoReturn:
    typer.echo(f"afterglow: {message}", err=True)
    raise typer.Exit(1)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work against the configured database and commit it."""
    from bot.db.engine import make_engine, make_session_factory
    from bot.services.errors import UserError

    async def main() -> T:
        engine = make_engine(settings().database_url)
        try:
            async with make_session_factory(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except UserError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"cannot reach the database: {exc}")


def now() -> datetime:
    from bot.clock import SystemClock

    return SystemClock().now()


@app.command()
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


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1, max=14, help="Simulated days after the session.")] = 7,
) -> None:
    """Show a week of integration: the real bot against a built-in Telegram emulator."""
    from bot.demo import run_demo

    sys.exit(asyncio.run(run_demo(days=days)))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or upgrade the schema."""
    from bot.db import migrate

    url = settings().database_url
    _alembic(lambda: migrate.upgrade(url, revision))
    typer.echo(f"database at {migrate.current(url) or 'base'}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")],
) -> None:
    """Step the schema back (`base` removes it)."""
    from bot.db import migrate

    url = settings().database_url
    _alembic(lambda: migrate.downgrade(url, revision))
    typer.echo(f"database at {migrate.current(url) or 'base'}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision."""
    from bot.db import migrate

    url = settings().database_url
    typer.echo(_alembic(lambda: migrate.current(url)) or "base (empty database)")


def _alembic(step: Callable[[], T]) -> T:
    from alembic.util import CommandError

    try:
        return step()
    except CommandError as exc:
        fail(str(exc).splitlines()[0])
    except OSError as exc:
        fail(f"cannot reach the database: {exc}")


@therapist_app.command("add")
def therapist_add(
    telegram_id: Annotated[int, typer.Option("--telegram-id", help="Their numeric Telegram id.")],
    name: Annotated[str, typer.Option("--name", help="Name shown to clinic staff.")],
) -> None:
    """Register a therapist by Telegram user id."""
    from bot.services import therapists

    ident = in_transaction(
        lambda s: therapists.add(s, telegram_id=telegram_id, name=name, now=now())
    )
    typer.echo(f"therapist #{ident} added")


@therapist_app.command("invite")
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


@therapist_app.command("list")
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


@therapist_app.command("deactivate")
def therapist_deactivate(
    therapist: Annotated[str, typer.Argument(help="Therapist id (#N) or exact name.")],
) -> None:
    """Stop a therapist from using the bot (their patients' data stays)."""
    from bot.services import therapists

    row = in_transaction(lambda s: therapists.deactivate(s, ident=therapist.lstrip("#"), now=now()))
    typer.echo(f"therapist #{row.id} ({row.name}) deactivated")


@content_app.command("check")
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
        f"content ok: {len(library.prompts)} prompts, {len(library.templates)} templates "
        f"from {len(folders)} folder(s)"
    )


def main() -> None:
    logging.captureWarnings(True)
    app()

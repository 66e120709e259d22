"""Composition root: settings → runtime → PTB Application with handlers and the dispatcher."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand
from telegram.ext import Application, ContextTypes
from telegram.request import BaseRequest

from bot.clock import Clock, SystemClock
from bot.config import ConfigError, Settings
from bot.db import migrate
from bot.db.crypto import CryptoKeyError, load_cipher
from bot.db.engine import make_engine, make_session_factory
from bot.dispatch.dispatcher import Dispatcher
from bot.dispatch.ratelimit import PacedRateLimiter
from bot.domain.content import ContentError, load_content
from bot.handlers import router
from bot.handlers.callbacks import CallbackCodec
from bot.runtime import Runtime

log = logging.getLogger(__name__)

PTBApp = Application[Any, Any, Any, Any, Any, Any]

COMMANDS = [
    BotCommand("help", "What this bot does and your options"),
    BotCommand("crisis", "Where to get help right now"),
]


def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """Everything that can fail on bad configuration fails here, before any network."""
    try:
        cipher = load_cipher(settings.encryption_keys, settings.key_file)
    except CryptoKeyError as exc:
        raise ConfigError(str(exc)) from None
    try:
        content = load_content(settings.content_paths)
    except ContentError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"AFTERGLOW_CONTENT_DIRS: content has problems, first: {first}") from None
    engine = make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        clock=clock or SystemClock(),
        cipher=cipher,
        content=content,
    )


def build_application(
    rt: Runtime,
    *,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    rate_limit: bool = True,
    dispatch_job: bool = True,
) -> PTBApp:
    settings = rt.settings
    builder = (
        Application.builder()
        .token(settings.require_token())
        .base_url(settings.bot_base_url)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(updates_request or request)
    if rate_limit:
        limiter = PacedRateLimiter(overall_rate=settings.send_rate)
        builder = builder.rate_limiter(limiter)  # type: ignore[arg-type]  # PTB types the builder as BaseRateLimiter[None]
    app: PTBApp = builder.build()
    app.bot_data["runtime"] = rt
    app.bot_data["codec"] = CallbackCodec(settings.require_token().encode())
    dispatcher = Dispatcher(rt, app.bot, app.bot_data["codec"])
    app.bot_data["dispatcher"] = dispatcher
    router.register(app)
    if dispatch_job and app.job_queue is not None:
        app.job_queue.run_repeating(
            _dispatch_tick, interval=settings.dispatch_interval, first=0.5, name="dispatch"
        )
    return app


async def _dispatch_tick(context: ContextTypes.DEFAULT_TYPE) -> None:
    dispatcher = context.bot_data["dispatcher"]
    assert isinstance(dispatcher, Dispatcher)
    try:
        await dispatcher.tick()
    except Exception as exc:  # the tick must survive a database blip; the next one retries
        log.error("dispatch tick failed: %s", type(exc).__name__, exc_info=exc)


async def _post_init(app: PTBApp) -> None:
    rt: Runtime = app.bot_data["runtime"]
    rt.bot_username = app.bot.username
    dispatcher: Dispatcher = app.bot_data["dispatcher"]
    await dispatcher.recover()
    await app.bot.set_my_commands(COMMANDS)
    log.info(
        "Afterglow ready: @%s, %s mode, database %s, %d prompts, %d templates",
        app.bot.username,
        rt.settings.mode,
        rt.engine.dialect.name,
        len(rt.content.prompts),
        len(rt.content.templates),
    )


async def _post_shutdown(app: PTBApp) -> None:
    rt: Runtime = app.bot_data["runtime"]
    await rt.engine.dispose()
    log.info("Afterglow stopped")


def run_service(settings: Settings, *, migrate_first: bool = True) -> None:
    """`afterglow run`: blocks until SIGINT/SIGTERM, then shuts down cleanly."""
    if migrate_first:
        migrate.upgrade(settings.database_url)
    rt = build_runtime(settings)
    app = build_application(rt)
    if settings.mode == "webhook":
        raise ConfigError("AFTERGLOW_MODE: webhook mode is not available in this version yet")
    app.run_polling(allowed_updates=["message", "callback_query", "my_chat_member"])

"""Composition root: settings → runtime → PTB Application with handlers and the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from telegram.error import InvalidToken, NetworkError
from telegram.ext import Application, ContextTypes
from telegram.request import BaseRequest

from bot import i18n
from bot.clock import Clock, SystemClock
from bot.config import ConfigError, Settings, is_loopback
from bot.db import migrate, problems
from bot.db.crypto import CryptoKeyError, load_cipher
from bot.db.engine import make_engine, make_session_factory
from bot.dispatch.alerting import Alerter
from bot.dispatch.dispatcher import Dispatcher
from bot.dispatch.leader import Leadership
from bot.domain.content import ContentError, builtin_dir, load_content
from bot.domain.safety import SafetyContentError, load_crisis_texts, load_screener
from bot.handlers import router
from bot.handlers.context import Context
from bot.runtime import Runtime
from bot.services import keycheck
from bot.services import languages as language_service
from bot.telegram import menus
from bot.telegram.http_server import EmbeddedServer
from bot.telegram.polling import ALLOWED_UPDATES, Poller
from bot.telegram.ratelimit import PacedRateLimiter
from bot.telegram.updates import MAX_CONCURRENT, PerChatUpdateProcessor
from bot.views import controls as controls_view
from bot.views.callbacks import CallbackCodec
from bot.web import WEBHOOK_PATH, build_web

log = logging.getLogger(__name__)

PTBApp = Application[Any, Any, Any, Any, Any, Any]


def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """Everything that can fail on bad configuration fails here, before any network."""
    try:
        cipher = load_cipher(settings.encryption_keys, settings.key_file, may_create=True)
    except CryptoKeyError as exc:
        raise ConfigError(str(exc)) from None
    try:
        content = load_content(settings.content_paths)
    except ContentError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"AFTERGLOW_CONTENT_DIRS: content has problems, first: {first}") from None
    folders = [builtin_dir(), *settings.content_paths]
    try:
        screener = load_screener(folders)
        crisis = load_crisis_texts(folders)
    except SafetyContentError as exc:
        raise ConfigError(f"AFTERGLOW_CONTENT_DIRS: safety content: {exc}") from None
    engine = make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        clock=clock or SystemClock(),
        cipher=cipher,
        content=content,
        screener=screener,
        crisis=crisis,
    )


def build_application(
    rt: Runtime,
    *,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    rate_limit: bool = True,
    dispatch_job: bool = True,
    max_concurrent_updates: int = MAX_CONCURRENT,
) -> PTBApp:
    settings = rt.settings
    builder = (
        Application.builder()
        .token(settings.require_token())
        .base_url(settings.bot_base_url)
        # Chats concurrently, each chat's updates in order (bot/telegram/updates.py).
        .concurrent_updates(PerChatUpdateProcessor(max_concurrent_updates))
        .context_types(ContextTypes(context=Context))
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(updates_request or request)
    if rate_limit:
        limiter = PacedRateLimiter(overall_rate=settings.send_rate)
        builder = builder.rate_limiter(limiter)  # type: ignore[arg-type]  # PTB types the builder as BaseRateLimiter[None]
    app: PTBApp = builder.build()
    app.bot_data["runtime"] = rt
    app.bot_data["codec"] = CallbackCodec(settings.require_token().encode())
    alerter = Alerter(rt, app.bot, app.bot_data["codec"])
    app.bot_data["alerter"] = alerter
    dispatcher = Dispatcher(rt, app.bot, app.bot_data["codec"], alerter=alerter)
    app.bot_data["dispatcher"] = dispatcher
    router.register(app)
    if dispatch_job and app.job_queue is not None:
        app.job_queue.run_repeating(
            _dispatch_tick, interval=settings.dispatch_interval, first=0.5, name="dispatch"
        )
    return app


async def _dispatch_tick(context: Context) -> None:
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
    await dispatcher.recover(startup=True)
    await languages_still_offered(rt)
    settings = rt.settings
    await menus.publish_patient_menus(
        app.bot,
        settings.offered_languages,
        settings.default_language,
        show_progress=settings.show_scores_to_patient,
    )


async def languages_still_offered(rt: Runtime) -> None:
    """Patients in a language taken out of AFTERGLOW_LANGUAGES move to the default, told once."""
    default = rt.settings.default_language

    def notice(old: str) -> str:
        with i18n.using(default):
            return controls_view.language_fallback_notice(old, default)

    async with rt.sessions() as session, session.begin():
        moved = await language_service.fall_back_removed(
            session,
            offered=rt.settings.offered_languages,
            default=default,
            notice=notice,
            cipher=rt.cipher,
            now=rt.clock.now(),
        )
    if moved:
        log.warning(
            "%d patient(s) moved to %s: their language is no longer offered", moved, default
        )


async def _post_shutdown(app: PTBApp) -> None:
    rt: Runtime = app.bot_data["runtime"]
    await rt.engine.dispose()


def run_service(settings: Settings, *, migrate_first: bool = True) -> None:
    """`afterglow run`: blocks until SIGINT/SIGTERM, then shuts down cleanly."""
    if (missing := problems.missing_folder(settings.database_url)) is not None:
        raise ConfigError(missing)
    rt = build_runtime(settings)
    if migrate_first:
        with database_problems(settings.database_url), _key_problems():
            # A first start's key is not on disk yet: nothing may be encrypted under it before
            # the start-up check has written it, and a new database has nothing to convert.
            migrate.upgrade(
                settings.database_url, cipher=None if rt.cipher.new_key_file else rt.cipher
            )
    warn_without_oncall(settings)
    warn_open_metrics(settings)
    asyncio.run(serve(rt))


@contextlib.contextmanager
def _key_problems() -> Iterator[None]:
    try:
        yield
    except CryptoKeyError as exc:
        raise ConfigError(str(exc)) from None


@contextlib.contextmanager
def database_problems(url: str) -> Iterator[None]:
    """A database that cannot be opened or reached is a configuration error (one line)."""
    try:
        yield
    except (OSError, SQLAlchemyError) as exc:
        line = problems.describe(exc, url)
        if line is None:
            raise
        raise ConfigError(line) from None


async def check_start(rt: Runtime) -> None:
    """Before serving anyone: the database answers and the keys open it."""
    with database_problems(rt.settings.database_url):
        try:
            await keycheck.verify(rt.engine, rt.cipher, now=rt.clock.now())
        except keycheck.KeysDoNotOpen as exc:
            raise ConfigError(exc.message) from None


def warn_open_metrics(settings: Settings) -> None:
    if settings.metrics_token is None and not is_loopback(settings.http_host):
        log.warning(
            "AFTERGLOW_METRICS_TOKEN is not set: /metrics (crisis-alert counts among them) "
            "and /readyz details answer anyone who reaches %s:%s; set a token or "
            "AFTERGLOW_HTTP_HOST=127.0.0.1",
            settings.http_host,
            settings.http_port,
        )


def warn_without_oncall(settings: Settings) -> None:
    """Loudly, once at start: without an on-call chat, an alert nobody acknowledges (or one
    for a patient whose therapist is gone) reaches nobody else."""
    if settings.oncall_chat_id is None:
        log.critical(
            "AFTERGLOW_ONCALL_CHAT_ID is not set: unacknowledged crisis alerts, and alerts for "
            "patients without an active therapist, will reach nobody. Set it to the clinic's "
            "on-call chat id."
        )


async def serve(rt: Runtime, *, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or a signal arrives): HTTP endpoints on every replica,
    polling or webhook intake, and — on the leader only — polling and the dispatcher."""
    settings = rt.settings
    await check_start(rt)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    app = build_application(rt, dispatch_job=False)
    leadership = Leadership(rt.engine)
    poller = Poller(app)  # confirms updates to Telegram only once handled
    dispatcher: Dispatcher = app.bot_data["dispatcher"]
    server = EmbeddedServer(
        uvicorn.Config(
            build_web(app, rt, leadership),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )

    async def lead() -> None:
        dispatcher.stopping = False
        if settings.mode == "polling" and not poller.running:
            await poller.start()
        assert app.job_queue is not None
        app.job_queue.run_repeating(
            _dispatch_tick, interval=settings.dispatch_interval, first=0.2, name="dispatch"
        )

    async def follow() -> None:
        dispatcher.stopping = True
        await poller.stop()
        if app.job_queue is not None:
            for job in app.job_queue.get_jobs_by_name("dispatch"):
                job.schedule_removal()

    try:
        await app.initialize()
    except InvalidToken:
        await rt.engine.dispose()
        raise ConfigError("AFTERGLOW_BOT_TOKEN: Telegram refused this token") from None
    except NetworkError as exc:
        await rt.engine.dispose()
        raise ConfigError(
            f"AFTERGLOW_TELEGRAM_API_URL: cannot reach the Bot API at {settings.telegram_api_url}"
            f" ({type(exc).__name__})"
        ) from None
    await _post_init(app)
    await app.start()
    if settings.mode == "webhook":
        await app.bot.set_webhook(
            url=f"{settings.webhook_base}{WEBHOOK_PATH}",
            secret_token=settings.webhook_secret,
            allowed_updates=list(ALLOWED_UPDATES),
            # Each request is answered once its update is handled (bot/web.py), and one
            # chat's quick messages wait for each other: more connections than the default
            # 40, so one busy chat cannot hold every connection.
            max_connections=100,
        )
    dispatcher.stopping = True  # until this replica is the leader
    web_task = asyncio.create_task(server.serve(), name="http")
    lead_task = asyncio.create_task(leadership.run(lead, follow, stop), name="leadership")
    log.info(
        "Afterglow ready: @%s, %s mode, database %s, %d prompts, %d templates, http port %d",
        app.bot.username,
        settings.mode,
        rt.engine.dialect.name,
        len(rt.content.prompts),
        len(rt.content.templates),
        settings.http_port,
    )
    try:
        await stop.wait()
    finally:
        await lead_task
        server.should_exit = True
        await web_task
        await follow()
        await app.stop()
        await app.shutdown()
        await _post_shutdown(app)
        log.info("Afterglow stopped")

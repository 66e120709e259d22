"""Logging set-up. Records carry ids and states, never patient text, tokens or invite codes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            payload["exc_type"] = record.exc_info[0].__name__
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    wanted = logging.getLevelName(level.upper())
    wanted = wanted if isinstance(wanted, int) else logging.INFO
    # Third-party libraries log bound SQL values (aiosqlite, asyncpg), API parameters and
    # updates (python-telegram-bot) and URLs with the bot token (httpx) at DEBUG: every logger
    # but the bot's own stays at INFO or above, whatever AFTERGLOW_LOG_LEVEL says. An allowlist,
    # so a library added later is quiet by default too.
    root.setLevel(max(logging.INFO, wanted))
    logging.getLogger("bot").setLevel(wanted)
    # httpx logs every request URL at INFO, and Telegram URLs contain the bot token.
    # SQLAlchemy's engine logs every statement with its bound values at INFO.
    noisy_loggers = ("httpx", "httpcore", "apscheduler", "telegram.ext.Updater", "uvicorn.access")
    for noisy in (*noisy_loggers, "sqlalchemy.engine", "sqlalchemy.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for library in ("telegram", "telegram.ext", "aiosqlite", "asyncpg", "sqlalchemy"):
        logging.getLogger(library).setLevel(max(logging.INFO, wanted))

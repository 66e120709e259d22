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
    root.setLevel(level.upper())
    # httpx logs every request URL, and Telegram URLs contain the bot token.
    for noisy in ("httpx", "httpcore", "apscheduler", "telegram.ext.Updater", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # At DEBUG, python-telegram-bot logs API parameters and updates (patient text, invite
    # tokens) and the API URL with the bot token: never below INFO, whatever LOG_LEVEL says.
    for library in ("telegram", "telegram.ext"):
        logging.getLogger(library).setLevel(max(logging.INFO, root.level))

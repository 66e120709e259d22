"""The context every handler gets: python-telegram-bot's, with the runtime and the callback
codec typed (`context.runtime`, `context.codec`). `bot.app.build_application` registers it
and puts both in `bot_data` before the first update."""

from __future__ import annotations

from typing import Any, cast

from telegram.ext import CallbackContext, ExtBot

from bot.runtime import Runtime
from bot.views.callbacks import CallbackCodec


class Context(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    @property
    def runtime(self) -> Runtime:
        return cast(Runtime, self.bot_data["runtime"])

    @property
    def codec(self) -> CallbackCodec:
        return cast(CallbackCodec, self.bot_data["codec"])

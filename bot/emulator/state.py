"""BotApiState: an in-memory Telegram Bot API server, shared by the tests' fake and the demo.

Two sides meet here. The bot side is `call(method, params)`, which answers exactly what the
HTTP API would. The person side (`send_text`, `press`, `block`, ... in people.py) is what
someone does in the Telegram app; each action becomes an update that getUpdates serves.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.emulator.faults import ApiError, Fault, FaultBook, RandomFault, default_description
from bot.emulator.methods import BotMethods, Handler, chat_id_param, flag
from bot.emulator.people import PersonSide
from bot.emulator.store import ChatStore, SentDocument
from bot.emulator.transcript import TranscriptEntry
from bot.emulator.update_queue import UpdateQueue
from bot.emulator.updates import EmuUser

CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


@dataclass
class RecordedCall:
    method: str  # canonical spelling, e.g. "sendMessage"
    params: dict[str, Any]
    time: datetime
    status: int = 0
    description: str | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BotApiState(PersonSide):
    def __init__(
        self,
        *,
        token: str = "123456:TEST",  # noqa: S107 - a fake bot's token, not a secret
        bot_username: str = "afterglow_test_bot",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.clock: Callable[[], datetime] = clock or _utc_now
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Afterglow",
            "username": bot_username,
        }
        self.store = ChatStore(bot=self.bot_user, clock=self.now)
        self.calls: list[RecordedCall] = []
        self.faults = FaultBook()
        self.webhook: dict[str, Any] = {}
        self._methods = BotMethods(self.store)
        handlers: dict[str, Handler] = self._methods.handlers()
        handlers["setWebhook"] = self._set_webhook
        handlers["deleteWebhook"] = self._delete_webhook
        handlers["getWebhookInfo"] = self._get_webhook_info
        self._handlers = {name.lower(): (name, handler) for name, handler in handlers.items()}
        self._users: dict[int, EmuUser] = {}
        self.updates = UpdateQueue()
        self._callback_seq = 0

    def now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the emulator clock must return timezone-aware datetimes")
        return now

    # ----------------------------------------------------------------- bot side
    async def call(self, method: str, params: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one Bot API request: (HTTP status, JSON body). Injected exception faults
        are raised instead of answered."""
        name, handler = self._resolve(method)
        decoded = dict(params)
        record = RecordedCall(name, decoded, self.now())
        self.calls.append(record)
        try:
            result = await self._answer(name, handler, decoded)
        except ApiError as error:
            record.status, record.description = error.status, error.description
            return error.status, error.body()
        record.status = 200
        return 200, {"ok": True, "result": result}

    def _resolve(self, method: str) -> tuple[str, Handler | None]:
        if method.lower() == "getupdates":
            return "getUpdates", None  # async, so it is answered outside the handler table
        return self._handlers.get(method.lower(), (method, None))

    async def _answer(self, name: str, handler: Handler | None, params: dict[str, Any]) -> Any:
        chat_id = _loose_chat_id(params)
        fault = self.faults.take(name, chat_id)
        if fault is not None:
            if fault.delivered and handler is not None:
                with contextlib.suppress(ApiError):
                    handler(params)
            fault.raise_exception()
            raise fault.error()
        if name == "getUpdates":
            return await self._get_updates(params)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        return handler(params)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise ApiError(409, CONFLICT_WEBHOOK)
        return await self.updates.fetch(
            offset=int(params.get("offset") or 0),
            limit=int(params.get("limit") or 100),
            wait_seconds=float(params.get("timeout") or 0),
        )

    def release_pollers(self) -> None:
        """Make waiting getUpdates calls return [] now (used when the HTTP server stops)."""
        self.updates.release()

    @property
    def next_update_id(self) -> int:
        return self.updates.next_update_id

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return self.updates.pending

    def drain_updates(self) -> list[dict[str, Any]]:
        """Take every queued update, as if a poller had fetched and confirmed them."""
        return self.updates.drain()

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if flag(params, "drop_pending_updates"):
            self.updates.clear()
        self.webhook = {"url": url, "secret_token": params.get("secret_token")} if url else {}
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        if flag(params, "drop_pending_updates"):
            self.updates.clear()
        self.webhook = {}
        return True

    def _get_webhook_info(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates.pending),
        }

    # ------------------------------------------------------------ inspection
    def calls_to(self, method: str) -> list[RecordedCall]:
        wanted = method.lower()
        return [call for call in self.calls if call.method.lower() == wanted]

    def clear_calls(self) -> None:
        self.calls.clear()

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Bot messages as they look now (after edits), in send order. Non-inline markup such
        as ForceReply appears under reply_markup although Telegram does not echo it."""
        return [message.view() for message in self.store.bot_messages(chat_id)]

    def last_sent(self, chat_id: int) -> dict[str, Any]:
        messages = self.store.bot_messages(chat_id)
        if not messages:
            raise LookupError(f"the bot has sent nothing to chat {chat_id}")
        return messages[-1].view()

    def sent_documents(self, chat_id: int | None = None) -> list[SentDocument]:
        return self._sent_files(chat_id, lambda wire: wire.get("document"))

    def sent_photos(self, chat_id: int | None = None) -> list[SentDocument]:
        """Photos the bot sent (the largest size of each)."""
        return self._sent_files(chat_id, lambda wire: (wire.get("photo") or [None])[-1])

    def _sent_files(
        self, chat_id: int | None, file_of: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> list[SentDocument]:
        files: list[SentDocument] = []
        for message in self.store.bot_messages(chat_id):
            if attached := file_of(message.wire):
                stored = self.store.files[attached["file_id"]]
                files.append(
                    SentDocument(
                        chat_id=message.chat_id,
                        message_id=message.message_id,
                        filename=stored.filename,
                        content=stored.content,
                        mime_type=stored.mime_type,
                        caption=message.wire.get("caption"),
                    )
                )
        return files

    def callback_answer(self, callback_query_id: str) -> dict[str, Any] | None:
        return self.store.callback_answers.get(callback_query_id)

    def commands(
        self, scope: Mapping[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"language_code": language_code}
        if scope is not None:
            params["scope"] = dict(scope)
        return self._methods.get_my_commands(params)

    def menu_button(self, chat_id: int | None = None) -> dict[str, Any]:
        """The chat's menu button as `setChatMenuButton` left it (default: commands)."""
        params = {"chat_id": chat_id} if chat_id is not None else {}
        return self._methods.get_chat_menu_button(params)

    def transcript(self) -> list[TranscriptEntry]:
        return list(self.store.transcript)

    # ------------------------------------------------------------ faults
    def fail(
        self,
        method: str,
        *,
        status: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
        chat_id: int | None = None,
        exception: type[BaseException] | BaseException | None = None,
        delivered: bool = False,
    ) -> None:
        """Queue a failure for the next `times` matching calls (None: until clear_faults).

        `exception` is raised by the in-process fake instead of answering (over HTTP the
        server answers 502, which PTB turns into NetworkError). `delivered=True` performs the
        call before failing: the message arrives but the sender never learns its id."""
        if status == 429 and retry_after is None:
            retry_after = 1
        self.faults.queued.append(
            self._fault(
                method, status, description, retry_after, times, chat_id, exception, delivered
            )
        )

    def fail_ratio(
        self,
        method: str,
        ratio: float,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        description: str | None = None,
        chat_id: int | None = None,
        seed: int = 0,
    ) -> None:
        """Fail a seeded-random share of calls to `method` (checked after queued faults)."""
        template = self._fault(method, status, description, retry_after, None, chat_id, None, False)
        self.faults.random_faults.append(
            RandomFault(template.method, ratio, template, random.Random(seed))  # noqa: S311
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def _fault(
        self,
        method: str,
        status: int,
        description: str | None,
        retry_after: int | None,
        times: int | None,
        chat_id: int | None,
        exception: type[BaseException] | BaseException | None,
        delivered: bool,
    ) -> Fault:
        name = self._resolve(method)[0]
        return Fault(
            method=name,
            status=status,
            description=description or default_description(status, retry_after),
            retry_after=retry_after if status == 429 else None,
            remaining=times,
            chat_id=chat_id,
            exception=exception,
            delivered=delivered,
        )


def _loose_chat_id(params: Mapping[str, Any]) -> int | None:
    try:
        return chat_id_param(dict(params)) if params.get("chat_id") is not None else None
    except ApiError:
        return None

"""What the emulated Telegram server remembers: chats, messages, files, the visible transcript."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.emulator.faults import ApiError, bad_request
from bot.emulator.transcript import TranscriptEntry


@dataclass
class StoredMessage:
    seq: int
    wire: dict[str, Any]  # exactly what Telegram returns for this message
    from_bot: bool
    # As the bot sent it: Telegram echoes only inline keyboards, but tests need ForceReply too.
    markup: dict[str, Any] | None = None

    @property
    def chat_id(self) -> int:
        return int(self.wire["chat"]["id"])

    @property
    def message_id(self) -> int:
        return int(self.wire["message_id"])

    def view(self) -> dict[str, Any]:
        view = copy.deepcopy(self.wire)
        if self.markup is not None and "reply_markup" not in view:
            view["reply_markup"] = copy.deepcopy(self.markup)
        return view


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    filename: str
    content: bytes
    mime_type: str


@dataclass(frozen=True)
class SentDocument:
    chat_id: int
    message_id: int
    filename: str
    content: bytes
    mime_type: str
    caption: str | None


@dataclass
class ChatStore:
    bot: dict[str, Any]
    clock: Callable[[], datetime]
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: dict[int, dict[int, StoredMessage]] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    open_callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    callback_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    transcript: list[TranscriptEntry] = field(default_factory=list)
    _last_message_id: dict[int, int] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def now_ts(self) -> int:
        return int(self.clock().timestamp())

    def next_seq(self) -> int:
        return next(self._seq)

    def chat(self, chat_id: int) -> dict[str, Any]:
        try:
            return self.chats[chat_id]
        except KeyError:
            raise bad_request("chat not found") from None

    def writable_chat(self, chat_id: int) -> dict[str, Any]:
        chat = self.chat(chat_id)
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def new_message_id(self, chat_id: int) -> int:
        # One sequence per chat shared by both sides, as in a private chat on Telegram.
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def add(self, message: StoredMessage) -> StoredMessage:
        self.messages.setdefault(message.chat_id, {})[message.message_id] = message
        return message

    def find(self, chat_id: int, message_id: int) -> StoredMessage | None:
        return self.messages.get(chat_id, {}).get(message_id)

    def new_file(self, filename: str, content: bytes, mime_type: str) -> StoredFile:
        number = self.next_seq()
        stored = StoredFile(f"emu-file-{number}", f"emu-u{number}", filename, content, mime_type)
        self.files[stored.file_id] = stored
        return stored

    def new_file_ids(self) -> tuple[str, str]:
        number = self.next_seq()
        return f"emu-file-{number}", f"emu-u{number}"

    def chat_title(self, chat_id: int) -> str:
        chat = self.chats.get(chat_id, {})
        return str(chat.get("title") or chat.get("first_name") or chat_id)

    def note(
        self,
        chat_id: int,
        text: str,
        *,
        who: str,
        who_id: int,
        is_bot: bool,
        message_id: int | None = None,
    ) -> None:
        self.transcript.append(
            TranscriptEntry(
                time=self.clock(),
                chat_id=chat_id,
                chat_title=self.chat_title(chat_id),
                who=who,
                who_id=who_id,
                is_bot=is_bot,
                text=text,
                message_id=message_id,
            )
        )

    def note_bot(self, chat_id: int, text: str, message_id: int | None = None) -> None:
        self.note(
            chat_id, text, who="bot", who_id=int(self.bot["id"]), is_bot=True, message_id=message_id
        )

    def bot_messages(self, chat_id: int | None = None) -> list[StoredMessage]:
        chats = [chat_id] if chat_id is not None else list(self.messages)
        found = [
            message
            for chat in chats
            for message in self.messages.get(chat, {}).values()
            if message.from_bot
        ]
        return sorted(found, key=lambda message: message.seq)

"""Builders for what a person's Telegram app makes the server send to the bot (Bot API shapes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.emulator.entities import utf16_len


@dataclass(frozen=True)
class EmuUser:
    """A person using Telegram; their private chat with the bot has the same id."""

    id: int
    first_name: str
    language_code: str = "en"
    username: str | None = None
    last_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        user["language_code"] = self.language_code
        return user

    def private_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entity Telegram adds when a message starts with "/word"."""
    if not text.startswith("/") or len(text) < 2 or text[1].isspace():
        return []
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]


def without_nested_reply(message: dict[str, Any]) -> dict[str, Any]:
    # Telegram never nests reply_to_message more than one level deep.
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def voice_payload(file_id: str, unique_id: str) -> dict[str, Any]:
    return {
        "file_id": file_id,
        "file_unique_id": unique_id,
        "duration": 3,
        "mime_type": "audio/ogg",
        "file_size": 4096,
    }


def photo_payload(file_id: str, unique_id: str) -> list[dict[str, Any]]:
    return [
        {
            "file_id": f"{file_id}-s",
            "file_unique_id": f"{unique_id}s",
            "width": 90,
            "height": 90,
            "file_size": 1200,
        },
        {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "width": 800,
            "height": 800,
            "file_size": 48000,
        },
    ]


def sticker_payload(file_id: str, unique_id: str) -> dict[str, Any]:
    return {
        "file_id": file_id,
        "file_unique_id": unique_id,
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "🙂",
        "file_size": 20000,
    }


def chat_member_update(
    chat: dict[str, Any],
    user: EmuUser,
    bot: dict[str, Any],
    date: int,
    *,
    old_status: str,
    new_status: str,
) -> dict[str, Any]:
    def member(status: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"user": bot, "status": status}
        if status == "kicked":
            entry["until_date"] = 0
        return entry

    return {
        "chat": chat,
        "from": user.as_dict(),
        "date": date,
        "old_chat_member": member(old_status),
        "new_chat_member": member(new_status),
    }

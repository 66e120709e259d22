"""What a person does in the Telegram app, turned into the updates Telegram would send.

Each action stores the person's message (so the bot can reply to it and they can reply to the
bot), adds a line to the transcript and queues an update with the Bot API's exact shape.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs, urlparse

from bot.emulator.keyboards import find_button, find_button_by_label
from bot.emulator.store import ChatStore, StoredMessage
from bot.emulator.update_queue import UpdateQueue
from bot.emulator.updates import (
    EmuUser,
    chat_member_update,
    command_entities,
    photo_payload,
    sticker_payload,
    voice_payload,
    without_nested_reply,
)


class PersonSide:
    """Mixin for BotApiState: the people's half of the conversation."""

    store: ChatStore
    updates: UpdateQueue
    bot_user: dict[str, Any]
    bot_username: str
    _users: dict[int, EmuUser]
    _callback_seq: int

    def user(
        self,
        user_id: int,
        first_name: str,
        *,
        language_code: str = "en",
        username: str | None = None,
        last_name: str | None = None,
    ) -> EmuUser:
        """A person's handle. Their chat exists for the bot once they first write to it."""
        person = EmuUser(user_id, first_name, language_code, username, last_name)
        self._users[user_id] = person
        return person

    def register_chat(self, chat_id: int, *, title: str, chat_type: str = "group") -> None:
        """A group (e.g. the clinic's on-call chat) that the bot is a member of."""
        self.store.chats[chat_id] = {"id": chat_id, "type": chat_type, "title": title}

    def _chat_for(self, person: EmuUser, chat_id: int | None) -> dict[str, Any]:
        if chat_id is None:
            chat = self.store.chats.setdefault(person.id, person.private_chat())
            return chat
        return self.store.chat(chat_id)

    def _user_message(
        self, person: EmuUser, chat_id: int | None, body: dict[str, Any], shown: str
    ) -> dict[str, Any]:
        chat = self._chat_for(person, chat_id)
        wire = {
            "message_id": self.store.new_message_id(chat["id"]),
            "from": person.as_dict(),
            "chat": chat,
            "date": self.store.now_ts(),
            **body,
        }
        self.store.add(StoredMessage(self.store.next_seq(), wire, False))
        self.store.note(
            chat["id"],
            shown,
            who=person.first_name,
            who_id=person.id,
            is_bot=False,
            message_id=wire["message_id"],
        )
        return self.updates.push("message", copy.deepcopy(wire))

    async def send_text(
        self,
        person: EmuUser,
        text: str,
        *,
        reply_to: int | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The person sends `text`; "/cmd args" gets a bot_command entity like in the app."""
        body: dict[str, Any] = {"text": text}
        entities = command_entities(text)
        if entities:
            body["entities"] = entities
        shown = text
        if reply_to is not None:
            target_chat = chat_id if chat_id is not None else person.id
            original = self.store.find(target_chat, reply_to)
            if original is None:
                raise LookupError(f"no message {reply_to} in chat {target_chat} to reply to")
            body["reply_to_message"] = without_nested_reply(original.wire)
            shown = f"(reply) {text}"
        return self._user_message(person, chat_id, body, shown)

    async def send_command(self, person: EmuUser, command: str, *args: str) -> dict[str, Any]:
        text = " ".join(["/" + command.lstrip("/"), *args])
        return await self.send_text(person, text)

    async def open_link(self, person: EmuUser, url: str) -> dict[str, Any]:
        """Follow a t.me deep link to this bot: the app sends "/start PAYLOAD"."""
        parsed = urlparse(url)
        if parsed.path.strip("/").lower() != self.bot_username.lower():
            raise ValueError(f"{url} is not a link to @{self.bot_username}")
        payload = parse_qs(parsed.query).get("start", [""])[0]
        return await self.send_text(person, f"/start {payload}".rstrip())

    async def send_voice(self, person: EmuUser) -> dict[str, Any]:
        file_id, unique_id = self.store.new_file_ids()
        return self._user_message(
            person, None, {"voice": voice_payload(file_id, unique_id)}, "[voice message]"
        )

    async def send_photo(self, person: EmuUser, *, caption: str | None = None) -> dict[str, Any]:
        file_id, unique_id = self.store.new_file_ids()
        body: dict[str, Any] = {"photo": photo_payload(file_id, unique_id)}
        if caption:
            body["caption"] = caption
        return self._user_message(
            person, None, body, "[photo]" + (f" {caption}" if caption else "")
        )

    async def send_sticker(self, person: EmuUser) -> dict[str, Any]:
        file_id, unique_id = self.store.new_file_ids()
        return self._user_message(
            person, None, {"sticker": sticker_payload(file_id, unique_id)}, "[sticker 🙂]"
        )

    async def edit_text(self, person: EmuUser, message_id: int, text: str) -> dict[str, Any]:
        """The person edits a message they sent: an edited_message update."""
        message = self.store.find(person.id, message_id)
        if message is None or message.from_bot or "text" not in message.wire:
            raise LookupError(f"{person.first_name} has no text message {message_id}")
        message.wire["text"] = text
        message.wire["edit_date"] = self.store.now_ts()
        self.store.note(
            person.id,
            f"(edited) {text}",
            who=person.first_name,
            who_id=person.id,
            is_bot=False,
            message_id=message_id,
        )
        return self.updates.push("edited_message", copy.deepcopy(message.wire))

    async def press(
        self,
        person: EmuUser,
        message_id: int,
        callback_data: str,
        *,
        chat_id: int | None = None,
        check: bool = True,
    ) -> dict[str, Any]:
        """Tap the inline button carrying `callback_data`. check=False sends data no button
        carries, which is how a forged callback looks to the bot."""
        message = self._bot_message(person, message_id, chat_id)
        button = find_button(message.wire.get("reply_markup"), callback_data)
        if button is None and check:
            raise LookupError(f"message {message_id} has no button with data {callback_data!r}")
        label = button["text"] if button else callback_data
        return self._callback(person, message, callback_data, label)

    async def press_button(
        self, person: EmuUser, message_id: int, label: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """Tap the inline button whose text is `label`."""
        message = self._bot_message(person, message_id, chat_id)
        button = find_button_by_label(message.wire.get("reply_markup"), label)
        if button is None or "callback_data" not in button:
            raise LookupError(f"message {message_id} has no callback button {label!r}")
        return self._callback(person, message, str(button["callback_data"]), label)

    def _bot_message(self, person: EmuUser, message_id: int, chat_id: int | None) -> StoredMessage:
        chat = chat_id if chat_id is not None else person.id
        message = self.store.find(chat, message_id)
        if message is None or not message.from_bot:
            raise LookupError(f"no bot message {message_id} in chat {chat}")
        return message

    def _callback(
        self, person: EmuUser, message: StoredMessage, data: str, label: str
    ) -> dict[str, Any]:
        self._callback_seq += 1
        query_id = f"{person.id}{self._callback_seq:06d}"
        query: dict[str, Any] = {
            "id": query_id,
            "from": person.as_dict(),
            "message": copy.deepcopy(message.wire),
            "chat_instance": f"ci{message.chat_id}",
            "data": data,
        }
        self.store.open_callbacks[query_id] = query
        self.store.note(
            message.chat_id,
            f"[pressed: {label}]",
            who=person.first_name,
            who_id=person.id,
            is_bot=False,
            message_id=message.message_id,
        )
        return self.updates.push("callback_query", query)

    async def block(self, who: EmuUser | int) -> dict[str, Any]:
        """The person blocks the bot: sends to them get 403 and a my_chat_member arrives."""
        return self._membership(who, blocked=True)

    async def unblock(self, who: EmuUser | int) -> dict[str, Any]:
        return self._membership(who, blocked=False)

    def _membership(self, who: EmuUser | int, *, blocked: bool) -> dict[str, Any]:
        person = who if isinstance(who, EmuUser) else self._users.get(who)
        if person is None:
            raise LookupError(f"unknown user {who}; create it with state.user() first")
        chat = self._chat_for(person, None)
        if blocked:
            self.store.blocked.add(person.id)
        else:
            self.store.blocked.discard(person.id)
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        payload = chat_member_update(
            chat, person, self.bot_user, self.store.now_ts(), old_status=old, new_status=new
        )
        shown = "[blocked the bot]" if blocked else "[unblocked the bot]"
        self.store.note(person.id, shown, who=person.first_name, who_id=person.id, is_bot=False)
        return self.updates.push("my_chat_member", payload)

"""The Bot API methods that act on chats and messages (everything except the update queue)."""

from __future__ import annotations

import copy
import json
import mimetypes
import re
from collections.abc import Callable
from typing import Any

from bot.emulator.entities import render_text
from bot.emulator.faults import ApiError, bad_request
from bot.emulator.keyboards import (
    check_web_app,
    decode_json_param,
    inline_only,
    parse_reply_markup,
)
from bot.emulator.store import ChatStore, StoredFile, StoredMessage
from bot.emulator.transcript import describe_message
from bot.emulator.updates import without_nested_reply

Handler = Callable[[dict[str, Any]], Any]

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")


def int_param(params: dict[str, Any], name: str) -> int:
    value = params.get(name)
    if value is None or value == "":
        raise bad_request(f"{name} is empty")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def chat_id_param(params: dict[str, Any]) -> int:
    value = params.get("chat_id")
    if isinstance(value, str) and value and not value.lstrip("-").isdigit():
        # "@username" chats: the emulator only knows chats by numeric id.
        raise bad_request("chat not found")
    return int_param(params, "chat_id")


def flag(params: dict[str, Any], name: str) -> bool:
    return params.get(name) in (True, 1, "true", "True", "1")


def _render(text: Any, parse_mode: Any, *, caption: bool = False) -> tuple[str, list[Any]]:
    try:
        return render_text(str(text or ""), parse_mode, caption=caption)
    except ValueError as error:
        raise ApiError(400, str(error)) from None


class BotMethods:
    def __init__(self, store: ChatStore) -> None:
        self.store = store
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[str, dict[str, Any]] = {}  # by chat id ("" for the default)

    def handlers(self) -> dict[str, Handler]:
        return {
            "getMe": self.get_me,
            "sendMessage": self.send_message,
            "sendDocument": self.send_document,
            "sendPhoto": self.send_photo,
            "editMessageText": self.edit_message_text,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "answerCallbackQuery": self.answer_callback_query,
            "setMyCommands": self.set_my_commands,
            "setChatMenuButton": self.set_chat_menu_button,
            "getChatMenuButton": self.get_chat_menu_button,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setMessageReaction": self.set_message_reaction,
            "sendChatAction": self.send_chat_action,
            "close": lambda _params: True,
            "logOut": lambda _params: True,
        }

    def get_me(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.store.bot,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _new_bot_message(self, chat_id: int, chat: dict[str, Any]) -> dict[str, Any]:
        return {
            "message_id": self.store.new_message_id(chat_id),
            "from": self.store.bot,
            "chat": chat,
            "date": self.store.now_ts(),
        }

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> StoredMessage | None:
        reply = decode_json_param(params.get("reply_parameters"), "reply parameters")
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            message_id = int(reply["message_id"])
            target_chat = int(reply.get("chat_id") or chat_id)
            allow_missing = bool(reply.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id"):
            message_id = int_param(params, "reply_to_message_id")
            target_chat = chat_id
            allow_missing = flag(params, "allow_sending_without_reply")
        else:
            return None
        found = self.store.find(target_chat, message_id)
        if found is None and not allow_missing:
            raise bad_request("message to be replied not found")
        return found

    def _finish_send(
        self,
        wire: dict[str, Any],
        params: dict[str, Any],
        markup: dict[str, Any] | None,
        transcript_text: str,
    ) -> dict[str, Any]:
        chat_id = int(wire["chat"]["id"])
        reply = self._reply_target(chat_id, params)
        if reply is not None:
            wire["reply_to_message"] = without_nested_reply(reply.wire)
        if inline_only(markup):
            wire["reply_markup"] = markup
        if flag(params, "protect_content"):
            wire["has_protected_content"] = True
        stored = self.store.add(StoredMessage(self.store.next_seq(), wire, True, markup))
        self.store.note_bot(chat_id, describe_message(transcript_text, markup), stored.message_id)
        return copy.deepcopy(wire)

    def send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = chat_id_param(params)
        chat = self.store.writable_chat(chat_id)
        markup = parse_reply_markup(params.get("reply_markup"))
        text, entities = _render(params.get("text"), params.get("parse_mode"))
        self._reply_target(chat_id, params)  # fail before a message id is used up
        wire = self._new_bot_message(chat_id, chat)
        wire["text"] = text
        if entities:
            wire["entities"] = entities
        preview = decode_json_param(params.get("link_preview_options"), "link preview options")
        if isinstance(preview, dict) and preview:
            wire["link_preview_options"] = preview
        return self._finish_send(wire, params, markup, text)

    def _resolve_file(self, value: Any, params: dict[str, Any]) -> StoredFile:
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if isinstance(value, dict) and "content" in value:
            content = value["content"]
            if hasattr(content, "read"):
                content = content.read()
            if isinstance(content, str):
                content = content.encode("utf-8")
            filename = str(value.get("filename") or "document")
            mime_type = value.get("mime_type") or mimetypes.guess_type(filename)[0]
            return self.store.new_file(
                filename, bytes(content), str(mime_type or "application/octet-stream")
            )
        if isinstance(value, str) and value in self.store.files:
            return self.store.files[value]
        if value is None or value == "":
            raise bad_request("there is no document in the request")
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")
        raise bad_request("wrong file identifier/HTTP URL specified")

    def send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = chat_id_param(params)
        chat = self.store.writable_chat(chat_id)
        markup = parse_reply_markup(params.get("reply_markup"))
        stored_file = self._resolve_file(params.get("document"), params)
        caption, caption_entities = _render(
            params.get("caption"), params.get("parse_mode"), caption=True
        )
        self._reply_target(chat_id, params)
        wire = self._new_bot_message(chat_id, chat)
        wire["document"] = {
            "file_id": stored_file.file_id,
            "file_unique_id": stored_file.file_unique_id,
            "file_name": stored_file.filename,
            "mime_type": stored_file.mime_type,
            "file_size": len(stored_file.content),
        }
        if caption:
            wire["caption"] = caption
        if caption_entities:
            wire["caption_entities"] = caption_entities
        shown = f"[{stored_file.filename}]" + (f" {caption}" if caption else "")
        return self._finish_send(wire, params, markup, shown)

    def send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = chat_id_param(params)
        chat = self.store.writable_chat(chat_id)
        markup = parse_reply_markup(params.get("reply_markup"))
        stored_file = self._resolve_file(params.get("photo"), params)
        if not stored_file.content.startswith(b"\x89PNG") and not stored_file.content.startswith(
            b"\xff\xd8"
        ):
            raise bad_request("IMAGE_PROCESS_FAILED")
        caption, caption_entities = _render(
            params.get("caption"), params.get("parse_mode"), caption=True
        )
        self._reply_target(chat_id, params)
        wire = self._new_bot_message(chat_id, chat)
        wire["photo"] = [
            {
                "file_id": stored_file.file_id,
                "file_unique_id": stored_file.file_unique_id,
                "width": 0,
                "height": 0,
                "file_size": len(stored_file.content),
            }
        ]
        if caption:
            wire["caption"] = caption
        if caption_entities:
            wire["caption_entities"] = caption_entities
        shown = "[photo]" + (f" {caption}" if caption else "")
        return self._finish_send(wire, params, markup, shown)

    def _editable(self, params: dict[str, Any]) -> StoredMessage:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat_id = chat_id_param(params)
        self.store.writable_chat(chat_id)
        message = self.store.find(chat_id, int_param(params, "message_id"))
        if message is None:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    def _apply_edit(
        self, message: StoredMessage, changes: dict[str, Any], markup: dict[str, Any] | None
    ) -> dict[str, Any]:
        wire = message.wire
        before = {key: wire.get(key) for key in (*changes, "reply_markup")}
        after = {**changes, "reply_markup": inline_only(markup)}
        if before == after:
            raise bad_request(NOT_MODIFIED)
        for key, value in after.items():
            if value:
                wire[key] = value
            else:
                wire.pop(key, None)
        wire["edit_date"] = self.store.now_ts()
        message.markup = after["reply_markup"]
        shown = wire.get("text") or f"[{wire.get('document', {}).get('file_name', 'file')}]"
        self.store.note_bot(
            message.chat_id,
            "(edited) " + describe_message(shown, message.markup),
            message.message_id,
        )
        return copy.deepcopy(wire)

    def edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable(params)
        if "text" not in message.wire:
            raise bad_request("there is no text in the message to edit")
        markup = parse_reply_markup(params.get("reply_markup"))
        text, entities = _render(params.get("text"), params.get("parse_mode"))
        # Omitting reply_markup removes the inline keyboard, exactly as on Telegram.
        return self._apply_edit(message, {"text": text, "entities": entities or None}, markup)

    def edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable(params)
        markup = parse_reply_markup(params.get("reply_markup"))
        return self._apply_edit(message, {}, markup)

    def delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = chat_id_param(params)
        self.store.chat(chat_id)
        message_id = int_param(params, "message_id")
        found = self.store.messages.get(chat_id, {}).get(message_id)
        if found is None:
            raise bad_request("message to delete not found")
        # Telegram's rule: a bot deletes its own messages for 48 hours after sending.
        if found.from_bot and self.store.now_ts() - int(found.wire["date"]) > 48 * 3600:
            raise bad_request("message can't be deleted for everyone")
        del self.store.messages[chat_id][message_id]
        self.store.note_bot(chat_id, "(deleted a message)", message_id)
        return True

    def answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        query = self.store.open_callbacks.pop(query_id, None)
        if query is None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self.store.callback_answers[query_id] = dict(params)
        text = params.get("text")
        if text:
            kind = "(alert)" if flag(params, "show_alert") else "(toast)"
            self.store.note_bot(int(query["message"]["chat"]["id"]), f"{kind} {text}")
        return True

    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = decode_json_param(params.get("scope"), "scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = decode_json_param(params.get("commands"), "commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND.match(str(command.get("command"))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description") or "")) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = [
            {"command": str(c["command"]), "description": str(c["description"])} for c in commands
        ]
        return True

    def get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return copy.deepcopy(self.commands.get(self._commands_key(params), []))

    def delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def set_chat_menu_button(self, params: dict[str, Any]) -> bool:
        button = decode_json_param(params.get("menu_button"), "menu button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "default",
            "commands",
            "web_app",
        ):
            raise bad_request("can't parse menu button")
        if button["type"] == "web_app":
            if not button.get("text"):
                raise bad_request("menu button text is empty")
            check_web_app(button.get("web_app"))
        chat = params.get("chat_id")
        if chat is not None:
            self.store.writable_chat(chat_id_param(params))
        self.menu_buttons[str(chat) if chat is not None else ""] = copy.deepcopy(button)
        return True

    def get_chat_menu_button(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = params.get("chat_id")
        key = str(chat) if chat is not None else ""
        return copy.deepcopy(self.menu_buttons.get(key) or {"type": "default"})

    def set_message_reaction(self, params: dict[str, Any]) -> bool:
        chat_id = chat_id_param(params)
        self.store.writable_chat(chat_id)
        if self.store.find(chat_id, int_param(params, "message_id")) is None:
            raise bad_request("MESSAGE_ID_INVALID")
        return True

    def send_chat_action(self, params: dict[str, Any]) -> bool:
        self.store.writable_chat(chat_id_param(params))
        if not params.get("action"):
            raise bad_request("action is empty")
        return True

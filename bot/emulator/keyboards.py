"""reply_markup decoding and the checks Telegram applies to it."""

from __future__ import annotations

import json
from typing import Any

from bot.emulator.faults import bad_request

MAX_CALLBACK_DATA_BYTES = 64
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def decode_json_param(value: Any, what: str) -> Any:
    """Form-encoded clients send objects as JSON strings; JSON clients send them as is."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise bad_request(f"can't parse {what} JSON object") from None


def parse_reply_markup(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    markup = decode_json_param(value, "reply keyboard markup")
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
    elif not any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
        raise bad_request("can't parse reply keyboard markup JSON object")
    return markup


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    for row in rows:
        for button in row:
            _check_button(button)


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not button.get("text"):
        raise bad_request("can't parse inline keyboard button: Text must be non-empty")
    actions = [key for key in _BUTTON_ACTIONS if key in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        size = len(data.encode("utf-8")) if isinstance(data, str) else 0
        if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = str(button["url"])
        if not url.startswith(("http://", "https://", "tg://")):
            raise bad_request("BUTTON_URL_INVALID")
    if "web_app" in button:
        check_web_app(button["web_app"])


def check_web_app(web_app: Any) -> None:
    """Telegram opens a Mini App from an https URL only."""
    url = str(web_app.get("url", "")) if isinstance(web_app, dict) else ""
    if not url.startswith("https://"):
        raise bad_request(
            f"inline keyboard button Web App URL '{url}' is invalid: Only HTTPS links are allowed"
        )


def inline_only(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of reply_markup Telegram puts back into the Message object."""
    if markup and "inline_keyboard" in markup:
        return markup
    return None


def find_button(markup: dict[str, Any] | None, callback_data: str) -> dict[str, Any] | None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if button.get("callback_data") == callback_data:
                return dict(button)
    return None


def find_button_by_label(markup: dict[str, Any] | None, label: str) -> dict[str, Any] | None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if button.get("text") == label:
                return dict(button)
    return None

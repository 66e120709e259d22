"""The conversation as a person would have seen it, in order, for `afterglow demo` and tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any


@dataclass(frozen=True)
class TranscriptEntry:
    time: datetime
    chat_id: int
    chat_title: str
    who: str  # "bot" or the person's first name
    who_id: int
    is_bot: bool
    text: str
    message_id: int | None = None


def button_labels(markup: dict[str, Any] | None) -> list[list[str]]:
    if not markup:
        return []
    rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
    return [
        [button["text"] if isinstance(button, dict) else str(button) for button in row]
        for row in rows
    ]


def describe_message(text: str, markup: dict[str, Any] | None) -> str:
    rows = button_labels(markup)
    if markup and markup.get("force_reply"):
        text += "\n(reply requested)"
    for row in rows:
        text += "\n" + "  ".join(f"[{label}]" for label in row)
    return text


def render_transcript(
    entries: Iterable[TranscriptEntry],
    *,
    tz: tzinfo = UTC,
    time_format: str = "%a %d %b %H:%M",
    zones: Sequence[tuple[int, tzinfo]] = (),
) -> str:
    """One block per entry: "[time] who → chat: text"; ``zones`` gives per-chat local time."""
    by_chat = dict(zones)
    lines: list[str] = []
    for entry in entries:
        local = entry.time.astimezone(by_chat.get(entry.chat_id, tz))
        where = f" → {entry.chat_title}" if entry.is_bot else ""
        head = f"[{local.strftime(time_format)}] {entry.who}{where}: "
        body = entry.text.splitlines() or [""]
        lines.append(head + body[0])
        lines.extend(" " * len(head) + line for line in body[1:])
    return "\n".join(lines)

"""Telegram's HTML parse mode: turn marked-up text into visible text plus message entities.

Telegram answers a bad tag with 400 instead of showing it, so the emulator has to be at least
as strict as the real server or the bot's escaping bugs would only surface in production.
Offsets and lengths are in UTF-16 code units, as on the wire.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
}
_SUPPORTED_TAGS = {*_SIMPLE_TAGS, "code", "pre", "a", "span", "blockquote"}
# Telegram decodes only these names; any other "&name;" stays literal text.
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; str() is Telegram's own wording."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Open:
    __slots__ = ("attrs", "byte_offset", "start", "tag")

    def __init__(self, tag: str, attrs: dict[str, str | None], start: int, byte_offset: int):
        self.tag = tag
        self.attrs = attrs
        self.start = start
        self.byte_offset = byte_offset


class _TelegramHtml(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self._source = source
        self._line_starts = [0]
        for index, char in enumerate(source):
            if char == "\n":
                self._line_starts.append(index + 1)
        self.parts: list[str] = []
        self.length = 0
        self.stack: list[_Open] = []
        self.entities: list[dict[str, Any]] = []

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def _byte_offset(self) -> int:
        return len(self._source[: self._offset()].encode("utf-8"))

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def handle_data(self, data: str) -> None:
        if data.startswith("<"):
            # html.parser passes a "<" that opens no well-formed tag through as text;
            # Telegram rejects it, which is how unescaped user input shows up.
            rest = data[1:]
            name = ""
            for char in rest:
                if char.isspace() or char in "<>/":
                    break
                name += char
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {self._byte_offset()}'
            )
        self._emit(data)

    def handle_entityref(self, name: str) -> None:
        offset = self._offset()
        end = offset + 1 + len(name)
        terminated = self._source[end : end + 1] == ";"
        if terminated and name in _NAMED_ENTITIES:
            self._emit(_NAMED_ENTITIES[name])
        else:
            self._emit(self._source[offset : end + (1 if terminated else 0)])

    def handle_charref(self, name: str) -> None:
        try:
            code = int(name[1:], 16) if name[:1] in ("x", "X") else int(name)
            self._emit(chr(code))
        except (ValueError, OverflowError):
            self._emit(f"&#{name};")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        byte_offset = self._byte_offset()
        if tag not in _SUPPORTED_TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {byte_offset}')
        attributes = dict(attrs)
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset}'
            )
        self.stack.append(_Open(tag, attributes, self.length, byte_offset))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        byte_offset = self._byte_offset()
        if not self.stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {byte_offset}")
        opened = self.stack[-1]
        if opened.tag != tag:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {byte_offset}, "
                f'expected "</{opened.tag}>", found "</{tag}>"'
            )
        self.stack.pop()
        self._close(opened)

    def _close(self, opened: _Open) -> None:
        length = self.length - opened.start
        if length <= 0:
            return
        entity: dict[str, Any] = {"offset": opened.start, "length": length}
        tag, attrs = opened.tag, opened.attrs
        if tag in _SIMPLE_TAGS or tag == "span":
            entity["type"] = _SIMPLE_TAGS.get(tag, "spoiler")
        elif tag == "a":
            href = attrs.get("href")
            if not href:
                return
            entity.update(type="text_link", url=href)
        elif tag == "blockquote":
            entity["type"] = "expandable_blockquote" if "expandable" in attrs else "blockquote"
        elif tag == "pre":
            entity["type"] = "pre"
            language = attrs.get("_language")
            if language:
                entity["language"] = language
        else:
            if self.stack and self.stack[-1].tag == "pre":
                # <pre><code class="language-x"> is one pre entity, not pre + code.
                self.stack[-1].attrs.setdefault("_language", _language_of(attrs))
                return
            entity["type"] = "code"
        self.entities.append(entity)

    def handle_comment(self, data: str) -> None:
        raise EntityParseError(f'Unsupported start tag "!--" at byte offset {self._byte_offset()}')

    def handle_decl(self, decl: str) -> None:
        raise EntityParseError(f'Unsupported start tag "!" at byte offset {self._byte_offset()}')

    def unknown_decl(self, data: str) -> None:
        self.handle_decl(data)

    def handle_pi(self, data: str) -> None:
        raise EntityParseError(f'Unsupported start tag "?" at byte offset {self._byte_offset()}')

    def finish(self) -> None:
        self.close()
        if self.stack:
            raise EntityParseError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].tag}"'
            )


def _language_of(attrs: dict[str, str | None]) -> str | None:
    css = attrs.get("class") or ""
    return css.removeprefix("language-") if css.startswith("language-") else None


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Visible text and entities (sorted like Telegram: by offset, outer first)."""
    parser = _TelegramHtml(source)
    parser.feed(source)
    parser.finish()
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.parts), entities


def _strip(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    # Telegram trims surrounding whitespace and clips entities to what is left.
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    limit = utf16_len(stripped)
    clipped: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, limit)
        if end > start:
            clipped.append({**entity, "offset": start, "length": end - start})
    return stripped, clipped


def render_text(
    text: str, parse_mode: str | None, *, caption: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """Apply parse_mode and Telegram's limits; ValueError's str() is the 400 description.

    Markdown modes are stored verbatim: the bot only sends HTML, so emulating Markdown's
    escaping rules would be untested code.
    """
    mode = (parse_mode or "").lower()
    if mode == "html":
        try:
            visible, entities = parse_html(text)
        except EntityParseError as error:
            raise ValueError(f"Bad Request: can't parse entities: {error}") from None
    elif mode in ("", "markdown", "markdownv2"):
        visible, entities = text, []
    else:
        raise ValueError("Bad Request: unsupported parse_mode")
    visible, entities = _strip(visible, entities)
    if caption:
        if len(visible) > MAX_CAPTION_LENGTH:
            raise ValueError("Bad Request: message caption is too long")
    elif not visible:
        raise ValueError("Bad Request: message text is empty")
    elif len(visible) > MAX_TEXT_LENGTH:
        raise ValueError("Bad Request: message is too long")
    return visible, entities

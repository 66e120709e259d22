"""Low-level checks behind the content loader: Telegram HTML and typed YAML scalars.

Kept apart from `content.py` so the loader reads as a list of rules while the fiddly
tokenising lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import Node, ScalarNode

__all__ = [
    "ALLOWED_TAGS",
    "HtmlCheck",
    "HtmlIssue",
    "check_telegram_html",
    "compose",
    "is_null",
    "node_line",
    "scalar_bool",
    "scalar_int",
    "scalar_str",
]

ALLOWED_TAGS: tuple[str, ...] = (
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "code",
    "pre",
    "a",
    "tg-spoiler",
    "span",
    "blockquote",
)
_ALLOWED_LIST = ", ".join(f"<{t}>" for t in ALLOWED_TAGS)
# Telegram: "pre", "code" and links cannot contain each other (pre>code is the language syntax).
_EXCLUSIVE = frozenset({"a", "code", "pre"})

# Telegram decodes only these named entities; everything else must be numeric.
_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
# Quote-aware so that a '>' inside an attribute value does not end the tag early.
_TAG_RE = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9-]*)((?:[^<>"']|"[^"]*"|'[^']*')*)>""")
_ATTR_RE = re.compile(
    r"""\s+([A-Za-z][A-Za-z0-9_-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>=`]+)))?"""
)


@dataclass(frozen=True)
class HtmlIssue:
    offset: int  # index into the checked text, so callers can map it to a file line
    message: str


@dataclass(frozen=True)
class HtmlCheck:
    visible: str  # what the patient sees: tags removed, entities decoded
    issues: tuple[HtmlIssue, ...]


@dataclass
class _Open:
    name: str
    offset: int


def _decode_entity(m: re.Match[str]) -> str | None:
    if m.group(1):
        return _NAMED[m.group(1)]
    code = int(m.group(2)) if m.group(2) else int(m.group(3), 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _attr_issues(name: str, raw: str) -> list[str]:
    attrs: dict[str, str | None] = {}
    pos = 0
    body = raw.rstrip()
    if body.endswith("/"):
        return [f"self-closing <{name}/> is not supported by Telegram"]
    while pos < len(body):
        m = _ATTR_RE.match(body, pos)
        if m is None:
            return [f"malformed attributes in <{name}{raw}>"]
        value = next((g for g in m.group(2, 3, 4) if g is not None), None)
        attrs[m.group(1).lower()] = value
        pos = m.end()
    problems: list[str] = []
    allowed: set[str] = set()
    if name == "a":
        allowed = {"href"}
        if not (attrs.get("href") or "").strip():
            problems.append('<a> needs a non-empty href, e.g. <a href="https://example.org">')
    elif name == "span":
        allowed = {"class"}
        if attrs.get("class") != "tg-spoiler":
            problems.append('<span> is only allowed as <span class="tg-spoiler">')
    elif name == "code":
        allowed = {"class"}
        cls = attrs.get("class")
        if "class" in attrs and not (cls or "").startswith("language-"):
            problems.append('<code> only accepts class="language-…"')
    elif name == "blockquote":
        allowed = {"expandable"}
    for attr in attrs:
        if attr not in allowed:
            problems.append(f"attribute {attr!r} is not allowed on <{name}>")
    return problems


def _nesting_issue(name: str, stack: list[_Open]) -> str | None:
    names = [o.name for o in stack]
    if stack and stack[-1].name == "pre" and name == "code":
        return None
    for outer in ("code", "pre"):
        if outer in names:
            return f"<{name}> cannot be used inside <{outer}>"
    if name in _EXCLUSIVE and "a" in names:
        return f"<{name}> cannot be used inside a link"
    if name == "blockquote" and "blockquote" in names:
        return "blockquotes cannot be nested"
    return None


def check_telegram_html(text: str) -> HtmlCheck:
    """Validate `text` as Telegram's HTML parse mode would, and return its visible text.

    Deliberately strict: anything Telegram might reject (or silently show as raw markup)
    is an issue, because a failed send reaches a patient as silence.
    """
    issues: list[HtmlIssue] = []
    visible: list[str] = []
    stack: list[_Open] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "&":
            m = _ENTITY_RE.match(text, i)
            decoded = _decode_entity(m) if m else None
            if m is None or decoded is None:
                issues.append(
                    HtmlIssue(
                        i,
                        "bare '&' is not allowed; write &amp; "
                        "(only &lt; &gt; &amp; &quot; and numeric entities are understood)",
                    )
                )
                visible.append("&")
                i += 1
            else:
                visible.append(decoded)
                i = m.end()
        elif ch == ">":
            issues.append(HtmlIssue(i, "bare '>' is not allowed; write &gt;"))
            visible.append(">")
            i += 1
        elif ch == "<":
            m = _TAG_RE.match(text, i)
            if m is None:
                issues.append(HtmlIssue(i, "bare '<' is not allowed; write &lt;"))
                visible.append("<")
                i += 1
                continue
            closing, name, raw_attrs = m.group(1) == "/", m.group(2).lower(), m.group(3)
            i = m.end()
            if name not in ALLOWED_TAGS:
                shown = f"</{name}>" if closing else f"<{name}>"
                issues.append(
                    HtmlIssue(
                        m.start(),
                        f"tag {shown} is not supported by Telegram (allowed: {_ALLOWED_LIST}; "
                        "to show a literal '<' write &lt;)",
                    )
                )
                continue
            if closing:
                _close(name, raw_attrs, m.start(), stack, issues)
                continue
            for message in _attr_issues(name, raw_attrs):
                issues.append(HtmlIssue(m.start(), message))
            nesting = _nesting_issue(name, stack)
            if nesting:
                issues.append(HtmlIssue(m.start(), nesting))
            stack.append(_Open(name, m.start()))
        else:
            visible.append(ch)
            i += 1
    for still_open in stack:
        issues.append(HtmlIssue(still_open.offset, f"<{still_open.name}> is never closed"))
    issues.sort(key=lambda issue: issue.offset)
    return HtmlCheck("".join(visible), tuple(issues))


def _close(
    name: str, raw_attrs: str, offset: int, stack: list[_Open], issues: list[HtmlIssue]
) -> None:
    if raw_attrs.strip():
        issues.append(HtmlIssue(offset, f"closing tag </{name}> cannot have attributes"))
    if stack and stack[-1].name == name:
        stack.pop()
        return
    if not any(o.name == name for o in stack):
        issues.append(HtmlIssue(offset, f"</{name}> has no matching <{name}>"))
        return
    # Drop only the matching tag, so crossed tags (<b><i></b></i>) give one message and a
    # forgotten close still surfaces as "never closed".
    inner = stack[-1]
    index = max(i for i, o in enumerate(stack) if o.name == name)
    del stack[index]
    issues.append(
        HtmlIssue(
            offset,
            f"</{name}> closes <{name}> while <{inner.name}> inside it is still open; "
            "tags must be properly nested",
        )
    )


# --- typed YAML scalars -----------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
# Stateless use: these constructor methods only read node.value.
_CONSTRUCTOR = SafeConstructor()


def node_line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG + "null"


def scalar_str(node: Node) -> str | None:
    """The scalar's source text, or None when it is not a plain value.

    Using the source text (not the resolved type) keeps `label: Yes` or `value: no`
    as the words the clinician wrote instead of YAML 1.1 booleans.
    """
    if not isinstance(node, ScalarNode) or is_null(node):
        return None
    return str(node.value)


def scalar_int(node: Node) -> int | None:
    if not isinstance(node, ScalarNode) or node.tag != _TAG + "int":
        return None
    return _CONSTRUCTOR.construct_yaml_int(node)


def scalar_bool(node: Node) -> bool | None:
    if not isinstance(node, ScalarNode) or node.tag != _TAG + "bool":
        return None
    return _CONSTRUCTOR.construct_yaml_bool(node)


def compose(text: str) -> Node | None:
    # The pure-Python loader: its marks are what we report line numbers from.
    return yaml.compose(text, Loader=yaml.SafeLoader)

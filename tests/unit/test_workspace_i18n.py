"""The workspace's texts go through the catalogue: the templates' texts are extracted with the
bot's, no visible text in a template is left unmarked, and the Mini App's initData carries
the language the workspace is shown in."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot import catalogues
from bot.views import web
from bot.workspace import initdata

TEMPLATES = sorted((web.HERE / "templates").glob("*.html"))
# Outside a marked text, only these words may appear on a page: the product's name.
NOT_TRANSLATED = {"Afterglow"}
SHOWN_ATTRIBUTES = {"aria-label", "placeholder", "alt", "title", "data-label"}
# Typed as they are, in any language: an offset ("+1d@19:00") or a duration ("72h").
DURATION = re.compile(r"[+-]?\d+[dh](@\d\d:\d\d)?")


@pytest.fixture(scope="module")
def template() -> dict[object, list[str]]:
    """Each msgid of the catalogue template and the files it comes from."""
    return {m.id: [path for path, _ in m.locations] for m in catalogues._template() if m.id}


@pytest.mark.parametrize(
    ("msgid", "where"),
    [
        ("Sign in to the workspace", "signin.html"),
        ("Open alerts", "alerts.html"),
        ("Log or plan a session", "patient.html"),
        ("Copy “{name}” to edit", "templates.html"),
        ("Step {n} sends", "template_edit.html"),
        ("As written, this template has problems:", "_preview.html"),
        ("Skip to content", "base.html"),
        (
            (
                "Cancel this session and its {n} prompt? The previous session's prompts "
                "keep going.",
                "Cancel this session and its {n} prompts? The previous session's prompts "
                "keep going.",
            ),
            "patient.html",
        ),
    ],
)
def test_the_catalogue_template_holds_the_workspace_templates_texts(
    template: dict[object, list[str]], msgid: str | tuple[str, ...], where: str
) -> None:
    assert msgid in template
    assert f"bot/views/web/templates/{where}" in template[msgid]


def test_a_translator_comment_in_a_template_reaches_the_catalogue() -> None:
    found = {m.id: m.auto_comments for m in catalogues._template() if m.id}
    assert found["24h or none"] == [
        '"none" is a word typed into the field as it is: keep it in English'
    ]


class _Visible(HTMLParser):
    """The text a reader sees (text and the attributes a browser shows or reads out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.seen: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen += [value or "" for name, value in attrs if name in SHOWN_ATTRIBUTES]

    def handle_data(self, data: str) -> None:
        self.seen.append(data)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_visible_text_in_a_template_is_marked(path: Path) -> None:
    """With every Jinja tag blanked out, no words are left: each is inside `_()`/`ngettext()`
    or comes from the page's data."""
    source = path.read_text()
    blank = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "0", source, flags=re.DOTALL)
    parser = _Visible()
    parser.feed(blank)
    shown = [DURATION.sub("", text) for text in parser.seen]
    words = {w for text in shown for w in re.findall(r"[^\W\d_]+", text)}
    assert words <= NOT_TRANSLATED, f"{path.name}: unmarked {sorted(words - NOT_TRANSLATED)}"


NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
TOKEN = "123456:TEST"


def test_init_data_carries_the_users_telegram_language() -> None:
    data = initdata.for_user(7, bot_token=TOKEN, at=NOW, language_code="es-MX")
    assert initdata.user(data, bot_token=TOKEN, now=NOW) == initdata.MiniAppUser(7, "es-MX")
    plain = initdata.for_user(7, bot_token=TOKEN, at=NOW)
    assert initdata.user(plain, bot_token=TOKEN, now=NOW).language_code is None


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (initdata.for_user(7, bot_token="999:other", at=NOW, language_code="de"), "de"),
        ("user=%7B%22language_code%22%3A%22es%22%7D", "es"),  # unsigned: only a hint
        ("user=not-json", None),
        ("user=%5B1%5D", None),
        ("", None),
        ("user=" + "%5B" * 100_000, None),
    ],
)
def test_the_language_hint_for_a_refusal_never_fails(data: str, hint: str | None) -> None:
    assert initdata.language_hint(data) == hint

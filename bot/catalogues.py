"""The gettext catalogues of the bot's texts: extract, update and compile them with Babel.

    afterglow i18n extract   # bot/**.py and the workspace's templates -> bot/locale/afterglow.pot
    afterglow i18n update    # the .pot into each bot/locale/<lang>/LC_MESSAGES/afterglow.po
    afterglow i18n compile   # each .po -> .mo (shipped in the wheel; read by bot/i18n.py)

Translators edit only the `.po` files. A placeholder in {braces} must survive translation:
`check` (and the test suite) renders every entry and refuses one that lost or invented one.
"""

from __future__ import annotations

import io
import string
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from bot.domain.languages import BUILT_IN
from bot.i18n import DOMAIN, LOCALE_DIR, SOURCE_LANGUAGE

__all__ = ["LOCALE_DIR", "POT", "check", "compile_all", "extract", "po_path", "update"]

PACKAGE = Path(__file__).resolve().parent
POT = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS = {
    "_": None,
    "N_": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "NC_": ((1, "c"), 2),
}
# The workspace's Jinja templates call `_()`/`ngettext()` as the Environment in
# bot/views/web/ has them: new-style gettext, the same whitespace handling.
METHODS = [
    ("**.py", "python"),
    ("views/web/templates/**.html", "jinja2.ext.babel_extract"),
]
OPTIONS = {
    "views/web/templates/**.html": {
        "extensions": "jinja2.ext.i18n",
        "newstyle_gettext": "true",
        "trim_blocks": "true",
        "lstrip_blocks": "true",
        "silent": "false",  # a template that does not parse fails the extraction
    }
}


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _template() -> Catalog:
    catalog = Catalog(project="Afterglow", domain=DOMAIN, fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(PACKAGE), METHODS, OPTIONS, keywords=KEYWORDS, comment_tags=("i18n:",)
    ):
        catalog.add(message, None, [(f"bot/{filename}", lineno)], auto_comments=comments,
                    context=context)  # fmt: skip
    return _braces_only(catalog)


def _braces_only(catalog: Catalog) -> Catalog:
    """Texts use {braces}, never %: Babel's guess ("% of scale" read as "%o") would only
    mislead translators' tools."""
    for message in catalog:
        message.flags.discard("python-format")
    return catalog


def extract() -> Path:
    LOCALE_DIR.mkdir(parents=True, exist_ok=True)
    with POT.open("wb") as handle:
        write_po(handle, _template(), omit_header=False, sort_output=True, width=100)
    return POT


def update() -> list[Path]:
    """Merge the template into every language's catalogue (new entries empty, gone ones
    kept as obsolete for the translator), creating missing ones."""
    template = _template()
    out: list[Path] = []
    for language in BUILT_IN:
        if language == SOURCE_LANGUAGE:
            continue
        path = po_path(language)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
        else:
            catalog = Catalog(locale=language, domain=DOMAIN, project="Afterglow")
        catalog.update(template, no_fuzzy_matching=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(
                handle, _braces_only(catalog), sort_output=True, width=100, include_previous=False
            )
        out.append(path)
    return out


def _read(language: str) -> Catalog:
    with po_path(language).open("rb") as handle:
        return read_po(handle, locale=language)


def compiled(language: str) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, _read(language), use_fuzzy=False)
    return buffer.getvalue()


def compile_all() -> list[Path]:
    out: list[Path] = []
    for language in BUILT_IN:
        if language == SOURCE_LANGUAGE or not po_path(language).exists():
            continue
        path = po_path(language).with_suffix(".mo")
        path.write_bytes(compiled(language))
        out.append(path)
    return out


@dataclass(frozen=True)
class CatalogueProblem:
    language: str
    msgid: str
    problem: str


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def check() -> list[CatalogueProblem]:
    """Every entry is translated and keeps its msgid's placeholders (no more, no fewer) and
    formats; every language has a catalogue; the compiled files are current."""
    problems: list[CatalogueProblem] = []
    for language in BUILT_IN:
        if language == SOURCE_LANGUAGE:
            continue
        if not po_path(language).exists():
            problems.append(CatalogueProblem(language, "", "no catalogue"))
            continue
        for message in _read(language):
            if not message.id:
                continue
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            if not all(forms):  # shows in English until translated
                first = message.id[0] if isinstance(message.id, tuple) else message.id
                problems.append(CatalogueProblem(language, str(first), "not translated"))
                continue
            pairs = (
                zip(message.id, forms, strict=False)
                if isinstance(message.id, tuple)
                else [(message.id, message.string)]
            )
            in_page = any(where.endswith(".html") for where, _ in message.locations)
            for source, translated in pairs:
                assert isinstance(source, str) and isinstance(translated, str)
                if in_page and '"' in translated and '"' not in source:
                    # Page texts are inserted as they are, some into attributes (alt, title).
                    problems.append(
                        CatalogueProblem(language, source, 'a " in a page text: use “ ”')
                    )
                try:
                    wanted, got = _fields(source), _fields(translated)
                    translated.format(**dict.fromkeys(got, "x"))
                except (ValueError, IndexError, KeyError) as exc:
                    problems.append(CatalogueProblem(language, source, f"broken braces: {exc}"))
                    continue
                if wanted != got:
                    problems.append(
                        CatalogueProblem(
                            language, source, f"placeholders {sorted(got)} != {sorted(wanted)}"
                        )
                    )
        mo = po_path(language).with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != compiled(language):
            problems.append(CatalogueProblem(language, "", "compiled catalogue out of date"))
    return problems

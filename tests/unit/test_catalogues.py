"""The bot-text catalogues: every entry of every language renders with its placeholders,
the compiled files are current, and a broken translation is caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po

from bot import catalogues, i18n
from bot.views import controls, render


def test_every_catalogue_is_complete_compiled_and_keeps_its_placeholders() -> None:
    assert catalogues.check() == []
    template = {m.id for m in read_po(catalogues.POT.open("rb")) if m.id}
    for language in ("es", "de"):
        catalog = read_po(catalogues.po_path(language).open("rb"), locale=language)
        translated = {m.id for m in catalog if m.id and m.string and all(m.string)}
        assert template <= translated, f"{language}: untranslated {template - translated}"


def test_the_template_holds_every_marked_text() -> None:
    # Extraction is deterministic: what the code marks today is what the .pot lists.
    fresh = {m.id for m in catalogues._template() if m.id}
    shipped = {m.id for m in read_po(catalogues.POT.open("rb")) if m.id}
    assert fresh == shipped, "run: afterglow i18n extract && afterglow i18n update"


@pytest.mark.parametrize("language", ["en", "es", "de"])
def test_texts_render_in_each_language(language: str) -> None:
    with i18n.using(language):
        texts = [
            render.consent_text("Clinic <Lake>"),
            render.timezone_question("Europe/Berlin"),
            render.welcome("Europe/Berlin"),
            render.ack_choice("How did you sleep?", "Well"),
            controls.zone_changed("Europe/Berlin", 1),
            controls.zone_changed("Europe/Berlin", 5),
            controls.language_changed("de"),
            i18n._(render.PATIENT_HELP),
        ]
    assert all("{" not in t and "}" not in t for t in texts)
    assert "Clinic &lt;Lake&gt;" in texts[0]  # placeholders are filled after translation
    if language != "en":
        assert texts[0] != render.consent_text("Clinic <Lake>")


def test_plural_forms_come_from_the_catalogue() -> None:
    with i18n.using("de"):
        one, many = controls.zone_changed("X", 1), controls.zone_changed("X", 3)
    assert "1 anstehende Nachricht wurde" in one and "3 anstehende Nachrichten wurden" in many


def test_a_translation_that_loses_a_placeholder_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locale = tmp_path / "locale"
    shutil.copytree(catalogues.LOCALE_DIR, locale)
    monkeypatch.setattr(catalogues, "LOCALE_DIR", locale)
    path = catalogues.po_path("es")
    catalog = read_po(path.open("rb"), locale="es")
    message = catalog["Time zone set to <b>{zone}</b>."]
    assert message is not None
    message.string = "Zona horaria: <b>{zona}</b>."  # a translator renamed the placeholder
    with path.open("wb") as handle:
        write_po(handle, catalog)
    problems = catalogues.check()
    assert any("placeholders" in p.problem and p.language == "es" for p in problems)
    assert any("out of date" in p.problem for p in problems)  # and the .mo no longer matches


def test_a_straight_quote_in_a_page_text_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workspace texts go into attributes too (alt, placeholder): a translator's " would
    end the attribute early, so a page text may only gain typographic quotes."""
    locale = tmp_path / "locale"
    shutil.copytree(catalogues.LOCALE_DIR, locale)
    monkeypatch.setattr(catalogues, "LOCALE_DIR", locale)
    path = catalogues.po_path("de")
    catalog = read_po(path.open("rb"), locale="de")
    page = next(m for m in catalog if m.id and any(w.endswith(".html") for w, _ in m.locations))
    page.string = 'Ein "Test"'
    with path.open("wb") as handle:
        write_po(handle, catalog)
    assert any("page text" in p.problem for p in catalogues.check())


def test_a_word_takes_its_context_where_the_grammar_differs() -> None:
    """Spanish "cancelled" agrees with what was cancelled: a prompt (cancelado) or a session
    (cancelada); the session's state words carry the catalogue context "session"."""
    from bot.domain.states import DeliveryState, SessionState
    from bot.views import console, course

    with i18n.using("es"):
        assert course.session_state(SessionState.CANCELLED) == "cancelada"
        assert i18n._(console.STATE[DeliveryState.CANCELLED]) == "cancelado"
    with i18n.using("en"):
        assert course.session_state(SessionState.CANCELLED) == "cancelled"

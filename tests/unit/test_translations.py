"""Translated content: prompts/<language>/ beside the originals, checked against them."""

from __future__ import annotations

from pathlib import Path

from bot.domain.content import builtin_dir, check_content, load_content

ORIGINAL = """key: chk-rest
kind: checkin
topic: sleep
language: en
text: How rested do you feel?
scale: {min: 0, max: 4, min_label: Not at all, max_label: Fully, risk_at_or_below: 0}
"""
SPANISH = """key: chk-rest
kind: checkin
topic: sleep
language: es
text: ¿Qué tan descansada te sientes?
scale: {min: 0, max: 4, min_label: Nada, max_label: Del todo, risk_at_or_below: 0}
"""


def _folder(tmp_path: Path, translated: str, language: str = "es") -> Path:
    root = tmp_path / "clinic"
    (root / "prompts" / language).mkdir(parents=True)
    (root / "prompts" / "chk-rest.yaml").write_text(ORIGINAL)
    (root / "prompts" / language / "chk-rest.yaml").write_text(translated)
    return root


def test_a_translation_replaces_only_the_words(tmp_path: Path) -> None:
    library = load_content([_folder(tmp_path, SPANISH)])
    spanish = library.in_language("es").prompt("chk-rest")
    assert spanish.text == "¿Qué tan descansada te sientes?"
    assert spanish.scale is not None and spanish.scale.risk_at_or_below == 0
    assert library.prompt("chk-rest").text == "How rested do you feel?"
    assert library.in_language("fr") is library  # no such translation: the originals
    assert library.has_translation("chk-rest", "es")
    assert not library.has_translation("chk-rest", "de")


def test_a_translation_may_not_move_numbers_or_risk(tmp_path: Path) -> None:
    moved = SPANISH.replace("risk_at_or_below: 0", "risk_at_or_below: 1")
    library, problems = check_content([builtin_dir(), _folder(tmp_path, moved)])
    assert library is None
    [problem] = problems
    assert problem.path.name == "chk-rest.yaml" and problem.path.parent.name == "es"
    assert "scale numbers must match the original" in problem.message
    assert problem.line == 1


def test_a_translation_says_its_language_and_has_an_original(tmp_path: Path) -> None:
    wrong = SPANISH.replace("language: es", "language: de")
    _, problems = check_content([_folder(tmp_path, wrong)])
    assert any("language 'de' in a es/ folder" in p.message for p in problems)

    orphan = tmp_path / "orphan"
    (orphan / "prompts" / "es").mkdir(parents=True)
    (orphan / "prompts" / "es" / "chk-rest.yaml").write_text(SPANISH)
    _, problems = check_content([orphan])
    assert any("no original prompt 'chk-rest'" in p.message for p in problems)


def test_other_subfolders_are_still_refused(tmp_path: Path) -> None:
    root = _folder(tmp_path, SPANISH)
    (root / "prompts" / "drafts").mkdir()
    (root / "prompts" / "drafts" / "x.yaml").write_text(ORIGINAL)
    _, problems = check_content([root])
    assert any("subfolders are not loaded" in p.message for p in problems)


def test_the_built_in_content_is_translated_into_every_built_in_language() -> None:
    library = load_content()
    assert library.languages() == {"es", "de"}
    assert library.missing_translations() == {"es": [], "de": []}
    for language in ("es", "de"):
        translated = library.in_language(language)
        for key, prompt in library.prompts.items():
            assert translated.prompt(key).text != prompt.text, (language, key)

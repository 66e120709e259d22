"""Translated content: `prompts/<language>/` and `questionnaires/<language>/` beside the originals.

A translation carries the original's key and says the same thing in another language; only
its words may differ. Everything the bot computes from a file (kind, scale, choice values and
risk flags, questionnaire items, values and scoring) must match the original, so an answer
means the same whatever language it was given in, and a translation can never move a risk
rule. A prompt with no translation in the patient's language is sent in the default
language (the caller counts it), so a missing file never leaves a patient without a step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.domain.content_files import LANGUAGE_FOLDER_RE, File

if TYPE_CHECKING:
    from bot.domain.content import Prompt
    from bot.domain.questionnaires import Questionnaire

__all__ = [
    "LANGUAGE_FOLDER_RE",
    "Pending",
    "check_prompt",
    "check_questionnaire",
    "language_folders",
    "missing_translations",
]


def language_folders(folder: Path) -> list[tuple[str, Path]]:
    """The language subfolders of `folder` (`prompts/es`), in name order."""
    if not folder.is_dir():
        return []
    return [
        (path.name, path)
        for path in sorted(folder.iterdir())
        if path.is_dir() and LANGUAGE_FOLDER_RE.fullmatch(path.name)
    ]


@dataclass
class Pending:
    """A parsed translation waiting for every folder's originals to be known."""

    language: str
    file: File
    key_line: int


def _language_line(f: File, language: str, declared: str, line: int) -> bool:
    if declared != language:
        f.add(line, f"language {declared!r} in a {language}/ folder: set `language: {language}`")
        return False
    return True


def check_prompt(
    pending: Pending, translated: Prompt, originals: Mapping[str, Prompt], default: str
) -> bool:
    """Problems of one prompt translation against its original, added to its file."""
    f, line = pending.file, pending.key_line
    if not _language_line(f, pending.language, translated.language, line):
        return False
    if pending.language == default:
        f.add(line, f"{pending.language}/ is the default language: edit the original instead")
        return False
    original = originals.get(translated.key)
    if original is None:
        f.add(line, f"no original prompt {translated.key!r} for this translation")
        return False
    ok = True
    if translated.kind != original.kind:
        f.add(line, f"kind {translated.kind!r}, but the original is {original.kind!r}")
        ok = False
    if translated.topic != original.topic:
        f.add(line, f"topic {translated.topic!r}, but the original is {original.topic!r}")
        ok = False
    a, b = translated.scale, original.scale
    if (a is None) != (b is None) or (
        a is not None
        and b is not None
        and (a.min, a.max, a.risk_at_or_below) != (b.min, b.max, b.risk_at_or_below)
    ):
        f.add(line, "scale numbers must match the original's (min, max, risk_at_or_below)")
        ok = False
    ours = [(c.value, c.risk) for c in translated.choices]
    theirs = [(c.value, c.risk) for c in original.choices]
    if ours != theirs:
        f.add(line, "choices must have the original's values and risk flags, in its order")
        ok = False
    if translated.ack != original.ack or translated.brief != original.brief:
        f.add(line, "ack and brief must match the original's")
        ok = False
    return ok


def check_questionnaire(
    pending: Pending,
    translated: Questionnaire,
    originals: Mapping[str, Questionnaire],
    default: str,
) -> bool:
    f, line = pending.file, pending.key_line
    if not _language_line(f, pending.language, translated.language, line):
        return False
    if pending.language == default:
        f.add(line, f"{pending.language}/ is the default language: edit the original instead")
        return False
    original = originals.get(translated.key)
    if original is None:
        f.add(line, f"no original questionnaire {translated.key!r} for this translation")
        return False
    same_items = len(translated.items) == len(original.items) and all(
        a.values == b.values and a.reverse == b.reverse
        for a, b in zip(translated.items, original.items, strict=True)
    )
    if not same_items:
        f.add(line, "items must match the original's: as many, with the same values")
        return False
    if [(b.min, b.max) for b in translated.bands] != [(b.min, b.max) for b in original.bands]:
        f.add(line, "scoring bands must have the original's ranges")
        return False
    if (translated.item_risks, translated.total_risks) != (
        original.item_risks,
        original.total_risks,
    ):
        f.add(line, "risk rules must match the original's")
        return False
    return True


def missing_translations(
    keys: list[str], translations: Mapping[str, Mapping[str, object]]
) -> dict[str, list[str]]:
    """language -> keys with no translation in it (every language that has any)."""
    return {
        language: [k for k in keys if k not in have]
        for language, have in sorted(translations.items())
    }

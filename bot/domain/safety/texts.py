"""The wording of every crisis message (`<content dir>/safety/resources.yaml`), validated."""

from __future__ import annotations

import html
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from bot.domain.content_schema import check_telegram_html
from bot.domain.safety.files import (
    RESOURCES_FILE,
    SAFETY_SUBDIR,
    SafetyContentError,
    compose,
    iter_safety_files,
    line_of,
    mapping,
    resources_language,
    scalar,
)

__all__ = ["CRISIS_TEXT_FIELDS", "CrisisTexts", "load_crisis_texts"]

DEFAULT_CLINIC_PHONE_LINE = "You can also call your clinic: <b>{clinic_phone}</b>"

# field -> (allowed placeholders, required placeholders)
_TEXT_RULES: Mapping[str, tuple[frozenset[str], frozenset[str]]] = MappingProxyType(
    {
        "patient_resources": (frozenset({"clinic_phone_line"}), frozenset()),
        "clinic_phone_line": (frozenset({"clinic_phone"}), frozenset({"clinic_phone"})),
        "therapist_alert": (
            frozenset({"pseudonym", "local_time", "text"}),
            frozenset({"pseudonym", "text"}),
        ),
        "oncall_escalation": (
            frozenset({"pseudonym", "local_time", "text", "therapist", "minutes", "waited"}),
            frozenset({"pseudonym", "text"}),
        ),
        "oncall_unassigned": (
            frozenset({"pseudonym", "local_time", "text", "therapist"}),
            frozenset({"pseudonym", "text"}),
        ),
        "acknowledged": (frozenset({"who", "time"}), frozenset({"who"})),
        "checkin_risk_alert": (
            frozenset({"pseudonym", "local_time", "question", "answer"}),
            frozenset({"pseudonym", "answer"}),
        ),
        "questionnaire_risk_alert": (
            frozenset({"pseudonym", "local_time", "question", "answer"}),
            frozenset({"pseudonym", "question", "answer"}),
        ),
    }
)
CRISIS_TEXT_FIELDS: tuple[str, ...] = tuple(_TEXT_RULES)
# patient_resources for one country ("patient_resources_AT"): its lines, in any language.
_COUNTRY_FIELD_RE = re.compile(r"patient_resources_([A-Z]{2})")
# What a translation needs: the patient's texts. Staff texts fall back to the default's.
_TRANSLATION_REQUIRED = ("patient_resources",)
_REQUIRED_TEXTS = (
    "patient_resources",
    "therapist_alert",
    "oncall_escalation",
    "acknowledged",
    "checkin_risk_alert",
    "questionnaire_risk_alert",
    "oncall_unassigned",
)
_TELEGRAM_LIMIT = 4096
_PHONE_LINE_RE = re.compile(r"^[ \t]*\{clinic_phone_line\}[ \t]*(?:\n|\Z)", re.MULTILINE)


@dataclass(frozen=True)
class CrisisTexts:
    """Every crisis message the bot sends, as Telegram HTML (<b> and <i> only).

    Placeholders are filled by the caller with str.format and already-escaped values, e.g.
    `texts.therapist_alert.format(pseudonym=..., local_time=..., text=html.escape(reply))`.
    """

    patient_resources: str
    therapist_alert: str
    oncall_escalation: str
    acknowledged: str
    checkin_risk_alert: str
    questionnaire_risk_alert: str
    oncall_unassigned: str
    clinic_phone_line: str = DEFAULT_CLINIC_PHONE_LINE
    # language ("" for resources.yaml) -> field -> text: translations and country variants
    localized: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(k for k in self.localized if k)

    def _pick(self, language: str | None, country: str | None) -> tuple[str, str]:
        """(patient_resources, clinic_phone_line) for a language and country: the country's
        text in that language, else the language's own, else the default file's country
        text, else the default."""
        own = self.localized.get(language or "", {})
        default = self.localized.get("", {})
        field_name = f"patient_resources_{country}" if country else ""
        body = (
            own.get(field_name)
            or own.get("patient_resources")
            or (default.get(field_name) if not own else None)
            or self.patient_resources
        )
        return body, own.get("clinic_phone_line") or self.clinic_phone_line

    def staff_text(self, name: str, language: str | None) -> str:
        """A staff text (an alert, the acknowledgement note) in `language` where the content
        has it, else the default file's: staff texts need no translation to load."""
        if name not in _REQUIRED_TEXTS or name == "patient_resources":
            raise KeyError(name)
        own = self.localized.get(language or "", {}).get(name)
        return own if own is not None else str(getattr(self, name))

    def resources(
        self, clinic_phone: str | None, language: str | None = None, country: str | None = None
    ) -> str:
        """The patient's crisis resources; `clinic_phone` is the raw configured number.

        In the patient's language and for their country where the content has them (see
        `_pick`). With a phone, {clinic_phone_line} becomes that line (the number
        HTML-escaped here); without one, a line holding only the placeholder is removed.
        """
        body, phone_line = self._pick(language, country)
        phone = (clinic_phone or "").strip()
        if phone:
            line = phone_line.format(clinic_phone=html.escape(phone, quote=False))
            text = body.format(clinic_phone_line=line)
        else:
            text = _PHONE_LINE_RE.sub("", body)
            text = text.format(clinic_phone_line="")
        return re.sub(r"\n{3,}", "\n\n", text).strip()

    def every_resources(self, clinic_phone: str | None) -> list[tuple[str, str]]:
        """(label, text) of every patient crisis text, for review and the test that renders
        them all."""
        out = [("default", self.resources(clinic_phone))]
        for language, texts in sorted(self.localized.items()):
            for name in sorted(texts):
                m = _COUNTRY_FIELD_RE.fullmatch(name)
                if name == "patient_resources" or m:
                    country = m.group(1) if m else None
                    label = f"{language or 'default'}{'/' + country if country else ''}"
                    out.append((label, self.resources(clinic_phone, language, country)))
        return out


# Crisis texts must show even when nothing else works: the smallest markup, bold and italic.
_CRISIS_TAGS = re.compile(r"</?([a-zA-Z0-9-]+)")


def _check_html(text: str) -> str | None:
    """The content's Telegram-HTML check (one checker for all content), then the narrower
    rule for crisis texts: only <b> and <i>."""
    checked = check_telegram_html(text)
    if checked.issues:
        return checked.issues[0].message
    for m in _CRISIS_TAGS.finditer(text):
        if m.group(1).lower() not in ("b", "i"):
            return f"tag <{m.group(1)}> is not allowed: crisis texts use only <b> and <i>"
    return None


def _rule(name: str) -> tuple[frozenset[str], frozenset[str]] | None:
    if _COUNTRY_FIELD_RE.fullmatch(name):
        return _TEXT_RULES["patient_resources"]
    return _TEXT_RULES.get(name)


def _check_placeholders(name: str, text: str) -> str | None:
    rule = _rule(name)
    assert rule is not None
    allowed, required = rule
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return f"bad braces ({exc}); write {{{{ and }}}} for literal braces"
    used: set[str] = set()
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in allowed:
            return (
                f"unknown placeholder {{{field_name}}} (allowed: "
                + ", ".join(f"{{{a}}}" for a in sorted(allowed))
                + ")"
            )
        if spec or conversion:
            return f"placeholder {{{field_name}}} cannot have a format or conversion"
        used.add(field_name)
    missing = sorted(required - used)
    if missing:
        return "missing placeholder " + ", ".join(f"{{{m}}}" for m in missing)
    return None


def _load_resources_file(path: Path, language: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name, key_node, value_node in mapping(path, compose(path), "a mapping of crisis texts"):
        if name == "language":
            said = scalar(value_node)
            if said != (language or said):
                raise SafetyContentError(
                    path, line_of(value_node), f"language {said!r} in a file for {language!r}"
                )
            continue
        if _rule(name) is None:
            raise SafetyContentError(
                path,
                line_of(key_node),
                f"unknown field {name!r} (allowed: {', '.join(CRISIS_TEXT_FIELDS)}, "
                "patient_resources_<COUNTRY> such as patient_resources_AT)",
            )
        raw = scalar(value_node)
        if raw is None or not raw.strip():
            raise SafetyContentError(path, line_of(key_node), f"{name} must be non-empty text")
        text = raw.strip()
        problem = _check_html(text) or _check_placeholders(name, text)
        if problem is None and len(text) > _TELEGRAM_LIMIT // 2:
            problem = f"too long ({len(text)} characters; keep crisis texts short)"
        if problem:
            raise SafetyContentError(path, line_of(value_node), f"{name}: {problem}")
        texts[name] = text
    return texts


def load_crisis_texts(dirs: Sequence[Path]) -> CrisisTexts:
    """Read `<dir>/safety/resources.yaml` from each folder; later folders override keys.

    Pass the same folders as the content loader: `[builtin_dir(), *dirs_from_env()]`.
    """
    merged: dict[str, str] = {}
    localized: dict[str, dict[str, str]] = {}
    last: Path | None = None
    for path in iter_safety_files(dirs):
        language = resources_language(path)
        if language is None:
            continue
        texts = _load_resources_file(path, language)
        if language:
            missing_here = [n for n in _TRANSLATION_REQUIRED if n not in texts]
            if missing_here and language not in localized:
                raise SafetyContentError(
                    path, 1, "a translation needs at least: " + ", ".join(missing_here)
                )
            localized.setdefault(language, {}).update(texts)
            continue
        merged.update(texts)
        localized.setdefault("", {}).update(
            {k: v for k, v in texts.items() if _COUNTRY_FIELD_RE.fullmatch(k)}
        )
        last = path
    folder = Path(dirs[0]) if dirs else Path()
    where = last or folder / SAFETY_SUBDIR / RESOURCES_FILE
    missing = [name for name in _REQUIRED_TEXTS if name not in merged]
    if missing:
        raise SafetyContentError(where, 1, "missing crisis text(s): " + ", ".join(missing))
    return CrisisTexts(
        patient_resources=merged["patient_resources"],
        therapist_alert=merged["therapist_alert"],
        oncall_escalation=merged["oncall_escalation"],
        acknowledged=merged["acknowledged"],
        checkin_risk_alert=merged["checkin_risk_alert"],
        questionnaire_risk_alert=merged["questionnaire_risk_alert"],
        oncall_unassigned=merged["oncall_unassigned"],
        clinic_phone_line=merged.get("clinic_phone_line", DEFAULT_CLINIC_PHONE_LINE),
        localized=MappingProxyType({k: MappingProxyType(v) for k, v in localized.items()}),
    )

"""The content library: prompts and templates read from YAML folders, validated strictly.

Clinicians edit these files by hand and review them in pull requests, so every problem is
reported at once with file and line rather than failing on the first one. A library is only
produced when there are no problems at all: a half-valid library would mean a patient
silently missing a step.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Literal, get_args

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

import bot
from bot.domain.content_files import (
    Fields,
    File,
    Problem,
    Report,
    fields_in,
    format_problems,
    get_bool,
    get_int,
    get_str,
    is_duplicate,
    missing,
    read_root,
    suggest,
    yaml_files,
)
from bot.domain.content_schema import (
    check_telegram_html,
    node_line,
    scalar_str,
)
from bot.domain.questionnaire_content import parse_questionnaire, unknown_questionnaire
from bot.domain.questionnaires import Questionnaire
from bot.domain.schedule import (
    MAX_OCCURRENCES,
    DurationError,
    Every,
    Offset,
    OffsetError,
    StepTiming,
    parse_duration,
    parse_offset,
)
from bot.domain.translations import (
    Pending,
    check_prompt,
    check_questionnaire,
    language_folders,
    missing_translations,
)

__all__ = [
    "BUILTIN_DIR",
    "DEFAULT_LANGUAGE",
    "ENV_VAR",
    "KIND_TEXT_LIMITS",
    "TELEGRAM_TEXT_LIMIT",
    "Choice",
    "ContentError",
    "ContentLibrary",
    "Problem",
    "Prompt",
    "PromptKind",
    "ScaleSpec",
    "Template",
    "TemplateStep",
    "builtin_dir",
    "check_content",
    "dirs_from_env",
    "format_problems",
    "load_content",
    "parse_content_dirs",
]

PromptKind = Literal["education", "reflection", "checkin"]
KINDS: tuple[PromptKind, ...] = get_args(PromptKind)

ENV_VAR = "AFTERGLOW_CONTENT_DIRS"
# The language the top-level files are written in; prompts/<language>/ hold translations.
DEFAULT_LANGUAGE = "en"
TELEGRAM_TEXT_LIMIT = 4096
KIND_TEXT_LIMITS: Mapping[PromptKind, int] = MappingProxyType(
    {"education": 900, "reflection": 1000, "checkin": 1000}
)
CHOICE_LABEL_LIMIT = 24

_PACKAGE_ROOT = Path(bot.__file__).resolve().parent
BUILTIN_DIR = _PACKAGE_ROOT.parent / "prompts"
# Where an installed wheel ships the built-in content as package data.
PACKAGED_DIR = _PACKAGE_ROOT / "prompts"

_KEY_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")
_TEMPLATE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_TOPIC_RE = re.compile(r"[a-z0-9-]+")
_LANGUAGE_RE = re.compile(r"[a-z]{2}(-[A-Z]{2})?")
_CHOICE_VALUE_RE = re.compile(r"[a-z0-9_-]{1,16}")

_COMMON_FIELDS = ("key", "kind", "topic", "language", "text", "source")
_KIND_FIELDS: Mapping[PromptKind, tuple[str, ...]] = MappingProxyType(
    {"education": ("ack",), "reflection": ("brief",), "checkin": ("scale", "choices")}
)
_PROMPT_FIELDS = (*_COMMON_FIELDS, "ack", "brief", "scale", "choices")
_SCALE_FIELDS = ("min", "max", "min_label", "max_label", "risk_at_or_below")
_CHOICE_FIELDS = ("value", "label", "risk")
_TEMPLATE_FIELDS = ("name", "description", "steps")
_STEP_FIELDS = ("offset", "prompt", "questionnaire", "every", "count", "remind", "expires")
MAX_REMINDERS = 2  # SPEC: a step has at most two reminders


# --- public model ------------------------------------------------------------------------


class ContentError(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(format_problems(self.problems))


_TYPED_NUMBER = re.compile(r"(\d{1,3})(?:\s*(?:/|out of|of)\s*(\d{1,3}))?")


def _typed(text: str) -> str:
    """Case, spacing and closing punctuation do not change what a typed answer means."""
    return " ".join(text.casefold().split()).strip(" .!?,;:")


def _typed_number(said: str, scale_max: int) -> int | None:
    match = _TYPED_NUMBER.fullmatch(said)
    if match is None or not said.isascii():
        return None
    if match.group(2) is not None and int(match.group(2)) != scale_max:
        return None  # "3/5" on a 0–10 scale is not a 3
    return int(match.group(1))


@dataclass(frozen=True)
class ScaleSpec:
    min: int
    max: int
    min_label: str
    max_label: str
    risk_at_or_below: int | None = None

    def values(self) -> range:
        return range(self.min, self.max + 1)

    def is_risk(self, value: int) -> bool:
        return self.risk_at_or_below is not None and value <= self.risk_at_or_below


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    risk: bool = False


@dataclass(frozen=True)
class Prompt:
    key: str
    kind: PromptKind
    topic: str
    language: str
    text: str  # Telegram HTML, outer whitespace stripped
    ack: bool  # always False unless kind == "education"
    source: str | None
    scale: ScaleSpec | None
    choices: tuple[Choice, ...]
    path: Path
    brief: bool = False  # a reflection whose answers open the therapist's pre-session brief

    def _scale_value(self, value: str) -> int | None:
        # Strict decimal form only, so a recorded answer has exactly one spelling.
        if self.scale is None or not value.isascii() or not value.isdigit():
            return None
        number = int(value)
        if str(number) != value or number not in self.scale.values():
            return None
        return number

    def choice_label(self, value: str) -> str | None:
        """Display text for a recorded check-in answer; None if `value` is not a valid answer.

        Scale ends carry their label ("0 (Very low)"); inner scale values are the number.
        """
        if self.kind != "checkin":
            return None
        if self.scale is not None:
            number = self._scale_value(value)
            if number is None:
                return None
            if number == self.scale.min:
                return f"{number} ({self.scale.min_label})"
            if number == self.scale.max:
                return f"{number} ({self.scale.max_label})"
            return str(number)
        return next((c.label for c in self.choices if c.value == value), None)

    def typed_value(self, text: str) -> str | None:
        """The check-in answer a patient typed instead of tapping — "7", "7/10", "poorly",
        "Barely at all." — as its recorded value; None when the text is not one."""
        if self.kind != "checkin":
            return None
        said = _typed(text)
        if self.scale is not None:
            number = _typed_number(said, self.scale.max)
            if number is None:
                ends = {
                    _typed(self.scale.min_label): self.scale.min,
                    _typed(self.scale.max_label): self.scale.max,
                }
                number = ends.get(said)
            return str(number) if number is not None and number in self.scale.values() else None
        for choice in self.choices:
            if said in (_typed(choice.value), _typed(choice.label)):
                return choice.value
        return None

    def typed_out_of_range(self, text: str) -> bool:
        """A bare number this scale does not have ("12" to a 0–10 question)."""
        if self.scale is None:
            return False
        number = _typed_number(_typed(text), self.scale.max)
        return number is not None and number not in self.scale.values()

    def is_risk_answer(self, value: str) -> bool:
        if self.kind != "checkin":
            return False
        if self.scale is not None:
            number = self._scale_value(value)
            return number is not None and self.scale.is_risk(number)
        return any(c.value == value and c.risk for c in self.choices)


@dataclass(frozen=True)
class TemplateStep:
    offset: Offset
    prompt_key: str
    every: Every | None = None  # a recurring step: how it repeats (count > 1)
    count: int = 1
    remind: tuple[timedelta, ...] | None = None  # after sending; None: the kind's default
    expires: timedelta | None = None  # answer window; None: AFTERGLOW_ANSWER_WINDOW
    questionnaire: bool = False  # prompt_key names a questionnaire (`questionnaire: <key>`)

    @property
    def timing(self) -> StepTiming:
        return StepTiming(self.offset, self.every, self.count)


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    steps: tuple[TemplateStep, ...]
    path: Path


@dataclass(frozen=True)
class ContentLibrary:
    prompts: Mapping[str, Prompt]
    templates: Mapping[str, Template]
    questionnaires: Mapping[str, Questionnaire] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # language -> key -> the translated prompt / questionnaire (bot/domain/translations.py)
    translations: Mapping[str, Mapping[str, Prompt]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    questionnaire_translations: Mapping[str, Mapping[str, Questionnaire]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    _in: dict[str, ContentLibrary] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def languages(self) -> frozenset[str]:
        """The languages some content is translated into (the originals' not counted)."""
        return frozenset(self.translations) | frozenset(self.questionnaire_translations)

    def has_translation(self, key: str, language: str) -> bool:
        return key in self.translations.get(language, {}) or key in (
            self.questionnaire_translations.get(language, {})
        )

    def in_language(self, language: str) -> ContentLibrary:
        """The same library with every prompt and questionnaire translated into `language`
        where a translation exists; the rest stay as written (the default language)."""
        if language not in self.languages():
            return self
        cached = self._in.get(language)
        if cached is None:
            cached = ContentLibrary(
                MappingProxyType({**self.prompts, **self.translations.get(language, {})}),
                self.templates,
                MappingProxyType(
                    {**self.questionnaires, **self.questionnaire_translations.get(language, {})}
                ),
            )
            self._in[language] = cached
        return cached

    def missing_translations(self) -> dict[str, list[str]]:
        """language -> prompt and questionnaire keys not translated into it."""
        keys = sorted(self.prompts) + sorted(self.questionnaires)
        have = {
            language: {
                **self.translations.get(language, {}),
                **self.questionnaire_translations.get(language, {}),
            }
            for language in self.languages()
        }
        return missing_translations(keys, have)

    def prompt(self, key: str) -> Prompt:
        try:
            return self.prompts[key]
        except KeyError:
            raise KeyError(f"unknown prompt key {key!r}{suggest(key, self.prompts)}") from None

    def kind_of(self, step: TemplateStep) -> str:
        """What a step sends: its prompt's kind, or "questionnaire"."""
        return "questionnaire" if step.questionnaire else self.prompt(step.prompt_key).kind

    def questionnaire(self, key: str) -> Questionnaire:
        try:
            return self.questionnaires[key]
        except KeyError:
            raise KeyError(
                f"unknown questionnaire {key!r}{suggest(key, self.questionnaires)}"
            ) from None

    def template(self, name: str) -> Template:
        try:
            return self.templates[name]
        except KeyError:
            raise KeyError(f"unknown template {name!r}{suggest(name, self.templates)}") from None


# --- folders -----------------------------------------------------------------------------


def builtin_dir() -> Path:
    """The built-in content folder: package data when installed, else the repo's `prompts/`."""
    for candidate in (PACKAGED_DIR, BUILTIN_DIR):
        if (candidate / "prompts").is_dir() or (candidate / "templates").is_dir():
            return candidate
    return BUILTIN_DIR


def parse_content_dirs(value: str) -> list[Path]:
    return [Path(part) for part in value.split(":") if part.strip()]


def dirs_from_env(environ: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if environ is None else environ
    return parse_content_dirs(env.get(ENV_VAR, ""))


def load_content(
    extra_dirs: Sequence[Path] = (),
    *,
    include_builtin: bool = True,
    default_language: str = DEFAULT_LANGUAGE,
) -> ContentLibrary:
    """Load built-ins then `extra_dirs` in order; raise ContentError listing every problem.

    Does not read AFTERGLOW_CONTENT_DIRS itself (pass `dirs_from_env()`), so callers and tests
    control exactly which folders are loaded.
    """
    dirs = [builtin_dir(), *extra_dirs] if include_builtin else list(extra_dirs)
    library, problems = check_content(dirs, default_language=default_language)
    if problems or library is None:
        raise ContentError(problems)
    return library


def check_content(
    dirs: Sequence[Path], *, default_language: str = DEFAULT_LANGUAGE
) -> tuple[ContentLibrary | None, list[Problem]]:
    """Validate `dirs` as one library, later folders overriding earlier ones by key/name.

    Returns (library, []) when clean, otherwise (None, problems). Never raises for content
    problems; a missing folder is a problem too. Translations (`prompts/<language>/`) are
    checked against the merged originals, so a clinic may translate a built-in prompt.
    """
    pending_prompts: list[tuple[Pending, Prompt]] = []
    pending_questionnaires: list[tuple[Pending, Questionnaire]] = []
    report = Report()
    prompts: dict[str, Prompt] = {}
    known_keys: set[str] = set()
    parsed_templates: list[_ParsedTemplate] = []
    questionnaires: dict[str, Questionnaire] = {}
    questionnaire_keys: set[str] = set()
    visited: set[Path] = set()
    for raw_dir in dirs:
        folder = Path(raw_dir)
        # The same folder listed twice (built-ins also in AFTERGLOW_CONTENT_DIRS) would only
        # repeat every problem; it cannot change the merged result.
        if folder.resolve() in visited:
            continue
        visited.add(folder.resolve())
        if not _check_folder(folder, report):
            continue
        _read_translations(folder, report, pending_prompts, pending_questionnaires)
        seen: dict[str, tuple[Path, int]] = {}
        for path in yaml_files(folder / "prompts", report, translations=True):
            f = report.file(path)
            root = read_root(f)
            if root is None:
                known_keys.add(path.stem)
                continue
            prompt, ref_key, key_line = _parse_prompt(f, root)
            known_keys.add(ref_key or path.stem)
            if ref_key is not None and is_duplicate(f, "key", ref_key, key_line, seen):
                continue
            if prompt is not None:
                prompts[prompt.key] = prompt
        seen = {}
        for path in yaml_files(folder / "questionnaires", report, translations=True):
            f = report.file(path)
            root = read_root(f)
            if root is None:
                questionnaire_keys.add(path.stem)
                continue
            questionnaire, q_key, q_line = parse_questionnaire(f, root)
            questionnaire_keys.add(q_key or path.stem)
            if q_key is not None and is_duplicate(f, "questionnaire", q_key, q_line, seen):
                continue
            if questionnaire is not None:
                questionnaires[questionnaire.key] = questionnaire
        seen = {}
        for path in yaml_files(folder / "templates", report):
            f = report.file(path)
            root = read_root(f)
            if root is None:
                continue
            parsed = _parse_template(f, root)
            if parsed.name is not None and is_duplicate(
                f, "template name", parsed.name, parsed.name_line, seen
            ):
                continue
            parsed_templates.append(parsed)

    templates: dict[str, Template] = {}
    for parsed in parsed_templates:
        template = _resolve_template(parsed, known_keys, questionnaire_keys)
        if template is not None:
            templates[template.name] = template

    translated: dict[str, dict[str, Prompt]] = {}
    for pending, prompt in pending_prompts:
        if check_prompt(pending, prompt, prompts, default_language):
            translated.setdefault(pending.language, {})[prompt.key] = prompt
    translated_q: dict[str, dict[str, Questionnaire]] = {}
    for pending, questionnaire in pending_questionnaires:
        if check_questionnaire(pending, questionnaire, questionnaires, default_language):
            translated_q.setdefault(pending.language, {})[questionnaire.key] = questionnaire

    problems = report.problems()
    if problems:
        return None, problems
    library = ContentLibrary(
        MappingProxyType(prompts),
        MappingProxyType(templates),
        MappingProxyType(questionnaires),
        MappingProxyType({k: MappingProxyType(v) for k, v in translated.items()}),
        MappingProxyType({k: MappingProxyType(v) for k, v in translated_q.items()}),
    )
    return library, []


def _read_translations(
    folder: Path,
    report: Report,
    prompts: list[tuple[Pending, Prompt]],
    questionnaires: list[tuple[Pending, Questionnaire]],
) -> None:
    """Parse `prompts/<language>/*.yaml` and `questionnaires/<language>/*.yaml` of one
    folder; a later folder's translation of the same key replaces an earlier one."""
    for language, sub in language_folders(folder / "prompts"):
        seen: dict[str, tuple[Path, int]] = {}
        for path in yaml_files(sub, report):
            f = report.file(path)
            root = read_root(f)
            if root is None:
                continue
            prompt, key, line = _parse_prompt(f, root)
            if key is not None and is_duplicate(f, "key", key, line, seen):
                continue
            if prompt is not None:
                prompts.append((Pending(language, f, line), prompt))
    for language, sub in language_folders(folder / "questionnaires"):
        seen = {}
        for path in yaml_files(sub, report):
            f = report.file(path)
            root = read_root(f)
            if root is None:
                continue
            questionnaire, key, line = parse_questionnaire(f, root)
            if key is not None and is_duplicate(f, "questionnaire", key, line, seen):
                continue
            if questionnaire is not None:
                questionnaires.append((Pending(language, f, line), questionnaire))


def parse_template_text(
    name: str, text: str, library: ContentLibrary
) -> tuple[Template | None, list[Problem]]:
    """A template written outside the content folders (a therapist's own, in the workspace),
    checked by the same rules as `templates/<name>.yaml` against `library`'s prompts and
    questionnaires. Problems name `templates/<name>.yaml` and its lines, as
    `afterglow content check` would."""
    report = Report()
    f = report.file(Path("templates") / f"{name}.yaml")
    root = read_root(f, text)
    template: Template | None = None
    if root is not None:
        parsed = _parse_template(f, root)
        template = _resolve_template(parsed, set(library.prompts), set(library.questionnaires))
    problems = report.problems()
    return (None if problems else template), problems


def _check_folder(folder: Path, report: Report) -> bool:
    if not folder.exists():
        report.file(folder).add(1, "content folder does not exist")
        return False
    if not folder.is_dir():
        report.file(folder).add(1, "content folder is not a directory")
        return False
    if not any(
        (folder / sub).is_dir() for sub in ("prompts", "templates", "questionnaires", "safety")
    ):
        report.file(folder).add(
            1,
            "no prompts/, templates/, questionnaires/ or safety/ subfolder; a content folder "
            "holds prompts/*.yaml, templates/*.yaml, questionnaires/*.yaml and safety/*.yaml",
        )
        return False
    return True


def _check_pattern(f: File, fields: Fields, name: str, value: str | None, rule: str) -> None:
    pattern = {
        "key": _KEY_RE,
        "name": _TEMPLATE_NAME_RE,
        "topic": _TOPIC_RE,
        "language": _LANGUAGE_RE,
    }[name]
    if value is not None and not pattern.fullmatch(value):
        f.add(node_line(fields[name][1]), f"bad {name} {value!r}: {rule}")


# --- prompts -----------------------------------------------------------------------------


def _parse_prompt(f: File, root: MappingNode) -> tuple[Prompt | None, str | None, int]:
    """Returns (prompt if clean, key if readable, line of the key)."""
    before = len(f.problems)
    fields = fields_in(f, root, _PROMPT_FIELDS, "prompt")
    key = get_str(f, fields, "key", 1, required=True)
    key_line = node_line(fields["key"][1]) if "key" in fields else 1
    _check_pattern(
        f,
        fields,
        "key",
        key,
        "use 2-64 lowercase letters, digits and '-', starting with a letter or digit",
    )
    if key is not None and key != f.path.stem:
        f.add(key_line, f"key {key!r} does not match the file name {f.path.name!r}")

    kind_text = get_str(f, fields, "kind", 1, required=True)
    kind = next((k for k in KINDS if k == kind_text), None)
    if kind_text is not None and kind is None:
        f.add(
            node_line(fields["kind"][1]),
            f"bad kind {kind_text!r}: must be one of {', '.join(KINDS)}",
        )
    topic = get_str(f, fields, "topic", 1, required=True)
    _check_pattern(f, fields, "topic", topic, "use lowercase letters, digits and '-'")
    language = get_str(f, fields, "language", 1) or "en"
    _check_pattern(f, fields, "language", language, "use a code like 'en' or 'pt-BR'")
    source = get_str(f, fields, "source", 1)
    text = _check_text(f, fields, kind)

    ack = brief = False
    scale: ScaleSpec | None = None
    choices: tuple[Choice, ...] = ()
    if kind is not None:
        allowed = _KIND_FIELDS[kind]
        for name, (key_node, _) in fields.items():
            if name not in _COMMON_FIELDS and name not in allowed:
                f.add(
                    node_line(key_node),
                    f"field {name!r} is not allowed for kind {kind!r}"
                    + (f" (allowed extras: {', '.join(allowed)})" if allowed else ""),
                )
        if kind == "education":
            ack = get_bool(f, fields, "ack", True)
        elif kind == "reflection":
            brief = get_bool(f, fields, "brief", False)
        elif kind == "checkin":
            scale, choices = _parse_answers(f, fields)

    if len(f.problems) > before or key is None or kind is None or topic is None or text is None:
        return None, key if key is not None and _KEY_RE.fullmatch(key) else None, key_line
    prompt = Prompt(key, kind, topic, language, text, ack, source, scale, choices, f.path, brief)
    return prompt, key, key_line


def _check_text(f: File, fields: Fields, kind: PromptKind | None) -> str | None:
    raw = get_str(f, fields, "text", 1, required=True)
    if raw is None:
        return None
    node = fields["text"][1]
    assert isinstance(node, ScalarNode)  # scalar_str only accepts scalars
    result = check_telegram_html(raw)
    for issue in result.issues:
        f.add(_text_line(node, issue.offset), f"text: {issue.message}")
    visible = result.visible.strip()
    if not visible:
        f.add(node_line(node), "field 'text' is empty")
        return None
    count = len(visible)
    if count > TELEGRAM_TEXT_LIMIT:
        f.add(
            node_line(node),
            f"text is {count} visible characters; Telegram allows at most {TELEGRAM_TEXT_LIMIT}",
        )
    elif kind is not None and count > KIND_TEXT_LIMITS[kind]:
        f.add(
            node_line(node),
            f"text is {count} visible characters; {kind} prompts may have at most "
            f"{KIND_TEXT_LIMITS[kind]} (tags and entities not counted)",
        )
    return raw.strip()


def _text_line(node: ScalarNode, offset: int) -> int:
    # Only a literal block keeps source line breaks 1:1; other styles fold or escape them,
    # so there the best honest answer is the line where the value starts.
    if node.style == "|":
        return node_line(node) + 1 + str(node.value).count("\n", 0, offset)
    return node_line(node)


def _parse_answers(f: File, fields: Fields) -> tuple[ScaleSpec | None, tuple[Choice, ...]]:
    has_scale, has_choices = "scale" in fields, "choices" in fields
    if has_scale and has_choices:
        f.add(
            node_line(fields["choices"][0]), "a checkin has either 'scale' or 'choices', not both"
        )
        return None, ()
    if not has_scale and not has_choices:
        f.add(
            node_line(fields["kind"][1]),
            "a checkin needs 'scale' (min/max with labels) or 'choices' (2-8 buttons)",
        )
        return None, ()
    if has_scale:
        return _parse_scale(f, *fields["scale"]), ()
    return None, _parse_choices(f, *fields["choices"])


def _parse_scale(f: File, key_node: Node, node: Node) -> ScaleSpec | None:
    line = node_line(key_node)
    if not isinstance(node, MappingNode):
        f.add(line, "'scale' must be a mapping with min, max, min_label and max_label")
        return None
    before = len(f.problems)
    fields = fields_in(f, node, _SCALE_FIELDS, "scale")
    low = get_int(f, fields, "min", line, required=True)
    high = get_int(f, fields, "max", line, required=True)
    if low is not None and high is not None and not 0 <= low < high <= 10:
        f.add(line, f"scale must satisfy 0 <= min < max <= 10 (got min {low}, max {high})")
    labels: list[str] = []
    for name in ("min_label", "max_label"):
        label = get_str(f, fields, name, line, required=True)
        if label is not None and not label.strip():
            f.add(node_line(fields[name][1]), f"field {name!r} is empty")
        labels.append((label or "").strip())
    risk = get_int(f, fields, "risk_at_or_below", line)
    if risk is not None and low is not None and high is not None and not low <= risk <= high:
        f.add(
            node_line(fields["risk_at_or_below"][1]),
            f"risk_at_or_below must be within the scale ({low}..{high}), got {risk}",
        )
    if len(f.problems) > before or low is None or high is None:
        return None
    return ScaleSpec(low, high, labels[0], labels[1], risk)


def _parse_choices(f: File, key_node: Node, node: Node) -> tuple[Choice, ...]:
    line = node_line(key_node)
    if not isinstance(node, SequenceNode):
        f.add(line, "'choices' must be a list of {value, label} items")
        return ()
    if not 2 <= len(node.value) <= 8:
        f.add(line, f"'choices' needs 2 to 8 items, got {len(node.value)}")
    choices: list[Choice] = []
    seen: dict[str, int] = {}
    for item in node.value:
        item_line = node_line(item)
        if not isinstance(item, MappingNode):
            f.add(item_line, "each choice must be a mapping with value and label")
            continue
        fields = fields_in(f, item, _CHOICE_FIELDS, "choice")
        value = get_str(f, fields, "value", item_line, required=True)
        label = get_str(f, fields, "label", item_line, required=True)
        risk = get_bool(f, fields, "risk", False)
        if value is not None:
            value_line = node_line(fields["value"][1])
            if not _CHOICE_VALUE_RE.fullmatch(value):
                f.add(
                    value_line,
                    f"bad choice value {value!r}: use 1-16 lowercase letters, digits, '_' or '-'",
                )
            elif value in seen:
                f.add(value_line, f"choice value {value!r} repeats line {seen[value]}")
            seen.setdefault(value, value_line)
        if label is not None:
            label_line = node_line(fields["label"][1])
            if not label.strip():
                f.add(label_line, "choice label is empty")
            elif len(label.strip()) > CHOICE_LABEL_LIMIT:
                f.add(
                    label_line,
                    f"choice label {label!r} is {len(label.strip())} characters; "
                    f"buttons allow at most {CHOICE_LABEL_LIMIT}",
                )
        if value is not None and label is not None:
            choices.append(Choice(value, label.strip(), risk))
    return tuple(choices)


# --- templates ---------------------------------------------------------------------------


@dataclass
class _StepDraft:
    """A template step as read from its file; `step` is None where it was unusable."""

    step: TemplateStep | None
    key: str | None
    key_line: int
    questionnaire: bool = False


@dataclass
class _ParsedTemplate:
    file: File
    name: str | None
    name_line: int
    description: str
    steps: list[_StepDraft]
    clean: bool


def _parse_template(f: File, root: MappingNode) -> _ParsedTemplate:
    before = len(f.problems)
    fields = fields_in(f, root, _TEMPLATE_FIELDS, "template")
    name = get_str(f, fields, "name", 1, required=True)
    name_line = node_line(fields["name"][1]) if "name" in fields else 1
    _check_pattern(
        f,
        fields,
        "name",
        name,
        "use 1-32 lowercase letters, digits and '-', starting with a letter or digit",
    )
    if name is not None and name != f.path.stem:
        f.add(name_line, f"name {name!r} does not match the file name {f.path.name!r}")
    if name is not None and not _TEMPLATE_NAME_RE.fullmatch(name):
        name = None
    description = get_str(f, fields, "description", 1) or ""

    steps: list[_StepDraft] = []
    steps_node = missing(f, fields, "steps", 1, True)
    if steps_node is not None:
        steps_line = node_line(fields["steps"][0])
        if not isinstance(steps_node, SequenceNode):
            f.add(steps_line, "'steps' must be a list of {offset, prompt} items")
        elif not steps_node.value:
            f.add(steps_line, "'steps' is empty; a template needs at least one step")
        else:
            steps = [_parse_step(f, item) for item in steps_node.value]
    clean = len(f.problems) == before
    return _ParsedTemplate(f, name, name_line, description, steps, clean)


def _parse_step(f: File, item: Node) -> _StepDraft:
    line = node_line(item)
    if not isinstance(item, MappingNode):
        f.add(line, "each step must be a mapping with offset and prompt")
        return _StepDraft(None, None, line)
    before = len(f.problems)
    fields = fields_in(f, item, _STEP_FIELDS, "step")
    offset_text = get_str(f, fields, "offset", line, required=True)
    offset: Offset | None = None
    if offset_text is not None:
        try:
            offset = parse_offset(offset_text, allow_before=True)
        except OffsetError as exc:
            f.add(node_line(fields["offset"][1]), str(exc))
    asks = "questionnaire" if "questionnaire" in fields else "prompt"
    if "questionnaire" in fields and "prompt" in fields:
        f.add(line, "a step names a prompt or a questionnaire, not both")
    key = get_str(f, fields, asks, line, required=True)
    key_line = node_line(fields[asks][1]) if asks in fields else line
    every, count = _parse_repeat(f, fields, line, offset)
    remind = _parse_remind(f, fields)
    expires = _duration_field(f, fields, "expires")
    questionnaire = asks == "questionnaire"
    if offset is None or key is None or len(f.problems) > before:
        return _StepDraft(None, key, key_line, questionnaire)
    step = TemplateStep(offset, key, every, count, remind, expires, questionnaire)
    return _StepDraft(step, key, key_line, questionnaire)


def _duration_field(f: File, fields: Fields, name: str) -> timedelta | None:
    text = get_str(f, fields, name, 1)
    if text is None:
        return None
    try:
        return parse_duration(text)
    except DurationError as exc:
        f.add(node_line(fields[name][1]), f"{name}: {exc}")
        return None


def _parse_repeat(
    f: File, fields: Fields, line: int, offset: Offset | None
) -> tuple[Every | None, int]:
    """`every` and `count` come together: a step that repeats says how often and how many."""
    every: Every | None = None
    if "every" in fields:
        text = get_str(f, fields, "every", line)
        if text is not None:
            try:
                every = Every.parse(text)
            except DurationError as exc:
                f.add(node_line(fields["every"][1]), f"every: {exc}")
    count = get_int(f, fields, "count", line)
    count_line = node_line(fields["count"][1]) if "count" in fields else line
    if count is not None and not 1 <= count <= MAX_OCCURRENCES:
        f.add(count_line, f"count {count} is out of range: use 1 to {MAX_OCCURRENCES}")
        return None, 1
    if "every" in fields and "count" not in fields:
        f.add(node_line(fields["every"][0]), "a step with 'every' needs a 'count' (2 or more)")
    if "count" in fields and count is not None and count > 1 and "every" not in fields:
        f.add(count_line, "a step with 'count' above 1 needs 'every' (e.g. every: 1d)")
    if every is not None and count == 1:
        f.add(count_line, "count 1 with 'every' repeats nothing: use 2 or more, or drop every")
    if offset is not None and offset.before and (every is not None or (count or 1) > 1):
        f.add(
            node_line(fields["every"][0] if "every" in fields else fields["count"][0]),
            "a preparation step (negative offset) happens once; it cannot repeat",
        )
    if every is None or count is None or count < 2:
        return None, 1
    return every, count


def _parse_remind(f: File, fields: Fields) -> tuple[timedelta, ...] | None:
    if "remind" not in fields:
        return None
    node = fields["remind"][1]
    if not isinstance(node, SequenceNode):
        f.add(node_line(node), "remind must be a list of durations, e.g. [24h] or []")
        return None
    if len(node.value) > MAX_REMINDERS:
        f.add(node_line(node), f"remind has {len(node.value)} entries; at most {MAX_REMINDERS}")
        return None
    out: list[timedelta] = []
    for entry in node.value:
        text = scalar_str(entry)
        try:
            if text is None:
                raise DurationError("each reminder must be a duration like 24h")
            out.append(parse_duration(text))
        except DurationError as exc:
            f.add(node_line(entry), f"remind: {exc}")
    return tuple(out)


def _resolve_template(
    parsed: _ParsedTemplate, known_keys: set[str], questionnaire_keys: set[str]
) -> Template | None:
    f = parsed.file
    before = len(f.problems)
    steps: list[TemplateStep] = []
    for draft in parsed.steps:
        if draft.questionnaire:
            if draft.key is not None and draft.key not in questionnaire_keys:
                f.add(draft.key_line, unknown_questionnaire(draft.key, questionnaire_keys))
        elif draft.key is not None and draft.key not in known_keys:
            f.add(
                draft.key_line,
                f"step names prompt {draft.key!r}, which no content folder defines"
                f"{suggest(draft.key, known_keys)}",
            )
        if draft.step is not None:
            steps.append(draft.step)
    if not parsed.clean or len(f.problems) > before or parsed.name is None:
        return None
    return Template(parsed.name, parsed.description, tuple(steps), f.path)


_TAG = re.compile(r"<[^>]+>")


def plain_text(html_text: str) -> str:
    """Telegram HTML as plain text (for quoting a question elsewhere, exports)."""
    return html.unescape(_TAG.sub("", html_text)).strip()

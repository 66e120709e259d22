"""`prompts/questionnaires/<key>.yaml`: parsing and checking a questionnaire, with file:line
problems like every other content file.

A file whose key has an instrument profile (`phq9`, `gad7`) is the clinic's copy of the
official wording: it must match the profile (item count, option values); its scoring, bands
and risk rules come from the profile, and a file that states different ones is refused rather
than silently overridden.
"""

from __future__ import annotations

import re

from yaml.nodes import MappingNode, Node, SequenceNode

from bot.domain.content_files import (
    Fields,
    File,
    fields_in,
    get_bool,
    get_int,
    get_str,
    missing,
    suggest,
)
from bot.domain.content_schema import node_line
from bot.domain.questionnaires import (
    PROFILES,
    Band,
    Item,
    ItemRisk,
    Option,
    Profile,
    Questionnaire,
    TotalRisk,
)

FIELDS = (
    "key",
    "title",
    "language",
    "intro",
    "recall",
    "options",
    "items",
    "scoring",
    "risk",
    "source",
    "licence",
)
_ITEM_FIELDS = ("text", "options", "reverse")
_OPTION_FIELDS = ("label", "value")
_SCORING_FIELDS = ("method", "bands")
_BAND_FIELDS = ("min", "max", "label")
_KEY_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")
_LANGUAGE_RE = re.compile(r"[a-z]{2}(-[A-Z]{2})?")
MAX_ITEMS = 30
ITEM_TEXT_LIMIT = 300  # one message, read on a phone with the buttons under it
OPTION_LABEL_LIMIT = 40  # a button: Telegram cuts longer labels
TITLE_LIMIT = 80


def parse_questionnaire(f: File, root: MappingNode) -> tuple[Questionnaire | None, str | None, int]:
    """Returns (questionnaire if clean, key if readable, line of the key)."""
    before = len(f.problems)
    fields = fields_in(f, root, FIELDS, "questionnaire")
    key = get_str(f, fields, "key", 1, required=True)
    key_line = node_line(fields["key"][1]) if "key" in fields else 1
    if key is not None and not _KEY_RE.fullmatch(key):
        f.add(key_line, f"bad key {key!r}: use 2-64 lowercase letters, digits and '-'")
        key = None
    if key is not None and key != f.path.stem:
        f.add(key_line, f"key {key!r} does not match the file name {f.path.name!r}")
    title = _text(f, fields, "title", TITLE_LIMIT, required=True)
    language = get_str(f, fields, "language", 1, required=True)
    if language is not None and not _LANGUAGE_RE.fullmatch(language):
        f.add(node_line(fields["language"][1]), f"bad language {language!r}: use e.g. en or pt-BR")
    intro = _text(f, fields, "intro", 1000) or ""
    recall = _text(f, fields, "recall", 120) or ""
    shared = _options(f, fields["options"][1]) if "options" in fields else None
    items = _items(f, fields, shared)
    profile = PROFILES.get(key or "")
    if profile is not None:
        bands, item_risks, total_risks = _against_profile(f, fields, profile, items)
    else:
        bands = _scoring(f, fields, items)
        item_risks, total_risks = _risks(f, fields, items)
    if len(f.problems) > before or key is None or title is None or language is None:
        return None, key, key_line
    return (
        Questionnaire(
            key=key,
            title=title,
            language=language,
            items=tuple(items),
            bands=tuple(bands),
            item_risks=tuple(item_risks),
            total_risks=tuple(total_risks),
            intro=intro,
            recall=recall,
            source=_text(f, fields, "source", 300) or "",
            licence=_text(f, fields, "licence", 300) or "",
            path=f.path,
        ),
        key,
        key_line,
    )


def _text(f: File, fields: Fields, name: str, limit: int, *, required: bool = False) -> str | None:
    value = get_str(f, fields, name, 1, required=required)
    if value is None:
        return None
    value = value.strip()
    if not value:
        f.add(node_line(fields[name][1]), f"field {name!r} is empty")
        return None
    if len(value) > limit:
        f.add(node_line(fields[name][1]), f"{name} is {len(value)} characters; at most {limit}")
    return value


def _options(f: File, node: Node) -> tuple[Option, ...] | None:
    line = node_line(node)
    if not isinstance(node, SequenceNode) or len(node.value) < 2:
        f.add(line, "options must be a list of at least two {label, value} entries")
        return None
    out: list[Option] = []
    for entry in node.value:
        if not isinstance(entry, MappingNode):
            f.add(node_line(entry), "each option is a mapping with label and value")
            continue
        fields = fields_in(f, entry, _OPTION_FIELDS, "option")
        label = get_str(f, fields, "label", node_line(entry), required=True)
        value = get_int(f, fields, "value", node_line(entry), required=True)
        if label is not None and len(label) > OPTION_LABEL_LIMIT:
            f.add(
                node_line(fields["label"][1]),
                f"option label is {len(label)} characters; at most {OPTION_LABEL_LIMIT} "
                "(it is a button)",
            )
        if value is not None and any(o.value == value for o in out):
            f.add(node_line(fields["value"][1]), f"option value {value} appears twice")
            continue
        if label is not None and value is not None:
            out.append(Option(label.strip(), value))
    return tuple(out) if len(out) >= 2 else None


def _items(f: File, fields: Fields, shared: tuple[Option, ...] | None) -> list[Item]:
    node = missing(f, fields, "items", 1, True)
    if node is None:
        return []
    if not isinstance(node, SequenceNode) or not node.value:
        f.add(node_line(node), "items must be a non-empty list of {text} entries")
        return []
    if len(node.value) > MAX_ITEMS:
        f.add(node_line(node), f"{len(node.value)} items; at most {MAX_ITEMS}")
    items: list[Item] = []
    for number, entry in enumerate(node.value, start=1):
        line = node_line(entry)
        if not isinstance(entry, MappingNode):
            f.add(line, f"item {number} must be a mapping with text")
            continue
        item_fields = fields_in(f, entry, _ITEM_FIELDS, "item")
        text = _text(f, item_fields, "text", ITEM_TEXT_LIMIT, required=True)
        own = _options(f, item_fields["options"][1]) if "options" in item_fields else None
        options = own or shared
        if options is None and "options" not in item_fields and "options" not in fields:
            f.add(line, f"item {number} has no options, and the questionnaire has none either")
        reverse = get_bool(f, item_fields, "reverse", False)
        if text is not None and options is not None:
            items.append(Item(text, options, reverse))
    return items


def _scoring(f: File, fields: Fields, items: list[Item]) -> list[Band]:
    node = missing(f, fields, "scoring", 1, True)
    if node is None or not isinstance(node, MappingNode):
        if node is not None:
            f.add(node_line(node), "scoring must be a mapping: {method: sum, bands: [...]}")
        return []
    scoring = fields_in(f, node, _SCORING_FIELDS, "scoring")
    method = get_str(f, scoring, "method", node_line(node), required=True)
    if method is not None and method != "sum":
        f.add(node_line(scoring["method"][1]), f"scoring method {method!r}: only sum is known")
    bands_node = missing(f, scoring, "bands", node_line(node), True)
    if bands_node is None:
        return []
    bands = _bands(f, bands_node)
    if items and bands:
        low = sum(min(item.values) for item in items)
        high = sum(max(item.values) for item in items)
        _check_cover(f, bands_node, bands, low, high)
    return bands


def _bands(f: File, node: Node) -> list[Band]:
    if not isinstance(node, SequenceNode) or not node.value:
        f.add(node_line(node), "bands must be a non-empty list of {min, max, label}")
        return []
    out: list[Band] = []
    for entry in node.value:
        if not isinstance(entry, MappingNode):
            f.add(node_line(entry), "each band is a mapping with min, max and label")
            continue
        fields = fields_in(f, entry, _BAND_FIELDS, "band")
        low = get_int(f, fields, "min", node_line(entry), required=True)
        high = get_int(f, fields, "max", node_line(entry), required=True)
        label = get_str(f, fields, "label", node_line(entry), required=True)
        if low is not None and high is not None and low > high:
            f.add(node_line(entry), f"band {low}-{high}: min is above max")
        elif low is not None and high is not None and label is not None:
            out.append(Band(low, high, label.strip()))
    return out


def _check_cover(f: File, node: Node, bands: list[Band], low: int, high: int) -> None:
    """Bands, in order, cover every possible total exactly once."""
    expected = low
    for band in bands:
        if band.min != expected:
            f.add(
                node_line(node),
                f"bands must follow each other from {low} to {high} without gaps or overlaps; "
                f"expected a band starting at {expected}, found {band.min}-{band.max}",
            )
            return
        expected = band.max + 1
    if expected != high + 1:
        f.add(node_line(node), f"the bands end at {expected - 1}; the highest total is {high}")


def _risks(f: File, fields: Fields, items: list[Item]) -> tuple[list[ItemRisk], list[TotalRisk]]:
    node = fields["risk"][1] if "risk" in fields else None
    if node is None:
        return [], []
    if not isinstance(node, SequenceNode):
        f.add(node_line(node), "risk must be a list of {item, at_or_above} or {total_at_or_above}")
        return [], []
    item_risks: list[ItemRisk] = []
    total_risks: list[TotalRisk] = []
    high = sum(max(item.values) for item in items) if items else None
    for entry in node.value:
        line = node_line(entry)
        if not isinstance(entry, MappingNode):
            f.add(line, "each risk rule is a mapping")
            continue
        rule = fields_in(f, entry, ("item", "at_or_above", "total_at_or_above"), "risk rule")
        if "total_at_or_above" in rule:
            total = get_int(f, rule, "total_at_or_above", line)
            if total is not None and high is not None and not 0 < total <= high:
                f.add(line, f"total_at_or_above {total} is outside the totals 1-{high}")
            elif total is not None:
                total_risks.append(TotalRisk(total))
            continue
        number = get_int(f, rule, "item", line, required=True)
        at = get_int(f, rule, "at_or_above", line, required=True)
        if number is None or at is None:
            continue
        if not 1 <= number <= len(items):
            f.add(line, f"risk rule names item {number}; there are {len(items)} items")
        elif at not in items[number - 1].values:
            f.add(line, f"at_or_above {at} is not one of item {number}'s option values")
        else:
            item_risks.append(ItemRisk(number, at))
    return item_risks, total_risks


def _against_profile(
    f: File, fields: Fields, profile: Profile, items: list[Item]
) -> tuple[list[Band], list[ItemRisk], list[TotalRisk]]:
    """The clinic's wording of a validated instrument: its shape must be the instrument's."""
    node = fields["items"][1] if "items" in fields else None
    line = node_line(fields["items"][0]) if "items" in fields else 1
    count = len(node.value) if isinstance(node, SequenceNode) else len(items)
    if count != profile.items:
        f.add(line, f"{profile.name} has {profile.items} items; this file has {count}")
    wanted = ", ".join(map(str, profile.values))
    shared = fields["options"][1] if "options" in fields else None
    reported_shared = False
    for number, item in enumerate(items, start=1):
        if tuple(sorted(item.values)) != profile.values:
            found = ", ".join(map(str, sorted(item.values)))
            own = _item_has_options(node, number)
            if own or shared is None:
                where = _item_line(node, number) or line
                f.add(
                    where,
                    f"item {number}: {profile.name} option values are {wanted}; found {found}",
                )
            elif not reported_shared:
                f.add(
                    node_line(shared), f"{profile.name} option values are {wanted}; found {found}"
                )
                reported_shared = True
        if item.reverse:
            f.add(_item_line(node, number) or line, f"{profile.name} has no reverse items")
    for name in ("scoring", "risk"):
        if name in fields:
            f.add(
                node_line(fields[name][0]),
                f"{profile.name}'s {name} comes with Afterglow (its instrument profile); "
                f"remove {name!r} from this file",
            )
    return list(profile.bands), list(profile.item_risks), []


def _item_has_options(node: Node | None, number: int) -> bool:
    if not isinstance(node, SequenceNode) or not 0 < number <= len(node.value):
        return False
    entry = node.value[number - 1]
    return isinstance(entry, MappingNode) and any(
        getattr(k, "value", None) == "options" for k, _ in entry.value
    )


def _item_line(node: Node | None, number: int) -> int | None:
    if isinstance(node, SequenceNode) and 0 < number <= len(node.value):
        return node_line(node.value[number - 1])
    return None


def unknown_questionnaire(key: str, known: set[str]) -> str:
    """The message for a template step naming a questionnaire that is not loaded."""
    profile = PROFILES.get(key)
    if profile is not None:
        return (
            f"{profile.name} ({key!r}) needs the clinic's copy of its official wording: add "
            f"{profile.file_hint} to your content folder (see docs/content.md); Afterglow ships "
            "its scoring, not its wording"
        )
    return f"step names questionnaire {key!r}, which no content folder defines{suggest(key, known)}"

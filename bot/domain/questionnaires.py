"""Scored questionnaires and the instrument profiles that ship with Afterglow.

A questionnaire is content (`prompts/questionnaires/<key>.yaml`, parsed and checked by
`bot.domain.questionnaire_content`); this module holds what it means: items with option values,
sum scoring with reverse items, bands, and risk rules. For validated instruments (PHQ-9, GAD-7)
the *profile* — item count, option values, bands, the risk item, remission — ships here, while
the item wording is the clinic's to supply (SPEC "Questionnaires and trends"): Afterglow never
ships validated wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Option:
    label: str
    value: int


@dataclass(frozen=True)
class Item:
    text: str
    options: tuple[Option, ...]
    reverse: bool = False

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(option.value for option in self.options)

    def scored(self, value: int) -> int:
        """The value as it counts towards the total: a reverse item counts from the other end."""
        if not self.reverse:
            return value
        return min(self.values) + max(self.values) - value


@dataclass(frozen=True)
class Band:
    min: int
    max: int
    label: str

    def holds(self, total: int) -> bool:
        return self.min <= total <= self.max


@dataclass(frozen=True)
class ItemRisk:
    """An answer at or above `at_or_above` on item `item` (1-based) takes the crisis path."""

    item: int
    at_or_above: int


@dataclass(frozen=True)
class TotalRisk:
    """A total at or above this sends the therapist a notice."""

    at_or_above: int


@dataclass(frozen=True)
class Questionnaire:
    key: str
    title: str
    language: str
    items: tuple[Item, ...]
    bands: tuple[Band, ...]
    item_risks: tuple[ItemRisk, ...] = ()
    total_risks: tuple[TotalRisk, ...] = ()
    intro: str = ""
    recall: str = ""
    source: str = ""
    licence: str = ""
    clinical: bool = True  # False: labelled in chat as not a clinical instrument
    path: Path | None = None

    @property
    def total_range(self) -> tuple[int, int]:
        low = sum(min(item.values) for item in self.items)
        high = sum(max(item.values) for item in self.items)
        return low, high

    def total(self, values: Sequence[int | None]) -> int | None:
        """The sum score, or None unless every item has a valid answer (a `partial` one has
        no total: a sum over some items would read as a lower score)."""
        if len(values) != len(self.items):
            return None
        scored = 0
        for item, value in zip(self.items, values, strict=True):
            if value is None or value not in item.values:
                return None
            scored += item.scored(value)
        return scored

    def band(self, total: int) -> Band | None:
        return next((band for band in self.bands if band.holds(total)), None)

    def risky_items(self, values: Sequence[int | None]) -> list[int]:
        """1-based numbers of the items whose answer meets a risk rule."""
        out = []
        for rule in self.item_risks:
            index = rule.item - 1
            if index < len(values):
                value = values[index]
                if value is not None and value >= rule.at_or_above:
                    out.append(rule.item)
        return out

    def total_alarm(self, total: int) -> bool:
        return any(total >= rule.at_or_above for rule in self.total_risks)


# --- instrument profiles ----------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What Afterglow knows of a validated instrument without its wording."""

    key: str
    name: str
    items: int
    values: tuple[int, ...]
    bands: tuple[Band, ...]
    item_risks: tuple[ItemRisk, ...]
    remission_below: int  # a total below this is remission
    loinc_total: str  # the LOINC code of the total score
    file_hint: str  # where a clinic puts the official wording

    @property
    def total_range(self) -> tuple[int, int]:
        return self.items * min(self.values), self.items * max(self.values)


RESPONSE_DROP = 0.5  # response: the total fell by at least half from the course's first one

PROFILES: dict[str, Profile] = {
    "phq9": Profile(
        key="phq9",
        name="PHQ-9",
        items=9,
        values=(0, 1, 2, 3),
        bands=(
            Band(0, 4, "minimal"),
            Band(5, 9, "mild"),
            Band(10, 14, "moderate"),
            Band(15, 19, "moderately severe"),
            Band(20, 27, "severe"),
        ),
        # Item 9 (thoughts of being better off dead or of self-harm): any answer but "not at
        # all" is the best-known single risk signal (Simon et al. 2013).
        item_risks=(ItemRisk(9, 1),),
        remission_below=5,
        loinc_total="44261-6",
        file_hint="prompts/questionnaires/phq9.yaml",
    ),
    "gad7": Profile(
        key="gad7",
        name="GAD-7",
        items=7,
        values=(0, 1, 2, 3),
        bands=(
            Band(0, 4, "minimal"),
            Band(5, 9, "mild"),
            Band(10, 14, "moderate"),
            Band(15, 21, "severe"),
        ),
        item_risks=(),
        remission_below=5,
        loinc_total="70274-6",
        file_hint="prompts/questionnaires/gad7.yaml",
    ),
}


def response(first_total: int, total: int) -> bool:
    """At least a 50 % drop from the course's first total (a first total of 0 cannot drop)."""
    return first_total > 0 and total <= first_total * (1 - RESPONSE_DROP)


def remission(profile: Profile, total: int) -> bool:
    return total < profile.remission_below

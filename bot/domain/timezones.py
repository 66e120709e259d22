"""Reading a time zone the way a patient types it: an IANA name or a city."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources
from pathlib import Path
from zoneinfo import available_timezones

from bot.domain.cities import CITY_ZONES

_PUNCTUATION = re.compile(r"[^\w\s]")


@cache
def _index() -> tuple[dict[str, str], dict[str, str]]:
    by_name: dict[str, str] = {}
    by_city: dict[str, str] = {}
    for name in sorted(available_timezones()):
        if name in ("localtime", "Factory"):  # the server's own zone, not a place
            continue
        by_name[name.lower()] = name
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "posix/", "right/")):
            city = _fold(name.rsplit("/", 1)[1].replace("_", " ").lower())
            by_city.setdefault(city, name)
    return by_name, by_city


def resolve_zone(text: str) -> str | None:
    """`Europe/Berlin`, `europe/berlin`, `Berlin`, `new york` or `Portland, OR` → the IANA
    name; else None."""
    cleaned = " ".join(text.strip().split())
    if not cleaned or len(cleaned) > 64:
        return None
    by_name, by_city = _index()
    key = cleaned.lower()
    if key in by_name:
        return by_name[key]
    if key.replace(" ", "_") in by_name:
        return by_name[key.replace(" ", "_")]
    place = " ".join(_PUNCTUATION.sub(" ", _fold(key).replace(".", "").replace("_", " ")).split())
    # Exact places only: "London Ontario" must not become Europe/London.
    return by_city.get(place) or CITY_ZONES.get(place)


def _fold(text: str) -> str:
    """ "São Paulo" and "Sao Paulo", "Köln" and "Koln" are the same place."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


COMMON_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
)


@cache
def _countries() -> dict[str, str]:
    """zone name -> ISO country code, from the zone database's own zone.tab."""
    sources = [Path("/usr/share/zoneinfo/zone.tab")]
    try:
        text = resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        text = next((p.read_text("utf-8") for p in sources if p.is_file()), "")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            out[parts[2]] = parts[0]
    return out


def country_of(zone: str | None) -> str | None:
    """The country a time zone is in ("Europe/Vienna" -> "AT"), or None (UTC, unknown):
    which crisis lines a patient is given follows where they are, not only their language."""
    return _countries().get(zone or "")

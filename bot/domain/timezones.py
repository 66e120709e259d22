"""Reading a time zone the way a patient types it: an IANA name or a city."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones


@cache
def _index() -> tuple[dict[str, str], dict[str, str]]:
    by_name: dict[str, str] = {}
    by_city: dict[str, str] = {}
    for name in sorted(available_timezones()):
        if name in ("localtime", "Factory"):  # the server's own zone, not a place
            continue
        by_name[name.lower()] = name
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "posix/", "right/")):
            city = name.rsplit("/", 1)[1].replace("_", " ").lower()
            by_city.setdefault(city, name)
    return by_name, by_city


def resolve_zone(text: str) -> str | None:
    """`Europe/Berlin`, `europe/berlin`, `Berlin` or `new york` → the IANA name; else None."""
    cleaned = " ".join(text.strip().split())
    if not cleaned or len(cleaned) > 64:
        return None
    by_name, by_city = _index()
    key = cleaned.lower()
    if key in by_name:
        return by_name[key]
    if key.replace(" ", "_") in by_name:
        return by_name[key.replace(" ", "_")]
    return by_city.get(key.replace("_", " "))


COMMON_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
)

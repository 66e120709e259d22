"""Reading a patient's typed time zone: IANA names in any case, or a city."""

from __future__ import annotations

from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.timezones import COMMON_ZONES, resolve_zone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        ("EUROPE/BERLIN", "Europe/Berlin"),
        ("  Europe/Berlin\n", "Europe/Berlin"),
        ("america/new_york", "America/New_York"),
        ("America/New York", "America/New_York"),
        ("UTC", "UTC"),
        ("utc", "UTC"),
        ("berlin", "Europe/Berlin"),
        ("Berlin", "Europe/Berlin"),
        ("new york", "America/New_York"),
        ("New York", "America/New_York"),
        ("  new   york ", "America/New_York"),
        ("new_york", "America/New_York"),
        ("Los Angeles", "America/Los_Angeles"),
        ("los angeles", "America/Los_Angeles"),
        ("kathmandu", "Asia/Kathmandu"),
        ("Kathmandu", "Asia/Kathmandu"),
        ("sao paulo", "America/Sao_Paulo"),
        ("ho chi minh", "Asia/Ho_Chi_Minh"),
    ],
)
def test_resolves(text: str, expected: str) -> None:
    assert resolve_zone(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\t",
        "asdf",
        "Mars/Olympus",
        "Atlantis",
        "berlin germany",
        "new yorkk",
        "../../etc/passwd",
        "Europe/../Berlin",
        "GMT+5 please",
        "x" * 65,
        "Europe/Berlin" + "x" * 100,
        "a" * 100_000,
        "🌈",
    ],
)
def test_junk_is_none(text: str) -> None:
    assert resolve_zone(text) is None


@given(st.text(max_size=80))
def test_result_is_none_or_a_loadable_zone(text: str) -> None:
    result = resolve_zone(text)
    assert result is None or result in available_timezones()


@pytest.mark.parametrize("zone", COMMON_ZONES)
def test_common_zones_are_valid(zone: str) -> None:
    assert ZoneInfo(zone).key == zone
    assert resolve_zone(zone) == zone
    assert resolve_zone(zone.lower()) == zone


def test_common_zones_are_distinct() -> None:
    assert len(set(COMMON_ZONES)) == len(COMMON_ZONES)


@pytest.mark.parametrize("text", ["localtime", "Factory"])
def test_server_local_pseudo_zones_are_not_offered(text: str) -> None:
    assert resolve_zone(text) is None


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("Portland", "America/Los_Angeles"),
        ("portland, maine", "America/New_York"),
        ("Seattle", "America/Los_Angeles"),
        ("St. Louis", "America/Chicago"),
        ("Washington, D.C.", "America/New_York"),
        ("São Paulo", "America/Sao_Paulo"),
        ("Sao Paulo", "America/Sao_Paulo"),
        ("Köln", "Europe/Berlin"),
    ],
)
def test_places_that_are_not_zone_names(typed: str, zone: str) -> None:
    assert resolve_zone(typed) == zone


def test_every_city_points_at_a_real_zone() -> None:
    from zoneinfo import ZoneInfo

    from bot.domain.cities import CITY_ZONES

    for city, zone in CITY_ZONES.items():
        assert city == city.lower().strip() and ZoneInfo(zone).key == zone, city

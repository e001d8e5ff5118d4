"""Strength tests for the stack program's region rules (#23): the bucket-location check in both directions
and the continent table it rests on, pinned against Cloud Storage's published location list."""

from __future__ import annotations

import pytest

from stack.config import DUAL_REGIONS, MULTI_REGIONS, continent, read_config

from .conftest import ROOT
from .test_multiregion import _errors, _flat, _one, _section

# https://cloud.google.com/storage/docs/locations ("Available locations": regions grouped by continent;
# "Multi-regions"; "Predefined dual-regions").
CONTINENT_OF = {
    "us-central1": "North America",
    "us-east4": "North America",
    "northamerica-northeast2": "North America",
    "southamerica-east1": "South America",
    "europe-west1": "Europe",
    "europe-north1": "Europe",
    "asia-northeast1": "Asia",
    "asia-south1": "Asia",
    "australia-southeast1": "Oceania",
    "me-west1": "Middle East",
    "africa-south1": "Africa",
    "US": "North America",
    "eu": "Europe",
    "ASIA": "Asia",
    "NAM4": "North America",
    "eur4": "Europe",
    "ASIA1": "Asia",
}


@pytest.mark.parametrize(("location", "expected"), sorted(CONTINENT_OF.items()))
def test_continent_table(location: str, expected: str) -> None:
    assert continent(location) == expected


def test_unknown_locations_have_no_continent() -> None:
    assert continent("mars-north1") is None
    assert continent("EUR9") is None


def test_the_location_tables_are_the_published_ones() -> None:
    assert MULTI_REGIONS == {"US": "North America", "EU": "Europe", "ASIA": "Asia"}
    assert DUAL_REGIONS == {
        "NAM4": ("us-central1", "us-east1"),
        "EUR4": ("europe-north1", "europe-west4"),
        "ASIA1": ("asia-northeast1", "asia-northeast2"),
    }


def _with_bucket(location: str, index: int = 0) -> dict[str, str]:
    regions = _section("regions")
    regions[index]["bucket_location"] = location
    return _flat(regions=regions)


@pytest.mark.parametrize("location", ["europe-west1", "EU", "EUR4"])
def test_a_bucket_in_the_services_own_region_or_on_its_continent_is_accepted(location: str) -> None:
    """europe-west1 is the multi stack's first region: its own region, EU and EUR4 all keep weights near it."""
    assert _section("regions")[0]["region"] == "europe-west1"
    assert read_config(_with_bucket(location), base_dir=ROOT, plan_only=True).bucket_location == location


def test_a_regional_bucket_elsewhere_on_the_continent_is_refused_as_another_region() -> None:
    e = _one(_errors(_with_bucket("europe-west4")), "cloudrun-gpu:regions[0].bucket_location")
    assert e.value == "europe-west4"
    assert e.problem == (
        "is in Europe, but europe-west1 is in Europe: every cold start would read the weights from another region"
    )
    assert e.fix == "leave it unset (a bucket in europe-west1), or use EU, EUR4"


@pytest.mark.parametrize("location", ["us-central1", "NAM4", "ASIA"])
def test_a_bucket_on_another_continent_is_refused(location: str) -> None:
    e = _one(_errors(_with_bucket(location)), "cloudrun-gpu:regions[0].bucket_location")
    assert "every cold start would read the weights across a continent" in e.problem
    assert "but europe-west1 is in Europe" in e.problem


def test_the_second_region_is_checked_against_its_own_continent() -> None:
    region = _section("regions")[1]["region"]
    assert continent(region) == "North America"
    assert read_config(_with_bucket("US", 1), base_dir=ROOT, plan_only=True) is not None
    e = _one(_errors(_with_bucket("EU", 1)), "cloudrun-gpu:regions[1].bucket_location")
    assert e.fix.endswith("or use US, NAM4")


def test_an_unknown_location_lists_the_known_ones() -> None:
    e = _one(_errors(_with_bucket("EUR9")), "cloudrun-gpu:regions[0].bucket_location")
    assert e.problem == "is not a Cloud Storage location this stack knows"
    assert e.allowed == "US, EU, ASIA, NAM4, EUR4, ASIA1"

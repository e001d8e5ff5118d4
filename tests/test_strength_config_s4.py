"""Issue 23, session 4 on ``stack/config.py`` (seed 71): what its sample showed no test read."""

from __future__ import annotations

import pytest
from cloudrun_gpu.errors import ConfigErrors

from stack.config import read_config
from tests.conftest import ROOT
from tests.test_multiregion import _flat, _section


@pytest.mark.parametrize(
    ("name", "names"),
    [
        ("abcdefghijklmnopqrst", ["abcdefghijklmnopqrst", "abcdefghijklmnopqrs2"]),  # 20 characters: cut to 19 + "2"
        ("llmapis", ["llmapis", "llmapis2"]),
    ],
)
def test_a_psc_name_set_for_the_stack_is_numbered_per_region_within_20_characters(name: str, names: list[str]) -> None:
    """The PSC endpoint's forwarding rule and address are global, so a name set once in the stack's ``network``
    section is numbered for each further region (``llmapis``, ``llmapis2``), and a 20-character name loses its last
    character to the number: every region's name stays within the 20 characters PSC allows."""
    network = {**_section("network"), "psc": {"name": name}}
    vs = read_config(_flat(network=network), base_dir=ROOT, plan_only=True)
    assert [r.config.network.psc.name for r in vs.regional] == names


def test_a_21_character_psc_name_is_refused_by_the_field_the_user_wrote() -> None:
    """Only the numbering shortens a name; a name the user wrote too long is refused, not cut."""
    network = {**_section("network"), "psc": {"name": "a" * 21}}
    with pytest.raises(ConfigErrors) as err:
        read_config(_flat(network=network), base_dir=ROOT, plan_only=True)
    assert any(e.field == "cloudrun-gpu:network.psc.name" and e.value == "a" * 21 for e in err.value.errors)


def test_an_unknown_setting_with_no_close_name_is_to_be_removed() -> None:
    """A key of the stack's namespace that resembles no known setting gets the plain fix, "remove it" (one close to
    a known name is answered with that name instead, tests/test_config.py)."""
    flat = {**_flat(), "cloudrun-gpu:zzqxv": "1"}
    with pytest.raises(ConfigErrors) as err:
        read_config(flat, base_dir=ROOT, plan_only=True)
    [e] = [e for e in err.value.errors if e.field == "cloudrun-gpu:zzqxv"]
    assert (e.value, e.problem, e.fix) == (1, "is not a known setting", "remove it")
    assert "cloudrun-gpu:service" in e.allowed

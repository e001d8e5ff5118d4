"""Session 5 (seed 101) mutation-strength tests for sizing/settings.py: the survivor of its blind sample, asserted as
the engine setting a user writes."""

from __future__ import annotations

import pytest
from cloudrun_gpu.engines import PROFILES, register
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.sizing.settings import EngineName, EngineSettings

from .test_extra_engine import TinyProfile


def test_an_engine_registered_after_import_is_a_valid_engine_name() -> None:
    """``EngineName._missing_`` (a classmethod, as ``enum`` calls it) asks the registry: ``engine.name: tiny`` is
    accepted once a ``tiny`` profile is registered, with no edit to the enum."""
    register(TinyProfile())
    try:
        settings = EngineSettings(name="tiny")  # type: ignore[arg-type]  # a registered name, not a built-in member
        assert settings.name == "tiny" and isinstance(settings.name, EngineName)
        assert (EngineName("tiny").name, EngineName("tiny").value) == ("TINY", "tiny")
    finally:
        PROFILES.pop("tiny")


def test_an_engine_name_nobody_registered_is_refused_by_field() -> None:
    with pytest.raises(ConfigErrors) as err:
        EngineSettings(name="tiny")  # type: ignore[arg-type]
    (e,) = err.value.errors
    assert (e.field, e.value) == ("EngineSettings.name", "tiny")
    with pytest.raises(ValueError, match="'tiny' is not a valid EngineName"):
        EngineName("tiny")

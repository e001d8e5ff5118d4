"""Mutation-strength tests for errors.py: the exact text a user sees, and how errors are collected."""

from __future__ import annotations

import enum

import pytest
from cloudrun_gpu.errors import ConfigError, ConfigErrors, collect


class Size(enum.Enum):
    BIG = "big"


def test_render_with_allowed_exact() -> None:
    e = ConfigError("a.b", 3, "is too big", "use 2", "1-2")
    assert (e.field, e.value, e.problem, e.fix, e.allowed) == ("a.b", 3, "is too big", "use 2", "1-2")
    assert e.render() == "a.b = 3: is too big\n  allowed: 1-2\n  fix: use 2"
    assert str(e) == e.render()


def test_render_without_allowed_has_no_allowed_line() -> None:
    e = ConfigError("x", "s", "is wrong", "fix it")
    assert e.allowed == ""
    assert e.render() == "x = 's': is wrong\n  fix: fix it"


def test_enum_value_is_shown_as_written() -> None:
    e = ConfigError("size", Size.BIG, "p", "f")
    assert e.value == "big"
    assert e.render().startswith("size = 'big': p")
    plain = ConfigError("size", ["big"], "p", "f")
    assert plain.value == ["big"]


def test_config_errors_render_exact() -> None:
    one, two = ConfigError("a", 1, "p1", "f1"), ConfigError("b", 2, "p2", "f2", "ok")
    errs = ConfigErrors([one, two])
    assert errs.errors == [one, two]
    assert str(errs) == ("2 configuration error(s):\n- a = 1: p1\n  fix: f1\n- b = 2: p2\n  allowed: ok\n  fix: f2")
    assert ConfigErrors([]).render() == "0 configuration error(s):"


def test_collect_returns_the_result_and_records_nothing() -> None:
    errors: list[ConfigError] = []
    assert collect(errors, lambda: 42) == 42
    assert errors == []


def test_collect_records_one_error() -> None:
    errors: list[ConfigError] = []
    e = ConfigError("a", 1, "p", "f")

    def bad() -> int:
        raise e

    assert collect(errors, bad) is None
    assert errors == [e]


def test_collect_records_every_error_of_config_errors() -> None:
    errors: list[ConfigError] = [ConfigError("z", 0, "p", "f")]
    a, b = ConfigError("a", 1, "p", "f"), ConfigError("b", 2, "p", "f")

    def bad() -> int:
        raise ConfigErrors([a, b])

    assert collect(errors, bad) is None
    assert [x.field for x in errors] == ["z", "a", "b"]


def test_collect_lets_other_errors_through() -> None:
    def bad() -> int:
        raise KeyError("k")

    with pytest.raises(KeyError):
        collect([], bad)

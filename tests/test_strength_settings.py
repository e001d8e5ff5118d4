"""Mutation-strength tests for settings.py: every error names the user's field, value, allowed values and fix."""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated
from uuid import UUID

import pytest
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.settings import (
    as_errors,
    field_names,
    nested,
    parse,
    problems_of,
    raise_if,
    rename_fields,
    rename_in,
    settings,
    suggest,
    with_prefix,
)
from pydantic import AfterValidator, Field


class Color(enum.StrEnum):
    RED = "red"
    GREEN = "green"


@settings
class Inner:
    """A nested section."""

    size: int = Field(default=2, ge=1, le=10)
    """How big."""
    color: Color = Color.RED
    """Which color."""

    def problems(self) -> list[ConfigError]:
        if self.size == 3:
            return [ConfigError("size", 3, "is unlucky", "set size to 4", "not 3")]
        return []


@settings
class Outer:
    """A section holding another."""

    name: str = Field(default="x", pattern=r"^[a-z]+$")
    """A name."""
    inner: Inner = Field(default_factory=Inner)
    """The nested part."""
    ratio: float = Field(default=0.5, gt=0, lt=1)
    """A share."""
    tags: list[str] = Field(default_factory=list, min_length=0, max_length=2)
    """At most two tags."""
    flag: bool = False
    """A switch."""

    def problems(self) -> list[ConfigError]:
        return nested(self.inner, "inner")


def errors(exc: pytest.ExceptionInfo[ConfigErrors]) -> list[tuple[str, object, str, str, str]]:
    return [(e.field, e.value, e.problem, e.fix, e.allowed) for e in exc.value.errors]


def test_constructing_validates_and_names_the_class() -> None:
    with pytest.raises(ConfigErrors) as err:
        Inner(size=0)
    assert errors(err) == [("Inner.size", 0, "is out of range", "set Inner.size to ≥ 1", "≥ 1")]
    with pytest.raises(ConfigErrors) as err:
        Inner(size=11)
    assert errors(err) == [("Inner.size", 11, "is out of range", "set Inner.size to ≤ 10", "≤ 10")]
    with pytest.raises(ConfigErrors) as err:
        Inner(size=3)
    assert errors(err) == [("Inner.size", 3, "is unlucky", "set Inner.size to 4", "not 3")]
    assert Inner(size=10).size == 10


def test_parse_prefixes_nested_fields_and_renames_fixes() -> None:
    with pytest.raises(ConfigErrors) as err:
        parse(Outer, {"inner": {"size": 3}}, "cloudrun-gpu:")
    assert errors(err) == [("cloudrun-gpu:inner.size", 3, "is unlucky", "set cloudrun-gpu:inner.size to 4", "not 3")]
    collected: list[ConfigError] = []
    value = parse(Outer, {"inner": {"size": 3}}, "s.", collected)
    assert value.inner.size == 3
    assert [e.field for e in collected] == ["s.inner.size"]
    assert parse(Outer, {}, "s.", []).name == "x"


@pytest.mark.parametrize(
    ("raw", "field", "problem", "allowed"),
    [
        ({"name": "A"}, "p.name", "has characters or a shape that is not allowed", "matching ^[a-z]+$"),
        ({"ratio": 1}, "p.ratio", "is out of range", "< 1.0"),
        ({"ratio": 0}, "p.ratio", "is out of range", "> 0.0"),
        ({"ratio": "x"}, "p.ratio", "must be a number", "a number"),
        ({"inner": {"size": "x"}}, "p.inner.size", "must be a whole number", "a whole number"),
        ({"inner": {"size": 2.5}}, "p.inner.size", "must be a whole number", "a whole number"),
        ({"flag": "maybe"}, "p.flag", "must be true or false", "true or false"),
        ({"name": 3}, "p.name", "must be a string", "a string"),
        ({"tags": "x"}, "p.tags", "must be a list", "a list"),
        ({"tags": ["a", "b", "c"]}, "p.tags", "has the wrong length", "at most 2 item(s)/character(s)"),
        ({"inner": 5}, "p.inner", "must be a mapping of keys to values", "a mapping of keys to values"),
    ],
)
def test_pydantic_errors_are_reworded(raw: dict[str, object], field: str, problem: str, allowed: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        parse(Outer, raw, "p.")
    (e,) = err.value.errors
    assert (e.field, e.problem, e.allowed) == (field, problem, allowed)
    assert e.fix == f"set {field} to {allowed}"


def test_enum_and_unknown_keys_suggest() -> None:
    with pytest.raises(ConfigErrors) as err:
        parse(Outer, {"inner": {"color": "gren"}}, "p.")
    assert errors(err) == [
        ("p.inner.color", "gren", "is not one of the allowed values", "did you mean 'green'?", "red or green")
    ]
    with pytest.raises(ConfigErrors) as err:
        parse(Outer, {"inner": {"color": "blue"}}, "p.")
    assert err.value.errors[0].fix == "set p.inner.color to one of: red or green"
    with pytest.raises(ConfigErrors) as err:
        parse(Outer, {"inner": {"sise": 2}}, "p.")
    assert errors(err) == [("p.inner.sise", 2, "is not a known setting", "did you mean p.inner.size?", "size, color")]
    with pytest.raises(ConfigErrors) as err:
        parse(Outer, {"zzzzz": 1}, "p.")
    assert errors(err) == [("p.zzzzz", 1, "is not a known setting", "remove it", "name, inner, ratio, tags, flag")]


def test_a_whole_section_of_the_wrong_type() -> None:
    with pytest.raises(ConfigErrors) as err:
        parse(Outer, 5, "cloudrun-gpu:outer.")
    (e,) = err.value.errors
    assert e.field == "cloudrun-gpu:outer"
    with pytest.raises(ConfigErrors) as err:
        parse(Outer, 5, "")
    assert err.value.errors[0].field == "config"


def test_missing_argument() -> None:
    @settings
    class Needs:
        must: int
        """Required."""

    with pytest.raises(ConfigErrors) as err:
        Needs()  # type: ignore[call-arg]
    assert errors(err) == [("Needs.must", None, "is required", "set Needs.must", "")]


def test_helpers() -> None:
    e = ConfigError("size", 3, "bad", "set size to 4", "1..2")
    p = with_prefix(e, "a.")
    assert (p.field, p.value, p.problem, p.fix, p.allowed) == ("a.size", 3, "bad", "set a.size to 4", "1..2")
    assert rename_in("set size to 4", "", "a.") == "set size to 4"
    assert rename_in("set sizes to 4", "size", "a.size") == "set sizes to 4"
    # a one-word field in prose is not the field ("a smaller model"); a dotted path is renamed as a whole token
    assert (
        rename_in("use a smaller model, or set model to x", "model", "--model")
        == "use a smaller model, or set --model to x"
    )
    assert rename_in(
        "lower scaling.max_instances, or raise gpu.quota", "scaling.max_instances", "k:scaling.max_instances"
    ) == ("lower k:scaling.max_instances, or raise gpu.quota")
    assert rename_in("set a.nat.max to 2", "nat.max", "b.nat.max") == "set a.nat.max to 2"  # not inside a longer path
    (r,) = rename_fields([ConfigError("model", "m", "too big", "use a smaller model")], {"model": "MODEL"}).errors
    assert (r.field, r.fix) == ("MODEL", "use a smaller model")
    assert problems_of(object(), "x.") == []
    assert problems_of(Inner(), "x.") == []
    assert as_errors(e) == [e]
    assert as_errors(ConfigErrors([e, p])) == [e, p]
    raise_if([])
    with pytest.raises(ConfigErrors) as err:
        raise_if([e])
    assert err.value.errors == [e]
    assert suggest("scalling", ["scaling", "service"]) == "scaling"
    assert suggest("zzz", ["scaling"]) is None
    assert field_names(Inner) == ["size", "color"]
    assert field_names(object) == []


def test_rename_fields() -> None:
    errs = [
        ConfigError("engine.context_length", 1, "p", "set engine.context_length ≤ 8", "1..8"),
        ConfigError("engine", None, "p", "fix engine"),
        ConfigError("model.gguf.x", 1, "p", "f"),
        ConfigError("other", 1, "p", "set other to 2"),
        ConfigError("", 1, "p", "keep"),
    ]
    out = rename_fields(errs, {"engine.context_length": "--context", "model.gguf": "--gguf", "engine": "E"}, "P.")
    assert [(e.field, e.fix) for e in out.errors] == [
        ("--context", "set --context ≤ 8"),
        ("E", "fix engine"),  # a one-word field is renamed only after "set ": as a bare word it is prose
        ("--gguf.x", "f"),
        ("P.other", "set P.other to 2"),
        ("P.", "keep"),
    ]
    assert out.errors[0].allowed == "1..8"


def test_enum_values_are_shown_as_written() -> None:
    e = ConfigError("c", Color.RED, "p", "f")
    assert e.value == "red"


def test_settings_are_frozen() -> None:
    inner = Inner()
    with pytest.raises(dataclasses.FrozenInstanceError):
        inner.size = 5  # type: ignore[misc]
    assert inner.size == 2


@settings
class MaybeInner:
    """An optional nested section."""

    inner: Inner | None = None
    """Absent unless set."""


def test_unknown_key_in_an_optional_section_suggests_its_keys() -> None:
    with pytest.raises(ConfigErrors) as err:
        parse(MaybeInner, {"inner": {"sise": 2}}, "p.")
    assert errors(err) == [("p.inner.sise", 2, "is not a known setting", "did you mean p.inner.size?", "size, color")]
    assert parse(MaybeInner, {}, "p.").inner is None


def test_too_many_positional_arguments_read_as_english() -> None:
    from cloudrun_gpu.network.settings import NatSettings

    with pytest.raises(ConfigErrors) as err:
        NatSettings(True, True, 64, 128, "ALL", "extra")  # type: ignore[call-arg, arg-type]
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem) == ("NatSettings.5", "extra", "is a positional argument too many")
    assert e.fix.startswith("pass settings by name: enabled, dynamic_port_allocation")


def _never(value: str) -> str:
    raise ValueError("refused")


@settings
class Validated:
    """Error types that sort after ``unexpected_positional_argument`` (``value_error``, ``uuid_parsing``)."""

    word: Annotated[str, AfterValidator(_never)] = "x"
    """A field with a validator of its own."""
    ident: UUID | None = None
    """A UUID."""


@pytest.mark.parametrize(("raw", "field"), [({"word": "y"}, "p.word"), ({"ident": "zz"}, "p.ident")])
def test_other_error_types_are_not_read_as_positional(raw: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        parse(Validated, raw, "p.")
    (e,) = err.value.errors
    assert (e.field, e.problem, e.fix) == (field, "is not valid", f"check {field} against the docs")

"""Session 4 strength tests for settings.py: the component Args' shape check and the positional-argument errors.

The seed-71 sample of settings.py found ``args_types``, ``args_text`` and the shape words (``_shape``,
``_deferred``, ``_fits``) unexercised by settings.py's own test list: another Pulumi language (or a provider host)
hands a component plain JSON values, and these are the refusals it reads (issue 21). Each is asserted as rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pulumi
import pytest
from cloudrun_gpu.apis import ProjectApisArgs
from cloudrun_gpu.bucket import BucketSettings, ModelBucketArgs
from cloudrun_gpu.build import BuildIdentityArgs
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.settings import args_text, args_types

IDENTITY: dict[str, Any] = {"account_id": "llm-build", "project": "p", "location": "europe-west4"}


def refusal(exc: pytest.ExceptionInfo[Any]) -> list[str]:
    errors = exc.value.errors if isinstance(exc.value, ConfigErrors) else [exc.value]
    return [str(e) for e in errors]


def test_an_optional_output_argument_is_named_with_every_shape_it_takes() -> None:
    with pytest.raises((ConfigError, ConfigErrors)) as exc:
        BuildIdentityArgs(**IDENTITY, repository={})  # type: ignore[arg-type]
    assert refusal(exc) == [
        "BuildIdentityArgs.repository = {}: is not text (or a Pulumi output of one), or null\n"
        "  fix: pass repository as text (or a Pulumi output of one), or null"
    ]


def test_an_optional_plain_argument_is_text_or_null_without_outputs() -> None:
    with pytest.raises((ConfigError, ConfigErrors)) as exc:
        ProjectApisArgs(project={})  # type: ignore[arg-type]
    assert refusal(exc) == ["ProjectApisArgs.project = {}: is not text, or null\n  fix: pass project as text, or null"]


def test_a_mapping_and_a_flag_are_named_in_words() -> None:
    with pytest.raises((ConfigError, ConfigErrors)) as exc:
        ModelBucketArgs(location="europe-west4", hierarchical_namespace="yes", reader_members={"r": 5})  # type: ignore[arg-type, dict-item]
    assert refusal(exc) == [
        "ModelBucketArgs.hierarchical_namespace = 'yes': is not true or false\n"
        "  fix: pass hierarchical_namespace as true or false",
        "ModelBucketArgs.reader_members = {'r': 5}: is not a mapping of names to text (or a Pulumi output of one)\n"
        "  fix: pass reader_members as a mapping of names to text (or a Pulumi output of one)",
    ]


def test_values_of_the_right_shape_pass_the_check() -> None:
    args = BuildIdentityArgs(**IDENTITY, repository=None, pull_repositories={"hf": "r"}, bucket="b")
    assert args_types(args, "BuildIdentityArgs.") == []
    out = BuildIdentityArgs(**IDENTITY, repository=pulumi.Output.from_input("r"))
    assert args_types(out, "BuildIdentityArgs.") == []


@dataclass
class EveryShape:
    """One argument of each plain shape the library's Args use."""

    name: str = "n"
    flag: bool = False
    count: int = 1
    ratio: float = 0.5
    tags: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    note: str | None = None
    more: list[str] | None = None


def test_each_plain_shape_has_its_own_words() -> None:
    bad = EveryShape(name=1, flag=1, count=True, ratio="x", tags=[1], sizes={"a": 1.5}, note=2, more="x")  # type: ignore[arg-type, list-item, dict-item]
    assert [(e.field, e.problem) for e in args_types(bad, "A.")] == [
        ("A.name", "is not text"),
        ("A.flag", "is not true or false"),
        ("A.count", "is not a whole number"),
        ("A.ratio", "is not a number"),
        ("A.tags", "is not a list of text"),
        ("A.sizes", "is not a mapping of names to a whole number"),
        ("A.note", "is not text, or null"),
        ("A.more", "is not a list of text, or null"),  # a list is no deferred value (only Output, Awaitable)
    ]
    assert args_types(EveryShape(count=3, ratio=2, tags=["a"], sizes={"a": 1}, note=None), "A.") == []


@pytest.mark.parametrize("value", [None, 3, "", "  "])
def test_a_required_text_argument_is_named(value: Any) -> None:
    assert [str(e) for e in args_text(SimpleNamespace(region=value), "GpuInferenceServiceArgs.", "region")] == [
        f"GpuInferenceServiceArgs.region = {value!r}: must be a non-empty string\n  fix: set region"
    ]
    assert args_text(SimpleNamespace(region="europe-west4"), "GpuInferenceServiceArgs.", "region") == []


def test_every_positional_argument_too_many_is_reported() -> None:
    with pytest.raises(ConfigErrors) as exc:
        BucketSettings("llm-a", False, 7, None, "e", "f")  # type: ignore[call-arg]
    fix = "pass settings by name: name_prefix, versioning, soft_delete_days, force_destroy"
    assert [(e.field, e.value, e.problem, e.fix) for e in exc.value.errors] == [
        ("BucketSettings.4", "e", "is a positional argument too many", fix),
        ("BucketSettings.5", "f", "is a positional argument too many", fix),
    ]


def test_each_settings_docstring_is_its_description_in_the_settings_reference() -> None:
    """``use_attribute_docstrings=True`` turns the docstring under each settings field into its description, which
    docs/settings.md (stack/settings_doc.py) and the provider schema show; without it every row would be blank."""
    from stack import settings_doc

    rows = [line for line in settings_doc.render().splitlines() if line.startswith("| `soft_delete_days` |")]
    assert rows == [
        "| `soft_delete_days` | int | `7` | Days deleted objects stay recoverable: 0 (off) or 7-90, as Cloud Storage "
        "allows. |"
    ]
    fields = BucketSettings.__pydantic_fields__  # type: ignore[attr-defined]
    assert (
        fields["versioning"].description == "Keep replaced model objects (noncurrent copies are deleted after 30 days)."
    )


def test_an_unknown_choice_does_not_hide_the_errors_after_it() -> None:
    """One run reports every mistake: the enum refusal is followed by the next field's (seed 71 stopped there)."""
    from cloudrun_gpu.network import PscSettings

    with pytest.raises(ConfigErrors) as exc:
        PscSettings(target="all-api", dns_zones=5)  # type: ignore[arg-type]
    assert [(e.field, e.value, e.problem, e.fix, e.allowed) for e in exc.value.errors] == [
        (
            "PscSettings.target",
            "all-api",
            "is not one of the allowed values",
            "did you mean 'all-apis'?",
            "all-apis or vpc-sc",
        ),
        ("PscSettings.dns_zones", 5, "must be a list", "set PscSettings.dns_zones to a list", "a list"),
    ]


def test_a_section_or_a_mapping_given_a_number_is_asked_for_as_a_mapping() -> None:
    """pydantic's ``dataclass_type`` (a nested settings section) and ``dict_type`` (a mapping field) read the same
    to a user: the value must be a mapping (seed 81 dropped the ``dict_type`` wording)."""
    from cloudrun_gpu.capacity import CapacitySettings

    with pytest.raises(ConfigErrors) as exc:
        CapacitySettings(target=5, throughput=5)  # type: ignore[arg-type]
    words = "a mapping of keys to values"
    assert [(e.field, e.value, e.problem, e.fix, e.allowed) for e in exc.value.errors] == [
        ("CapacitySettings.target", 5, f"must be {words}", f"set CapacitySettings.target to {words}", words),
        ("CapacitySettings.throughput", 5, f"must be {words}", f"set CapacitySettings.throughput to {words}", words),
    ]

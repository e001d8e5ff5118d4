"""Inputs that used to crash or leak between runs (#21): program runs under mocks are isolated inside one
process, and a stack file that YAML can read but Pulumi config cannot hold is an error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudrun_gpu.errors import ConfigErrors

from stack.config import read_stack_file


def test_a_secret_marking_does_not_carry_into_the_next_program_run() -> None:
    """#21: one run's ``--secret`` keys must not mark the next run's plain-text value as secret."""
    from pulumi.runtime.config import is_config_secret

    from stack.render import install_mocks

    key = "cloudrun-gpu:hf_token"
    install_mocks("first", {key: "hf_x"}, secret_keys=[key])
    assert is_config_secret(key)
    install_mocks("second", {key: "hf_plain"})
    assert not is_config_secret(key)
    install_mocks("test", {})


def test_a_self_referencing_yaml_anchor_is_a_config_error_not_a_recursion(tmp_path: Path) -> None:
    """#21: ``&a {self: *a}`` made PyYAML build a cycle and the value check recursed until RecursionError."""
    path = tmp_path / "Pulumi.anchor.yaml"
    path.write_text("config:\n  cloudrun-gpu:model: &a\n    name: x\n    self: *a\n")
    with pytest.raises(ConfigErrors) as err:
        read_stack_file(path)
    [e] = err.value.errors
    assert (e.field, e.value) == ("cloudrun-gpu:model", "a YAML anchor that refers to itself")
    assert e.problem == "is not a value Pulumi config can hold"


def test_an_anchor_reused_in_two_places_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.anchor.yaml"
    path.write_text("config:\n  ns:a: &a {x: [1, 2]}\n  ns:b: {one: *a, two: *a}\n")
    assert read_stack_file(path) == {"ns:a": '{"x": [1, 2]}', "ns:b": '{"one": {"x": [1, 2]}, "two": {"x": [1, 2]}}'}

"""Program runs under mocks are isolated from each other inside one process (#21)."""

from __future__ import annotations


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

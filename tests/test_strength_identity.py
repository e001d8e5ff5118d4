"""Mutation-strength tests for identity/: the account id rule's edges and the rendered service account."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.identity import TOKEN, RuntimeIdentity, RuntimeIdentityArgs

from .conftest import render

SA = "gcp:serviceaccount/account:Account"


@pytest.mark.parametrize("account_id", ["abcdef", "a" + "b" * 28 + "c", "a-1-b2", "run-llm-9"])
def test_valid_ids(account_id: str) -> None:
    assert RuntimeIdentityArgs(account_id).account_id == account_id


@pytest.mark.parametrize("account_id", ["abcde", "a" * 31, "1abcdef", "abcdef-", "Abcdef", "abc_def", ""])
def test_invalid_ids_exact_error(account_id: str) -> None:
    with pytest.raises(ConfigError) as err:
        RuntimeIdentityArgs(account_id)
    e = err.value
    assert (e.field, e.value, e.problem, e.fix) == (
        "RuntimeIdentityArgs.account_id",
        account_id,
        "is not a valid service account id",
        "use 6-30 lowercase letters, digits and hyphens, starting with a letter",
    )


def test_defaults() -> None:
    args = RuntimeIdentityArgs("runtime-sa")
    assert (args.display_name, args.project) == ("LLM inference runtime", None)


def test_rendered_account_and_outputs() -> None:
    def build() -> Any:
        ident = RuntimeIdentity("rt", {"account_id": "llm-runtime", "project": "prj"})  # type: ignore[arg-type]
        return pulumi.Output.all(ident.email, ident.member, ident.account.account_id)

    r = render(build)
    sa = r.one(SA, "rt-sa")
    assert sa.inputs == {
        "accountId": "llm-runtime",
        "displayName": "LLM inference runtime",
        "description": "Runtime identity of a GPU Cloud Run inference service (no project roles).",
        "project": "prj",
    }
    assert sa.registration and sa.registration.parent == r.one(TOKEN, "rt").urn
    assert r.value[2] == "llm-runtime"
    assert "llm-runtime@" in r.value[0] and r.value[1] == f"serviceAccount:{r.value[0]}"

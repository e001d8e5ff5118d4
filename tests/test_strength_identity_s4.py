"""Session-4 strength tests for identity/ (seed-71 survivors): what ``RuntimeIdentity`` registers as its outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.identity import RuntimeIdentity, RuntimeIdentityArgs

from .strength_s4_support import render_with_outputs


def test_the_component_registers_the_accounts_email_and_member() -> None:
    """``email`` and ``member`` are the identity's registered outputs (the stack's ``service_account`` and every
    binding read them): both registered, the member being ``serviceAccount:<email>`` of the account created."""

    def build() -> Any:
        ident = RuntimeIdentity("rt", RuntimeIdentityArgs("llm-runtime", project="prj"))
        return pulumi.Output.all(ident.email, ident.member)

    r, outputs = render_with_outputs(build)
    email, member = r.value
    assert email.startswith("llm-runtime@")
    assert outputs == {"rt": {"email": email, "member": f"serviceAccount:{email}"}}
    assert member == f"serviceAccount:{email}"


def test_an_account_id_that_is_not_text_gets_the_account_id_rule() -> None:
    """A number for ``account_id`` (another Pulumi language's JSON) is refused by the id rule itself, which says what
    an id looks like, not by the generic type check."""
    with pytest.raises(ConfigError) as err:
        RuntimeIdentityArgs(123456)  # type: ignore[arg-type]
    e = err.value
    assert (e.field, e.value, e.problem, e.fix) == (
        "RuntimeIdentityArgs.account_id",
        123456,
        "is not a valid service account id",
        "use 6-30 lowercase letters, digits and hyphens, starting with a letter",
    )

"""The offline policy checker, session 4 (issue 23), second sample (seed 81 of
``policy/cloudrun_gpu_policy/offline.py``): what a policy of one's own sees, and the call's keywords."""

from __future__ import annotations

import sys
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "policy"))  # as the CLI runs the pack: its directory on sys.path

from cloudrun_gpu_policy import offline

BUCKET = {"type": "gcp:storage/bucket:Bucket", "name": "b", "inputs": {"location": "EUROPE-WEST1"}}


def test_a_policy_sees_the_options_of_a_resource_that_sets_none() -> None:
    """A plan's resources carry no resource options, so a policy run offline sees what the engine sends for a
    resource that sets none: not protected, nothing ignored or aliased, no parent, and zero custom timeouts."""
    seen: list[Any] = []

    def validate(args: Any, report: Any) -> None:
        seen.append(args.opts)

    policy = ResourceValidationPolicy("opts", "records the options", validate, EnforcementLevel.ADVISORY)
    assert offline.check([BUCKET], production=False, policies=[policy]) == []
    [opts] = seen
    t = opts.custom_timeouts
    assert (t.create_seconds, t.update_seconds, t.delete_seconds) == (0, 0, 0)
    assert (opts.protect, opts.ignore_changes, opts.aliases, opts.parent) == (False, [], [], None)
    assert opts.delete_before_replace is None and opts.additional_secret_outputs == []


def test_the_resources_can_be_passed_by_keyword() -> None:
    """``check(resources=…, production=…)`` as well as positionally: both are the documented parameters."""
    assert offline.check(resources=[BUCKET], production=False) == offline.check([BUCKET], production=False)

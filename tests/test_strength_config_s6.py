"""Issue 23, session 6 on ``stack/config.py`` (blind seed 171): what its sample showed no listed test read.

Each test reads a stack as ``plan`` and ``pulumi up`` do (``read_config``) and asserts the error the user is shown:
the stack key they wrote, its value, the problem and the fix.
"""

from __future__ import annotations

import pytest
from cloudrun_gpu.errors import ConfigError, ConfigErrors

from stack.config import read_config
from tests.conftest import ROOT, stack_flat
from tests.test_validation_first import MODEL


def refused(flat: dict[str, str], field: str) -> ConfigError:
    """The one error ``read_config`` gives for ``field`` (plan's reading of the stack)."""
    with pytest.raises(ConfigErrors) as err:
        read_config(flat, base_dir=ROOT, plan_only=True)
    found = [e for e in err.value.errors if e.field == field]
    assert len(found) == 1, [(e.field, e.value, e.problem) for e in err.value.errors]
    return found[0]


def test_a_local_source_longer_than_path_max_says_what_path_to_give() -> None:
    """config.py:658 (seed 171, the problem text changed survived): a ``model.source`` longer than Linux's PATH_MAX is
    refused by the key the user wrote, shortened to 80 characters, with the fix that says what a usable source
    is: a path relative to the project (tests/test_validation_first.py reads only the problem's PATH_MAX)."""
    source = "x" * 10_000
    e = refused(stack_flat("dev", model={**MODEL, "source": source}), "cloudrun-gpu:model.source")
    assert e.value == "x" * 80 + "…"
    assert e.problem == "is not a usable path: longer than 4096 bytes or a name over 255 (Linux PATH_MAX/NAME_MAX)"
    assert e.fix == "give a file or folder path relative to the project"


def test_a_load_balancer_ingress_without_a_front_door_names_the_three_ways_out() -> None:
    """config.py:740 (seed 171, the fix text changed survived): ``service.ingress`` admitting only a load balancer,
    in a stack that creates none, is refused with what is allowed and a fix that names each way out (the two
    other ingress settings and who can call then, or a front door); tests/test_multiregion.py reads only the
    problem's "creates none"."""
    e = refused(
        stack_flat("dev", service={"name": "llm-dev", "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}),
        "cloudrun-gpu:service.ingress",
    )
    assert e.value == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert e.problem == "admits only a load balancer, and this stack creates none: the endpoint could not be called"
    assert e.fix == (
        "use INGRESS_TRAFFIC_ALL (callers still need roles/run.invoker) or INGRESS_TRAFFIC_INTERNAL_ONLY "
        "(callers inside the VPC); or add a cloudrun-gpu:frontdoor section (a load balancer in front)"
    )
    assert e.allowed == "INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY"


def test_an_internal_only_ingress_behind_an_external_front_door_is_told_the_load_balancer_setting() -> None:
    """config.py:963 (seed 171, the fix text changed survived): behind the external front door an internal-only
    service would refuse the load balancer's traffic (internal only admits internal load balancers), so it is
    refused with the one setting that works, as problem, fix and allowed; tests/test_multiregion.py reads only
    the problem's "external load balancer"."""
    e = refused(
        stack_flat("multi", service={"name": "llm-multi", "ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY"}),
        "cloudrun-gpu:service.ingress",
    )
    assert e.value == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    assert e.problem == (
        "refuses the external load balancer the front door creates (internal only admits internal ones)"
    )
    assert e.fix == "set cloudrun-gpu:service.ingress: INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert e.allowed == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"

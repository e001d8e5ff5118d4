"""Session-5 mutation-strength tests for ``cloudrun_gpu/limits.py`` (seed 101's survivors): a limit from issue 21
pinned by what it does to a stack section, not only by its number."""

from __future__ import annotations

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.network import NetworkSettings


def test_a_vm_takes_64_network_tags_and_no_more() -> None:
    """limits.py:283 (seed 101, NETWORK_TAGS_MAX 64 → 63 survived): "Maximum number of tags per VM 64"
    (https://cloud.google.com/vpc/docs/add-remove-network-tags, Limits), so the network section accepts 64 tags
    and refuses the 65th, naming the number."""
    assert limits.NETWORK_TAGS_MAX.value == 64
    assert len(NetworkSettings(tags=[f"tag{i}" for i in range(64)]).tags) == 64
    with pytest.raises(ConfigErrors) as err:
        NetworkSettings(tags=[f"tag{i}" for i in range(65)])
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem, e.fix) == (
        "NetworkSettings.tags",
        "65 tags",
        "has more than 64 tags",
        "keep at most 64",
    )

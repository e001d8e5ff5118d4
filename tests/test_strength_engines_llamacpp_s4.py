"""Mutation-strength tests (issue 23, session 4) for the llama.cpp profile, ``cloudrun_gpu/engines/llamacpp.py``:
the flags the prompt-cache build stage runs llama-server with, and the two read-backs of ``-np``.
"""

from __future__ import annotations

import shlex

import pytest
from cloudrun_gpu.engines import profile

import stack.cloudbuild as cb

from .test_build import flat_config, validated


def test_the_prompt_cache_stage_runs_the_services_flags_with_no_gpu_layers() -> None:
    """``ENGINE_ARGS`` is the service's own command line, every flag and value as rendered, except ``-ngl 999``
    (all layers on the GPU) which becomes ``-ngl 0``: the build machine has no GPU (R2)."""
    vs = validated(flat_config("dev", engine={"prompt_cache": True}))
    step = cb.cloudbuild_config(vs)["steps"][-1]["args"]
    (engine_args,) = [a.removeprefix("ENGINE_ARGS=") for a in step if a.startswith("ENGINE_ARGS=")]
    served = list(vs.sizing.engine_args)
    assert served[served.index("-ngl") + 1] == "999"
    want = [*served]
    want[served.index("-ngl") + 1] = "0"
    assert shlex.split(engine_args) == want
    assert {"-fa", "on", "-ctk", "-ctv", "-m"} <= set(want), "letters and paths pass through unchanged"


@pytest.mark.parametrize(
    "args",
    [["-m", "/m.gguf", "-c", "8192", "-np", "4"], ["-m", "/m.gguf", "-c", "8192"], ["-np", "1"], []],
)
def test_both_read_backs_of_the_slots_agree(args: list[str]) -> None:
    """R6 reads the slots back twice (``parallel_from_config`` and ``memory_from_config``): one flag, one answer,
    0 when the flags name no ``-np`` (the engine's own default is not ours to guess)."""
    llama = profile("llama.cpp")
    assert llama.parallel_from_config(args, {}) == llama.memory_from_config(args, {})["parallel"]
    if "-np" not in args:
        assert llama.parallel_from_config(args, {}) == 0

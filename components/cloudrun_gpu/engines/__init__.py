"""Engine profiles: one module per serving engine owns everything particular to it (issue 18).

``base.py`` defines :class:`EngineProfile` and the registry; ``llamacpp.py``, ``ollama.py`` and ``vllm.py``
are the built-in engines, each with its start-up log parser for ``calibrate`` (``logs.py``: what they share).
Adding an engine is one module, one line below, its sizing record in ``cloudrun_gpu.sizing.engines.ENGINES`` and
its Dockerfile under ``container/`` (CONTRIBUTING.md).
"""

from cloudrun_gpu.engines.base import (
    PROFILES,
    ClientRequest,
    EngineProfile,
    RenderInputs,
    engine_names,
    expand_cloud_run_refs,
    profile,
    register,
)
from cloudrun_gpu.engines.llamacpp import LLAMA_CPP
from cloudrun_gpu.engines.ollama import OLLAMA
from cloudrun_gpu.engines.vllm import VLLM

for _p in (LLAMA_CPP, OLLAMA, VLLM):
    register(_p)

__all__ = [
    "PROFILES",
    "ClientRequest",
    "EngineProfile",
    "RenderInputs",
    "engine_names",
    "expand_cloud_run_refs",
    "profile",
    "register",
]

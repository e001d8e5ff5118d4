"""llama.cpp's ``llama-server`` (release pinned in ``cloudrun_gpu.images.LLAMA_CPP_VERSION``).

Flags: ``-c`` is the *total* KV cells, split across ``-np`` slots (``sizing.engines``); every flag rendered here
is parsed by a real llama-server in ``tests/test_engine_contract.py``. The served name: llama-server names its one
model ``params.model_alias.empty() ? params.model.path : params.model_alias`` (tools/server/server.cpp, the
``/v1/models`` handler), and no ``--alias`` is rendered, so clients send the ``-m`` path.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, ClassVar

from cloudrun_gpu.engines.base import EngineProfile, RenderInputs, flag_value
from cloudrun_gpu.loading import llama_cpp_mmap_args
from cloudrun_gpu.sizing.engines import PORT

if TYPE_CHECKING:
    from cloudrun_gpu.service.plan import ServingSettings


class LlamaCppProfile(EngineProfile):
    name: ClassVar[str] = "llama.cpp"
    image_repository: ClassVar[str] = "llama-cpp"
    dockerfile: ClassVar[str] = "llama.cpp/Dockerfile"
    parallel_cap_note: ClassVar[str] = (
        "our cap until a load test, not llama-server's: its own -np default is 1 slot up to PR #16736 and 'auto' "
        "(4 slots over one unified KV cache) after it (ggml-org/llama.cpp PR #17997: '-np, --parallel N … default: "
        "-1, -1 = auto'); we always render -np"
    )
    loading_methods: ClassVar[tuple[str, ...]] = ("image", "gcs-fuse", "gcs-download", "internet")

    def render(self, r: RenderInputs) -> tuple[list[str], dict[str, str]]:
        args = [
            "--host",
            "0.0.0.0",
            "--port",
            str(PORT),
            "-m",
            r.model_path,
            "-c",
            str(r.context * r.parallel),
            "-np",
            str(r.parallel),
            "-ngl",
            "999",
            "-fa",
            "on",
            "-ctk",
            r.kv_type,
            "-ctv",
            r.kv_type,
        ]
        if r.slot_save_path:
            args += ["--slot-save-path", r.slot_save_path]
        args += llama_cpp_mmap_args(r.model_path)  # R7: --no-mmap where the loading method reads better (loading.py)
        return args, {}

    def build_args(
        self, serving: ServingSettings, engine_args: list[str], pin_args: dict[str, str], upstream_cache: str
    ) -> dict[str, str]:
        """``PROMPT_CACHE`` and, only when it is on, ``ENGINE_ARGS``: the prompt-cache stage runs llama-server with
        the service's flags (R2), on a build machine without a GPU (``-ngl 0``). Without the cache the flags are
        not a build input, so run-time settings never rebuild the image (issue 19 item 4)."""
        out = super().build_args(serving, engine_args, pin_args, upstream_cache)
        out["PROMPT_CACHE"] = "1" if serving.engine.prompt_cache else "0"
        if serving.engine.prompt_cache:
            out["ENGINE_ARGS"] = shlex.join([a if a != "999" else "0" for a in engine_args])
        return out

    def served_name_from_config(self, args: list[str], env: dict[str, str]) -> str:
        return flag_value(args, "--alias") or flag_value(args, "-m") or ""

    def parallel_from_config(self, args: list[str], env: dict[str, str]) -> int:
        return int(flag_value(args, "-np") or 0)

    def memory_from_config(self, args: list[str], env: dict[str, str]) -> dict[str, float]:
        return {"ctx_size": int(flag_value(args, "-c") or 0), "parallel": int(flag_value(args, "-np") or 0)}


LLAMA_CPP = LlamaCppProfile()

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
from cloudrun_gpu.engines.logs import NUM, LogFacts, last, size_bytes
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
    log_detect_order: ClassVar[int] = 100
    """Asked last: its runtime's lines also appear in Ollama's log, and a log no other profile claims is read
    as llama.cpp's (calibrate's rule before the profiles)."""

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

    def recognises_log(self, text: str) -> bool:
        return True  # the fallback (log_detect_order)

    def parse_log(self, text: str) -> LogFacts:
        facts = LogFacts(engine=self.name)
        read_llama_cpp_log(text, facts)
        return facts

    def parallel_from_config(self, args: list[str], env: dict[str, str]) -> int:
        return int(flag_value(args, "-np") or 0)

    def memory_from_config(self, args: list[str], env: dict[str, str]) -> dict[str, float]:
        return {"ctx_size": int(flag_value(args, "-c") or 0), "parallel": int(flag_value(args, "-np") or 0)}


LLAMA_CPP = LlamaCppProfile()


def read_llama_cpp_log(text: str, f: LogFacts) -> None:
    """llama.cpp's runtime lines (llama-server's own log, and the runner inside Ollama): the KV cache, its cells,
    slots and type, the micro-batch, and the CUDA model and compute buffers."""
    # llama.cpp ≥ mid-2025: "llama_kv_cache: size = 112.00 MiB (2048 cells, 28 layers, 4/1 seqs), K (f16): …".
    # The numbers are kv_size, the layers, n_seq_max and n_stream (src/llama-kv-cache.cpp, the LLAMA_LOG_INFO after
    # the buffers are allocated): kv_size is the cells of ONE stream, and a non-unified cache (llama-server's
    # kv_unified = 'false') keeps one stream per sequence, so `-c 2048 -np 2` prints "1024 cells, 2/2 seqs". The
    # context the server ran is kv_size × n_stream, its slots n_seq_max (tests/data/recorded/llamacpp-smollm2-*.log).
    if m := last(
        r"llama_kv_cache(?:_unified)?:\s+size =\s+"
        + NUM
        + r" MiB \(\s*(\d+) cells,\s+(\d+) layers,\s+(\d+)/(\d+) seqs\),"
        r" K \((\w+)\)",
        text,
    ):
        f.kv_bytes = size_bytes(m.group(1), "MiB")
        f.ctx_size = int(m.group(2)) * int(m.group(5))
        f.parallel = int(m.group(4))
        f.kv_cache_dtype = m.group(6)
    elif m := last(r"KV self size\s+=\s+" + NUM + r" MiB, K \((\w+)\)", text):
        f.kv_bytes = size_bytes(m.group(1), "MiB")
        f.kv_cache_dtype = m.group(2)
    elif m := last(r"CUDA0 KV buffer size =\s+" + NUM + r" MiB", text):
        f.kv_bytes = size_bytes(m.group(1), "MiB")
    if m := last(r"n_ctx\s+=\s+(\d+)", text):
        f.ctx_size = f.ctx_size or int(m.group(1))
    if m := last(r"n_seq_max\s+=\s+(\d+)", text):
        f.parallel = f.parallel or int(m.group(1))
    if m := last(r"n_ubatch\s+=\s+(\d+)", text):
        f.n_ubatch = int(m.group(1))
    if m := last(r"CUDA0 model buffer size =\s+" + NUM + r" MiB", text):
        f.weights_bytes = size_bytes(m.group(1), "MiB")
    if m := last(r"CUDA0 compute buffer size =\s+" + NUM + r" MiB", text):
        f.compute_bytes = size_bytes(m.group(1), "MiB")

"""vLLM's OpenAI-compatible server (pins in ``cloudrun_gpu.images``: v0.14.1 on the RTX PRO 6000, Google's DLC on
the L4).

Every flag rendered here exists, spelled exactly, in vLLM v0.14.1's parser (``tests/data/engine-flags/
vllm-v0.14.1.txt``, extracted from ``vllm/engine/arg_utils.py`` and ``vllm/entrypoints/openai/cli_args.py``).
Exactness matters: vLLM's ``FlexibleArgumentParser`` (``vllm/utils/argparse_utils.py``) passes no
``allow_abbrev``, so argparse also accepts a unique prefix; ``--kv-cache-memory`` worked only as an abbreviation of
``--kv-cache-memory-bytes`` (arg_utils.py ``cache_group.add_argument("--kv-cache-memory-bytes", …)``), and any new
flag sharing that prefix would have broken the start.

The served name: "If not specified, the model name will be the same as the ``--model`` argument" (ModelConfig
``served_model_name``, vllm/config/model.py at v0.14.1). gcs-stream's ``--model gs://$(MODEL_BUCKET)/…`` is
expanded by Cloud Run (``engines.base``), so without ``--served-model-name`` vLLM serves the *expanded* bucket
path while a client only knows the literal one: prod's first request was a 404. We always render
``--served-model-name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from cloudrun_gpu.engines.base import EngineProfile, RenderInputs, flag_value
from cloudrun_gpu.sizing.engines import PORT, STREAMED_MODEL_PREFIX, VLLM_DEFAULT_BATCHED_TOKENS, streamer_extra_config

if TYPE_CHECKING:
    from cloudrun_gpu.service.plan import ServingSettings

KV_CACHE_MEMORY_FLAG = "--kv-cache-memory-bytes"
"""The exact flag (vLLM ≥ 0.11, PR #21489); vLLM's own log advice spells it ``--kv-cache-memory=…`` (an
abbreviation argparse accepts), which ``stack/calibrate.py`` reads from logs."""


class VllmProfile(EngineProfile):
    name: ClassVar[str] = "vllm"
    image_repository: ClassVar[str] = "vllm"
    dockerfile: ClassVar[str] = "vllm/Dockerfile"
    loading_methods: ClassVar[tuple[str, ...]] = ("image", "gcs-fuse", "gcs-download", "internet", "gcs-stream")
    flag_table: ClassVar[str | None] = "vllm-v0.14.1.txt"
    model_is_directory: ClassVar[bool] = True
    parallel_cap_note: ClassVar[str] = (
        "our cap until a load test; vLLM's own OpenAI-server --max-num-seqs default is 256 below 70 GiB of GPU "
        "memory and 1024 from 70 GiB (EngineArgs.get_batch_defaults, vllm/engine/arg_utils.py at v0.14.1); we "
        "always render --max-num-seqs"
    )

    def render(self, r: RenderInputs) -> tuple[list[str], dict[str, str]]:
        args = [
            "--model",
            r.model_path,
            "--served-model-name",
            r.served_model_name or r.model_path,
            "--host",
            "0.0.0.0",
            "--port",
            str(PORT),
            "--max-model-len",
            str(r.context),
            "--max-num-seqs",
            str(r.parallel),
            "--gpu-memory-utilization",
            f"{r.memory_fraction:.2f}",
            "--kv-cache-dtype",
            r.kv_type,
            "--enable-prefix-caching",
            "--enable-chunked-prefill",
            "--max-num-batched-tokens",
            str(r.max_num_batched_tokens or VLLM_DEFAULT_BATCHED_TOKENS),
        ]
        if r.model_path.startswith(STREAMED_MODEL_PREFIX):
            # gcs-stream: the Run:ai Model Streamer reads the safetensors from Cloud Storage into GPU memory.
            args += ["--load-format", "runai_streamer", "--model-loader-extra-config", streamer_extra_config()]
        if r.kv_cache_memory_bytes is not None:
            # vLLM ≥ 0.11: the KV pool is exactly the plan's number, not what its profile happens to find.
            args += [KV_CACHE_MEMORY_FLAG, str(r.kv_cache_memory_bytes)]
        return args, {}

    def build_args(
        self, serving: ServingSettings, engine_args: list[str], pin_args: dict[str, str], upstream_cache: str
    ) -> dict[str, str]:
        """``VLLM_IMAGE`` as a full reference: a Docker Hub image (vllm/vllm-openai) through the remote cache when
        there is one, else docker.io; an image already in Artifact Registry (Google's DLC) as pinned."""
        ref = pin_args["VLLM_IMAGE"]
        if "." in ref.split("/")[0]:
            return {}
        return {"VLLM_IMAGE": f"{upstream_cache or 'docker.io'}/{ref}"}

    def served_model_name(self, model_path: str, file: str, hub_id: str | None, method: str) -> str:
        """The hub id for the internet method, else ``model.file`` (the model directory's name): never a path
        Cloud Run rewrites."""
        return hub_id if method == "internet" and hub_id else file

    def served_name_from_config(self, args: list[str], env: dict[str, str]) -> str:
        return flag_value(args, "--served-model-name") or flag_value(args, "--model") or ""

    def parallel_from_config(self, args: list[str], env: dict[str, str]) -> int:
        return int(flag_value(args, "--max-num-seqs") or 0)

    def memory_from_config(self, args: list[str], env: dict[str, str]) -> dict[str, float]:
        out: dict[str, float] = {
            "max_model_len": int(flag_value(args, "--max-model-len") or 0),
            "max_num_seqs": int(flag_value(args, "--max-num-seqs") or 0),
            "max_num_batched_tokens": int(flag_value(args, "--max-num-batched-tokens") or VLLM_DEFAULT_BATCHED_TOKENS),
            "gpu_memory_utilization": float(flag_value(args, "--gpu-memory-utilization") or 0.9),
        }
        kv = flag_value(args, KV_CACHE_MEMORY_FLAG)
        if kv is not None:
            out["kv_cache_memory"] = int(kv)
        return out


VLLM = VllmProfile()

"""Built-in model catalogue: geometry from the published config.json files.

Values were copied from ``architectures.csv`` (each row names its config.json) and re-checked
by recomputing the CSV's KV bytes/token columns in ``tests/test_catalogue.py``. A catalogue
model has no file, so its weight bytes come from parameters × bits-per-weight.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing.spec import ModelSpec, windows_from_pattern


@dataclass(frozen=True)
class _Row:
    hf_id: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_ctx: int
    params_b: float
    window: int | None = None
    pattern: int = 1
    tied: bool = False
    mla_latent: int = 0
    note: str = ""
    experts: tuple[int, int, int] = (0, 0, 0)
    """Mixture of experts: (routed experts, experts per token, one expert's MLP width) from config.json
    (``num_local_experts``/``num_experts``, ``num_experts_per_tok``, ``intermediate_size`` — the per-expert width
    in Mixtral and gpt-oss configs); (0, 0, 0) for a dense model."""


_ROWS: dict[str, _Row] = {
    "llama-3.1-8b": _Row("meta-llama/Llama-3.1-8B-Instruct", 32, 4096, 32, 8, 128, 128256, 131072, 8.03),
    "llama-3.1-70b": _Row("meta-llama/Llama-3.1-70B-Instruct", 80, 8192, 64, 8, 128, 128256, 131072, 70.6),
    "llama-3.2-1b": _Row("meta-llama/Llama-3.2-1B-Instruct", 16, 2048, 32, 8, 64, 128256, 131072, 1.24, tied=True),
    "llama-3.2-3b": _Row("meta-llama/Llama-3.2-3B-Instruct", 28, 3072, 24, 8, 128, 128256, 131072, 3.21, tied=True),
    "gemma-2-9b": _Row("google/gemma-2-9b-it", 42, 3584, 16, 8, 256, 256000, 8192, 9.24, 4096, 2, tied=True),
    "gemma-2-27b": _Row("google/gemma-2-27b-it", 46, 4608, 32, 16, 128, 256000, 8192, 27.2, 4096, 2, tied=True),
    "gemma-3-270m": _Row("google/gemma-3-270m", 18, 640, 4, 1, 256, 262144, 32768, 0.268, 512, 6, tied=True),
    "gemma-3-1b": _Row("google/gemma-3-1b-it", 26, 1152, 4, 1, 256, 262144, 32768, 1.0, 512, 6, tied=True),
    "gemma-3-4b": _Row(
        "google/gemma-3-4b-it",
        34,
        2560,
        8,
        4,
        256,
        262208,
        131072,
        4.3,
        1024,
        6,
        tied=True,
        note="multimodal: includes the ~0.4 B SigLIP vision tower",
    ),
    "gemma-3-12b": _Row("google/gemma-3-12b-it", 48, 3840, 16, 8, 256, 262208, 131072, 12.2, 1024, 6, tied=True),
    "gemma-3-27b": _Row("google/gemma-3-27b-it", 62, 5376, 32, 16, 128, 262208, 131072, 27.4, 1024, 6, tied=True),
    "qwen2.5-7b": _Row("Qwen/Qwen2.5-7B-Instruct", 28, 3584, 28, 4, 128, 152064, 32768, 7.62),
    "qwen2.5-14b": _Row("Qwen/Qwen2.5-14B-Instruct", 48, 5120, 40, 8, 128, 152064, 32768, 14.7),
    "qwen2.5-32b": _Row("Qwen/Qwen2.5-32B-Instruct", 64, 5120, 40, 8, 128, 152064, 32768, 32.5),
    "qwen2.5-72b": _Row("Qwen/Qwen2.5-72B-Instruct", 80, 8192, 64, 8, 128, 152064, 32768, 72.7),
    "qwen3-8b": _Row("Qwen/Qwen3-8B", 36, 4096, 32, 8, 128, 151936, 40960, 8.2),
    "qwen3-32b": _Row(
        "Qwen/Qwen3-32B", 64, 5120, 64, 8, 128, 151936, 40960, 32.8, note="head_dim 128 != hidden/heads (80)"
    ),
    "mistral-7b-v0.3": _Row("mistralai/Mistral-7B-Instruct-v0.3", 32, 4096, 32, 8, 128, 32768, 32768, 7.25),
    "mixtral-8x7b": _Row(
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        32,
        4096,
        32,
        8,
        128,
        32000,
        32768,
        46.7,
        note="MoE: all 8 experts stay resident, so weights count all 46.7 B parameters",
        experts=(8, 2, 14336),
    ),
    "phi-3-mini-4k": _Row("microsoft/Phi-3-mini-4k-instruct", 32, 3072, 32, 32, 96, 32064, 4096, 3.82),
    "phi-4-mini": _Row("microsoft/Phi-4-mini-instruct", 32, 3072, 24, 8, 128, 200064, 131072, 3.84, tied=True),
    "deepseek-r1-distill-qwen-7b": _Row(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 28, 3584, 28, 4, 128, 152064, 131072, 7.62
    ),
    "gpt-oss-20b": _Row(
        "openai/gpt-oss-20b",
        24,
        2880,
        64,
        8,
        64,
        201088,
        131072,
        20.9,
        128,
        2,
        note="MoE, MXFP4 experts; attention sinks",
        experts=(32, 4, 2880),
    ),
    "gpt-oss-120b": _Row(
        "openai/gpt-oss-120b",
        36,
        2880,
        64,
        8,
        64,
        201088,
        131072,
        116.8,
        128,
        2,
        note="MoE, MXFP4 experts",
        experts=(128, 4, 2880),
    ),
    "deepseek-v3": _Row(
        "deepseek-ai/DeepSeek-V3",
        61,
        7168,
        128,
        1,
        0,
        129280,
        163840,
        671.0,
        mla_latent=576,
        note="MLA: one 576-element latent (kv_lora_rank 512 + rope 64) per layer per token",
    ),
}


def catalogue_names() -> list[str]:
    return sorted(_ROWS)


def catalogue_model(name: str, *, field: str = "model.name") -> ModelSpec:
    """The catalogue entry ``name`` (case-insensitive) as a :class:`ModelSpec`.

    ``field`` is what the user wrote (``model.name`` in a stack file, ``--model`` on the CLI), so
    the error points at it. A non-string name (``name: 8`` in YAML parses as an int) is refused
    here rather than failing with an AttributeError on ``.strip()``.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    row = _ROWS.get(key) if key is not None else None
    if row is None:
        raise ConfigError(
            field,
            name,
            "not in the built-in catalogue" if key is not None else "is not a model name (a string)",
            "use a catalogue name, or point model.gguf / model.hf_config at the model's own files",
            allowed=", ".join(catalogue_names()),
        )
    return ModelSpec(
        name=key,
        architecture=row.hf_id.split("/")[-1],
        n_layers=row.layers,
        hidden_size=row.hidden,
        n_heads=row.heads,
        kv_heads=(row.kv_heads,) * row.layers,
        head_dim_k=row.head_dim,
        head_dim_v=row.head_dim,
        vocab_size=row.vocab,
        max_context=row.max_ctx,
        n_params=round(row.params_b * 1e9),
        layer_windows=windows_from_pattern(row.layers, row.window, row.pattern),
        mla_latent_dim=row.mla_latent,
        tied_embeddings=row.tied,
        n_experts=row.experts[0],
        experts_per_token=row.experts[1],
        expert_intermediate_size=row.experts[2],
        source=f"catalogue: https://huggingface.co/{row.hf_id}/blob/main/config.json",
        notes=(row.note,) if row.note else (),
    )

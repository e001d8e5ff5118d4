"""Bytes per element for weights and KV caches.

GGML block sizes are those of ``gguf.GGML_QUANT_SIZES`` (bits include block scales);
file types are *mixes*, so their bits-per-weight are the averages llama.cpp prints for
Llama-class models (llm-sizing §1.1). A file on disk always beats these figures: readers
sum real tensor bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

# KV cache element sizes: (block elements, block bytes).
KV_TYPES: dict[str, tuple[int, int]] = {
    "f16": (1, 2),
    "auto": (1, 2),  # vLLM: the model dtype (BF16/FP16 checkpoints)
    "bf16": (1, 2),
    "q8_0": (32, 34),
    "q4_0": (32, 18),
    "fp8": (1, 1),
}


def kv_row_bytes(kv_type: str, n_elements: int) -> int:
    """Bytes of one cache row of ``n_elements`` (ggml_row_size for block types)."""
    block, size = KV_TYPES[kv_type]
    return -(-n_elements // block) * size


@dataclass(frozen=True)
class WeightQuant:
    name: str
    bits_per_weight: float
    embeddings_bits: float | None = None
    """Bits for embeddings/lm_head when they stay in higher precision (AWQ/GPTQ/FP8 checkpoints)."""
    engines: tuple[str, ...] = ("llama.cpp", "ollama")
    note: str = ""
    attention_bits: float | None = None
    """Bits for the attention projections when only the MLP/expert weights are quantised (gpt-oss MXFP4)."""


WEIGHT_QUANTS: dict[str, WeightQuant] = {
    q.name: q
    for q in (
        WeightQuant("Q4_K_M", 4.89, note="llama.cpp prints 4.89 BPW for Llama-3.1-8B Q4_K_M"),
        WeightQuant("Q4_0", 4.5),
        WeightQuant("Q5_K_M", 5.69),
        WeightQuant("Q6_K", 6.5625),
        WeightQuant("Q8_0", 8.5),
        WeightQuant("F16", 16.0, engines=("llama.cpp", "ollama")),
        WeightQuant("MXFP4", 4.34, note="gpt-oss-120b MXFP4 GGUF prints 4.34 BPW"),
        WeightQuant(
            "awq-int4",
            4.25,
            embeddings_bits=16,
            engines=("vllm",),
            note="4-bit + per-group fp16 scales (group 128); embeddings stay BF16",
        ),
        WeightQuant(
            "gptq-int4",
            4.25,
            embeddings_bits=16,
            engines=("vllm",),
            note="4-bit + fp16 scale and 4-bit zero per group of 128; vLLM loads Phi-4 GPTQ as 8.51 GiB (we size 8.66)",
        ),
        WeightQuant(
            "w4a16",
            4.25,
            embeddings_bits=16,
            engines=("vllm",),
            note="compressed-tensors pack-quantized int4, group 128 (4.125 bit symmetric, 4.25 with zero points)",
        ),
        WeightQuant(
            "w8a8-int8",
            8.0,
            embeddings_bits=16,
            engines=("vllm",),
            note="compressed-tensors int8 per-channel; Llama-3.1-70B loads as 67.72 GiB (vllm PR #12569), we size 67.8",
        ),
        WeightQuant("fp8", 8.0, embeddings_bits=16, engines=("vllm",)),
        WeightQuant(
            "mxfp4",
            4.7,
            embeddings_bits=16,
            attention_bits=16,
            engines=("vllm",),
            note=(
                "gpt-oss: MoE experts MXFP4 (4.25 bit nominal, 32 values + 1 scale byte), attention and "
                "embeddings BF16; "
                "vLLM holds the experts at ~4.7 bit after its kernel layout (gpt-oss-20b loads as 13.47 GiB on H100, "
                "13.72 GiB on A100; 4.25 bit would be 12.80 GiB)"
            ),
        ),
        WeightQuant("bf16", 16.0, engines=("vllm",)),
    )
}

FOUR_BIT_DEFAULT = {"llama.cpp": "Q4_K_M", "ollama": "Q4_K_M", "vllm": "awq-int4"}
"""Practice B2: 4-bit weights unless told otherwise."""

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
                "sized in the layout of vLLM's MXFP4 kernel when the expert width is known (mxfp4_expert_bytes); "
                "4.7 bit is the fallback for an MoE without a declared expert width (gpt-oss-20b loads as 13.47 GiB "
                "on H100, 13.72 GiB on A100; 4.25 bit would be 12.80 GiB)"
            ),
        ),
        WeightQuant("bf16", 16.0, engines=("vllm",)),
    )
}

# --- MXFP4 experts as vLLM lays them out per kernel (gpt-oss) ------------------------------------------------
MXFP4_BLOCK = 32
"""Values per MXFP4 scale byte (``mxfp4_block = 32``, vllm/model_executor/layers/quantization/mxfp4.py:152 of the
v0.10.1.1 sdist)."""
MXFP4_BACKENDS = ("marlin", "triton", "flashinfer")
"""The MXFP4 MoE kernels whose weight layouts :func:`mxfp4_expert_bytes` follows (vLLM's ``Mxfp4Backend``)."""
MXFP4_TRITON_SCALE_ROWS = 2 * 8 * 2 * 8
"""``SWIZZLE_ALIGN_M = 2 * num_warps * 2 * 8`` with ``num_warps = 8`` (vLLM passes 8 outside batched expert
parallelism, mxfp4.py:398-401 of v0.10.1.1): triton_kernels' ``HopperMXScaleLayout.swizzle_data`` pads the scale
rows to it (python/triton_kernels/triton_kernels/tensor_details/layout_details/hopper_scale.py)."""
VLLM_MXFP4_TRITON_BELOW_SM110_SINCE = (0, 14, 1)
"""v0.14.1 offers the Triton MXFP4 kernel only on ``(9, 0) <= get_device_capability() < (11, 0)`` ("SM120 needs this
fix: triton-lang/triton#8498", quantization/mxfp4.py:153-166); v0.10.1.1 and v0.11.0 sent only GPUs below SM90 to
Marlin (mxfp4.py:123-135 of v0.10.1.1, :95-102 of v0.11.0), so an SM120 part could run Triton there."""


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


def mxfp4_expert_bytes(backend: str, *, n_layers: int, n_experts: int, hidden: int, intermediate: int) -> int:
    """GPU bytes of a mixture of experts' MXFP4 expert weights after vLLM's ``process_weights_after_loading``.

    ``Mxfp4MoEMethod.create_weights`` (vllm/model_executor/layers/quantization/mxfp4.py:137-260 of the v0.10.1.1
    sdist; the same shapes in v0.14.1:275-330 and v0.19.0 ``fused_moe/oracle/mxfp4.py:375-400``) makes per layer
    ``w13_weight`` (E, 2·I, H/2) and ``w2_weight`` (E, H, I/2) uint8 (two 4-bit values a byte), one uint8 scale per
    32 values (``w13_weight_scale`` (E, 2·I, H/32), ``w2_weight_scale`` (E, H, I/32)) and bf16 biases (E, 2·I) and
    (E, H), with I and H padded per kernel:

    - ``marlin`` (GPUs below compute capability 9.0, or ``VLLM_MXFP4_USE_MARLIN``): I to a multiple of 128, H to
      256 ("The moe marlin kernel requires that for each linear n % 256 == 0 and k % 128 == 0", :156-167);
      ``prepare_moe_fp4_layer_for_marlin`` repacks the weights to the same size, the scales to float8_e8m0 (1 B)
      and the biases stay bf16 (utils/marlin_utils_fp4.py:195-297).
    - ``triton`` (SM90-SM10x with ``triton_kernels``): I to 64, H unpadded (:185-186); the biases become fp32
      (``layer.w13_bias.to(torch.float32)``, :390-394); ``_swizzle_mxfp4`` writes new weight and scale tensors and
      vLLM deletes only the old *weights* (``del layer.w13_weight``, :417-420), so the original scales stay
      resident beside the swizzled ones, whose rows are padded to :data:`MXFP4_TRITON_SCALE_ROWS`.
    - ``flashinfer`` (SM100 with FlashInfer): I and H to 256 (:174-180), fp32 biases (:307-308), scales shuffled
      in place of the old ones.

    Checks: gpt-oss-120b Triton 64.30 GiB in all vs "Model loading took 64.38 GiB" (H100), Marlin 65.90 vs 65.97
    (vllm-project/vllm#23278); gpt-oss-20b Triton 13.41 vs 13.47, Marlin 13.67 vs 13.72 (docs/sizing-evidence.md).
    The ~0.06 GiB left over in each is below the weights spread of the dense rows (RoPE caches and the like).
    """
    e, h, i = n_experts, hidden, intermediate
    if backend == "marlin":
        i, h = _round_up(i, 128), _round_up(h, 256)
    elif backend == "flashinfer":
        i, h = _round_up(i, 256), _round_up(h, 256)
    elif backend == "triton":
        i = _round_up(i, 64)
    else:
        raise ValueError(f"unknown MXFP4 backend {backend!r}; one of {MXFP4_BACKENDS}")
    values = e * (2 * i * h + h * i) // 2
    scales = e * (2 * i * h + h * i) // MXFP4_BLOCK
    bias = e * (2 * i + h) * (2 if backend == "marlin" else 4)
    if backend == "triton":
        swizzled = e * (_round_up(2 * i, MXFP4_TRITON_SCALE_ROWS) * h + _round_up(h, MXFP4_TRITON_SCALE_ROWS) * i)
        scales += swizzled // MXFP4_BLOCK
    return n_layers * (values + scales + bias)


def mxfp4_backends(compute_capability: tuple[int, int] | None, version: tuple[int, int, int] | None) -> tuple[str, ...]:
    """The MXFP4 kernels vLLM may pick on this GPU and release (the plan charges the largest layout among them).

    ``Mxfp4MoEMethod._should_use_marlin`` (mxfp4.py:123-135 of v0.10.1.1), ``get_mxfp4_backend`` (v0.11.0
    mxfp4.py:59-107; v0.14.1:107-172) and ``select_mxfp4_moe_backend`` (v0.19.0 fused_moe/oracle/mxfp4.py:197-370):
    below compute capability 9.0 always Marlin; SM100 FlashInfer where installed; SM90 Triton when
    ``triton_kernels`` imports and the kernel accepts the configuration, else Marlin (or FlashInfer's CUTLASS path,
    a smaller layout) — vLLM 0.19.0 on an H100 loaded gpt-oss-20b as 13.64 GiB, Marlin's layout, where the llm-d
    H100 runs loaded Triton's 13.47 (docs/sizing-evidence.md); SM120 (the RTX PRO 6000) Marlin from v0.14.1
    (:data:`VLLM_MXFP4_TRITON_BELOW_SM110_SINCE`). An unknown GPU may get any layout."""
    if compute_capability is None or compute_capability[0] == 10:
        return MXFP4_BACKENDS
    if compute_capability < (9, 0):
        return ("marlin",)
    if compute_capability >= (11, 0) and version is not None and version >= VLLM_MXFP4_TRITON_BELOW_SM110_SINCE:
        return ("marlin",)
    return ("triton", "marlin")


FOUR_BIT_DEFAULT = {"llama.cpp": "Q4_K_M", "ollama": "Q4_K_M", "vllm": "awq-int4"}
"""Practice B2: 4-bit weights unless told otherwise."""

"""What the sizing engine needs to know about a model, whatever it was read from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

from cloudrun_gpu.errors import ConfigError

# Upper bounds far above any published model (the largest have < 200 layers, 128 heads, hidden
# 16-25 k, vocabularies of 262 k, ~2 T parameters). They exist so that a corrupt or hostile file
# declaring e.g. 10**12 layers is refused with a ConfigError instead of building a 10**12-entry
# tuple (MemoryError) or overflowing a float in the weights formula.
MAX_LAYERS = 4096
MAX_HEADS = 65_536
MAX_DIM = 1 << 20
"""Hidden size, head dimension, MLA latent and FFN width."""
MAX_VOCAB = 1 << 24
MAX_CONTEXT = 1 << 30
MAX_PARAMS = 10**15
MAX_EXPERTS = 1 << 16
"""Routed experts per layer (DeepSeek-V3 256, Qwen3-MoE 128, gpt-oss 32/128)."""
MAX_WEIGHTS_BYTES = 1 << 52
"""4 PiB: anything larger is a corrupt header, not a model."""


@dataclass(frozen=True)
class ModelSpec:
    """Model geometry for memory sizing.

    Per-layer tuples make GQA with varying head counts, sliding-window layers (Gemma 2/3,
    gpt-oss) and MLA (one latent per layer instead of K and V) one formula.
    """

    name: str
    architecture: str
    n_layers: int
    hidden_size: int
    n_heads: int
    kv_heads: tuple[int, ...]
    """KV heads per layer (GQA); 0 for a layer without its own cache."""
    head_dim_k: int
    head_dim_v: int
    vocab_size: int
    max_context: int
    n_params: int
    layer_windows: tuple[int | None, ...]
    """Sliding window per layer; None = full attention."""
    mla_latent_dim: int = 0
    """MLA: kv_lora_rank + qk_rope_head_dim elements cached per layer per token (K=V=latent)."""
    weights_bytes: int | None = None
    """Exact tensor bytes when read from a file; None means derive from bits-per-weight."""
    weights_quant: str | None = None
    """Quantisation as stored (e.g. GGUF file type); None for catalogue models."""
    tied_embeddings: bool = False
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    head_dims_k: tuple[int, ...] = ()
    """K elements per head, per layer, when layers differ (Gemma 4: ``head_dim`` 256 on sliding layers,
    ``global_head_dim`` 512 on full-attention ones; GGUF ``key_length_swa`` / ``key_length``). Empty: every
    layer has ``head_dim_k``."""
    head_dims_v: tuple[int, ...] = ()
    """V elements per head, per layer (GGUF ``value_length_swa`` / ``value_length``); empty: ``head_dim_v``."""
    kv_shared_layers: int = 0
    """The last N layers reuse an earlier layer's K/V and allocate no cache of their own (Gemma 3n / Gemma 4
    ``num_kv_shared_layers``, GGUF ``<arch>.attention.shared_kv_layers``): llama.cpp ``has_kv(il)`` is
    ``il < n_layer - shared`` (src/llama-hparams.cpp), vLLM's KV cache manager "ignores all layers with kv
    sharing" (docs/design/hybrid_kv_cache_manager.md, Case 5), Ollama's engine points those layers at an
    earlier layer's cache (model/models/gemma3n/model_text.go:48-56 at v0.12.3)."""
    intermediate_size: int = 0
    """Dense MLP width (config.json ``intermediate_size``, GGUF ``<arch>.feed_forward_length``); 0 when unknown
    (estimated from the parameter count). For a mixture of experts: the width of its dense layers, if any."""
    n_experts: int = 0
    """Routed experts per MoE layer (``num_experts`` / ``num_local_experts`` / ``n_routed_experts``, GGUF
    ``<arch>.expert_count``); 0 for a dense model. Every expert stays resident (weights), but a token only runs
    through ``experts_per_token`` of them (activation)."""
    experts_per_token: int = 0
    """Experts each token is routed to (``num_experts_per_tok``, GGUF ``<arch>.expert_used_count``)."""
    expert_intermediate_size: int = 0
    """One expert's MLP width (``moe_intermediate_size``, or ``intermediate_size`` in Mixtral/gpt-oss configs;
    GGUF ``<arch>.expert_feed_forward_length``); 0 when unknown (estimated from the parameter count)."""
    shared_expert_intermediate_size: int = 0
    """Width of the always-on shared expert(s) (Qwen2-MoE ``shared_expert_intermediate_size``, DeepSeek
    ``n_shared_experts × moe_intermediate_size``, Llama 4); 0 when the model has none."""
    host_input_bytes: int = 0
    """Bytes of a GGUF's input tables (``token_embd``, ``position_embd``, ``token_types``) that llama.cpp and Ollama
    keep on the CPU: llama.cpp ``dev_input = { cpu_dev, … }`` "there is very little benefit to offloading the input
    layer" (src/llama-model.cpp:1604-1605 in the llama.cpp that llama-cpp-python 0.3.36 vendors; the tensors are
    ``LLM_TENSOR_LAYER_INPUT``, src/llama-arch.cpp:728-730), Ollama ``// inputs always use cpu``
    (ml/backend/ggml/ggml.go). A tied ``token_embd`` also serves as the output head, which both put on the GPU, so it
    is not counted here. Included in ``weights_bytes``; the plan takes it off the GPU."""
    per_layer_embedding_bytes: int = 0
    """Bytes of a GGUF's ``per_layer_token_embd`` (Gemma 3n / Gemma 4 "E" models): an input table on llama.cpp
    (src/llama-arch.cpp:921, on the CPU), but created on the *output* buffer by Ollama's own engine. Included in
    ``weights_bytes``."""
    tower_bytes: int = 0
    """Bytes of a checkpoint's vision/audio encoder and projector tensors (safetensors names under
    ``vision_tower``, ``vision_model``, ``visual``, ``multi_modal_projector``, ``audio_tower``, ``embed_vision``,
    ``embed_audio``). Included in ``weights_bytes``: vLLM loads them unless ``--language-model-only``, which
    "prevents loading multimodal modules, freeing up GPU memory for KV cache" (vLLM docs, models/multimodal-models)."""

    def __post_init__(self) -> None:
        """Refuse a geometry that cannot be a model, whichever source built it.

        Readers, the catalogue and Python users all construct specs here, so this is the one place
        that guarantees the sizing engine never sizes a zero-layer model as 0 bytes, never divides
        by zero heads, and never meets a per-layer tuple of the wrong length. The error names the
        dataclass field; readers re-raise it under the field the user wrote (``model.gguf``, …).
        """
        _check_str("name", self.name)
        _check_str("architecture", self.architecture)
        _check_int("n_layers", self.n_layers, 1, MAX_LAYERS, "a model has at least one layer")
        _check_int("hidden_size", self.hidden_size, 1, MAX_DIM, "the embedding width of the model")
        _check_int("n_heads", self.n_heads, 1, MAX_HEADS, "attention needs at least one query head")
        _check_int("mla_latent_dim", self.mla_latent_dim, 0, MAX_DIM, "0 unless the model uses MLA")
        # MLA caches one latent instead of K and V heads, so head dimensions may then be 0.
        low_dim = 0 if self.mla_latent_dim else 1
        _check_int("head_dim_k", self.head_dim_k, low_dim, MAX_DIM, "elements per K head")
        _check_int("head_dim_v", self.head_dim_v, low_dim, MAX_DIM, "elements per V head")
        _check_int("vocab_size", self.vocab_size, 0, MAX_VOCAB, "0 when unknown")
        _check_int("max_context", self.max_context, 0, MAX_CONTEXT, "0 when unknown")
        _check_int("n_params", self.n_params, 1, MAX_PARAMS, "a model has parameters")
        _check_per_layer("kv_heads", self.kv_heads, self.n_layers)
        for kv in self.kv_heads:
            _check_int("kv_heads", kv, 0, MAX_HEADS, "KV heads per layer, 0 for a layer without its own cache")
        _check_per_layer("layer_windows", self.layer_windows, self.n_layers)
        for w in self.layer_windows:
            if w is not None:
                _check_int("layer_windows", w, 1, MAX_CONTEXT, "a sliding window in tokens, or None for full attention")
        if self.weights_bytes is not None:
            _check_int("weights_bytes", self.weights_bytes, 1, MAX_WEIGHTS_BYTES, "None to derive from parameters")
        if self.weights_quant is not None:
            _check_str("weights_quant", self.weights_quant)
        if not isinstance(self.tied_embeddings, bool):
            _refuse("tied_embeddings", self.tied_embeddings, "must be True or False", "True or False")
        _check_str("source", self.source)
        if not isinstance(self.notes, tuple) or not all(isinstance(n, str) for n in self.notes):
            _refuse("notes", self.notes, "must be a tuple of strings", "a tuple of str")
        for name, dims in (("head_dims_k", self.head_dims_k), ("head_dims_v", self.head_dims_v)):
            if dims != ():
                _check_per_layer(name, dims, self.n_layers)
                for d in dims:
                    _check_int(name, d, low_dim, MAX_DIM, "elements per head on that layer")
        _check_int(
            "kv_shared_layers",
            self.kv_shared_layers,
            0,
            self.n_layers - 1,
            "trailing layers that reuse an earlier layer's KV; at least one layer must own a cache",
        )
        _check_int("intermediate_size", self.intermediate_size, 0, MAX_DIM, "the dense MLP width, 0 when unknown")
        _check_int("n_experts", self.n_experts, 0, MAX_EXPERTS, "routed experts per layer, 0 for a dense model")
        _check_int(
            "experts_per_token",
            self.experts_per_token,
            1 if self.n_experts > 1 else 0,
            max(self.n_experts, 0),
            "experts each token is routed to: 1..n_experts for a mixture of experts, 0 for a dense model",
        )
        for name in ("expert_intermediate_size", "shared_expert_intermediate_size"):
            _check_int(name, getattr(self, name), 0, MAX_DIM, "an expert's MLP width, 0 when unknown or none")
        for name in ("host_input_bytes", "per_layer_embedding_bytes", "tower_bytes"):
            _check_int(name, getattr(self, name), 0, self.weights_bytes or 0, "bytes within weights_bytes")

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 1

    @property
    def is_mla(self) -> bool:
        return self.mla_latent_dim > 0

    @property
    def n_full_layers(self) -> int:
        return sum(1 for w in self.layer_windows if w is None)

    @property
    def n_kv_layers(self) -> int:
        """Layers that own a KV cache (all but the trailing ``kv_shared_layers``)."""
        return self.n_layers - self.kv_shared_layers

    def owns_kv(self, layer: int) -> bool:
        """Whether ``layer`` allocates its own cache: llama.cpp ``llama_hparams::has_kv`` is
        ``il < n_layer_kv_from_start`` with ``n_layer_kv_from_start = n_layer - shared_kv_layers``."""
        return layer < self.n_kv_layers

    def head_dim_k_at(self, layer: int) -> int:
        return self.head_dims_k[layer] if self.head_dims_k else self.head_dim_k

    def head_dim_v_at(self, layer: int) -> int:
        return self.head_dims_v[layer] if self.head_dims_v else self.head_dim_v

    def kv_elements_per_token(self, layer: int) -> tuple[int, int]:
        """(K elements, V elements) cached per token for one layer; (0, 0) for a layer that reuses an
        earlier layer's cache. Per-layer head sizes follow llama.cpp ``n_embd_k_gqa(il)`` =
        ``n_embd_head_k(il) × n_head_kv(il)``, where ``n_embd_head_k(il)`` is ``is_swa(il) ?
        n_embd_head_k_swa : n_embd_head_k_full`` (src/llama-hparams.cpp)."""
        if not self.owns_kv(layer):
            return 0, 0
        if self.is_mla:
            return self.mla_latent_dim, 0
        n = self.kv_heads[layer]
        return n * self.head_dim_k_at(layer), n * self.head_dim_v_at(layer)


def windows_from_pattern(
    n_layers: int, window: int | None, pattern: int, full_first: bool = False
) -> tuple[int | None, ...]:
    """Per-layer windows for an ``N local : 1 global`` pattern.

    ``pattern`` = layers per group (Gemma 3: 6 → layers 5, 11, … are global; Gemma 2 and
    gpt-oss: 2). ``pattern`` ≤ 1 or no window means every layer is full attention.
    ``full_first`` puts the global layer first in each group (gpt-oss alternates starting
    with a sliding layer, so it is False there too).
    """
    if not window or pattern <= 1:
        return tuple(None for _ in range(n_layers))
    out: list[int | None] = []
    for i in range(n_layers):
        is_global = (i % pattern == 0) if full_first else (i % pattern == pattern - 1)
        out.append(None if is_global else window)
    return tuple(out)


def _refuse(name: str, value: Any, problem: str, allowed: str, want: str = "") -> NoReturn:
    raise ConfigError(
        name,
        value,
        problem,
        f"build the ModelSpec with {name} = {want or allowed}, as the model's config.json or GGUF header gives it",
        allowed=allowed,
    )


def _check_int(name: str, value: Any, low: int, high: int, meaning: str) -> None:
    """Whole numbers only: bools and floats are refused because ``int(True)`` or ``int(2.5)``
    would size a different model than the one written down."""
    allowed = f"{low}..{high} ({meaning})"
    want = f"a whole number in {low}..{high}"
    if isinstance(value, bool) or not isinstance(value, int):
        _refuse(name, value, f"must be a whole number, not {type(value).__name__}", allowed, want)
    elif not low <= value <= high:
        _refuse(name, value, f"is out of range ({meaning})", allowed, want)


def _check_str(name: str, value: Any) -> None:
    if not isinstance(value, str):
        _refuse(name, value, f"must be a string, not {type(value).__name__}", "a str")


def _check_per_layer(name: str, value: Any, n_layers: int) -> None:
    if not isinstance(value, tuple):
        _refuse(name, value, "must be a tuple with one entry per layer", f"a tuple of {n_layers} entries")
    elif len(value) != n_layers:
        _refuse(
            name,
            f"<{len(value)} entries>",
            f"has {len(value)} entries but the model has n_layers = {n_layers}",
            f"a tuple of {n_layers} entries",
        )

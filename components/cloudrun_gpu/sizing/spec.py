"""What the sizing engine needs to know about a model, whatever it was read from."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    def __post_init__(self) -> None:
        if len(self.kv_heads) != self.n_layers or len(self.layer_windows) != self.n_layers:
            raise ValueError(f"{self.name}: per-layer tuples must have n_layers={self.n_layers} entries")

    @property
    def is_mla(self) -> bool:
        return self.mla_latent_dim > 0

    @property
    def n_full_layers(self) -> int:
        return sum(1 for w in self.layer_windows if w is None)

    def kv_elements_per_token(self, layer: int) -> tuple[int, int]:
        """(K elements, V elements) cached per token for one layer."""
        if self.is_mla:
            return self.mla_latent_dim, 0
        n = self.kv_heads[layer]
        return n * self.head_dim_k, n * self.head_dim_v


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

"""Read a model's spec from its own files without loading any weights.

- GGUF: the header via ``gguf.GGUFReader`` (a memory map; tensor data is never touched).
- Hugging Face: ``config.json`` plus the JSON headers of the ``*.safetensors`` files beside it
  (first 8 bytes = header length, then the header; sizes come from ``data_offsets``).
"""

from __future__ import annotations

import json
import struct
from math import prod
from pathlib import Path
from typing import Any

from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing.spec import ModelSpec, windows_from_pattern

# llama.cpp hard-codes some sliding-window patterns that the GGUF does not carry
# (llm-sizing §2.1: gemma3 files have sliding_window but no pattern key).
_GGUF_DEFAULT_SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gpt-oss": 2, "cohere2": 4}
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def refuse_pickle(field: str, path: str) -> None:
    """Practice B3: pickle checkpoints can run code when loaded, so they are never accepted."""
    if path.lower().endswith(_PICKLE_SUFFIXES):
        raise ConfigError(
            field,
            path,
            "is a pickle-format checkpoint, which can execute code when loaded (practice B3)",
            "convert the model to GGUF (llama.cpp's convert_hf_to_gguf.py) or safetensors and point at that file",
            allowed="*.gguf or *.safetensors files",
        )


def _field(reader: Any, key: str) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return None
    value = f.contents()
    return value


def read_gguf(path: str | Path) -> ModelSpec:
    """Spec from a GGUF header; weights are the sum of the real tensor sizes."""
    import gguf  # local import: keeps numpy out of code paths that never read files

    p = Path(path)
    refuse_pickle("model.gguf", str(p))
    if not p.is_file():
        raise ConfigError("model.gguf", str(p), "file not found", "give the path of a local .gguf file")
    try:
        reader = gguf.GGUFReader(str(p), "r")
    except Exception as exc:  # the gguf package raises bare ValueError/struct errors on bad files
        raise ConfigError(
            "model.gguf",
            str(p),
            f"is not a readable GGUF file ({exc})",
            "check the file is complete (GGUF magic, version 2 or 3)",
        ) from exc
    arch = str(_field(reader, "general.architecture"))

    def key(name: str) -> Any:
        return _field(reader, f"{arch}.{name}")

    n_layers = int(key("block_count"))
    hidden = int(key("embedding_length"))
    heads_raw = key("attention.head_count")
    heads = int(max(heads_raw) if isinstance(heads_raw, list) else heads_raw)
    kv_raw = key("attention.head_count_kv")
    if kv_raw is None:
        kv_heads = (heads,) * n_layers
    elif isinstance(kv_raw, list):
        kv_heads = tuple(int(x) for x in kv_raw)
    else:
        kv_heads = (int(kv_raw),) * n_layers
    head_k = int(key("attention.key_length") or hidden // heads)
    head_v = int(key("attention.value_length") or head_k)
    window = key("attention.sliding_window")
    pattern_raw = key("attention.sliding_window_pattern")
    if isinstance(pattern_raw, list):  # per-layer booleans: True = sliding
        windows: tuple[int | None, ...] = tuple(int(window) if s and window else None for s in pattern_raw)
    else:
        pattern = int(pattern_raw) if pattern_raw else _GGUF_DEFAULT_SWA_PATTERN.get(arch, 1)
        windows = windows_from_pattern(n_layers, int(window) if window else None, pattern)
    kv_lora = key("attention.kv_lora_rank")
    mla = int(kv_lora) + int(key("rope.dimension_count") or 0) if kv_lora else 0

    tensors = reader.tensors
    n_params = sum(int(t.n_elements) for t in tensors)
    weights = sum(int(t.n_bytes) for t in tensors)
    vocab = key("vocab_size")
    if vocab is None:
        tokens = reader.fields.get("tokenizer.ggml.tokens")
        vocab = len(tokens.data) if tokens is not None else 0
    file_type = _field(reader, "general.file_type")
    try:
        quant = gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_") if file_type is not None else None
    except ValueError:
        quant = f"file_type {file_type}"
    return ModelSpec(
        name=str(_field(reader, "general.name") or p.stem),
        architecture=arch,
        n_layers=n_layers,
        hidden_size=hidden,
        n_heads=heads,
        kv_heads=kv_heads,
        head_dim_k=head_k,
        head_dim_v=head_v,
        vocab_size=int(vocab),
        max_context=int(key("context_length") or 0),
        n_params=n_params,
        layer_windows=windows,
        mla_latent_dim=mla,
        weights_bytes=weights,
        weights_quant=quant,
        source=f"gguf: {p.name} ({len(tensors)} tensors)",
    )


def read_safetensors_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of one safetensors file (8-byte little-endian length, then JSON)."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header: dict[str, Any] = json.loads(fh.read(n))
    return header


def _hf_windows(cfg: dict[str, Any], n_layers: int) -> tuple[int | None, ...]:
    window = cfg.get("sliding_window")
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and window:
        return tuple(int(window) if t == "sliding_attention" else None for t in layer_types)
    model_type = str(cfg.get("model_type", ""))
    if not window:
        return windows_from_pattern(n_layers, None, 1)
    if model_type.startswith("gemma3"):
        return windows_from_pattern(n_layers, int(window), int(cfg.get("sliding_window_pattern") or 6))
    if model_type == "gemma2":
        return windows_from_pattern(n_layers, int(window), 2)
    if model_type == "mistral" or cfg.get("use_sliding_window"):
        return tuple(int(window) for _ in range(n_layers))  # Mistral v0.1: every layer slides
    return windows_from_pattern(n_layers, None, 1)


def read_hf(config_path: str | Path) -> ModelSpec:
    """Spec from ``config.json``; weight bytes from the safetensors headers beside it, if any."""
    p = Path(config_path)
    if not p.is_file():
        raise ConfigError("model.hf_config", str(p), "file not found", "give the path of a config.json")
    raw = json.loads(p.read_text())
    cfg: dict[str, Any] = raw.get("text_config") or raw  # multimodal checkpoints nest the LM
    try:
        n_layers = int(cfg["num_hidden_layers"])
        hidden = int(cfg["hidden_size"])
        heads = int(cfg["num_attention_heads"])
    except KeyError as exc:
        raise ConfigError(
            "model.hf_config",
            str(p),
            f"has no {exc.args[0]!r}",
            "use the model's own config.json (a decoder LLM config)",
        ) from exc
    kv = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    mla = 0
    if cfg.get("kv_lora_rank"):
        mla = int(cfg["kv_lora_rank"]) + int(cfg.get("qk_rope_head_dim") or 0)
    for pickle_file in sorted(p.parent.glob("*")):
        if pickle_file.suffix in _PICKLE_SUFFIXES and pickle_file.name != "training_args.bin":
            refuse_pickle("model.hf_config", str(pickle_file))
    weights = 0
    n_params = 0
    shards = sorted(p.parent.glob("*.safetensors"))
    for shard in shards:
        for name, meta in read_safetensors_header(shard).items():
            if name == "__metadata__":
                continue
            begin, end = meta["data_offsets"]
            weights += end - begin
            n_params += prod(meta["shape"])
    quant_cfg = raw.get("quantization_config") or {}
    quant = quant_cfg.get("quant_method") or raw.get("torch_dtype") or cfg.get("torch_dtype")
    notes: tuple[str, ...] = ()
    if not shards:
        notes = ("no safetensors beside config.json: weights from parameters × bits-per-weight",)
    return ModelSpec(
        name=str(raw.get("_name_or_path") or p.parent.name),
        architecture=str(cfg.get("model_type") or raw.get("model_type") or "unknown"),
        n_layers=n_layers,
        hidden_size=hidden,
        n_heads=heads,
        kv_heads=(kv,) * n_layers,
        head_dim_k=head_dim,
        head_dim_v=int(cfg.get("v_head_dim") or head_dim),
        vocab_size=int(cfg.get("vocab_size") or raw.get("vocab_size") or 0),
        max_context=int(cfg.get("max_position_embeddings") or 0),
        n_params=n_params or _estimate_params(cfg, n_layers, hidden, heads, kv, head_dim),
        layer_windows=_hf_windows(cfg, n_layers),
        mla_latent_dim=mla,
        weights_bytes=weights or None,
        weights_quant=str(quant) if quant else None,
        tied_embeddings=bool(cfg.get("tie_word_embeddings", raw.get("tie_word_embeddings", False))),
        source=f"hf: {p} + {len(shards)} safetensors header(s)",
        notes=notes,
    )


def _estimate_params(cfg: dict[str, Any], layers: int, hidden: int, heads: int, kv: int, head_dim: int) -> int:
    """Dense-decoder parameter count when no weights are at hand (embeddings + attention + MLP)."""
    ffn = int(cfg.get("intermediate_size") or 4 * hidden)
    vocab = int(cfg.get("vocab_size") or 0)
    attn = hidden * head_dim * (heads + 2 * kv) + heads * head_dim * hidden
    mlp = 3 * hidden * ffn
    embed = vocab * hidden * (1 if cfg.get("tie_word_embeddings") else 2)
    return layers * (attn + mlp) + embed

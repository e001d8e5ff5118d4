"""Session 5 (seed 101) mutation-strength tests for sizing/readers.py: the survivors of its blind sample, each
asserted as the ModelSpec, plan or error a user gets from a config.json and the safetensors beside it. The
checkpoints are written by the safetensors library itself (requirements-dev.txt pins 0.8.0)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import SizingRequest, read_gguf, read_hf, size
from cloudrun_gpu.sizing.engines import intermediate_size_estimate
from cloudrun_gpu.sizing.readers import MAX_CONFIG_BYTES
from safetensors.numpy import save_file

CONFIG: dict[str, Any] = {
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 100,
    "max_position_embeddings": 4096,
}


def _config(folder: Path, **cfg: Any) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps({**CONFIG, **cfg}))
    return path


def test_a_config_json_in_another_encoding_is_refused_naming_the_field_and_the_fix(tmp_path: Path) -> None:
    """A UTF-16 file (what some editors save) is not read as garbage geometry: the error says what the file is."""
    path = tmp_path / "config.json"
    path.write_bytes(json.dumps(CONFIG).encode("utf-16"))
    with pytest.raises(ConfigError) as err:
        read_hf(path)
    assert (err.value.field, err.value.value) == ("model.hf_config", str(path))
    assert err.value.problem == "is not UTF-8 text (a binary file?)"
    assert err.value.fix == "point model.hf_config at the model's own config.json, as published with it"


def test_a_config_without_tie_word_embeddings_is_read_untied_like_its_parameter_estimate(tmp_path: Path) -> None:
    """Absent ``tie_word_embeddings`` reads as untied in the spec, as the parameter estimate beside it already counts
    it (input embeddings and output head: 2 × vocab × hidden), so the MLP width derived from that count and the
    weights from bits-per-weight agree with each other. Written ``true``, both count the table once."""
    untied = read_hf(_config(tmp_path))
    assert untied.tied_embeddings is False
    attn = 2 * (64 * 16 * (4 + 2 * 2) + 4 * 16 * 64)
    assert untied.n_params == attn + 2 * 3 * 64 * 256 + 2 * 100 * 64
    # the dense width the activation is sized with is recovered exactly from that count: 4 × hidden
    assert intermediate_size_estimate(untied) == 256
    plan = size(SizingRequest(model=untied, context_length=1024, weights_quant="F16"))
    assert plan.weights_bytes == untied.n_params * 2
    tied = read_hf(_config(tmp_path, tie_word_embeddings=True))
    assert tied.tied_embeddings is True and tied.n_params == untied.n_params - 100 * 64
    assert intermediate_size_estimate(tied) == 256


def test_deepseeks_shared_experts_are_n_shared_experts_times_one_experts_width(tmp_path: Path) -> None:
    """DeepSeek-V2/V3 declare their always-on experts as a count (``n_shared_experts``) of ``moe_intermediate_size``
    each: two shared experts of 96 run on every token beside the routed ones."""
    cfg = _config(
        tmp_path, model_type="deepseek_v2", n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=96
    )
    save_file({"w": np.zeros((64, 64), dtype=np.float16)}, str(tmp_path / "model.safetensors"))
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "n_shared_experts": 2}))
    spec = read_hf(cfg)
    assert (spec.n_experts, spec.experts_per_token, spec.expert_intermediate_size) == (4, 2, 96)
    assert spec.shared_expert_intermediate_size == 2 * 96
    assert intermediate_size_estimate(spec) == 2 * 96 + 2 * 96  # shared + the two routed experts


def test_a_checkpoints_vision_tower_bytes_are_what_language_model_only_would_free(tmp_path: Path) -> None:
    """Encoder and projector tensors (``vision_tower``, ``multi_modal_projector``) are counted apart from the
    language model's; the header's ``__metadata__`` entry and the LM's own tensors are not."""
    cfg = _config(tmp_path, model_type="llava")
    save_file(
        {
            "language_model.model.layers.0.w": np.zeros((8, 8), dtype=np.float16),  # 128 bytes
            "vision_tower.encoder.w": np.zeros((4, 8), dtype=np.float32),  # 128 bytes
            "multi_modal_projector.linear.w": np.zeros((2, 8), dtype=np.float16),  # 32 bytes
        },
        str(tmp_path / "model.safetensors"),
        metadata={"format": "pt"},
    )
    spec = read_hf(cfg)
    assert spec.weights_bytes == 128 + 128 + 32
    assert spec.tower_bytes == 128 + 32


def test_an_empty_tensor_as_the_safetensors_library_writes_it_is_read(tmp_path: Path) -> None:
    """The safetensors library stores a tensor with a 0-sized dimension as ``data_offsets`` [n, n] (its README:
    "Empty tensors (tensors with 1 dimension being 0) are allowed"); that is a valid checkpoint, not a header
    that disagrees with itself."""
    cfg = _config(tmp_path)
    save_file(
        {"a": np.zeros((2, 3), dtype=np.float16), "empty": np.zeros((0, 4), dtype=np.float16)},
        str(tmp_path / "model.safetensors"),
    )
    data = (tmp_path / "model.safetensors").read_bytes()
    header = json.loads(data[8 : 8 + struct.unpack("<Q", data[:8])[0]])
    begin, end = header["empty"]["data_offsets"]
    assert begin == end  # what the library wrote
    spec = read_hf(cfg)
    assert (spec.n_params, spec.weights_bytes) == (6, 12)


# ------------------------------------------------------------------ seed 111's survivors (blind to the tests above)

VT = gguf.GGUFValueType
GGUF_FIX = (
    "re-download or re-convert the model (llama.cpp's convert_hf_to_gguf.py) and point model.gguf at the complete "
    ".gguf file"
)


def _gguf(path: Path, arch: str, keys: dict[str, tuple[gguf.GGUFValueType, Any]], *, no_arch: bool = False) -> Path:
    """A small GGUF written by gguf-py's own writer: 2 layers of width 64 and 4 heads, plus ``keys`` (names
    without the ``<arch>.`` prefix); ``no_arch`` removes the ``general.architecture`` key the writer adds."""
    w = gguf.GGUFWriter(str(path), arch=arch)
    base = {"block_count": (VT.UINT32, 2), "embedding_length": (VT.UINT32, 64), "attention.head_count": (VT.UINT32, 4)}
    for key, (vtype, value) in {**base, **keys}.items():
        w.add_key_value(f"{arch}.{key}", value, vtype)
    if no_arch:
        w.kv_data[0].pop("general.architecture")
    w.add_tensor("token_embd.weight", np.zeros((32, 64), np.float16))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _gguf_refusal(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        read_gguf(path)
    assert (err.value.field, err.value.value) == ("model.gguf", str(path))
    return err.value


def test_a_file_that_is_not_a_gguf_is_refused_with_the_readers_own_words(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf at all")
    err = _gguf_refusal(bad)
    assert err.problem == "is not a readable GGUF file (ValueError: 'GGUF magic invalid')"
    assert err.allowed == "a complete GGUF file, version 2 or 3 (starts with the magic 'GGUF')"
    assert err.fix == GGUF_FIX


def test_a_gguf_without_its_architecture_key_is_refused_saying_why_it_matters(tmp_path: Path) -> None:
    err = _gguf_refusal(_gguf(tmp_path / "m.gguf", "llama", {}, no_arch=True))
    assert err.problem == "has no 'general.architecture' key, so its model keys cannot be found"
    assert err.fix == GGUF_FIX


def test_an_empty_per_layer_head_count_and_a_non_boolean_swa_pattern_are_refused_by_key(tmp_path: Path) -> None:
    # gguf-py's writer refuses an empty array, so write one head count and set the array's length to 0 by hand
    # (key, then u32 type ARRAY, u32 item type, u64 count, items: the GGUF v3 layout); no tensors follow.
    w = gguf.GGUFWriter(str(tmp_path / "a.gguf"), arch="openelm")
    w.add_key_value("openelm.block_count", 2, VT.UINT32)
    w.add_key_value("openelm.embedding_length", 64, VT.UINT32)
    w.add_key_value("openelm.attention.head_count", [7], VT.ARRAY)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    data = (tmp_path / "a.gguf").read_bytes()
    at = data.index(b"openelm.attention.head_count") + len("openelm.attention.head_count")
    item_type = struct.unpack("<I", data[at + 4 : at + 8])[0]
    assert data[at : at + 20] == struct.pack("<IIQi", VT.ARRAY, item_type, 1, 7)
    empty = tmp_path / "a.gguf"
    empty.write_bytes(data[:at] + struct.pack("<IIQ", VT.ARRAY, item_type, 0) + data[at + 20 :])
    assert _gguf_refusal(empty).problem == "openelm.attention.head_count is an empty list"
    words = _gguf(
        tmp_path / "b.gguf",
        "gemma3",
        {"attention.sliding_window": (VT.UINT32, 512), "attention.sliding_window_pattern": (VT.ARRAY, ["a", "b"])},
    )
    assert _gguf_refusal(words).problem == "gemma3.attention.sliding_window_pattern holds values that are not booleans"


def test_block_count_is_refused_below_one_by_its_own_key_and_one_layer_is_a_model(tmp_path: Path) -> None:
    """The GGUF key's own range (1..4096 transformer layers) answers a 0-layer file, not the ModelSpec check behind
    it; one layer is accepted."""
    err = _gguf_refusal(_gguf(tmp_path / "zero.gguf", "llama", {"block_count": (VT.UINT32, 0)}))
    assert err.problem == "llama.block_count = 0 is out of range (transformer layers)"
    assert err.allowed == "a whole number 1..4096 (transformer layers)"
    one = read_gguf(_gguf(tmp_path / "one.gguf", "llama", {"block_count": (VT.UINT32, 1)}))
    assert (one.n_layers, one.kv_heads) == (1, (4,))


def test_a_gguf_mla_latent_is_kv_lora_rank_plus_the_rotary_dimensions(tmp_path: Path) -> None:
    """DeepSeek-V2/V3 cache one latent per layer of ``kv_lora_rank + qk_rope_head_dim`` elements (512 + 64 in the
    published models; here 32 + 8), so the KV cache per token is that latent × layers × 2 bytes at f16."""
    spec = read_gguf(
        _gguf(
            tmp_path / "mla.gguf",
            "deepseek2",
            {"attention.kv_lora_rank": (VT.UINT32, 32), "rope.dimension_count": (VT.UINT32, 8)},
        )
    )
    assert spec.mla_latent_dim == 40
    plan = size(SizingRequest(model=spec, context_length=1024, kv_cache_type="f16", weights_quant="F16"))
    assert plan.kv_cache_bytes_per_token == 2 * 40 * 2


def test_a_dense_gguf_reads_its_feed_forward_length_and_a_moe_gguf_its_experts(tmp_path: Path) -> None:
    """``expert_count`` ≤ 1 is a dense model whose ``feed_forward_length`` is its MLP width; more experts are a
    mixture whose routed experts the activation runs through."""
    dense = read_gguf(_gguf(tmp_path / "d.gguf", "llama", {"feed_forward_length": (VT.UINT32, 176)}))
    assert (dense.intermediate_size, dense.n_experts, dense.is_moe) == (176, 0, False)
    assert intermediate_size_estimate(dense) == 176
    single = read_gguf(
        _gguf(tmp_path / "s.gguf", "llama", {"feed_forward_length": (VT.UINT32, 176), "expert_count": (VT.UINT32, 1)})
    )
    assert (single.intermediate_size, single.n_experts) == (176, 0)
    moe = read_gguf(
        _gguf(
            tmp_path / "m.gguf",
            "qwen3moe",
            {
                "feed_forward_length": (VT.UINT32, 176),
                "expert_count": (VT.UINT32, 8),
                "expert_used_count": (VT.UINT32, 2),
                "expert_feed_forward_length": (VT.UINT32, 48),
            },
        )
    )
    assert (moe.n_experts, moe.experts_per_token, moe.expert_intermediate_size, moe.intermediate_size) == (
        8,
        2,
        48,
        176,
    )
    assert intermediate_size_estimate(moe) == 2 * 48


@pytest.mark.parametrize(
    ("pattern", "windows"),
    [(None, (128, None, 128, None)), (3, (128, 128, None, 128))],
)
def test_gpt_oss_alternates_sliding_and_full_layers_when_its_gguf_names_no_pattern(
    tmp_path: Path, pattern: int | None, windows: tuple[int | None, ...]
) -> None:
    """gpt-oss GGUFs carry ``sliding_window`` but no pattern key: llama.cpp alternates a sliding and a full layer
    (``set_swa_pattern(2)`` for ``LLM_ARCH_OPENAI_MOE``; llm-sizing.md: "gpt-oss: alternating window 128 / full",
    as the checkpoint's own ``layer_types`` list says). A pattern key, when written, wins."""
    keys: dict[str, tuple[gguf.GGUFValueType, Any]] = {
        "block_count": (VT.UINT32, 4),
        "attention.sliding_window": (VT.UINT32, 128),
    }
    if pattern is not None:
        keys["attention.sliding_window_pattern"] = (VT.UINT32, pattern)
    assert read_gguf(_gguf(tmp_path / "oss.gguf", "gpt-oss", keys)).layer_windows == windows


def test_a_gguf_with_neither_vocab_size_nor_tokens_has_an_unknown_vocabulary(tmp_path: Path) -> None:
    """No ``<arch>.vocab_size`` and no ``tokenizer.ggml.tokens``: the vocabulary is 0, what a ModelSpec calls
    unknown, not a one-token vocabulary."""
    assert read_gguf(_gguf(tmp_path / "v.gguf", "llama", {})).vocab_size == 0


def test_a_config_json_over_16_mib_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A weights file given as model.hf_config is refused by its size (16 MiB is the limit; a config.json is a few
    kilobytes); a config padded to exactly the limit is still read."""
    text = json.dumps(CONFIG).encode()
    path = tmp_path / "config.json"
    path.write_bytes(text + b" " * (MAX_CONFIG_BYTES - len(text)))
    assert read_hf(path).n_layers == 2
    path.write_bytes(text + b" " * (MAX_CONFIG_BYTES + 1 - len(text)))
    with pytest.raises(ConfigError) as err:
        read_hf(path)
    assert err.value.problem == "is 16,777,217 bytes; a config.json is a few kilobytes"
    assert err.value.fix == "point model.hf_config at the model's config.json, not at a weights file"


@pytest.mark.parametrize(
    ("key", "value", "meaning"),
    [
        ("intermediate_size", "wide", "MLP width"),
        ("num_experts_per_tok", 2.5, "experts each token is routed to"),
    ],
)
def test_a_bad_mlp_or_routing_value_names_what_the_number_means(
    tmp_path: Path, key: str, value: Any, meaning: str
) -> None:
    """The refusal's *allowed* text says what the number is, as the user reads it next to the key."""
    cfg = _config(tmp_path, num_local_experts=4, **{key: value})
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    high = 65_536 if key == "num_experts_per_tok" else 1_048_576
    assert err.value.allowed == f"a whole number 0..{high} ({meaning})"

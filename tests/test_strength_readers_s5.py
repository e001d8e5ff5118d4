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
    tensors = {
        "token_embd.weight": np.zeros((32, 64), np.float16),
        "blk.0.attn_q.weight": np.zeros((64, 64), np.float16),
    }
    _written(w, tensors)
    return path


def _written(w: gguf.GGUFWriter, tensors: dict[str, Any]) -> None:
    """Add ``tensors`` and write the file: header, metadata, tensor data (gguf-py's order)."""
    for name, array in tensors.items():
        w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


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
    _written(w, {})
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


# ------------------------------------------------------- every refusal of a bad key, as the user reads it (seed 121)
# Written before seed 121 ran, without seeing its sample: the reader's refusals were its weakest part in seeds 101
# and 111 (tests checked a substring, so a changed meaning or message survived). Each case is one bad key in an
# otherwise valid file; the whole problem and allowed text are pinned, the fix is the reader's.

GGUF_REFUSALS = [
    (
        {"attention.head_count_kv": (VT.ARRAY, [2, 2, 2])},
        "llama.attention.head_count_kv lists 3 layers but llama.block_count = 2",
        "",
    ),
    (
        {"attention.key_length": (VT.STRING, "x")},
        "llama.attention.key_length = 'x' is a string, not a whole number",
        "a whole number 0..1048576 (elements per K head)",
    ),
    (
        {"attention.value_length": (VT.UINT64, 1099511627776)},
        "llama.attention.value_length = 1099511627776 is out of range (elements per V head)",
        "a whole number 0..1048576 (elements per V head)",
    ),
    (
        {"attention.key_length_swa": (VT.STRING, "x")},
        "llama.attention.key_length_swa = 'x' is a string, not a whole number",
        "a whole number 0..1048576 (elements per K head on sliding layers)",
    ),
    (
        {"attention.value_length_swa": (VT.INT32, -1)},
        "llama.attention.value_length_swa = -1 is out of range (elements per V head on sliding layers)",
        "a whole number 0..1048576 (elements per V head on sliding layers)",
    ),
    (
        {"attention.sliding_window_pattern": (VT.STRING, "x")},
        "llama.attention.sliding_window_pattern = 'x' is a string, not a whole number",
        "a whole number 0..4096 (layers per group)",
    ),
    (
        {"attention.shared_kv_layers": (VT.UINT32, 5000)},
        "llama.attention.shared_kv_layers = 5000 is out of range (trailing layers that reuse KV)",
        "a whole number 0..4096 (trailing layers that reuse KV)",
    ),
    (
        {"expert_count": (VT.STRING, "x")},
        "llama.expert_count = 'x' is a string, not a whole number",
        "a whole number 0..65536 (routed experts per layer)",
    ),
    (
        {
            "expert_count": (VT.UINT32, 4),
            "expert_shared_count": (VT.UINT32, 1),
            "expert_shared_feed_forward_length": (VT.STRING, "x"),
        },
        "llama.expert_shared_feed_forward_length = 'x' is a string, not a whole number",
        "a whole number 0..1048576 (a shared expert's MLP width)",
    ),
    (
        {"attention.head_count": (VT.STRING, "x")},
        "llama.attention.head_count = 'x' is a string, not a whole number",
        "a whole number 0..65536 (query heads)",
    ),
    (
        {"attention.head_count": (VT.ARRAY, [4, -1])},
        "llama.attention.head_count[] = -1 is out of range (query heads)",
        "a whole number 0..65536 (query heads)",
    ),
    (
        {"attention.head_count": (VT.UINT32, 0)},
        "llama.attention.head_count = 0: attention needs at least one head",
        "1..65536",
    ),
    (
        {"attention.head_count_kv": (VT.ARRAY, [2, -3])},
        "llama.attention.head_count_kv[] = -3 is out of range (KV heads)",
        "a whole number 0..65536 (KV heads)",
    ),
    (
        {"feed_forward_length": (VT.ARRAY, [64, -1])},
        "llama.feed_forward_length[] = -1 is out of range (MLP width)",
        "a whole number 0..1048576 (MLP width)",
    ),
    (
        {"attention.sliding_window": (VT.STRING, "x")},
        "llama.attention.sliding_window = 'x' is a string, not a whole number",
        "a whole number 0..1073741824 (tokens a sliding layer sees)",
    ),
    (
        {"vocab_size": (VT.INT32, -1)},
        "llama.vocab_size = -1 is out of range (tokens in the vocabulary)",
        "a whole number 0..16777216 (tokens in the vocabulary)",
    ),
    (
        {"attention.kv_lora_rank": (VT.STRING, "x")},
        "llama.attention.kv_lora_rank = 'x' is a string, not a whole number",
        "a whole number 0..1048576 (MLA latent rank)",
    ),
    (
        {"rope.dimension_count": (VT.STRING, "x")},
        "llama.rope.dimension_count = 'x' is a string, not a whole number",
        "a whole number 0..1048576 (rotary dimensions)",
    ),
    (
        {"expert_count": (VT.UINT32, 4), "expert_used_count": (VT.UINT32, 9)},
        "gives experts_per_token = 9 (from llama.expert_used_count): is out of range (experts each token is "
        "routed to: 1..n_experts for a mixture of experts, 0 for a dense model)",
        "1..4 (experts each token is routed to: 1..n_experts for a mixture of experts, 0 for a dense model)",
    ),
    (
        {
            "attention.sliding_window": (VT.UINT32, 8),
            "attention.sliding_window_pattern": (VT.ARRAY, [True, False, True]),
        },
        "llama.attention.sliding_window_pattern lists 3 layers but llama.block_count = 2",
        "",
    ),
]
HF_REFUSALS = [
    ({"text_config": [1]}, "text_config is a list, not a JSON object", ""),
    ({"quantization_config": [1]}, "quantization_config is a list, not a JSON object", ""),
    ({"tie_word_embeddings": "false"}, "tie_word_embeddings = 'false' is a string, not true/false", "true or false"),
    ({"model_type": 5}, "model_type = 5 is a number, not a string", "a JSON string"),
    (
        {"num_hidden_layers": 2.0},
        "num_hidden_layers = 2.0 is a float, not a whole number",
        "a whole number 1..4096 (transformer layers)",
    ),
    ({"num_hidden_layers": None}, "has no 'num_hidden_layers'", "a whole number 1..4096 (transformer layers)"),
    (
        {"num_local_experts": "x"},
        "num_local_experts = 'x' is a string, not a whole number",
        "a whole number 0..65536 (routed experts per layer)",
    ),
    (
        {"sliding_window": 8, "layer_types": ["full_attention", "full_attention", "full_attention"]},
        "layer_types lists 3 layers but num_hidden_layers = 2",
        "",
    ),
    (
        {"num_kv_shared_layers": 5000},
        "num_kv_shared_layers = 5000 is out of range (trailing layers that reuse KV)",
        "a whole number 0..4096 (trailing layers that reuse KV)",
    ),
    (
        {"global_head_dim": "x"},
        "global_head_dim = 'x' is a string, not a whole number",
        "a whole number 0..1048576 (elements per head on full-attention layers)",
    ),
    (
        {"num_global_key_value_heads": "x"},
        "num_global_key_value_heads = 'x' is a string, not a whole number",
        "a whole number 0..65536 (KV heads on full-attention layers)",
    ),
    (
        {"sliding_window": 8, "use_sliding_window": "yes"},
        "use_sliding_window = 'yes' is a string, not true/false",
        "true or false",
    ),
    (
        {"kv_lora_rank": -1},
        "kv_lora_rank = -1 is out of range (MLA latent rank)",
        "a whole number 0..1048576 (MLA latent rank)",
    ),
    (
        {"num_local_experts": 4, "shared_expert_intermediate_size": "x"},
        "shared_expert_intermediate_size = 'x' is a string, not a whole number",
        "a whole number 0..1048576 (the shared expert's MLP width)",
    ),
    (
        {"num_local_experts": 4, "n_shared_experts": "x"},
        "n_shared_experts = 'x' is a string, not a whole number",
        "a whole number 0..65536 (shared experts)",
    ),
    (
        {"num_local_experts": 4, "moe_intermediate_size": "x"},
        "moe_intermediate_size = 'x' is a string, not a whole number",
        "a whole number 0..1048576 (one expert's MLP width)",
    ),
]
HF_FIX = "point model.hf_config at the model's own config.json, as published with it"


@pytest.mark.parametrize(("keys", "problem", "allowed"), GGUF_REFUSALS)
def test_each_bad_gguf_key_is_refused_by_name_with_its_meaning(
    tmp_path: Path, keys: dict[str, tuple[gguf.GGUFValueType, Any]], problem: str, allowed: str
) -> None:
    err = _gguf_refusal(_gguf(tmp_path / "m.gguf", "llama", keys))
    assert (err.problem, err.allowed, err.fix) == (problem, allowed, GGUF_FIX)


@pytest.mark.parametrize(("cfg", "problem", "allowed"), HF_REFUSALS)
def test_each_bad_config_json_key_is_refused_by_name_with_its_meaning(
    tmp_path: Path, cfg: dict[str, Any], problem: str, allowed: str
) -> None:
    written = {k: v for k, v in {**CONFIG, **cfg}.items() if v is not None}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(written))
    with pytest.raises(ConfigError) as err:
        read_hf(path)
    assert (err.value.field, err.value.value) == ("model.hf_config", str(path))
    assert (err.value.problem, err.value.allowed, err.value.fix) == (problem, allowed, HF_FIX)


def test_a_mixture_of_experts_without_safetensors_is_refused_saying_why_and_what_to_add(tmp_path: Path) -> None:
    path = _config(tmp_path, num_local_experts=4, num_experts_per_tok=2)
    with pytest.raises(ConfigError) as err:
        read_hf(path)
    assert err.value.problem == (
        "declares a mixture of experts (num_local_experts = 4) but no *.safetensors file is beside it, and all "
        "experts stay resident, so a dense parameter estimate would undercount the weights"
    )
    assert err.value.fix == (
        f"put the model's *.safetensors files (their headers are enough) in the folder of {path}, or size the model "
        "from its GGUF (model.gguf) or a catalogue name"
    )


def _header(obj: Any) -> bytes:
    raw = json.dumps(obj).encode()
    return struct.pack("<Q", len(raw)) + raw


ST_FIX = "re-download model.safetensors from the model's repository"
ST_WHOLE_FIX = ST_FIX + " (or remove it to estimate from config.json)"
SAFETENSORS_REFUSALS = [
    (b"\x01\x02", "safetensors file model.safetensors is 2 bytes, shorter than its 8-byte header length", ST_WHOLE_FIX),
    (
        struct.pack("<Q", 500) + b"{}",
        "safetensors file model.safetensors declares a 500-byte header but the file has 2 bytes after it",
        ST_WHOLE_FIX,
    ),
    (
        struct.pack("<Q", 4) + b"\xff\xfe{}",
        "safetensors file model.safetensors has a header that is not UTF-8 JSON (UnicodeDecodeError)",
        ST_WHOLE_FIX,
    ),
    (
        _header([1, 2]),
        "safetensors file model.safetensors has a header that is a list, not a JSON object",
        ST_WHOLE_FIX,
    ),
    (_header({"w": 5}), "safetensors file model.safetensors, tensor 'w': entry is a number, not an object", ST_FIX),
    (
        _header({"w": {"dtype": "F16", "shape": [2, -1], "data_offsets": [0, 4]}}),
        "safetensors file model.safetensors, tensor 'w': shape [2, -1] is not a list of whole numbers ≥ 0",
        ST_FIX,
    ),
    (
        _header({"w": {"dtype": "F16", "shape": [2], "data_offsets": [4]}}),
        "safetensors file model.safetensors, tensor 'w': data_offsets [4] is not [begin, end]",
        ST_FIX,
    ),
]


@pytest.mark.parametrize(("data", "problem", "fix"), SAFETENSORS_REFUSALS)
def test_each_broken_safetensors_header_is_refused_naming_the_shard_and_tensor(
    tmp_path: Path, data: bytes, problem: str, fix: str
) -> None:
    cfg = _config(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(data)
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    assert (err.value.field, err.value.problem, err.value.allowed, err.value.fix) == (
        "model.hf_config",
        problem,
        "",
        fix,
    )


def test_an_unknown_safetensors_dtype_is_refused_listing_every_dtype_the_format_defines(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(
        _header({"w": {"dtype": "F12", "shape": [2], "data_offsets": [0, 4]}}) + b"\0" * 4
    )
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    assert err.value.problem == "safetensors file model.safetensors, tensor 'w': dtype 'F12' is not a safetensors dtype"
    assert err.value.allowed == (
        "BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, C64, F64, "
        "I64, U64"
    )
    assert err.value.fix == ST_FIX


# ------------------------------------------------------------------ seed 121's survivor


@pytest.mark.parametrize(("offsets", "span"), [([4, 10], 6), ([10, 4], -6)])
def test_a_tensor_whose_offsets_disagree_with_its_shape_is_refused_with_the_bytes_it_spans(
    tmp_path: Path, offsets: list[int], span: int
) -> None:
    """The span is ``end - begin`` of that tensor, wherever it starts in the shard (a second tensor here)."""
    cfg = _config(tmp_path)
    header = {
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F16", "shape": [4], "data_offsets": offsets},
    }
    (tmp_path / "model.safetensors").write_bytes(_header(header) + b"\0" * 12)
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    assert err.value.problem == (
        f"safetensors file model.safetensors, tensor 'b': data_offsets {offsets} span {span} bytes but shape × F16 "
        "needs 8"
    )
    assert err.value.fix == ST_FIX


def test_a_ggufs_input_tables_are_counted_as_host_memory_by_their_tensor_name(tmp_path: Path) -> None:
    """``token_embd.weight`` (with its own ``output.weight`` beside it) is an input table llama.cpp and Ollama keep on
    the CPU; ``per_layer_token_embd.weight`` is counted apart; the ``.weight`` suffix names no table."""
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), arch="llama")
    for key, value in (("block_count", 1), ("embedding_length", 64), ("attention.head_count", 4)):
        w.add_key_value(f"llama.{key}", value, VT.UINT32)
    tables = {
        "token_embd.weight": np.zeros((32, 64), np.float16),  # 4096 bytes
        "output.weight": np.zeros((32, 64), np.float16),  # 4096 bytes, on the GPU
        "per_layer_token_embd.weight": np.zeros((16, 64), np.float16),  # 2048 bytes
        "blk.0.attn_q.weight": np.zeros((64, 64), np.float16),  # 8192 bytes
    }
    _written(w, tables)
    spec = read_gguf(tmp_path / "m.gguf")
    assert (spec.host_input_bytes, spec.per_layer_embedding_bytes) == (4096, 2048)
    assert spec.weights_bytes == 4096 + 4096 + 2048 + 8192

"""Mutation-strength tests for sizing/readers.py: what a Hugging Face config or GGUF header is read as."""

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

BASE: dict[str, Any] = {
    "num_hidden_layers": 4,
    "hidden_size": 256,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 4096,
}


def hf(tmp_path: Path, **cfg: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**BASE, **cfg}))
    return path


def estimate(layers: int, hidden: int, heads: int, kv: int, head_dim: int, ffn: int, vocab: int, tied: bool) -> int:
    attn = hidden * head_dim * (heads + 2 * kv) + heads * head_dim * hidden
    return layers * (attn + 3 * hidden * ffn) + vocab * hidden * (1 if tied else 2)


def test_gemma2_alternates_sliding_and_full_layers(tmp_path: Path) -> None:
    spec = read_hf(hf(tmp_path, model_type="gemma2", sliding_window=4096))
    assert spec.layer_windows == (4096, None, 4096, None)
    assert spec.n_full_layers == 2
    plan = size(SizingRequest(model=spec, context_length=4096, kv_cache_type="f16", weights_quant="F16"))
    row = 2 * 32 * 2 * 2  # K and V: 2 KV heads × 32 (256 / 8) × 2 bytes
    assert plan.kv_cache_bytes_per_token == 2 * row  # only the two full layers grow with context


def test_gemma3_pattern_default_and_explicit(tmp_path: Path) -> None:
    six = read_hf(hf(tmp_path, model_type="gemma3_text", num_hidden_layers=12, sliding_window=512))
    assert six.layer_windows == ((512,) * 5 + (None,)) * 2
    three = read_hf(
        hf(tmp_path, model_type="gemma3", num_hidden_layers=6, sliding_window=512, sliding_window_pattern=3)
    )
    assert three.layer_windows == (512, 512, None, 512, 512, None)


def test_layer_types_list_wins(tmp_path: Path) -> None:
    types = ["sliding_attention", "full_attention", "full_attention", "sliding_attention"]
    spec = read_hf(hf(tmp_path, model_type="gpt_oss", sliding_window=128, layer_types=types))
    assert spec.layer_windows == (128, None, None, 128)
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, sliding_window=128, layer_types=types[:3]))
    assert "layer_types lists 3 layers" in err.value.problem


def test_mistral_and_use_sliding_window_slide_every_layer(tmp_path: Path) -> None:
    assert read_hf(hf(tmp_path, model_type="mistral", sliding_window=4096)).layer_windows == (4096,) * 4
    qwen = read_hf(hf(tmp_path, model_type="qwen2", sliding_window=4096, use_sliding_window=True))
    assert qwen.layer_windows == (4096,) * 4
    off = read_hf(hf(tmp_path, model_type="qwen2", sliding_window=4096, use_sliding_window=False))
    assert off.layer_windows == (None,) * 4
    assert read_hf(hf(tmp_path, model_type="gemma2")).layer_windows == (None,) * 4  # no window: all full


def test_parameter_estimate_without_safetensors(tmp_path: Path) -> None:
    spec = read_hf(hf(tmp_path, model_type="llama", intermediate_size=1024, head_dim=64))
    assert spec.n_params == estimate(4, 256, 8, 2, 64, 1024, 1000, False)
    assert spec.weights_bytes is None
    assert spec.notes == ("no safetensors beside config.json: weights from parameters × bits-per-weight",)
    assert spec.source.endswith("+ 0 safetensors header(s)")
    plan = size(SizingRequest(model=spec, context_length=2048, weights_quant="Q8_0"))
    assert plan.weights_bytes == int(spec.n_params * 8.5 / 8)


def test_parameter_estimate_defaults(tmp_path: Path) -> None:
    """No intermediate_size → 4 × hidden; no head_dim → hidden / heads; tied embeddings count once."""
    spec = read_hf(hf(tmp_path, tie_word_embeddings=True))
    assert spec.n_params == estimate(4, 256, 8, 2, 32, 4 * 256, 1000, True)
    assert spec.tied_embeddings is True
    assert (spec.head_dim_k, spec.head_dim_v) == (32, 32)


def test_geometry_fallbacks(tmp_path: Path) -> None:
    no_kv = {k: v for k, v in BASE.items() if k != "num_key_value_heads"}
    (tmp_path / "config.json").write_text(json.dumps(no_kv))
    spec = read_hf(tmp_path / "config.json")
    assert spec.kv_heads == (8,) * 4  # no GQA key: every query head has its own KV
    assert spec.max_context == 4096 and spec.vocab_size == 1000 and spec.hidden_size == 256 and spec.n_heads == 8
    assert spec.architecture == "unknown" and spec.name == tmp_path.name
    v = read_hf(hf(tmp_path, head_dim=64, v_head_dim=48, _name_or_path="org/model", model_type="x"))
    assert (v.head_dim_k, v.head_dim_v, v.name, v.architecture) == (64, 48, "org/model", "x")


def test_mla_latent_is_rank_plus_rope(tmp_path: Path) -> None:
    spec = read_hf(hf(tmp_path, kv_lora_rank=512, qk_rope_head_dim=64))
    assert spec.mla_latent_dim == 576
    assert read_hf(hf(tmp_path, kv_lora_rank=512)).mla_latent_dim == 512
    assert read_hf(hf(tmp_path, qk_rope_head_dim=64)).mla_latent_dim == 0


def test_quantisation_name(tmp_path: Path) -> None:
    both = hf(tmp_path, quantization_config={"quant_method": "awq"}, torch_dtype="float16")
    assert read_hf(both).weights_quant == "awq"
    assert read_hf(hf(tmp_path, torch_dtype="bfloat16")).weights_quant == "bfloat16"
    assert read_hf(hf(tmp_path)).weights_quant is None


def test_text_config_is_read_with_its_prefix(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "wrapper", "text_config": {**BASE, "model_type": "gemma2"}}))
    spec = read_hf(path)
    assert spec.architecture == "gemma2"
    path.write_text(json.dumps({"text_config": {**BASE, "num_hidden_layers": 0}}))
    with pytest.raises(ConfigError) as err:
        read_hf(path)
    assert err.value.field.startswith("model.hf_config")
    assert "text_config.num_hidden_layers" in err.value.render()


@pytest.mark.parametrize("key", ["num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts"])
def test_moe_without_safetensors_is_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, **{key: 8}))
    assert f"{key} = 8" in err.value.problem
    assert read_hf(hf(tmp_path, **{key: 1})).n_params > 0  # one expert is a dense model


def test_moe_in_dbrx_ffn_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, ffn_config={"moe_num_experts": 16}))
    assert "ffn_config.moe_num_experts = 16" in err.value.problem


def _safetensors(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> int:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape, bits) in tensors.items():
        n = int(np.prod(shape)) * bits // 8
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return offset


def test_safetensors_shards_are_summed(tmp_path: Path) -> None:
    cfg = hf(tmp_path, num_local_experts=8)  # a MoE is fine once its weights are at hand
    a = _safetensors(tmp_path / "a.safetensors", {"x": ("F8_E4M3", [10, 10], 8), "y": ("F32", [3], 32)})
    b = _safetensors(tmp_path / "b.safetensors", {"z": ("BF16", [4, 5], 16), "w": ("F4", [2, 4], 4)})
    spec = read_hf(cfg)
    assert spec.n_params == 100 + 3 + 20 + 8
    assert spec.weights_bytes == a + b == 100 + 12 + 40 + 4
    # issue 22: the experts are read too; without num_experts_per_tok every expert is taken as running
    assert spec.notes == ("num_local_experts = 8 but no num_experts_per_tok: activation sized as if every expert ran",)
    assert (spec.n_experts, spec.experts_per_token) == (8, 8)
    assert spec.source.endswith("+ 2 safetensors header(s)")


def test_safetensors_offsets_must_match_the_shape(tmp_path: Path) -> None:
    cfg = hf(tmp_path)
    header = {"x": {"dtype": "F16", "shape": [4], "data_offsets": [0, 6]}}
    raw = json.dumps(header).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    assert "span 6 bytes but shape × F16 needs 8" in err.value.problem


def _gguf(path: Path, arch: str, tensors: dict[str, Any] | None = None, **extra: Any) -> None:
    w = gguf.GGUFWriter(str(path), arch=arch)
    w.add_block_count(4)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_context_length(2048)
    for key, value in extra.items():
        getattr(w, f"add_{key}")(value)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for name, array in (tensors or {"t": np.zeros((8, 8), dtype=np.float16)}).items():
        w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_gemma2_default_pattern_and_f16_type(tmp_path: Path) -> None:
    path = tmp_path / "g2.gguf"
    _gguf(path, "gemma2", sliding_window=256)
    spec = read_gguf(path)
    assert spec.layer_windows == (256, None, 256, None)
    assert spec.weights_quant == "F16"
    assert (spec.n_params, spec.weights_bytes) == (64, 128)
    assert spec.kv_heads == (4,) * 4 and spec.head_dim_k == 16 and spec.head_dim_v == 16
    assert spec.max_context == 2048
    assert spec.source == "gguf: g2.gguf (1 tensors)"


def test_gguf_llama_has_no_sliding_layers_and_reads_kv_heads(tmp_path: Path) -> None:
    path = tmp_path / "l.gguf"
    _gguf(path, "llama", sliding_window=256, head_count_kv=2, key_length=32, value_length=24)
    spec = read_gguf(path)
    assert spec.layer_windows == (None,) * 4  # llama has no default pattern: every layer is full
    assert (spec.kv_heads, spec.head_dim_k, spec.head_dim_v) == ((2,) * 4, 32, 24)


def test_whole_number_bounds_are_inclusive(tmp_path: Path) -> None:
    assert read_hf(hf(tmp_path, num_hidden_layers=4096)).n_layers == 4096  # MAX_LAYERS itself is accepted
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, num_hidden_layers=4097))
    assert "num_hidden_layers = 4097 is out of range" in err.value.problem
    assert err.value.allowed == "a whole number 1..4096 (transformer layers)"
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, num_hidden_layers=2.0))
    assert "is a float, not a whole number" in err.value.problem
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, num_hidden_layers=None))
    assert err.value.problem == "has no 'num_hidden_layers'"


def test_long_values_are_cut_to_80_characters(tmp_path: Path) -> None:
    exact = "x" * 78  # repr adds two quotes: 80 characters, kept whole
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, model_type=7, _name_or_path=exact))
    assert "model_type = 7 is a number, not a string" in err.value.problem
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, torch_dtype=exact, quantization_config={"quant_method": [exact]}))
    assert err.value.problem.startswith("quantization_config.quant_method = ['" + "x" * 77 + "…")
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, num_hidden_layers=exact))
    assert f"num_hidden_layers = '{exact}' is a string" in err.value.problem
    with pytest.raises(ConfigError) as err:
        read_hf(hf(tmp_path, num_hidden_layers=exact + "y"))
    assert "num_hidden_layers = '" + "x" * 78 + "…" in err.value.problem


def test_tensor_rank_limit(tmp_path: Path) -> None:
    cfg = hf(tmp_path)
    _safetensors(tmp_path / "m.safetensors", {"x": ("F16", [1] * 16, 16)})
    assert read_hf(cfg).n_params == 1
    _safetensors(tmp_path / "m.safetensors", {"x": ("F16", [1] * 17, 16)})
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    assert "is not a list of whole numbers" in err.value.problem


def test_safetensors_header_length_limit(tmp_path: Path) -> None:
    """A declared header of exactly 100,000,000 bytes is read (here: not JSON); one byte more is corrupt."""
    cfg = hf(tmp_path)
    shard = tmp_path / "m.safetensors"
    for n, problem in ((100_000_000, "is not UTF-8 JSON"), (100_000_001, "declares a 100000001-byte header")):
        with open(shard, "wb") as fh:
            fh.write(struct.pack("<Q", n))
            fh.truncate(8 + n + 16)  # sparse: costs no disk
        with pytest.raises(ConfigError) as err:
            read_hf(cfg)
        assert problem in err.value.problem


def test_safetensors_header_longer_than_the_file(tmp_path: Path) -> None:
    cfg = hf(tmp_path)
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", 300) + b"{}" + b" " * 298)
    assert read_hf(cfg).source.endswith("+ 1 safetensors header(s)")  # 300 ≤ 300 bytes after it: read
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", 301) + b"{}" + b" " * 298)
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    assert "declares a 301-byte header but the file has 300 bytes after it" in err.value.problem
    (tmp_path / "m.safetensors").write_bytes(b"1234567")
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    assert "is 7 bytes, shorter than its 8-byte header length" in err.value.problem


SAFETENSORS_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


@pytest.mark.parametrize(("dtype", "bits"), SAFETENSORS_BITS.items())
def test_every_safetensors_dtype_has_its_width(tmp_path: Path, dtype: str, bits: int) -> None:
    cfg = hf(tmp_path)
    _safetensors(tmp_path / "m.safetensors", {"x": (dtype, [4, 8], bits)})
    spec = read_hf(cfg)
    assert (spec.n_params, spec.weights_bytes) == (32, 32 * bits // 8)
    _safetensors(tmp_path / "m.safetensors", {"x": (dtype, [4, 8], bits + 8)})  # offsets one byte/element off
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    assert err.value.field == "model.hf_config" and "m.safetensors" in err.value.render()


def test_wrapper_vocab_size_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    inner = {k: v for k, v in BASE.items() if k != "vocab_size"}
    path.write_text(json.dumps({"vocab_size": 512, "text_config": inner}))
    assert read_hf(path).vocab_size == 512  # a multimodal wrapper may carry the LM's vocabulary
    path.write_text(json.dumps({"vocab_size": -1, "text_config": inner}))
    with pytest.raises(ConfigError) as err:
        read_hf(path)
    assert "vocab_size = -1 is out of range (tokens)" in err.value.problem

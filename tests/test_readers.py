"""Model specs read from files: GGUF headers (written here and a real one from PyPI) and HF configs."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import SizingRequest, read_gguf, read_hf, size
from cloudrun_gpu.sizing.engines import kv_bytes_per_token_full


def _write_gguf(
    path: Path,
    arch: str,
    layers: int,
    kv: int | list[int],
    *,
    window: int | None = None,
    pattern: int | list[bool] | None = None,
) -> int:
    """A tiny GGUF with real tensors; returns the total tensor bytes written."""
    w = gguf.GGUFWriter(str(path), arch=arch)
    w.add_name(f"tiny-{arch}")
    w.add_block_count(layers)
    w.add_context_length(2048)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(kv)
    w.add_key_length(16)
    w.add_value_length(16)
    w.add_vocab_size(32)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    if window:
        w.add_sliding_window(window)
    if pattern is not None:
        w.add_sliding_window_pattern(pattern)
    tensors = {"token_embd.weight": np.zeros((32, 64), np.float16)}
    for i in range(layers):
        tensors[f"blk.{i}.attn_q.weight"] = np.zeros((64, 64), np.float16)
        tensors[f"blk.{i}.attn_norm.weight"] = np.zeros((64,), np.float32)
    for name, arr in tensors.items():
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return sum(a.nbytes for a in tensors.values())


def test_gguf_written_here_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    tensor_bytes = _write_gguf(path, "llama", layers=2, kv=2)
    spec = read_gguf(path)
    assert (spec.architecture, spec.n_layers, spec.hidden_size, spec.n_heads) == ("llama", 2, 64, 4)
    assert spec.kv_heads == (2, 2) and spec.head_dim_k == 16 and spec.vocab_size == 32
    assert spec.weights_bytes == tensor_bytes  # real tensor sizes, not bits-per-weight
    assert spec.weights_quant == "F16"
    assert kv_bytes_per_token_full(spec, "f16") == 2 * 2 * 2 * 16 * 2  # K,V × layers × kv heads × dim × 2 B = 256


def test_gguf_per_layer_kv_heads_and_sliding_pattern(tmp_path: Path) -> None:
    path = tmp_path / "swa.gguf"
    _write_gguf(path, "gemma3", layers=6, kv=[1, 1, 2, 1, 1, 2], window=128, pattern=[True, True, False] * 2)
    spec = read_gguf(path)
    assert spec.kv_heads == (1, 1, 2, 1, 1, 2)
    assert spec.layer_windows == (128, 128, None, 128, 128, None)
    assert kv_bytes_per_token_full(spec, "f16") == 2 * (2 * 2 * 16 * 2)  # only the two global layers grow


def test_gguf_without_pattern_key_uses_llama_cpp_default(tmp_path: Path) -> None:
    path = tmp_path / "g3.gguf"
    _write_gguf(path, "gemma3", layers=12, kv=1, window=512)  # like the real gemma-3-270m file
    assert read_gguf(path).n_full_layers == 2  # 5 local : 1 global


def test_real_smollm2_gguf_from_pypi(smollm2_gguf: Path) -> None:
    spec = read_gguf(smollm2_gguf)
    # values from llm-sizing.md §2.1 (read there with the same gguf package)
    assert (spec.n_layers, spec.hidden_size, spec.n_heads, spec.kv_heads[0]) == (30, 576, 9, 3)
    assert spec.head_dim_k == 64 and spec.max_context == 8192
    assert spec.n_params == 134_515_008 and spec.weights_bytes == 96_576_768
    assert spec.weights_quant == "Q4_1"
    assert kv_bytes_per_token_full(spec, "f16") == 23_040  # 2 × 30 × 3 × 64 × 2
    plan = size(SizingRequest(model=spec, context_length=2048, kv_cache_type="f16"))
    assert plan.weights_bytes == 96_576_768


def _write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> int:
    header, offset = {}, 0
    for name, (dtype, shape, itemsize) in tensors.items():
        n = int(np.prod(shape)) * itemsize
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return offset


def test_hf_config_and_safetensors_headers(tmp_path: Path) -> None:
    cfg = {
        "model_type": "qwen3",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "vocab_size": 1000,
        "max_position_embeddings": 4096,
        "torch_dtype": "bfloat16",
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    total = _write_safetensors(
        tmp_path / "model.safetensors", {"embed.weight": ("BF16", [1000, 256], 2), "q.weight": ("BF16", [256, 512], 2)}
    )
    spec = read_hf(tmp_path / "config.json")
    assert spec.weights_bytes == total == (1000 * 256 + 256 * 512) * 2
    assert spec.head_dim_k == 64  # head_dim from config, not hidden / heads (= 32)
    assert kv_bytes_per_token_full(spec, "bf16") == 2 * 4 * 2 * 64 * 2


def test_hf_gemma3_text_config_and_mla(tmp_path: Path) -> None:
    g3 = {
        "model_type": "gemma3",
        "text_config": {
            "model_type": "gemma3_text",
            "num_hidden_layers": 12,
            "hidden_size": 640,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 256,
            "sliding_window": 512,
            "sliding_window_pattern": 6,
            "vocab_size": 1000,
            "max_position_embeddings": 32768,
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(g3))
    assert read_hf(tmp_path / "config.json").n_full_layers == 2
    ds = {
        "model_type": "deepseek_v3",
        "num_hidden_layers": 3,
        "hidden_size": 7168,
        "num_attention_heads": 128,
        "kv_lora_rank": 512,
        "qk_rope_head_dim": 64,
        "vocab_size": 129280,
        "max_position_embeddings": 163840,
    }
    (tmp_path / "config.json").write_text(json.dumps(ds))
    assert kv_bytes_per_token_full(read_hf(tmp_path / "config.json"), "bf16") == 3 * 576 * 2


@pytest.mark.parametrize("name", ["model.bin", "pytorch_model.pt", "ckpt.pth", "x.pkl", "last.ckpt"])
def test_pickle_checkpoints_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_gguf(tmp_path / name)
    assert "pickle" in err.value.problem and "B3" in err.value.problem


def test_pickle_beside_hf_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"num_hidden_layers": 1, "hidden_size": 8, "num_attention_heads": 1})
    )
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ConfigError, match="pickle"):
        read_hf(tmp_path / "config.json")


def test_not_a_gguf_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    with pytest.raises(ConfigError) as err:
        read_gguf(bad)
    assert err.value.field == "model.gguf"

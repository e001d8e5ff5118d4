"""Model specs read from files: GGUF headers (written here and a real one from PyPI) and HF configs."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import ModelSpec, SizingRequest, catalogue_model, read_gguf, read_hf, size
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


# --------------------------------------------------------------------------------------------------
# Bad input of every kind ends in a ConfigError under the field the caller passed in, with a fix.
# One test per class a fuzzing user found; tests/test_fuzz_files.py covers the space in between.

GGUF_FIELD = "--gguf"
HF_FIELD = "model.hf_config"
READERS: list[tuple[Callable[..., ModelSpec], str, str]] = [
    (read_gguf, GGUF_FIELD, "model.gguf"),
    (read_hf, HF_FIELD, "config.json"),
]
VT = gguf.GGUFValueType


def _refused(read: Callable[..., ModelSpec], path: Any, field: str) -> ConfigError:
    """Call ``read`` expecting a refusal under ``field`` whose fix is spelled out."""
    with pytest.raises(ConfigError) as err:
        read(path, field=field)
    assert err.value.field == field, err.value.render()
    assert err.value.fix and err.value.problem
    return err.value


@pytest.mark.parametrize(("read", "field", "name"), READERS)
def test_missing_file(tmp_path: Path, read: Callable[..., ModelSpec], field: str, name: str) -> None:
    err = _refused(read, tmp_path / name, field)
    assert "not found" in err.problem and field in err.fix


@pytest.mark.parametrize(("read", "field", "name"), READERS)
def test_directory_instead_of_file(tmp_path: Path, read: Callable[..., ModelSpec], field: str, name: str) -> None:
    (tmp_path / name).mkdir()
    err = _refused(read, tmp_path / name, field)
    assert "directory" in err.problem and "folder" in err.fix


@pytest.mark.parametrize(("read", "field", "name"), READERS)
def test_overlong_path_component(tmp_path: Path, read: Callable[..., ModelSpec], field: str, name: str) -> None:
    err = _refused(read, tmp_path / ("x" * 300) / name, field)  # ENAMETOOLONG: Path.is_file() raises on it
    assert "ENAMETOOLONG" in err.problem


@pytest.mark.parametrize(("read", "field", "name"), READERS)
@pytest.mark.parametrize("path", [None, 42, "", "  ", "a\0b.gguf"])
def test_value_that_is_not_a_usable_path(read: Callable[..., ModelSpec], field: str, name: str, path: Any) -> None:
    _refused(read, path, field)


@pytest.mark.parametrize(("read", "field", "name"), READERS)
def test_empty_file_and_fifo(tmp_path: Path, read: Callable[..., ModelSpec], field: str, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert "empty" in _refused(read, tmp_path / name, field).problem
    fifo = tmp_path / f"fifo-{name}"
    os.mkfifo(fifo)  # reading one would block forever
    assert "regular file" in _refused(read, fifo, field).problem


@pytest.mark.parametrize(("read", "field", "name"), READERS)
def test_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: Callable[..., ModelSpec], field: str, name: str
) -> None:
    path = tmp_path / name
    if name.endswith(".gguf"):
        _write_gguf(path, "llama", layers=1, kv=1)
    else:
        path.write_text(json.dumps({"num_hidden_layers": 1, "hidden_size": 8, "num_attention_heads": 1}))
    real_open = builtins.open

    def denied(file: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    # Simulated at open(): the tests may run as root, which no chmod stops.
    monkeypatch.setattr(builtins, "open", denied)
    monkeypatch.setattr(io, "open", denied)
    err = _refused(read, path, field)
    assert "permission denied" in err.problem and "can read" in err.fix


# ---------------------------------------------------------------------------------------------- GGUF


def _custom_gguf(path: Path, keys: dict[str, tuple[gguf.GGUFValueType, Any] | None], *, tensors: bool = True) -> Path:
    """A small llama GGUF whose metadata ``keys`` override (or, given None, remove) the defaults."""
    base: dict[str, tuple[gguf.GGUFValueType, Any] | None] = {
        "llama.block_count": (VT.UINT32, 2),
        "llama.embedding_length": (VT.UINT32, 64),
        "llama.attention.head_count": (VT.UINT32, 4),
        "llama.context_length": (VT.UINT32, 2048),
    }
    w = gguf.GGUFWriter(str(path), arch="llama")
    for key, typed in {**base, **keys}.items():
        if typed is None:
            w.kv_data[0].pop(key, None)  # the writer adds general.architecture itself
        else:
            w.add_key_value(key, typed[1], typed[0])
    if tensors:
        w.add_tensor("token_embd.weight", np.zeros((32, 64), np.float16))
        w.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_custom_gguf_helper_writes_a_valid_file(tmp_path: Path) -> None:
    spec = read_gguf(_custom_gguf(tmp_path / "ok.gguf", {}), field=GGUF_FIELD)
    assert (spec.n_layers, spec.hidden_size, spec.n_heads, spec.head_dim_k) == (2, 64, 4, 16)


@pytest.mark.parametrize("keep", [0, 4, 8, 23, 100, 400, -1])
def test_truncated_gguf(tmp_path: Path, keep: int) -> None:
    whole = _custom_gguf(tmp_path / "whole.gguf", {}).read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[:keep])
    err = _refused(read_gguf, cut, GGUF_FIELD)
    assert ("empty" in err.problem and "can read" in err.fix) or (
        "not a readable GGUF" in err.problem and "re-convert" in err.fix and "GGUF" in err.allowed
    )


def test_gguf_declaring_a_huge_array_is_refused_not_looped(tmp_path: Path) -> None:
    """The stock reader would read 2**60 empty elements past the end of this 40-byte file."""
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)  # version 3, no tensors, one key
    kv = struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", int(VT.ARRAY), int(VT.UINT8), 2**60)
    path = tmp_path / "huge.gguf"
    path.write_bytes(head + kv)
    assert "truncated" in _refused(read_gguf, path, GGUF_FIELD).problem


@pytest.mark.parametrize(
    ("key", "typed", "says"),
    [
        ("llama.block_count", (VT.UINT32, 0), "out of range"),
        ("llama.attention.head_count", (VT.UINT32, 0), "at least one head"),
        ("llama.attention.head_count", (VT.ARRAY, [0, 0]), "at least one head"),
        ("llama.embedding_length", (VT.UINT32, 0), "out of range"),
        ("llama.embedding_length", (VT.INT32, -64), "out of range"),
        ("llama.block_count", (VT.UINT64, 2**63), "out of range"),
    ],
)
def test_gguf_zero_or_negative_geometry(tmp_path: Path, key: str, typed: tuple[Any, Any], says: str) -> None:
    err = _refused(read_gguf, _custom_gguf(tmp_path / "bad.gguf", {key: typed}), GGUF_FIELD)
    assert key in err.problem and says in err.problem and "re-convert" in err.fix


@pytest.mark.parametrize(
    "key", ["general.architecture", "llama.block_count", "llama.embedding_length", "llama.attention.head_count"]
)
def test_gguf_missing_required_key(tmp_path: Path, key: str) -> None:
    err = _refused(read_gguf, _custom_gguf(tmp_path / "bad.gguf", {key: None}), GGUF_FIELD)
    assert f"has no {key!r}" in err.problem


@pytest.mark.parametrize(
    ("key", "typed", "says"),
    [
        ("llama.block_count", (VT.STRING, "two"), "not a whole number"),
        ("llama.block_count", (VT.FLOAT32, 2.0), "not a whole number"),
        ("llama.embedding_length", (VT.BOOL, True), "not a whole number"),
        ("llama.attention.head_count_kv", (VT.ARRAY, [1, 1, 1]), "lists 3 layers"),
        ("general.architecture", (VT.UINT32, 7), "not a string"),
    ],
)
def test_gguf_wrong_value_types(tmp_path: Path, key: str, typed: tuple[Any, Any], says: str) -> None:
    err = _refused(read_gguf, _custom_gguf(tmp_path / "bad.gguf", {key: typed}), GGUF_FIELD)
    assert key in err.problem and says in err.problem


def test_gguf_without_tensors_has_zero_parameters(tmp_path: Path) -> None:
    err = _refused(read_gguf, _custom_gguf(tmp_path / "empty.gguf", {}, tensors=False), GGUF_FIELD)
    assert "n_params = 0" in err.problem and "tensors" in err.problem


# ---------------------------------------------------------------------------------------- Hugging Face

DENSE = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4}


def _config(tmp_path: Path, cfg: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_bytes(cfg if isinstance(cfg, bytes) else json.dumps(cfg).encode())
    return path


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02\xff\xfe binary", "not UTF-8"),
        ('{"model_type": "caf\u00e9"}'.encode("latin-1"), "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"num_hidden_layers": 1' + b"0" * 5000 + b"}", "not valid JSON"),  # beyond int-parsing limits
        (b"[1, 2]", "holds a list"),
        (b"42", "holds a number"),
        (b'"config"', "holds a string"),
        (b"null", "holds a null"),
    ],
)
def test_hf_config_that_is_not_a_json_object(tmp_path: Path, content: bytes, says: str) -> None:
    err = _refused(read_hf, _config(tmp_path, content), HF_FIELD)
    assert says in err.problem and "config.json" in err.fix


@pytest.mark.parametrize("key", ["num_hidden_layers", "num_attention_heads"])
@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "has no"),
        (-1, "out of range"),
        (0, "out of range"),
        (2.0, "a float, not a whole number"),
        (True, "a boolean, not a whole number"),
        ("4", "a string, not a whole number"),
        (10**12, "out of range"),
    ],
)
def test_hf_bad_layer_and_head_counts(tmp_path: Path, key: str, value: Any, says: str) -> None:
    err = _refused(read_hf, _config(tmp_path, {**DENSE, key: value}), HF_FIELD)
    assert key in err.problem and says in err.problem


@pytest.mark.parametrize("key", ["num_hidden_layers", "hidden_size", "num_attention_heads"])
def test_hf_missing_required_key(tmp_path: Path, key: str) -> None:
    cfg = {k: v for k, v in DENSE.items() if k != key}
    err = _refused(read_hf, _config(tmp_path, cfg), HF_FIELD)
    assert f"has no {key!r}" in err.problem and err.allowed


@pytest.mark.parametrize(
    "cfg",
    [
        {**DENSE, "hidden_size": 10**40},
        {**DENSE, "vocab_size": 10**30},
        {**DENSE, "max_position_embeddings": 2**62},
        {**DENSE, "intermediate_size": 10**20},
        {**DENSE, "num_key_value_heads": -8},
        {**DENSE, "hidden_size": 2},  # head_dim = 2 // 4 = 0
        {**DENSE, "text_config": [1, 2]},
        {**DENSE, "layer_types": ["sliding_attention"], "sliding_window": 4},
        {**DENSE, "tie_word_embeddings": "false"},
        {**DENSE, "quantization_config": "awq"},
    ],
)
def test_hf_absurd_or_inconsistent_values(tmp_path: Path, cfg: dict[str, Any]) -> None:
    _refused(read_hf, _config(tmp_path, cfg), HF_FIELD)


def _shard(tmp_path: Path, content: bytes | dict[str, Any] | list[Any]) -> None:
    if not isinstance(content, bytes):
        raw = json.dumps(content).encode()
        content = struct.pack("<Q", len(raw)) + raw
    (tmp_path / "model.safetensors").write_bytes(content)


def _entry(dtype: Any = "F16", shape: Any = (2, 3), offsets: Any = (0, 12)) -> dict[str, Any]:
    return {"w": {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\x01\x02", "shorter than its 8-byte header length"),
        (struct.pack("<Q", 1000) + b"{}", "declares a 1000-byte header"),
        (struct.pack("<Q", 2**64 - 1) + b"{}", "header"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "not UTF-8 JSON"),
        (struct.pack("<Q", 5) + b"{oops", "not UTF-8 JSON"),
        ([1, 2, 3], "is a list, not a JSON object"),
        ({"w": [1, 2]}, "entry is a list"),
        (_entry(dtype="F17"), "not a safetensors dtype"),
        (_entry(dtype=16), "not a safetensors dtype"),
        (_entry(shape=(2, -3)), "shape"),
        (_entry(shape=(2.0, 3)), "shape"),
        ({"w": {"dtype": "F16", "shape": "2x3", "data_offsets": [0, 12]}}, "shape"),
        (_entry(offsets=(0,)), "data_offsets"),
        (_entry(offsets=(12, 0)), "data_offsets"),
        (_entry(offsets=(-4, 8)), "data_offsets"),
        (_entry(offsets=(0, 10**30)), "span"),
        ({"w": {"dtype": "F16", "shape": [2, 3]}}, "data_offsets"),
    ],
)
def test_malformed_safetensors_header(tmp_path: Path, content: Any, says: str) -> None:
    _shard(tmp_path, content)
    err = _refused(read_hf, _config(tmp_path, DENSE), HF_FIELD)
    assert "model.safetensors" in err.problem and says in err.problem
    assert "model.safetensors" in err.fix


def test_safetensors_header_only_file_is_enough(tmp_path: Path) -> None:
    """A header fetched alone (HTTP range request) sizes the model without its gigabytes of data."""
    _shard(tmp_path, _entry(shape=(1000, 1000), offsets=(0, 2_000_000)))
    spec = read_hf(_config(tmp_path, DENSE), field=HF_FIELD)
    assert spec.weights_bytes == 2_000_000 and spec.n_params == 1_000_000


@pytest.mark.parametrize("key", ["num_experts", "num_local_experts", "n_routed_experts"])
def test_moe_config_without_safetensors_is_refused(tmp_path: Path, key: str) -> None:
    err = _refused(read_hf, _config(tmp_path, {**DENSE, key: 8}), HF_FIELD)
    assert f"{key} = 8" in err.problem and "*.safetensors" in err.fix


def test_moe_config_with_safetensors_counts_every_expert(tmp_path: Path) -> None:
    _shard(tmp_path, _entry(shape=(8, 64, 128), offsets=(0, 8 * 64 * 128 * 2)))
    spec = read_hf(_config(tmp_path, {**DENSE, "num_local_experts": 8}), field=HF_FIELD)
    assert spec.n_params == 8 * 64 * 128


def test_moe_with_one_expert_is_dense(tmp_path: Path) -> None:
    assert read_hf(_config(tmp_path, {**DENSE, "num_experts": 1}), field=HF_FIELD).n_params > 0


def test_dense_config_without_safetensors_is_still_estimated(tmp_path: Path) -> None:
    cfg = {**DENSE, "intermediate_size": 256, "vocab_size": 100, "num_key_value_heads": 2}
    spec = read_hf(_config(tmp_path, cfg))
    attn = 64 * 16 * (4 + 2 * 2) + 4 * 16 * 64
    assert spec.n_params == 2 * (attn + 3 * 64 * 256) + 100 * 64 * 2  # same formula as before
    assert spec.weights_bytes is None and "no safetensors" in spec.notes[0]


# ------------------------------------------------------------------------------ ModelSpec, catalogue


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"n_layers": 0, "kv_heads": (), "layer_windows": ()}, "n_layers"),
        ({"n_heads": 0}, "n_heads"),
        ({"n_params": 0}, "n_params"),
        ({"hidden_size": -1}, "hidden_size"),
        ({"head_dim_k": 0}, "head_dim_k"),
        ({"kv_heads": (8,)}, "kv_heads"),
        ({"layer_windows": (None, 0)}, "layer_windows"),
        ({"weights_bytes": 0}, "weights_bytes"),
        ({"n_layers": True}, "n_layers"),
        ({"n_params": 8.0e9}, "n_params"),
    ],
)
def test_model_spec_refuses_impossible_geometry(changes: dict[str, Any], field: str) -> None:
    good: dict[str, Any] = {
        "name": "m",
        "architecture": "llama",
        "n_layers": 2,
        "hidden_size": 64,
        "n_heads": 4,
        "kv_heads": (2, 2),
        "head_dim_k": 16,
        "head_dim_v": 16,
        "vocab_size": 32,
        "max_context": 2048,
        "n_params": 10_000,
        "layer_windows": (None, None),
    }
    ModelSpec(**good)
    with pytest.raises(ConfigError) as err:
        ModelSpec(**{**good, **changes})
    assert err.value.field == field and "ModelSpec" in err.value.fix and err.value.allowed


@pytest.mark.parametrize("name", [42, None, ["llama-3.1-8b"]])
def test_catalogue_name_that_is_not_a_string(name: Any) -> None:
    with pytest.raises(ConfigError) as err:
        catalogue_model(name, field="--model")
    assert err.value.field == "--model" and "catalogue name" in err.value.fix


# --- Gemma 3n / Gemma 4: shared KV layers and per-layer head sizes (issue 11) ------------------------------

HF_DATA = Path(__file__).parent / "data" / "hf"


def test_hf_gemma4_31b_full_layers_have_their_own_heads_and_head_size() -> None:
    """``num_global_key_value_heads`` and ``global_head_dim`` apply to the full-attention layers only (ollama
    convert/convert_gemma4.go writes them as a per-layer head_count_kv array and key_length vs key_length_swa)."""
    spec = read_hf(HF_DATA / "gemma-4-31b-it" / "config.json")
    full = [i for i in range(60) if spec.layer_windows[i] is None]
    assert full == list(range(5, 60, 6))
    assert all(spec.layer_windows[i] == 1024 for i in range(60) if i not in full)
    assert {spec.kv_heads[i] for i in full} == {4}
    assert {spec.kv_heads[i] for i in range(60) if i not in full} == {16}
    assert spec.kv_elements_per_token(5) == (4 * 512, 4 * 512)
    assert spec.kv_elements_per_token(0) == (16 * 256, 16 * 256)
    assert spec.kv_shared_layers == 0
    # 10 full layers × 4 heads × (512 + 512) × 2 B
    assert kv_bytes_per_token_full(spec, "bf16") == 10 * 4 * 1024 * 2 == 81_920


def test_hf_gemma4_e2b_last_20_layers_share_kv() -> None:
    spec = read_hf(HF_DATA / "gemma-4-e2b-it" / "config.json")
    assert spec.kv_shared_layers == 20 and spec.n_kv_layers == 15
    assert spec.owns_kv(14) and not spec.owns_kv(15)
    assert spec.kv_elements_per_token(34) == (0, 0)  # a full-attention layer that reuses layer 14's cache
    assert spec.kv_elements_per_token(4) == (512, 512)  # full: 1 head × global_head_dim 512
    assert spec.kv_elements_per_token(0) == (256, 256)  # sliding: 1 head × head_dim 256
    # only layers 4, 9, 14 are full attention with a cache of their own
    assert kv_bytes_per_token_full(spec, "bf16") == 3 * 1024 * 2


def _gemma4_gguf(path: Path, *, shared: int | None, arch: str = "gemma4", layers: int = 10) -> Path:
    """A tiny Gemma 4-style GGUF: 4 sliding : 1 full, sliding layers 2 KV heads × 16, full 1 × 32."""
    pattern = [i % 5 != 4 for i in range(layers)]
    w = gguf.GGUFWriter(str(path), arch=arch)
    w.add_name(f"tiny-{arch}")
    w.add_block_count(layers)
    w.add_context_length(4096)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv([2 if s else 1 for s in pattern])
    w.add_key_length(32)
    w.add_value_length(32)
    w.add_key_length_swa(16)
    w.add_value_length_swa(16)
    w.add_sliding_window(128)
    w.add_sliding_window_pattern(pattern)
    if shared is not None:
        w.add_shared_kv_layers(shared)
    w.add_vocab_size(32)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tensor("token_embd.weight", np.zeros((32, 64), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_gemma4_shared_kv_layers_and_swa_head_sizes(tmp_path: Path) -> None:
    """``<arch>.attention.shared_kv_layers`` and ``key_length_swa`` / ``value_length_swa`` (gguf-py Keys.Attention;
    llama.cpp: n_layer_kv_from_start = n_layer − shared, n_embd_head_k(il) = is_swa(il) ? swa : full)."""
    spec = read_gguf(_gemma4_gguf(tmp_path / "g4.gguf", shared=4))
    assert spec.kv_shared_layers == 4 and spec.n_kv_layers == 6
    assert spec.head_dims_k == tuple(32 if i % 5 == 4 else 16 for i in range(10))
    assert spec.head_dims_v == spec.head_dims_k
    assert spec.kv_elements_per_token(0) == (2 * 16, 2 * 16)
    assert spec.kv_elements_per_token(4) == (1 * 32, 1 * 32)
    assert [spec.kv_elements_per_token(i) for i in range(6, 10)] == [(0, 0)] * 4
    # the one full layer that owns a cache: 1 head × (32 + 32) × 2 B
    assert kv_bytes_per_token_full(spec, "f16") == 128


def test_gguf_gemma3n_without_the_key_keeps_llama_cpps_20_cache_layers(tmp_path: Path) -> None:
    """llama.cpp hard-codes 20 cache layers for gemma3n (llama-kv-cache-unified.cpp, ``n_layer_cache = 20``)."""
    spec = read_gguf(_gemma4_gguf(tmp_path / "g3n.gguf", shared=None, arch="gemma3n", layers=30))
    assert spec.kv_shared_layers == 10 and spec.n_kv_layers == 20
    given = read_gguf(_gemma4_gguf(tmp_path / "g3n-key.gguf", shared=15, arch="gemma3n", layers=35))
    assert given.kv_shared_layers == 15  # the key wins when present
    other = read_gguf(_gemma4_gguf(tmp_path / "g4-none.gguf", shared=None))
    assert other.kv_shared_layers == 0


def test_gguf_shared_layers_cannot_cover_every_layer(tmp_path: Path) -> None:
    exc = _refused(read_gguf, _gemma4_gguf(tmp_path / "all.gguf", shared=10), "model.gguf")
    assert "shared_kv_layers" in exc.problem


def test_hf_bad_gemma4_values_are_config_errors(tmp_path: Path) -> None:
    cfg = json.loads((HF_DATA / "gemma-4-e2b-it" / "config.json").read_text())
    for key, value, says in (
        ("num_kv_shared_layers", 35, "num_kv_shared_layers"),
        ("num_kv_shared_layers", "20", "num_kv_shared_layers"),
        ("global_head_dim", 1.5, "global_head_dim"),
        ("num_global_key_value_heads", -1, "num_global_key_value_heads"),
    ):
        bad = json.loads(json.dumps(cfg))
        bad["text_config"][key] = value
        path = tmp_path / "config.json"
        path.write_text(json.dumps(bad))
        exc = _refused(read_hf, path, "model.hf_config")
        assert says in exc.problem, (key, value, exc.problem)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"head_dims_k": (128,)}, "head_dims_k"),  # one entry for a 32-layer model
        ({"head_dims_v": (0,) * 32}, "head_dims_v"),
        ({"head_dims_k": (True,) * 32}, "head_dims_k"),
        ({"kv_shared_layers": 32}, "kv_shared_layers"),  # every layer shared: nothing owns a cache
        ({"kv_shared_layers": -1}, "kv_shared_layers"),
        ({"kv_shared_layers": 1.0}, "kv_shared_layers"),
    ],
)
def test_spec_refuses_bad_per_layer_geometry(change: dict[str, Any], field: str) -> None:
    from dataclasses import replace

    with pytest.raises(ConfigError) as exc:
        replace(catalogue_model("llama-3.1-8b"), **change)
    assert exc.value.field == field

"""Property-based fuzzing of the model-file readers.

Users point ``model.gguf`` / ``--gguf`` / ``model.hf_config`` at whatever is on their disk, so
whatever the bytes are, a reader must answer with a :class:`ModelSpec` that passes its own
validation, or a :class:`ConfigError` under the exact field the caller passed in. Anything else
(a KeyError, struct.error, UnicodeDecodeError, RecursionError, a hang) is a bug: the CLI would
print a traceback and Pulumi an internal error, instead of naming the setting to fix.

Each example works in its own ``tempfile`` directory: hypothesis runs many examples per test
call, and pytest's function-scoped ``tmp_path`` would be shared between them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import struct
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import ModelSpec, SizingRequest, read_gguf, read_hf, size
from cloudrun_gpu.sizing.readers import read_safetensors_header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Distinctive names, so a hard-coded "model.gguf" inside a reader cannot pass by accident.
GGUF_FIELD = "--gguf"
HF_FIELD = "stack.model.hf_config"
ST_FIELD = "weights.safetensors"

FUZZ = settings(
    # FUZZ_EXAMPLES=5000 for a long hunt; the default keeps this module at a few seconds.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
EXAMPLE_SECONDS = 10
"""One file read taking longer than this is a hang (e.g. a header declaring a 2**60-entry array)."""


class _Hung(BaseException):
    """Raised by the alarm: a BaseException, so a reader's own ``except Exception`` can't turn it
    into a ConfigError and hide the hang."""


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Fail an example that hangs instead of hanging the test run (``deadline=None`` won't)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise _Hung

    previous = signal.signal(signal.SIGALRM, on_alarm)
    # Re-armed every second: an alarm landing in a GC callback is swallowed ("Exception ignored").
    signal.setitimer(signal.ITIMER_REAL, seconds, 1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _spec_or_field_error(read: Callable[..., ModelSpec], path: Path, field: str) -> ModelSpec | None:
    """The property itself: a valid spec, or a ConfigError naming ``field`` with a fix."""
    try:
        with _time_limit(EXAMPLE_SECONDS):
            spec = read(path, field=field)
    except _Hung:
        raise AssertionError(f"reader did not return within {EXAMPLE_SECONDS} s") from None
    except ConfigError as err:
        assert err.field == field, err.render()
        assert err.fix and err.problem, err.render()
        err.render()  # renders without raising (reprs of odd values)
        return None
    assert isinstance(spec, ModelSpec)
    assert dataclasses.replace(spec) == spec  # re-runs ModelSpec validation on what the reader built
    return spec


def _sizes_or_config_error(spec: ModelSpec) -> None:
    """A spec that passed validation must size cleanly, or be refused with a ConfigError."""
    with suppress(ConfigError):
        size(SizingRequest(model=spec))


def _gguf_truth(path: Path) -> dict[str, Any] | None:
    """An independent reading of ``path`` with gguf-py's own ``GGUFReader`` (the llama.cpp project's reader, not
    ours): the block count, context length and tensor bytes it finds, or None where it cannot read the file."""
    try:
        with _time_limit(EXAMPLE_SECONDS):
            reader = gguf.GGUFReader(str(path))
            fields = {name: f.contents() for name, f in reader.fields.items()}
            tensor_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    except _Hung:
        return None
    except Exception:  # any failure of the other reader means "no independent answer"
        return None
    return {"fields": fields, "tensor_bytes": tensor_bytes, "tensors": len(reader.tensors)}


def _agrees_with_gguf_py(spec: ModelSpec, path: Path) -> None:
    """A spec our reader returned says what gguf-py reads from the same bytes: the layer count is the file's
    ``block_count``, the trained context its ``context_length``, and the weights the tensors' bytes."""
    truth = _gguf_truth(path)
    if truth is None:  # ours is more lenient than gguf-py here; validation above still held
        return
    fields = truth["fields"]
    assert spec.n_layers == fields[f"{spec.architecture}.block_count"]
    if f"{spec.architecture}.context_length" in fields:
        assert spec.max_context == fields[f"{spec.architecture}.context_length"]
    assert spec.weights_bytes == truth["tensor_bytes"]
    assert f"({truth['tensors']} tensors)" in spec.source


# ---------------------------------------------------------------------------------------- GGUF

_VT = gguf.GGUFValueType
ARCH = "llama"
_BASE_KEYS: dict[str, tuple[gguf.GGUFValueType, Any]] = {
    "general.name": (_VT.STRING, "tiny"),
    "general.file_type": (_VT.UINT32, int(gguf.LlamaFileType.MOSTLY_F16)),
    f"{ARCH}.block_count": (_VT.UINT32, 2),
    f"{ARCH}.context_length": (_VT.UINT32, 2048),
    f"{ARCH}.embedding_length": (_VT.UINT32, 64),
    f"{ARCH}.feed_forward_length": (_VT.UINT32, 128),
    f"{ARCH}.attention.head_count": (_VT.UINT32, 4),
    f"{ARCH}.attention.head_count_kv": (_VT.ARRAY, [2, 2]),  # arrays: their counts are what lie
    "tokenizer.ggml.tokens": (_VT.ARRAY, ["<s>", "</s>", "a"]),
    f"{ARCH}.attention.key_length": (_VT.UINT32, 16),
    f"{ARCH}.attention.value_length": (_VT.UINT32, 16),
    f"{ARCH}.vocab_size": (_VT.UINT32, 32),
}
_EXTRA_KEYS = [
    "general.architecture",
    f"{ARCH}.attention.sliding_window",
    f"{ARCH}.attention.sliding_window_pattern",
    f"{ARCH}.attention.kv_lora_rank",
    f"{ARCH}.rope.dimension_count",
]


def _write_gguf(path: Path, keys: dict[str, tuple[gguf.GGUFValueType, Any]], layers: int) -> None:
    w = gguf.GGUFWriter(str(path), arch=ARCH)
    for key, (vtype, value) in keys.items():
        w.add_key_value(key, value, vtype)
    w.add_tensor("token_embd.weight", np.zeros((32, 64), np.float16))
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((64, 64), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@cache
def _valid_gguf() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "valid.gguf"
        _write_gguf(path, _BASE_KEYS, layers=2)
        return path.read_bytes()


_EDGE_INTS = [0, 1, 2, 3, 7, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**53, 2**63, 2**64 - 1]


@st.composite
def _mutated(draw: st.DrawFn, base: bytes, header_bytes: int) -> bytes:
    """``base`` after a few byte-level edits, most of them inside the header where they bite."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        pos = draw(st.one_of(st.integers(0, min(len(data), header_bytes) - 1), st.integers(0, len(data) - 1)))
        op = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "append", "int32", "int64"]))
        if op == "truncate":
            del data[pos:]
        elif op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        else:  # a length/count/type field set to an edge value: the classic way headers lie
            n = 4 if op == "int32" else 8
            value = draw(st.sampled_from(_EDGE_INTS)) % (1 << (8 * n))
            data[pos : pos + n] = value.to_bytes(n, "little")
    return bytes(data)


VALID_WEIGHT_BYTES = (32 * 64 + 2 * 64 * 64) * 2
"""What ``_write_gguf(layers=2)`` writes: an F16 32×64 embedding and two 64×64 F16 matrices."""


def test_the_valid_base_reads_as_written_and_sizes() -> None:
    """The oracle the mutations start from: the unmutated file reads back exactly as the writer wrote it."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.gguf"
        path.write_bytes(_valid_gguf())
        spec = _spec_or_field_error(read_gguf, path, GGUF_FIELD)
    assert spec is not None
    assert (spec.name, spec.architecture, spec.n_layers, spec.hidden_size, spec.n_heads) == ("tiny", ARCH, 2, 64, 4)
    assert (spec.kv_heads, spec.head_dim_k, spec.head_dim_v, spec.vocab_size) == ((2, 2), 16, 16, 32)
    assert (spec.max_context, spec.intermediate_size, spec.weights_quant) == (2048, 128, "F16")
    assert spec.weights_bytes == VALID_WEIGHT_BYTES and spec.n_params == VALID_WEIGHT_BYTES // 2
    plan = size(SizingRequest(model=spec))
    assert plan.max_parallel_sequences >= 1 and plan.weights_bytes == VALID_WEIGHT_BYTES


@FUZZ
@given(data=_mutated(_valid_gguf(), header_bytes=900))
def test_mutated_gguf_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.gguf"
        path.write_bytes(data)
        spec = _spec_or_field_error(read_gguf, path, GGUF_FIELD)
        if data == _valid_gguf():
            assert spec is not None and spec.n_layers == 2 and spec.weights_bytes == VALID_WEIGHT_BYTES
        if not data.startswith(b"GGUF"):
            assert spec is None  # not a GGUF file at all: refused, never guessed
        if spec is not None:
            _agrees_with_gguf_py(spec, path)
            _sizes_or_config_error(spec)


@FUZZ
@given(data=st.one_of(st.binary(max_size=256), st.binary(max_size=64).map(lambda b: b"GGUF\x03\0\0\0" + b)))
def test_random_bytes_as_gguf(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.gguf"
        path.write_bytes(data)
        spec = _spec_or_field_error(read_gguf, path, GGUF_FIELD)
    # At most 64 bytes after the header cannot hold the required keys (block_count alone is a 23-byte key): every
    # one of these is refused, never read as a model.
    assert spec is None


_lies = st.one_of(st.sampled_from([2**60, 2**64 - 1, 2**63, 2**32, 1 << 20, 7]), st.integers(0, 2**64 - 1))
_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
"""GGUF value type → bytes (uint8, int8, uint16, int16, uint32, int32, float32, bool, u/int64, float64)."""


@st.composite
def _gguf_structures(draw: st.DrawFn) -> bytes:
    """A GGUF built field by field, where any count or length may lie about what follows.

    Byte flips rarely land on the one 8-byte array length that makes a reader loop, so this
    grammar puts a lie (2**60 elements, a key length past the end) where the format has counts.
    """

    def count(true: int, lies: bool = False) -> int:
        # Header counts rarely lie, so parsing usually gets far enough to meet a lying array count.
        # (Hypothesis favours small draws, so "lie" is the last of the choices, not the first.)
        choices = ["true", "true", "lie"] if lies else ["true"] * 7 + ["lie"]
        return draw(_lies) if draw(st.sampled_from(choices)) == "lie" else true

    n_kv, n_tensors = draw(st.integers(0, 4)), draw(st.integers(0, 2))
    out = bytearray(b"GGUF")
    out += struct.pack("<I", draw(st.sampled_from([3, 3, 3, 3, 2, 1, 0x03000000])))
    out += struct.pack("<QQ", count(n_tensors), count(n_kv))
    for _ in range(n_kv):
        key = draw(st.one_of(st.sampled_from([*_BASE_KEYS, *_EXTRA_KEYS]), st.text(max_size=6))).encode()
        vtype = draw(st.sampled_from([4, 5, 8, 9, 9, 9, 10, 6, 7, 13]))  # 13 is no type at all
        out += struct.pack("<Q", count(len(key))) + key + struct.pack("<I", vtype)
        if vtype == 9:  # array: element type, element count, elements
            itype, n = draw(st.sampled_from([0, 4, 7, 8, 0, 9, 13])), draw(st.integers(0, 4))
            out += struct.pack("<IQ", itype, count(n, lies=True)) + draw(st.binary(max_size=8 * n))
        elif vtype == 8:  # string: length, bytes
            text = draw(st.binary(max_size=8))
            out += struct.pack("<Q", count(len(text), lies=True)) + text
        else:
            out += draw(st.binary(min_size=_SCALAR_BYTES.get(vtype, 0), max_size=_SCALAR_BYTES.get(vtype, 0) or 4))
    for i in range(n_tensors):
        name = f"blk.{i}.w".encode()
        dims = draw(st.lists(st.integers(0, 2**20), max_size=4))
        out += struct.pack("<Q", count(len(name))) + name + struct.pack("<I", count(len(dims)) % 2**32)
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", draw(st.sampled_from([0, 1, 2, 8, 12, 39, 1000])), count(0))
    return bytes(out + draw(st.binary(max_size=64)))


@FUZZ
@given(data=_gguf_structures())
def test_gguf_whose_counts_lie(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.gguf"
        path.write_bytes(data)
        spec = _spec_or_field_error(read_gguf, path, GGUF_FIELD)
    # At most 4 keys, and a model needs more (block_count, embedding_length, head_count, context_length, the
    # architecture): whatever the counts claim, no spec can come out of these, only the field's error.
    assert spec is None


_int_values = st.one_of(st.sampled_from([0, 1, 2, 4, 16, 64]), st.integers(0, 2**32 - 1))
_gguf_values: st.SearchStrategy[tuple[gguf.GGUFValueType, Any]] = st.one_of(
    st.tuples(st.just(_VT.UINT32), _int_values),
    st.tuples(st.just(_VT.INT32), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just(_VT.UINT64), st.sampled_from(_EDGE_INTS)),
    st.tuples(st.just(_VT.INT64), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(_VT.FLOAT32), st.floats(width=32)),
    st.tuples(st.just(_VT.BOOL), st.booleans()),
    st.tuples(st.just(_VT.STRING), st.text(max_size=8)),
    st.tuples(st.just(_VT.ARRAY), st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=6)),
    st.tuples(st.just(_VT.ARRAY), st.lists(st.booleans(), min_size=1, max_size=6)),
    st.tuples(st.just(_VT.ARRAY), st.lists(st.text(max_size=4), min_size=1, max_size=3)),
)


@st.composite
def _gguf_keys(draw: st.DrawFn) -> dict[str, tuple[gguf.GGUFValueType, Any]]:
    """The valid key set with some keys dropped and some set to values of any type or size."""
    keys = dict(_BASE_KEYS)
    for key in draw(st.lists(st.sampled_from([*_BASE_KEYS, *_EXTRA_KEYS]), max_size=4, unique=True)):
        if draw(st.booleans()):
            keys.pop(key, None)
        else:
            keys[key] = draw(_gguf_values)
    return keys


@FUZZ
@given(keys=_gguf_keys(), layers=st.integers(0, 3))
def test_gguf_with_wrong_metadata_values(keys: dict[str, tuple[gguf.GGUFValueType, Any]], layers: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.gguf"
        _write_gguf(path, keys, layers)
        spec = _spec_or_field_error(read_gguf, path, GGUF_FIELD)
        if spec is not None:
            _agrees_with_gguf_py(spec, path)
            # What the writer wrote, independently of any reader: the tensors and the required keys' values.
            assert spec.weights_bytes == (32 * 64 + layers * 64 * 64) * 2
            for key, attr in (("block_count", "n_layers"), ("embedding_length", "hidden_size")):
                vtype, value = keys[f"{ARCH}.{key}"]  # a required key the writer dropped is never read as a spec
                assert vtype != _VT.ARRAY and getattr(spec, attr) == value
            _sizes_or_config_error(spec)


# -------------------------------------------------------------------------------- Hugging Face

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 8, 4096, 2**31, 2**63, 10**30]),
    st.integers(),
    st.floats(),  # NaN and ±Infinity included: json.dumps writes them, json.loads reads them back
    st.text(max_size=12),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)

BASE_CONFIG: dict[str, Any] = {
    "model_type": "qwen3",
    "num_hidden_layers": 4,
    "hidden_size": 256,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "intermediate_size": 512,
    "vocab_size": 1000,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
_CONFIG_KEYS = [
    *BASE_CONFIG,
    "text_config",
    "sliding_window",
    "sliding_window_pattern",
    "layer_types",
    "use_sliding_window",
    "v_head_dim",
    "kv_lora_rank",
    "qk_rope_head_dim",
    "quantization_config",
    "_name_or_path",
    "num_experts",
    "num_local_experts",
    "n_routed_experts",
    "ffn_config",
]


@st.composite
def _configs(draw: st.DrawFn) -> dict[str, Any]:
    cfg = dict(BASE_CONFIG)
    for key in draw(st.lists(st.sampled_from(_CONFIG_KEYS), min_size=1, max_size=4, unique=True)):
        if draw(st.booleans()):
            cfg.pop(key, None)
        else:
            cfg[key] = draw(_json_values)
    return cfg


def _header(tensors: dict[str, tuple[str, list[int], int]]) -> tuple[dict[str, Any], int]:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape, itemsize) in tensors.items():
        n = int(np.prod(shape)) * itemsize
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    return header, offset


VALID_HEADER, VALID_DATA = _header({"embed.weight": ("BF16", [1000, 256], 2), "q.weight": ("BF16", [256, 512], 2)})


def _safetensors_bytes(header: Any, data_len: int) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * data_len


@st.composite
def _bad_headers(draw: st.DrawFn) -> Any:
    """A valid header with tensor entries or their fields replaced by random JSON, or any JSON at all."""
    if draw(st.booleans()):
        return draw(_json_values)
    header = json.loads(json.dumps(VALID_HEADER))
    name = draw(st.sampled_from(["embed.weight", "q.weight", "__metadata__"]))
    part = draw(st.sampled_from([None, "dtype", "shape", "data_offsets"]))
    if part is None:
        header[name] = draw(_json_values)
    elif isinstance(header[name], dict):
        header[name][part] = draw(_json_values)
    return header


@st.composite
def _safetensors_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["header", "bytes", "mutated"]))
    if kind == "header":
        return _safetensors_bytes(draw(_bad_headers()), draw(st.sampled_from([0, VALID_DATA])))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    return draw(_mutated(_safetensors_bytes(VALID_HEADER, 0), header_bytes=256))


@st.composite
def _config_files(draw: st.DrawFn) -> bytes:
    """config.json contents: a near-valid config, any JSON value at all, or raw bytes."""
    kind = draw(st.sampled_from(["config", "config", "json", "bytes"]))
    if kind == "config":
        return json.dumps(draw(_configs())).encode()
    if kind == "json":
        return json.dumps(draw(_json_values)).encode()
    return draw(st.binary(max_size=128))


@FUZZ
@given(config=_config_files())
def test_malformed_hf_config(config: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "config.json"
        path.write_bytes(config)
        spec = _spec_or_field_error(read_hf, path, HF_FIELD)
        if spec is not None:
            _agrees_with_config(spec, json.loads(config))
            _sizes_or_config_error(spec)


def _agrees_with_config(spec: ModelSpec, cfg: Any) -> None:
    """A spec read from a config.json says what that JSON says: it was an object, and (with no nested text
    config) the layer count, width, heads, vocabulary and trained context are its values."""
    assert isinstance(cfg, dict)
    if isinstance(cfg.get("text_config"), dict):
        return  # a multimodal wrapper: the text model's values come from the nested object
    assert spec.n_layers == cfg["num_hidden_layers"]
    assert spec.hidden_size == cfg["hidden_size"]
    assert spec.n_heads == cfg["num_attention_heads"]
    assert spec.vocab_size == (cfg.get("vocab_size") or 0)  # optional: absent or null is 0
    model_type = cfg.get("model_type")
    assert spec.architecture == (model_type if isinstance(model_type, str) and model_type else "unknown")
    assert len(spec.kv_heads) == spec.n_layers


def test_the_base_config_reads_as_written() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "config.json"
        path.write_text(json.dumps(BASE_CONFIG))
        spec = _spec_or_field_error(read_hf, path, HF_FIELD)
        assert spec is not None
        _agrees_with_config(spec, BASE_CONFIG)
        assert (spec.kv_heads, spec.head_dim_k, spec.max_context) == ((2, 2, 2, 2), 64, 4096)
        assert spec.weights_bytes is None  # no weights beside it: estimated, and the notes say so
        assert any("no safetensors" in n for n in spec.notes)
        (Path(d) / "model.safetensors").write_bytes(_safetensors_bytes(VALID_HEADER, VALID_DATA))
        spec = _spec_or_field_error(read_hf, path, HF_FIELD)
        assert spec is not None and spec.weights_bytes == VALID_DATA and spec.n_params == VALID_DATA // 2
        assert size(SizingRequest(model=spec)).max_parallel_sequences >= 1


@FUZZ
@given(config=st.one_of(st.just(BASE_CONFIG), _configs()), shard=_safetensors_files())
def test_hf_config_with_malformed_safetensors(config: dict[str, Any], shard: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "config.json"
        path.write_text(json.dumps(config))
        (Path(d) / "model.safetensors").write_bytes(shard)
        spec = _spec_or_field_error(read_hf, path, HF_FIELD)
        if spec is not None:
            _agrees_with_config(spec, config)
            if spec.weights_bytes:  # read from the shard: only a header that describes real tensors gives bytes
                assert spec.weights_bytes == _header_bytes(shard)
            _sizes_or_config_error(spec)


def _header_bytes(shard: bytes) -> int:
    """The tensor bytes a safetensors header declares (its data offsets), read independently of the reader."""
    (n,) = struct.unpack("<Q", shard[:8])
    header = json.loads(shard[8 : 8 + n])
    return sum(int(v["data_offsets"][1]) - int(v["data_offsets"][0]) for k, v in header.items() if k != "__metadata__")


@FUZZ
@given(shard=_safetensors_files())
def test_safetensors_header_reader(shard: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.safetensors"
        path.write_bytes(shard)
        try:
            header = read_safetensors_header(path, field=ST_FIELD)
        except ConfigError as err:
            assert err.field == ST_FIELD, err.render()
            return
        assert isinstance(header, dict)


@FUZZ
@given(config=_configs())
def test_moe_config_without_weights_is_never_sized_as_dense(config: dict[str, Any]) -> None:
    """A config that declares >1 routed experts and has no safetensors is refused, never estimated."""
    experts = [config.get(k) for k in ("num_experts", "num_local_experts", "n_routed_experts")]
    declares_moe = any(isinstance(n, int) and not isinstance(n, bool) and n > 1 for n in experts)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "config.json"
        path.write_text(json.dumps(config))
        spec = _spec_or_field_error(read_hf, path, HF_FIELD)
    if declares_moe:
        assert spec is None

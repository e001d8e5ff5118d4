"""Read a model's spec from its own files without loading any weights.

- GGUF: the header via ``gguf.GGUFReader`` (a memory map; tensor data is never touched).
- Hugging Face: ``config.json`` plus the JSON headers of the ``*.safetensors`` files beside it
  (first 8 bytes = header length, then the header; sizes come from ``data_offsets``).

These files come from users, so every way one can be wrong (missing, unreadable, truncated,
garbage, a JSON list where an object belongs, a zero layer count, a 10**30 head count) ends in a
:class:`ConfigError` naming the field the user wrote (``field``: ``model.gguf`` in a stack file,
``--gguf`` on the CLI), the path they gave, and the fix. No parser exception escapes: the CLI
would print it as a traceback and the Pulumi program as an internal error.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import warnings
from collections.abc import Callable
from functools import cache
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing.spec import (
    MAX_CONTEXT,
    MAX_DIM,
    MAX_EXPERTS,
    MAX_HEADS,
    MAX_LAYERS,
    MAX_VOCAB,
    ModelSpec,
    windows_from_pattern,
)

if TYPE_CHECKING:
    import numpy.typing as npt
    from gguf import GGUFReader

# llama.cpp hard-codes some sliding-window patterns that the GGUF does not carry
# (llm-sizing §2.1: gemma3 files have sliding_window but no pattern key).
_GGUF_DEFAULT_SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gpt-oss": 2, "cohere2": 4}
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")

MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""A config.json is a few KB; anything this large is a weights file given by mistake, and reading
it whole into memory to find out would be the real failure."""
MAX_SAFETENSORS_HEADER = 100_000_000
"""The safetensors library's own limit (``MAX_HEADER_SIZE``): a larger declared length is corrupt."""
MAX_TENSOR_RANK = 16
"""Real tensors have ≤ 5 dimensions; the cap keeps a hostile shape list from costing minutes."""

# Bits per element of every dtype the safetensors format defines (safetensors ``Dtype``).
_SAFETENSORS_BITS = {
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

# Keys under which Hugging Face configs declare routed experts (Qwen-MoE/OLMoE, Mixtral/gpt-oss/
# Jamba, DeepSeek, ERNIE). Without weights at hand a MoE cannot be sized by the dense formula:
# every expert stays resident, so a dense estimate would undercount memory several-fold.
_MOE_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")

_OS_PROBLEMS = {
    errno.ENOENT: "file not found",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.ENAMETOOLONG: "a path component is longer than the file system allows (ENAMETOOLONG)",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EISDIR: "is a directory, not a file",
}


class _Source:
    """One user-supplied file and the field that named it; every refusal goes through :meth:`fail`
    so that no error can carry a different field than the one the caller passed in."""

    def __init__(self, field: str, value: Any, path: Path, fix: str, path_fix: str) -> None:
        self.field = field
        self.value = value
        self.path = path
        self.fix = fix
        """The default fix for a file whose content is wrong."""
        self.path_fix = path_fix
        """The fix for a path that does not lead to a readable regular file."""

    def fail(self, problem: str, fix: str | None = None, allowed: str = "") -> NoReturn:
        raise ConfigError(self.field, self.value, problem, fix or self.fix, allowed=allowed)

    def os_error(self, exc: OSError, what: str = "", fix: str | None = None) -> NoReturn:
        reason = _OS_PROBLEMS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
        where = f"{what}: " if what else ""
        self.fail(f"{where}cannot be read: {reason}", fix or self.path_fix)

    def whole(self, key: str, value: Any, low: int, high: int, meaning: str, *, required: bool = False) -> int | None:
        """``value`` as an int in ``low..high``; None when absent (null) and not ``required``.

        Floats and bools are refused rather than truncated: ``int(2.7)`` layers or ``True`` heads
        would size a different model than the file describes.
        """
        allowed = f"a whole number {low}..{high} ({meaning})"
        if value is None:
            if required:
                self.fail(f"has no {key!r}", allowed=allowed)
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{key} = {_short(value)} is a {_kind(value)}, not a whole number", allowed=allowed)
        if not low <= value <= high:
            self.fail(f"{key} = {_short(value)} is out of range ({meaning})", allowed=allowed)
        return value

    def text(self, key: str, value: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        self.fail(f"{key} = {_short(value)} is a {_kind(value)}, not a string", allowed="a JSON string")

    def flag(self, key: str, value: Any) -> bool:
        if value is None or isinstance(value, bool):
            return bool(value)
        self.fail(f"{key} = {_short(value)} is a {_kind(value)}, not true/false", allowed="true or false")

    def spec_error(self, exc: ConfigError, origin: dict[str, str]) -> NoReturn:
        """Re-raise a :class:`ModelSpec` refusal under the user's field, naming the file's key."""
        key = origin.get(exc.field, exc.field)
        self.fail(f"gives {exc.field} = {_short(exc.value)} (from {key}): {exc.problem}", allowed=exc.allowed)


def _short(value: Any, limit: int = 80) -> str:
    """A repr short enough for one error line (a fuzzed value can be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    names = {
        dict: "JSON object",
        list: "list",
        str: "string",
        float: "float",
        bool: "boolean",
        int: "number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _as_path(field: str, path: Any, what: str) -> Path:
    """A user's path as :class:`Path`; anything else (None, a number from YAML, bytes, an empty
    string that would mean the current directory) is a ConfigError, not a TypeError later."""
    if isinstance(path, Path):
        return path
    if isinstance(path, str) and path.strip():
        return Path(path)
    if isinstance(path, os.PathLike):
        raw = os.fspath(path)
        if isinstance(raw, str) and raw.strip():
            return Path(raw)
    raise ConfigError(field, path, "is not a file path", f"give the path of {what}", allowed="a non-empty path")


def _stat_file(src: _Source, path: Path | None = None, what: str = "", fix: str | None = None) -> int:
    """Size of a regular file (``path``, default the user's own), refusing missing paths,
    directories, FIFOs, devices and empty files.

    ``Path.is_file`` is not enough: it raises on ENAMETOOLONG and on a NUL byte in the path. A
    FIFO or /dev/zero would block or never end.
    """
    where = f"{what}: " if what else ""
    fix = fix or src.path_fix
    try:
        st = os.stat(path or src.path)
    except OSError as exc:
        src.os_error(exc, what, fix)
    except ValueError as exc:  # embedded NUL byte, or a name the file system encoding cannot hold
        src.fail(f"{where}is not a usable path ({exc})", fix)
    if stat.S_ISDIR(st.st_mode):
        src.fail(f"{where}is a directory, not a file", fix)
    if not stat.S_ISREG(st.st_mode):
        src.fail(f"{where}is not a regular file (a FIFO or device would block or never end)", fix)
    if st.st_size == 0:
        src.fail(f"{where}is empty (0 bytes)", fix)
    return st.st_size


def refuse_pickle(field: str, path: str | os.PathLike[str]) -> None:
    """Practice B3: pickle checkpoints can run code when loaded, so they are never accepted.

    ``path`` may be anything a user wrote; a value that is not a path is left to the caller's own
    path check (this function only ever refuses pickles, it never crashes on odd input).
    """
    try:
        text = os.fspath(path)
    except TypeError:
        return
    if isinstance(text, str) and text.lower().endswith(_PICKLE_SUFFIXES):
        raise ConfigError(
            field,
            text,
            "is a pickle-format checkpoint, which can execute code when loaded (practice B3)",
            "convert the model to GGUF (llama.cpp's convert_hf_to_gguf.py) or safetensors and point at that file",
            allowed="*.gguf or *.safetensors files",
        )


# --------------------------------------------------------------------------------------------- GGUF


@cache
def _strict_reader() -> type[GGUFReader]:
    """``GGUFReader`` that refuses to read past the end of the file.

    The stock reader slices its memory map, and a slice past the end is silently empty: a header
    declaring a 2**60-element array then loops 2**60 times reading nothing. Checking each read
    against the file size turns that (and every other truncation) into an immediate ValueError.
    """
    import gguf
    import numpy as np

    class StrictGGUFReader(gguf.GGUFReader):
        def _get(
            self,
            offset: int,
            dtype: npt.DTypeLike,
            count: int = 1,
            override_order: Literal["I", "S", "<"] | None = None,
        ) -> npt.NDArray[Any]:
            end = int(offset) + np.dtype(dtype).itemsize * int(count)
            if offset < 0 or end > len(self.data):
                raise ValueError(f"truncated: a read needs bytes up to {end} but the file has {len(self.data)}")
            return super()._get(offset, dtype, count, override_order)

    return StrictGGUFReader


def _gguf_value(src: _Source, reader: GGUFReader, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    try:
        return field.contents()
    except Exception as exc:  # e.g. a string value that is not UTF-8, an index past the parts
        src.fail(f"has an unreadable value for {key!r} ({type(exc).__name__})")


def read_gguf(path: str | Path, *, field: str = "model.gguf") -> ModelSpec:
    """Spec from a GGUF header; weights are the sum of the real tensor sizes.

    ``field`` names the setting the path came from (``--gguf``, ``model.gguf``) so that every
    refusal points the user at what they wrote.
    """
    p = _as_path(field, path, "a local .gguf file")
    refuse_pickle(field, str(p))
    src = _Source(
        field,
        str(p),
        p,
        f"re-download or re-convert the model (llama.cpp's convert_hf_to_gguf.py) and point {field} "
        "at the complete .gguf file",
        f"point {field} at a local .gguf file (not a folder) that exists and this user can read",
    )
    _stat_file(src)
    try:
        # numpy overflow warnings on corrupt counts are failures, not noise to print and carry on.
        # Only RuntimeWarning: a future numpy DeprecationWarning must not make valid files unreadable.
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            reader = _strict_reader()(str(p), "r")
    except OSError as exc:
        src.os_error(exc)
    except Exception as exc:  # the gguf package raises bare ValueError/KeyError/IndexError on bad files
        src.fail(
            f"is not a readable GGUF file ({type(exc).__name__}: {_short(str(exc), 160)})",
            allowed="a complete GGUF file, version 2 or 3 (starts with the magic 'GGUF')",
        )
    return _gguf_spec(src, reader)


def _gguf_spec(src: _Source, reader: GGUFReader) -> ModelSpec:
    import gguf

    arch = src.text("general.architecture", _gguf_value(src, reader, "general.architecture"))
    if not arch:
        src.fail("has no 'general.architecture' key, so its model keys cannot be found")

    def key(name: str) -> Any:
        return _gguf_value(src, reader, f"{arch}.{name}")

    def whole(name: str, low: int, high: int, meaning: str, *, required: bool = False) -> int | None:
        return src.whole(f"{arch}.{name}", key(name), low, high, meaning, required=required)

    def per_layer(name: str, raw: list[Any], n_layers: int) -> None:
        if len(raw) != n_layers:
            src.fail(f"{arch}.{name} lists {len(raw)} layers but {arch}.block_count = {n_layers}")

    n_layers = whole("block_count", 1, MAX_LAYERS, "transformer layers", required=True) or 0
    hidden = whole("embedding_length", 1, MAX_DIM, "the model width", required=True) or 0
    heads_raw = key("attention.head_count")
    if isinstance(heads_raw, list):  # per-layer head counts (OpenELM): the widest layer sizes the rest
        if not heads_raw:
            src.fail(f"{arch}.attention.head_count is an empty list")
        heads = max(src.whole(f"{arch}.attention.head_count[]", h, 0, MAX_HEADS, "query heads") or 0 for h in heads_raw)
    else:
        heads = src.whole(f"{arch}.attention.head_count", heads_raw, 0, MAX_HEADS, "query heads", required=True) or 0
    if heads < 1:
        src.fail(f"{arch}.attention.head_count = 0: attention needs at least one head", allowed=f"1..{MAX_HEADS}")
    kv_raw = key("attention.head_count_kv")
    kv_name = f"{arch}.attention.head_count_kv"
    if kv_raw is None:
        kv_heads: tuple[int, ...] = (heads,) * n_layers
    elif isinstance(kv_raw, list):
        per_layer("attention.head_count_kv", kv_raw, n_layers)
        kv_heads = tuple(src.whole(f"{kv_name}[]", x, 0, MAX_HEADS, "KV heads") or 0 for x in kv_raw)
    else:
        kv_heads = (src.whole(kv_name, kv_raw, 0, MAX_HEADS, "KV heads") or 0,) * n_layers
    head_k = whole("attention.key_length", 0, MAX_DIM, "elements per K head") or hidden // heads
    head_v = whole("attention.value_length", 0, MAX_DIM, "elements per V head") or head_k
    window = whole("attention.sliding_window", 0, MAX_CONTEXT, "tokens a sliding layer sees") or None
    pattern_raw = key("attention.sliding_window_pattern")
    if isinstance(pattern_raw, list):  # per-layer booleans: True = sliding
        per_layer("attention.sliding_window_pattern", pattern_raw, n_layers)
        if not all(isinstance(s, bool | int) for s in pattern_raw):
            src.fail(f"{arch}.attention.sliding_window_pattern holds values that are not booleans")
        windows: tuple[int | None, ...] = tuple(window if s and window else None for s in pattern_raw)
    else:
        pattern = src.whole(f"{arch}.attention.sliding_window_pattern", pattern_raw, 0, MAX_LAYERS, "layers per group")
        windows = windows_from_pattern(n_layers, window, pattern or _GGUF_DEFAULT_SWA_PATTERN.get(arch, 1))
    kv_lora = whole("attention.kv_lora_rank", 0, MAX_DIM, "MLA latent rank")
    rope_dim = whole("rope.dimension_count", 0, MAX_DIM, "rotary dimensions")
    mla = kv_lora + (rope_dim or 0) if kv_lora else 0
    # Gemma 4: key_length / value_length are the full-attention layers' head size and key_length_swa /
    # value_length_swa the sliding layers' (gguf-py Keys.Attention.KEY_LENGTH_SWA; ollama
    # convert/convert_gemma4.go writes "key_length = global head dim, key_length_swa = local (SWA) head dim").
    # llama.cpp: n_embd_head_k(il) = is_swa(il) ? n_embd_head_k_swa : n_embd_head_k_full (src/llama-hparams.cpp).
    head_k_swa = whole("attention.key_length_swa", 0, MAX_DIM, "elements per K head on sliding layers")
    head_v_swa = whole("attention.value_length_swa", 0, MAX_DIM, "elements per V head on sliding layers")
    head_dims_k = _per_layer_dims(windows, head_k, head_k_swa)
    head_dims_v = _per_layer_dims(windows, head_v, head_v_swa or head_k_swa)
    shared = _gguf_shared_kv_layers(src, arch, n_layers, key("attention.shared_kv_layers"))
    mlp = _gguf_mlp(src, arch, key)

    tensors = reader.tensors
    n_params = sum(int(t.n_elements) for t in tensors)
    weights = sum(int(t.n_bytes) for t in tensors)
    host_input, per_layer_embd = _gguf_host_tables(tensors)
    vocab = whole("vocab_size", 0, MAX_VOCAB, "tokens in the vocabulary")
    if vocab is None:
        tokens = reader.fields.get("tokenizer.ggml.tokens")
        vocab = len(tokens.data) if tokens is not None else 0
    file_type = _gguf_value(src, reader, "general.file_type")
    quant: str | None = None
    if file_type is not None:
        try:
            quant = gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_")
        except (ValueError, TypeError):
            quant = f"file_type {_short(file_type, 40)}"
    name = _gguf_value(src, reader, "general.name")
    origin = {
        "n_layers": f"{arch}.block_count",
        "hidden_size": f"{arch}.embedding_length",
        "n_heads": f"{arch}.attention.head_count",
        "kv_heads": kv_name,
        "head_dim_k": f"{arch}.attention.key_length or embedding_length / head_count",
        "head_dim_v": f"{arch}.attention.value_length",
        "vocab_size": f"{arch}.vocab_size or tokenizer.ggml.tokens",
        "max_context": f"{arch}.context_length",
        "n_params": f"the {len(tensors)} tensors' element counts",
        "weights_bytes": f"the {len(tensors)} tensors' sizes",
        "mla_latent_dim": f"{arch}.attention.kv_lora_rank + {arch}.rope.dimension_count",
        "head_dims_k": f"{arch}.attention.key_length / key_length_swa",
        "head_dims_v": f"{arch}.attention.value_length / value_length_swa",
        "kv_shared_layers": f"{arch}.attention.shared_kv_layers",
        "experts_per_token": f"{arch}.expert_used_count",
    }
    # read before the ModelSpec call: a refusal raised inside its try would be re-wrapped by spec_error as if
    # ModelSpec had refused a field it was given
    max_context = whole("context_length", 0, MAX_CONTEXT, "trained context in tokens") or 0
    try:
        return ModelSpec(
            **mlp,
            name=name if isinstance(name, str) and name else src.path.stem,
            architecture=arch,
            n_layers=n_layers,
            hidden_size=hidden,
            n_heads=heads,
            kv_heads=kv_heads,
            head_dim_k=head_k,
            head_dim_v=head_v,
            vocab_size=vocab,
            max_context=max_context,
            n_params=n_params,
            layer_windows=windows,
            mla_latent_dim=mla,
            weights_bytes=weights,
            weights_quant=quant,
            host_input_bytes=host_input,
            per_layer_embedding_bytes=per_layer_embd,
            source=f"gguf: {src.path.name} ({len(tensors)} tensors)",
            head_dims_k=head_dims_k,
            head_dims_v=head_dims_v,
            kv_shared_layers=shared,
        )
    except ConfigError as exc:
        src.spec_error(exc, origin)


_GGUF_INPUT_TABLES = ("token_embd", "position_embd", "token_types")
"""Input tables both llama.cpp (``LLM_TENSOR_LAYER_INPUT``) and Ollama's engine (``// inputs always use cpu``) keep on
the CPU (:attr:`ModelSpec.host_input_bytes`)."""


def _gguf_host_tables(tensors: Any) -> tuple[int, int]:
    """(input-table bytes kept on the CPU, ``per_layer_token_embd`` bytes) of a GGUF's tensors. A model without an
    ``output.weight`` reads ``token_embd`` as its output head too, which both engines place on the GPU."""
    names = {str(t.name) for t in tensors}
    host = per_layer = 0
    for t in tensors:
        base = str(t.name).split(".")[0]
        if base == "per_layer_token_embd":
            per_layer += int(t.n_bytes)
        elif base in _GGUF_INPUT_TABLES and not (base == "token_embd" and "output.weight" not in names):
            host += int(t.n_bytes)
    return host, per_layer


def _gguf_mlp(src: _Source, arch: str, key: Callable[[str], Any]) -> dict[str, Any]:
    """MLP width and experts from the GGUF keys gguf-py names (``Keys.LLM``): ``feed_forward_length`` (a per-layer
    array in some models: the widest layer), ``expert_count``, ``expert_used_count``,
    ``expert_feed_forward_length`` (absent in Mixtral-style files, whose ``feed_forward_length`` is one expert's),
    ``expert_shared_count`` × ``expert_shared_feed_forward_length``."""

    def whole(name: str, meaning: str, high: int = MAX_DIM) -> int:
        value = key(name)
        if isinstance(value, list):
            return max((src.whole(f"{arch}.{name}[]", v, 0, high, meaning) or 0 for v in value), default=0)
        return src.whole(f"{arch}.{name}", value, 0, high, meaning) or 0

    ffn = whole("feed_forward_length", "MLP width")
    experts = whole("expert_count", "routed experts per layer", MAX_EXPERTS)
    if experts <= 1:
        return {"intermediate_size": ffn}
    expert_width = whole("expert_feed_forward_length", "one expert's MLP width") or ffn
    shared = whole("expert_shared_count", "shared experts", MAX_EXPERTS)
    return {
        "intermediate_size": ffn if expert_width != ffn else 0,
        "n_experts": experts,
        "experts_per_token": whole("expert_used_count", "experts each token is routed to", MAX_EXPERTS),
        "expert_intermediate_size": expert_width,
        "shared_expert_intermediate_size": shared
        * (whole("expert_shared_feed_forward_length", "a shared expert's MLP width") or expert_width),
    }


GEMMA3N_LLAMA_CPP_KV_LAYERS = 20
"""llama.cpp hard-codes the gemma3n layers that own a cache: ``n_layer_cache = 20`` for LLM_ARCH_GEMMA3N
(src/llama-kv-cache-unified.cpp, vendored in ollama v0.12.3 at llama/llama.cpp/src/llama-kv-cache-unified.cpp:38-41,
"TODO: this is temporary until we support passing reuse layer filters [KV_REUSE]"); E2B (30 layers) and E4B
(35 layers) both keep 20. Used when a gemma3n GGUF has no ``attention.shared_kv_layers`` key."""


def _per_layer_dims(windows: tuple[int | None, ...], full: int, swa: int | None) -> tuple[int, ...]:
    """Per-layer head sizes when the sliding layers' differ from the full ones; () when uniform."""
    if not swa or swa == full or all(w is None for w in windows):
        return ()
    return tuple(full if w is None else swa for w in windows)


def _gguf_shared_kv_layers(src: _Source, arch: str, n_layers: int, raw: Any) -> int:
    """``<arch>.attention.shared_kv_layers`` (gguf-py ``Keys.Attention.SHARED_KV_LAYERS``): llama.cpp reads it
    for gemma4 as ``n_layer_kv_from_start = n_layer - n_kv_shared_layers`` and ``has_kv(il)`` is false past it.
    A gemma3n file without the key gets llama.cpp's hard-coded 20 cache layers."""
    shared = src.whole(f"{arch}.attention.shared_kv_layers", raw, 0, MAX_LAYERS, "trailing layers that reuse KV")
    if shared is None and arch == "gemma3n" and n_layers > GEMMA3N_LLAMA_CPP_KV_LAYERS:
        return n_layers - GEMMA3N_LLAMA_CPP_KV_LAYERS
    return shared or 0


# ------------------------------------------------------------------------------------- safetensors


def read_safetensors_header(path: str | Path, *, field: str = "model.hf_config") -> dict[str, Any]:
    """The JSON header of one safetensors file (8-byte little-endian length, then JSON).

    Only the header is read, so a file holding just its header (fetched with an HTTP range
    request to size a model without downloading it) works as well as the full file.
    """
    p = _as_path(field, path, "a .safetensors file")
    src = _Source(field, str(p), p, f"re-download {p.name}", f"point {field} at a readable .safetensors file")
    return _safetensors_header(src, p)


def _safetensors_header(src: _Source, shard: Path) -> dict[str, Any]:
    what = f"safetensors file {shard.name}"
    fix = f"re-download {shard.name} from the model's repository (or remove it to estimate from config.json)"
    size = _stat_file(src, shard, what, fix)
    if size < 8:
        src.fail(f"{what} is {size} bytes, shorter than its 8-byte header length", fix)
    try:
        with open(shard, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > size - 8 or n > MAX_SAFETENSORS_HEADER:
                src.fail(f"{what} declares a {n}-byte header but the file has {size - 8} bytes after it", fix)
            raw = fh.read(n)
    except OSError as exc:
        src.os_error(exc, what, fix)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        src.fail(f"{what} has a header that is not UTF-8 JSON ({type(exc).__name__})", fix)
    if not isinstance(header, dict):
        src.fail(f"{what} has a header that is a {_kind(header)}, not a JSON object", fix)
    return header


def _tensor_totals(src: _Source, shard: Path, header: dict[str, Any]) -> tuple[int, int]:
    """(parameters, bytes) of one shard's tensors, checked the way the safetensors library checks
    them: known dtype, a shape of whole numbers, and ``data_offsets`` spanning exactly
    shape × dtype bytes. A header that disagrees with itself would size the model wrongly."""
    fix = f"re-download {shard.name} from the model's repository"
    n_params = weights = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        where = f"safetensors file {shard.name}, tensor {_short(name, 60)}"
        if not isinstance(meta, dict):
            src.fail(f"{where}: entry is a {_kind(meta)}, not an object", fix)
        dtype, shape, offsets = meta.get("dtype"), meta.get("shape"), meta.get("data_offsets")
        bits = _SAFETENSORS_BITS.get(dtype) if isinstance(dtype, str) else None
        if bits is None:
            src.fail(f"{where}: dtype {_short(dtype)} is not a safetensors dtype", fix, ", ".join(_SAFETENSORS_BITS))
        if not isinstance(shape, list) or len(shape) > MAX_TENSOR_RANK or not all(_is_count(d) for d in shape):
            src.fail(f"{where}: shape {_short(shape)} is not a list of whole numbers ≥ 0", fix)
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
            src.fail(f"{where}: data_offsets {_short(offsets)} is not [begin, end]", fix)
        begin, end = offsets
        elements = prod(shape)
        if end < begin or (end - begin) * 8 != elements * bits:
            src.fail(
                f"{where}: data_offsets {_short(offsets)} span {end - begin} bytes but shape × {dtype} needs "
                f"{elements * bits / 8:g}",
                fix,
            )
        n_params += elements
        weights += end - begin
    return n_params, weights


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# ------------------------------------------------------------------------------------ Hugging Face


def _hf_windows(src: _Source, cfg: dict[str, Any], n_layers: int, prefix: str) -> tuple[int | None, ...]:
    window = src.whole(f"{prefix}sliding_window", cfg.get("sliding_window"), 0, MAX_CONTEXT, "tokens") or None
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and window:
        if len(layer_types) != n_layers:
            src.fail(f"{prefix}layer_types lists {len(layer_types)} layers but num_hidden_layers = {n_layers}")
        return tuple(window if t == "sliding_attention" else None for t in layer_types)
    model_type = src.text(f"{prefix}model_type", cfg.get("model_type")) or ""
    if not window:
        return windows_from_pattern(n_layers, None, 1)
    if model_type.startswith("gemma3"):
        pattern = src.whole(
            f"{prefix}sliding_window_pattern", cfg.get("sliding_window_pattern"), 0, MAX_LAYERS, "layers per group"
        )
        return windows_from_pattern(n_layers, window, pattern or 6)
    if model_type == "gemma2":
        return windows_from_pattern(n_layers, window, 2)
    if model_type == "mistral" or src.flag(f"{prefix}use_sliding_window", cfg.get("use_sliding_window")):
        return tuple(window for _ in range(n_layers))  # Mistral v0.1: every layer slides
    return windows_from_pattern(n_layers, None, 1)


def _load_config(src: _Source) -> dict[str, Any]:
    size = _stat_file(src)
    if size > MAX_CONFIG_BYTES:
        src.fail(
            f"is {size:,} bytes; a config.json is a few kilobytes",
            f"point {src.field} at the model's config.json, not at a weights file",
        )
    try:
        data = src.path.read_bytes()
    except OSError as exc:
        src.os_error(exc)
    try:
        text = data.decode("utf-8-sig")  # tolerate a BOM; Hugging Face writes plain UTF-8
    except UnicodeDecodeError:
        src.fail("is not UTF-8 text (a binary file?)")
    try:
        raw = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer longer than Python will parse
        src.fail(f"is not valid JSON ({_short(str(exc), 120)})")
    except RecursionError:
        src.fail("is not valid JSON (nested too deeply)")
    if not isinstance(raw, dict):
        src.fail(f"holds a {_kind(raw)}, not a JSON object", allowed="a JSON object with num_hidden_layers, …")
    return raw


def read_hf(path: str | Path, *, field: str = "model.hf_config") -> ModelSpec:
    """Spec from ``config.json``; weight bytes from the safetensors headers beside it, if any.

    ``field`` names the setting the path came from (``--hf-config``, ``model.hf_config``). With
    no safetensors beside the config, a dense model's parameters are estimated; a mixture of
    experts is refused instead, because a dense estimate would undercount its resident weights.
    The work is split along the file's seams: the config (:func:`_load_config`), the attention geometry
    (:func:`_hf_geometry`), the MLP and experts (:func:`_hf_mlp`), the weights (:func:`_hf_weights`).
    """
    p = _as_path(field, path, "the model's config.json")
    refuse_pickle(field, str(p))
    src = _Source(
        field,
        str(p),
        p,
        f"point {field} at the model's own config.json, as published with it",
        f"point {field} at the model's config.json file (not its folder) that exists and this user can read",
    )
    raw = _load_config(src)
    nested = raw.get("text_config")
    if nested and not isinstance(nested, dict):
        src.fail(f"text_config is a {_kind(nested)}, not a JSON object")
    cfg: dict[str, Any] = nested or raw  # multimodal checkpoints nest the LM
    pre = "text_config." if nested else ""
    geometry = _hf_geometry(src, raw, cfg, pre)
    mlp, experts_key, mlp_notes = _hf_mlp(src, raw, cfg, pre)
    n_params, weights, tower, shards, notes = _hf_weights(src, raw, cfg, pre, geometry, mlp, experts_key)
    origin = {
        "n_layers": pre + "num_hidden_layers",
        "hidden_size": pre + "hidden_size",
        "n_heads": pre + "num_attention_heads",
        "kv_heads": pre + "num_key_value_heads",
        "head_dim_k": pre + "head_dim or hidden_size / num_attention_heads",
        "head_dim_v": pre + "v_head_dim or head_dim",
        "n_params": "the safetensors headers" if shards else "the parameter estimate",
        "weights_bytes": "the safetensors data_offsets",
        "mla_latent_dim": pre + "kv_lora_rank + qk_rope_head_dim",
        "head_dims_k": pre + "head_dim / global_head_dim",
        "head_dims_v": pre + "head_dim / global_head_dim",
        "kv_shared_layers": pre + "num_kv_shared_layers",
        "experts_per_token": pre + "num_experts_per_tok",
        "expert_intermediate_size": pre + "moe_intermediate_size or intermediate_size",
    }
    quant = _hf_quant(src, raw, cfg, pre)
    name = src.text("_name_or_path", raw.get("_name_or_path"))
    arch = src.text(pre + "model_type", cfg.get("model_type")) or src.text("model_type", raw.get("model_type"))
    try:
        return ModelSpec(
            name=name or p.parent.name,
            architecture=arch or "unknown",
            n_params=n_params,
            weights_bytes=weights or None,
            weights_quant=quant,
            tower_bytes=tower,
            source=f"hf: {p} + {len(shards)} safetensors header(s)",
            notes=notes + mlp_notes,
            **geometry,
            **mlp,
        )
    except ConfigError as exc:
        src.spec_error(exc, origin)


def _hf_geometry(src: _Source, raw: dict[str, Any], cfg: dict[str, Any], pre: str) -> dict[str, Any]:
    """Attention and cache geometry (the ModelSpec fields the KV cache depends on) from config.json."""

    def whole(key: str, low: int, high: int, meaning: str, *, required: bool = False) -> int | None:
        return src.whole(pre + key, cfg.get(key), low, high, meaning, required=required)

    n_layers = whole("num_hidden_layers", 1, MAX_LAYERS, "transformer layers", required=True) or 0
    hidden = whole("hidden_size", 1, MAX_DIM, "the model width", required=True) or 0
    heads = whole("num_attention_heads", 1, MAX_HEADS, "query heads", required=True) or 0
    kv = whole("num_key_value_heads", 0, MAX_HEADS, "KV heads") or heads
    head_dim = whole("head_dim", 0, MAX_DIM, "elements per head") or hidden // heads
    v_head_dim = whole("v_head_dim", 0, MAX_DIM, "elements per V head") or head_dim
    kv_lora = whole("kv_lora_rank", 0, MAX_DIM, "MLA latent rank")
    rope_dim = whole("qk_rope_head_dim", 0, MAX_DIM, "rotary dimensions")
    vocab = whole("vocab_size", 0, MAX_VOCAB, "tokens") or src.whole(
        "vocab_size", raw.get("vocab_size"), 0, MAX_VOCAB, "tokens"
    )
    tied_raw = cfg.get("tie_word_embeddings", raw.get("tie_word_embeddings", False))
    windows = _hf_windows(src, cfg, n_layers, pre)
    # Gemma 4: full-attention layers have their own head size and KV heads (``global_head_dim``,
    # ``num_global_key_value_heads``; ollama convert/convert_gemma4.go maps them to GGUF key_length and a per-layer
    # head_count_kv array); Gemma 3n / Gemma 4 ``num_kv_shared_layers``: the last N layers reuse earlier KV.
    global_head_dim = whole("global_head_dim", 0, MAX_DIM, "elements per head on full-attention layers")
    global_kv = whole("num_global_key_value_heads", 0, MAX_HEADS, "KV heads on full-attention layers")
    head_dims = _per_layer_dims(windows, global_head_dim or head_dim, head_dim)
    return {
        "n_layers": n_layers,
        "hidden_size": hidden,
        "n_heads": heads,
        "kv_heads": tuple(global_kv if global_kv and w is None else kv for w in windows),
        "head_dim_k": head_dim,
        "head_dim_v": v_head_dim,
        "vocab_size": vocab or 0,
        "max_context": whole("max_position_embeddings", 0, MAX_CONTEXT, "trained context in tokens") or 0,
        "layer_windows": windows,
        "mla_latent_dim": kv_lora + (rope_dim or 0) if kv_lora else 0,
        "tied_embeddings": src.flag(pre + "tie_word_embeddings", tied_raw),
        "head_dims_k": head_dims,
        "head_dims_v": head_dims if v_head_dim == head_dim else (),  # V follows K's per-layer size (Gemma 4)
        "kv_shared_layers": whole("num_kv_shared_layers", 0, MAX_LAYERS, "trailing layers that reuse KV") or 0,
    }


def _hf_mlp(
    src: _Source, raw: dict[str, Any], cfg: dict[str, Any], pre: str
) -> tuple[dict[str, Any], str | None, tuple[str, ...]]:
    """The MLP and, for a mixture of experts, its routing (what vLLM's activation profile runs through):
    (ModelSpec fields, the key that declared the experts, notes).

    Mixtral and gpt-oss give one expert's width as ``intermediate_size``; Qwen-MoE, DeepSeek and OLMoE as
    ``moe_intermediate_size`` (``intermediate_size`` is then their dense layers'). Shared experts:
    Qwen2-MoE ``shared_expert_intermediate_size``, DeepSeek ``n_shared_experts × moe_intermediate_size``.
    A config that names no ``num_experts_per_tok`` is sized as if every expert ran (the old, conservative
    activation) rather than refused."""

    def whole(key: str, meaning: str, high: int = MAX_DIM) -> int:
        return src.whole(pre + key, cfg.get(key), 0, high, meaning) or 0

    ffn = whole("intermediate_size", "MLP width")
    experts = _declared_experts(src, cfg, pre) or (_declared_experts(src, raw, "") if pre else None)
    if not experts:
        return {"intermediate_size": ffn}, None, ()
    key, count = experts
    expert_width = whole("moe_intermediate_size", "one expert's MLP width") or ffn
    shared = whole("shared_expert_intermediate_size", "the shared expert's MLP width") or (
        whole("n_shared_experts", "shared experts", MAX_EXPERTS) * expert_width
    )
    top_k = whole("num_experts_per_tok", "experts each token is routed to", MAX_EXPERTS)
    notes: tuple[str, ...] = ()
    if not top_k:
        top_k = count
        notes = (f"{key} = {count} but no num_experts_per_tok: activation sized as if every expert ran",)
    fields = {
        "intermediate_size": ffn if expert_width != ffn else 0,
        "n_experts": count,
        "experts_per_token": top_k,
        "expert_intermediate_size": expert_width,
        "shared_expert_intermediate_size": shared,
    }
    return fields, key, notes


def _hf_weights(
    src: _Source,
    raw: dict[str, Any],
    cfg: dict[str, Any],
    pre: str,
    geometry: dict[str, Any],
    mlp: dict[str, Any],
    experts_key: str | None,
) -> tuple[int, int, int, list[Path], tuple[str, ...]]:
    """(parameters, bytes, encoder/projector bytes, shards, notes) from the safetensors headers beside config.json,
    or a dense estimate."""
    p = src.path
    try:
        beside = sorted(p.parent.glob("*"))
    except OSError as exc:
        src.os_error(exc, f"the folder {p.parent}")
    for pickle_file in beside:
        if pickle_file.suffix in _PICKLE_SUFFIXES and pickle_file.name != "training_args.bin":
            refuse_pickle(src.field, str(pickle_file))
    shards = [f for f in beside if f.suffix == ".safetensors"]
    weights = n_params = tower = 0
    for shard in shards:
        header = _safetensors_header(src, shard)
        shard_params, shard_bytes = _tensor_totals(src, shard, header)
        n_params += shard_params
        weights += shard_bytes
        tower += _tower_bytes(header)
    if n_params:
        return n_params, weights, tower, shards, ()
    if experts_key is not None:
        src.fail(
            f"declares a mixture of experts ({experts_key} = {mlp['n_experts']}) but no "
            "*.safetensors file is beside it, and all experts stay resident, so a dense parameter estimate would "
            "undercount the weights",
            f"put the model's *.safetensors files (their headers are enough) in the folder of {p}, "
            "or size the model from its GGUF (model.gguf) or a catalogue name",
        )
    # The estimate has always read vocab_size and tie_word_embeddings from the LM's own config
    # only (not the multimodal wrapper); kept so that valid models size exactly as before.
    cfg_vocab = src.whole(pre + "vocab_size", cfg.get("vocab_size"), 0, MAX_VOCAB, "tokens") or 0
    cfg_tied = src.flag(pre + "tie_word_embeddings", cfg.get("tie_word_embeddings"))
    hidden, heads = geometry["hidden_size"], geometry["n_heads"]
    kv = src.whole(pre + "num_key_value_heads", cfg.get("num_key_value_heads"), 0, MAX_HEADS, "KV heads") or heads
    ffn = mlp["intermediate_size"] or 4 * hidden
    n_params = _estimate_params(
        geometry["n_layers"], hidden, heads, kv, geometry["head_dim_k"], ffn, cfg_vocab, cfg_tied
    )
    return n_params, 0, 0, shards, ("no safetensors beside config.json: weights from parameters × bits-per-weight",)


_TOWER_PARTS = (
    "vision_tower",
    "vision_model",
    "visual",
    "multi_modal_projector",
    "audio_tower",
    "embed_vision",
    "embed_audio",
)
"""Name parts of the vision/audio encoder and projector tensors in multimodal checkpoints (Gemma 3 / Mistral 3 /
LLaVA ``vision_tower``, ``multi_modal_projector``; Llama 4 ``vision_model``; Qwen2.5-VL ``visual``; Gemma 3n
``audio_tower``, ``embed_vision``, ``embed_audio``): what ``--language-model-only`` leaves unloaded."""


def _tower_bytes(header: dict[str, Any]) -> int:
    """Bytes of the encoder/projector tensors in one (already checked) safetensors header."""
    total = 0
    for name, meta in header.items():
        if name != "__metadata__" and any(part in _TOWER_PARTS for part in name.split(".")):
            begin, end = meta["data_offsets"]
            total += end - begin
    return total


def _hf_quant(src: _Source, raw: dict[str, Any], cfg: dict[str, Any], pre: str) -> str | None:
    quant_cfg = raw.get("quantization_config") or {}
    if not isinstance(quant_cfg, dict):
        src.fail(f"quantization_config is a {_kind(quant_cfg)}, not a JSON object")
    quant = (
        src.text("quantization_config.quant_method", quant_cfg.get("quant_method"))
        or src.text("torch_dtype", raw.get("torch_dtype"))
        or src.text(pre + "torch_dtype", cfg.get("torch_dtype"))
    )
    return quant or None


def _declared_experts(src: _Source, cfg: dict[str, Any], pre: str) -> tuple[str, int] | None:
    """The first routed-expert count above 1 the config declares (DBRX nests it in ffn_config)."""
    places = [(pre + k, cfg.get(k)) for k in _MOE_KEYS]
    ffn_config = cfg.get("ffn_config")
    if isinstance(ffn_config, dict):
        places += [(f"{pre}ffn_config.{k}", ffn_config.get(k)) for k in _MOE_KEYS]
    for key, value in places:
        count = src.whole(key, value, 0, MAX_EXPERTS, "routed experts per layer")
        if count and count > 1:
            return key, count
    return None


def _estimate_params(
    layers: int, hidden: int, heads: int, kv: int, head_dim: int, ffn: int, vocab: int, tied: bool
) -> int:
    """Dense-decoder parameter count when no weights are at hand (embeddings + attention + MLP)."""
    attn = hidden * head_dim * (heads + 2 * kv) + heads * head_dim * hidden
    mlp = 3 * hidden * ffn
    embed = vocab * hidden * (1 if tied else 2)
    return layers * (attn + mlp) + embed

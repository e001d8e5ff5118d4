"""Session 5 (seed 101) mutation-strength tests for sizing/readers.py: the survivors of its blind sample, each
asserted as the ModelSpec, plan or error a user gets from a config.json and the safetensors beside it. The
checkpoints are written by the safetensors library itself (requirements-dev.txt pins 0.8.0)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import SizingRequest, read_hf, size
from cloudrun_gpu.sizing.engines import intermediate_size_estimate
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

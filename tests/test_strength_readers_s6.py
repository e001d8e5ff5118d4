"""Refusals of a model file read as the user wrote them (session 6 review): the out-of-range GGUF key is named
once, as the problem, not re-wrapped as a sizing field; and a non-integer Gemma 3 window pattern says what the
number counts.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import read_gguf, read_hf

from .test_readers import _custom_gguf
from .test_strength_readers import hf


def test_an_out_of_range_gguf_context_length_is_named_once(tmp_path: Path) -> None:
    # signed on purpose: a broken converter's -1
    path = _custom_gguf(tmp_path / "m.gguf", {"llama.context_length": (gguf.GGUFValueType.INT32, -1)})
    with pytest.raises(ConfigError) as err:
        read_gguf(path)
    e = err.value
    assert (e.field, e.value) == ("model.gguf", str(path))
    assert e.problem == "llama.context_length = -1 is out of range (trained context in tokens)"
    assert e.allowed == "a whole number 0..1073741824 (trained context in tokens)"
    assert "convert_hf_to_gguf.py" in e.fix
    assert "gives" not in str(e) and str(e).count(str(path)) == 1


def test_a_gemma3_window_pattern_that_is_not_whole_says_what_it_counts(tmp_path: Path) -> None:
    cfg = hf(tmp_path, model_type="gemma3_text", sliding_window=512, sliding_window_pattern=6.5)
    with pytest.raises(ConfigError) as err:
        read_hf(cfg)
    e = err.value
    assert e.problem == "sliding_window_pattern = 6.5 is a float, not a whole number"
    assert e.allowed == "a whole number 0..4096 (layers per group)"

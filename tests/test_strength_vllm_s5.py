"""Mutation-strength tests (issue 23, session 5, blind seed 101) for the vLLM profile's log reader
(``cloudrun_gpu/engines/vllm.py`` ``read_vllm_log``), through its consumer: ``python -m stack calibrate LOG --json``.

Newer vLLM V1 releases print the profiling result as one line that lumps weights and non-torch memory together:
``Actual usage is X GiB for consumed memory (weights + non-torch), Y GiB for peak activation, and Z GiB for CUDAGraph
memory`` (the wording the reader's regex matches, seen in public vLLM start-up logs; older V1 releases print
``X GiB for weight, … GiB for peak activation, … GiB for non-torch memory``). The non-torch share is then the consumed
memory less the weights of the ``Model loading took W GiB memory`` line, when the log has one. The lines below are
such a log's, numbers included.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cloudrun_gpu.limits import GIB

from stack import calibrate

from .test_cov_calibrate import args

LOADED = (
    "(EngineCore pid=326) INFO 10-06 17:00:11 [model_runner.py:407] Model loading took 15.0 GiB memory and 5.42 s\n"
)
PROFILED = (
    "(EngineCore pid=326) INFO 10-06 17:00:41 [gpu_worker.py:955] Free memory on device (78.84/79.25 GiB) on startup. "
    "Desired GPU memory utilization is (0.92, 72.91 GiB). Actual usage is 15.26 GiB for consumed memory (weights + "
    "non-torch), 1.44 GiB for peak activation, and 0.23 GiB for CUDAGraph memory.\n"
    "(EngineCore pid=326) INFO 10-06 17:00:41 [gpu_worker.py:692] Available KV cache memory: 56.21 GiB\n"
)


def report(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, float | None]]:
    log = tmp_path / "vllm.log"
    log.write_text(text)
    assert calibrate.main(args(str(log), "--engine", "vllm", "--json")) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    return {r["quantity"]: r for r in rows}


def test_the_consumed_line_less_the_weights_is_the_non_torch_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = report(tmp_path, LOADED + PROFILED, capsys)
    assert rows["weights"]["log"] == pytest.approx(15.0)
    assert rows["non-torch"]["log"] == pytest.approx(0.26)
    assert rows["peak activation"]["log"] == pytest.approx(1.44)
    assert rows["CUDA graphs"]["log"] == pytest.approx(0.23)
    assert rows["KV pool"]["log"] == pytest.approx(56.21)
    assert rows["budget (fraction × CUDA total)"]["log"] == pytest.approx(72.91)


def test_without_the_weights_line_the_non_torch_memory_is_not_guessed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An excerpt without ``Model loading took``: weights and non-torch are unknown (``-``), not a crash and not the
    whole consumed figure; the peak activation is still read."""
    rows = report(tmp_path, PROFILED, capsys)
    assert rows["weights"]["log"] is None and rows["non-torch"]["log"] is None
    assert rows["peak activation"]["log"] == pytest.approx(1.44)
    assert int(1.44 * GIB) == calibrate.parse_log(PROFILED, "vllm").activation_bytes

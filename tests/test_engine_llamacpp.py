"""Real-engine proof: llama.cpp's llama-server (CPU build) started with the flags our sizing renders.

Slow: the first run builds llama-server (about 4 minutes, cached outside the clone by
``scripts/ensure_engine.sh``). Timings are recorded in docs/engine-results.md by
``scripts/engine_report.py``; tests assert only deterministic facts, never timings.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.llamacpp import (
    build_prompt_cache,
    free_port,
    http_status,
    local_args,
    parse_memory,
    plan_for_gguf,
    probe_accepts,
    run_server,
    wait_ready,
)
from stack.cli import main as cli_main
from stack.loadtest import percentile, recommend, write_back

from .conftest import ROOT

pytestmark = pytest.mark.slow
CONTAINER = ROOT / "container"


@pytest.mark.parametrize(
    ("context", "parallel", "kv"),
    [(2048, 1, "f16"), (4096, 4, "q8_0"), (8192, 2, "q4_0"), (1000, 3, "q8_0"), (3000, 2, "f16")],
)
def test_kv_cache_and_model_buffer_match_the_sizing(
    engine_env: dict[str, str], smollm2_gguf: Path, tmp_path: Path, context: int, parallel: int, kv: str
) -> None:
    plan = plan_for_gguf(smollm2_gguf, context, parallel, kv)
    port = free_port()
    with run_server(
        [engine_env["LLAMA_SERVER"], *local_args(plan.engine_args, port)], port, tmp_path / "server.log"
    ) as server:
        wait_ready(server)
        report = parse_memory(server.log())
        slots = json.loads(urllib.request.urlopen(server.base + "/slots", timeout=5).read())
    predicted_kv = plan.kv_cache_bytes_per_sequence * parallel
    assert abs(report.kv_bytes - predicted_kv) / predicted_kv < 0.01, (report, predicted_kv)
    assert abs(report.model_bytes - plan.weights_bytes) / plan.weights_bytes < 0.03, (report, plan.weights_bytes)
    assert report.n_seqs == parallel == len(slots)  # -np slots, as Cloud Run's concurrency assumes (R6)
    assert {s["n_ctx"] for s in slots} == {report.kv_cells_per_seq}  # each slot gets -c / -np, padded to 256


def test_probe_passes_only_once_the_model_is_loaded(
    engine_env: dict[str, str], smollm2_gguf: Path, tmp_path: Path
) -> None:
    # a large f16 cache (8 slots × 8,192 cells, 1.4 GiB) makes loading last long enough to observe
    plan = plan_for_gguf(smollm2_gguf, 8192, 8, "f16")
    port = free_port()
    with run_server(
        [engine_env["LLAMA_SERVER"], *local_args(plan.engine_args, port)], port, tmp_path / "server.log"
    ) as server:
        early: list[int | None] = []
        while not early or early[-1] is None:
            early.append(http_status(server.base + "/v1/models", timeout=1))
            time.sleep(0.005)
        seen = wait_ready(server, plan.startup_probe.path)
    loading = [s for s in seen if s is not None and not probe_accepts(s)]
    assert 503 in loading, seen  # /health answers 503 while loading …
    assert probe_accepts(seen[-1]) and seen[-1] == 200  # … and 200 once the model is in memory
    assert seen.index(503) < len(seen) - 1
    assert not probe_accepts(early[-1]), early  # a request during loading is refused, not what the probe accepts


def _completion(base: str, prompt: str) -> dict[str, Any]:
    req = urllib.request.Request(
        base + "/completion",
        data=json.dumps(
            {"prompt": prompt, "n_predict": 1, "id_slot": 0, "cache_prompt": True, "temperature": 0}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    start = time.perf_counter()
    body: dict[str, Any] = json.loads(urllib.request.urlopen(req, timeout=120).read())
    body["wall_s"] = time.perf_counter() - start
    return body


def test_build_time_prompt_cache_is_restored_with_the_same_flags(
    engine_env: dict[str, str], smollm2_gguf: Path, tmp_path: Path
) -> None:
    slots = tmp_path / "slots"
    preamble = tmp_path / "preamble.txt"
    preamble.write_text((CONTAINER / "preamble.txt").read_text() * 40)
    plan = plan_for_gguf(smollm2_gguf, 4096, 1, "q8_0", slot_save_path=str(slots))
    port = free_port()
    args = local_args(plan.engine_args, port)
    assert args[args.index("--slot-save-path") + 1] == str(slots)  # the service's own flags (R2)
    build_prompt_cache(engine_env["LLAMA_SERVER"], slots, preamble, args, timeout=300)
    assert (slots / "slot0.bin").stat().st_size > 0
    prompt = preamble.read_text() + "\nQuestion: what is the support desk for?"

    with run_server([engine_env["LLAMA_SERVER"], *args], port, tmp_path / "cold.log") as server:
        wait_ready(server)
        cold = _completion(server.base, prompt)
    env = {**os.environ, "PROMPT_CACHE_DIR": str(slots), "PORT": str(port)}
    with run_server(
        ["sh", str(CONTAINER / "entrypoint.sh"), engine_env["LLAMA_SERVER"], *args],
        port,
        tmp_path / "warm.log",
        env=env,
    ) as server:
        wait_ready(server)
        deadline = time.monotonic() + 60
        while "restored prompt cache slot 0" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "restored prompt cache slot 0" in server.log()
        warm = _completion(server.base, prompt)
    # deterministic: the restored slot already holds the preamble, so only the question is prefilled
    assert warm["timings"]["prompt_n"] < cold["timings"]["prompt_n"] / 10, (cold["timings"], warm["timings"])
    assert warm["content"] == cold["content"]  # same answer from the cached prefix


def test_loadtest_against_the_real_server(
    engine_env: dict[str, str], smollm2_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plan_for_gguf(smollm2_gguf, 1024, 4, "q8_0")
    port = free_port()
    with run_server(
        [engine_env["LLAMA_SERVER"], *local_args(plan.engine_args, port)], port, tmp_path / "server.log"
    ) as server:
        wait_ready(server)
        stack = tmp_path / "Pulumi.dev.yaml"
        stack.write_text((ROOT / "Pulumi.dev.yaml").read_text())
        rc = cli_main(
            [
                "loadtest",
                server.base,
                "--concurrency",
                "1,2,4",
                "--requests",
                "4",
                "--max-tokens",
                "8",
                "--max-seconds",
                "60",
                "--ttft-slo",
                "30",
                "--json",
                "--write-stack",
                str(stack),
            ]
        )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    levels = out["levels"]
    assert [lv["concurrency"] for lv in levels] == [1, 2, 4]
    assert all(lv["requests"] == 4 and lv["errors"] == 0 and lv["tokens_per_s"] > 0 for lv in levels)
    assert all(lv["ttft_p50_s"] <= lv["ttft_p95_s"] for lv in levels)
    assert out["recommended_concurrency"] in (1, 2, 4)
    # #24: real shapes by default: prompts drawn around 256 tokens (llama-server's usage counts them), eight
    # output tokens each (--max-tokens fixes the output length; ignore_eos makes the model write all of them)
    assert all(150 < lv["prompt_tokens_mean"] < 400 and lv["output_tokens_mean"] == 8 for lv in levels)
    assert all(0 < lv["itl_p50_ms"] <= lv["itl_p95_ms"] for lv in levels)
    assert out["workload"].startswith("prompt ~256±64 tokens, output 8±0 tokens")
    from stack.config import load_stack

    written = load_stack("dev", tmp_path)  # the stack file stays valid with the recommendation in it
    assert written.concurrency == out["recommended_concurrency"]
    assert written.sizing.max_parallel_sequences <= written.concurrency  # R6 still holds


def test_recommendation_rule() -> None:
    from stack.loadtest import LevelResult

    def lv(c: int, tps: float, p95: float, err: int = 0) -> LevelResult:
        return LevelResult(c, 10, err, 1.0, 1.0, tps, p95 / 2, p95, 1.0, 2.0)

    levels = [lv(1, 10, 0.2), lv(2, 19, 0.3), lv(4, 30, 0.5), lv(8, 32, 1.9), lv(16, 33, 4.0)]
    assert recommend(levels, ttft_slo_s=2.0)[0] == 4  # 30 ≥ 90 % of 32, the best within the SLO
    assert recommend(levels, ttft_slo_s=0.25)[0] == 1
    assert recommend([lv(1, 5, 9.0), lv(2, 6, 9.5)], ttft_slo_s=1.0)[0] == 1
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0 and percentile([1.0, 2.0, 3.0, 4.0], 95) == 4.0


def test_write_back(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text((ROOT / "Pulumi.dev.yaml").read_text())
    assert write_back(stack, 12) == ["scaling.max_concurrency = 12", "engine.parallel = 12 (was 32)"]
    import yaml

    config = yaml.safe_load(stack.read_text())["config"]
    assert config["cloudrun-gpu:scaling"]["max_concurrency"] == 12
    assert config["cloudrun-gpu:engine"]["parallel"] == 12

"""The offline ``plan`` and ``size`` commands on the committed stack files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stack.cli import main

from .conftest import ROOT


def test_plan_json_on_the_committed_dev_stack() -> None:
    # a subprocess, exactly as the README runs it (python -m stack plan …)
    out = subprocess.run(
        [sys.executable, "-m", "stack", "plan", "--stack", "dev", "--json"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    plan = json.loads(out)
    sizing = plan["sizing"]
    for key in (
        "weights_bytes",
        "kv_cache_bytes_per_token",
        "max_parallel_sequences",
        "max_instance_request_concurrency",
        "engine_args",
    ):
        assert key in sizing
    assert set(sizing["startup_probe"]) >= {
        "initial_delay_seconds",
        "period_seconds",
        "timeout_seconds",
        "failure_threshold",
    }
    types = {r["type"] for r in plan["resources"]}
    assert "gcp:cloudrunv2/service:Service" in types
    svc = next(r for r in plan["resources"] if r["type"] == "gcp:cloudrunv2/service:Service")
    assert svc["inputs"]["template"]["maxInstanceRequestConcurrency"] == sizing["max_instance_request_concurrency"]
    assert all({"type", "name", "inputs"} <= set(r) for r in plan["resources"])


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_plan_text_explains_sizing_for_each_stack(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", stack]) == 0
    text = capsys.readouterr().out
    for needle in (
        "GPU memory",
        "Sizing derivation",
        "Cloud Run concurrency",
        "probe:",
        "engine flags",
        "gcp:cloudrunv2/service:Service",
    ):
        assert needle in text


def test_size_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "llama-3.1-8b", "--engine", "vllm", "--context", "8192", "--json"]) == 0
    sizing = json.loads(capsys.readouterr().out)["sizing"]
    assert sizing["kv_cache_bytes_per_token"] == 65_536  # fp8 default on vLLM (R4)
    assert "--max-num-seqs" in sizing["engine_args"]


def test_size_command_reads_a_gguf(smollm2_gguf: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "--gguf", str(smollm2_gguf), "--context", "2048", "--kv-type", "f16", "--json"]) == 0
    sizing = json.loads(capsys.readouterr().out)["sizing"]
    assert sizing["weights_bytes"] == 96_576_768 and sizing["kv_cache_bytes_per_token"] == 23_040


def test_size_command_error_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "llama-3.1-70b"]) == 2
    assert "fix:" in capsys.readouterr().err

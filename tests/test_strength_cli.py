"""Strength tests for the CLI (#23): flags a user types change the numbers the way the help says."""

from __future__ import annotations

import json

import pytest

from stack.cli import main

GIB = 1024**3


def _size(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    base = ["size", "llama-3.1-8b", "--engine", "vllm", "--gpu", "nvidia-l4", "--context", "8192", "--json"]
    assert main([*base, *extra]) == 0
    sizing: dict[str, object] = json.loads(capsys.readouterr().out)["sizing"]
    return sizing


def test_vram_gib_sets_the_gpu_total_in_gib(capsys: pytest.CaptureFixture[str]) -> None:
    """--vram-gib 40 is 40 GiB of GPU memory: the budget is the fraction of it, and more memory fits more."""
    default = _size(capsys)
    forty = _size(capsys, "--vram-gib", "40")
    assert forty["vram_bytes"] == 40 * GIB
    assert forty["budget_bytes"] == int(40 * GIB * 0.9)
    assert default["vram_bytes"] != 40 * GIB
    assert isinstance(forty["parallel_fit"], int) and isinstance(default["parallel_fit"], int)
    assert forty["parallel_fit"] > default["parallel_fit"]


def test_memory_fraction_scales_the_budget(capsys: pytest.CaptureFixture[str]) -> None:
    half = _size(capsys, "--vram-gib", "40", "--memory-fraction", "0.75")
    assert half["memory_fraction"] == 0.75 and half["budget_bytes"] == 30 * GIB


def test_a_vram_too_small_for_the_weights_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "llama-3.1-8b", "--engine", "vllm", "--gpu", "nvidia-l4", "--vram-gib", "2"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "exceed the 1.80 GiB budget on nvidia-l4" in err  # 2 GiB × 0.9, not the L4's own 22.2 GiB

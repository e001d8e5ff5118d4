"""Issue 23, session 4 on ``stack/loadtest.py``, second sample (seed 81): the workload's description and a fixed
output length."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stack.loadtest import Shape, _workload, add_arguments, stream_chat, write_back
from tests.conftest import ROOT
from tests.stub_http import serving
from tests.test_loadtest_driver import _body, _Chat


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["http://127.0.0.1:1", *argv])


def test_a_shape_describes_itself_as_the_report_prints_it() -> None:
    """The line the report starts with: both normal distributions, the seed, and whether EOS is ignored."""
    assert Shape(512, 128, 256, 64, seed=7, ignore_eos=True).describe() == (
        "prompt ~512±128 tokens, output 256±64 tokens (normal, seed 7, ignore_eos)"
    )
    assert Shape(100, 0, 10, 0, seed=1, ignore_eos=False).describe() == (
        "prompt ~100±0 tokens, output 10±0 tokens (normal, seed 1)"
    )


def test_max_tokens_fixes_every_requests_output_length() -> None:
    """``--max-tokens N`` with a real-shape prompt: every request asks for exactly N tokens (no spread), and the
    description says so."""
    _, body, described = _workload(_args("--max-tokens", "64"))
    assert body is not None
    assert {body(i)["max_tokens"] for i in range(50)} == {64}
    assert "output 64±0 tokens" in described


def test_a_level_equal_to_the_engines_parallel_leaves_the_engine_alone(tmp_path: Path) -> None:
    """``--write-back`` of a concurrency equal to the stack's ``engine.parallel`` (dev: 32) sets only the service's
    ``scaling.max_concurrency``; the engine is changed only when the level is below it (tests/test_engine_llamacpp.py
    covers 12)."""
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text((ROOT / "Pulumi.dev.yaml").read_text())
    assert write_back(stack, 32) == ["scaling.max_concurrency = 32"]
    config = yaml.safe_load(stack.read_text())["config"]
    assert config["cloudrun-gpu:scaling"]["max_concurrency"] == 32
    assert "parallel" not in config.get("cloudrun-gpu:engine", {})


@pytest.fixture
def chat_server() -> Iterator[str]:
    _Chat.seen = []
    with serving(_Chat) as base:
        yield base


def test_a_requests_latency_is_measured_from_its_own_start(chat_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a clock that advances 0.25 s at each reading, a request that started at 0.5 reports the time from its
    start to its end (a whole number of steps, at least the ttft and two more chunks), not a remainder of the
    clock's value."""
    ticks = iter(0.5 + 0.25 * i for i in range(10_000))
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks))
    r = stream_chat(chat_server, _body("hello"), {}, 30)
    assert r.ok and r.latency_s >= 0.75 and (r.latency_s / 0.25).is_integer()
    assert r.ttft_s == 0.25  # the first content chunk is the next reading after the start

"""Issue 23, session 5 on ``stack/loadtest.py``, seeds 131 and 141's survivors: the concurrency axis's base and
label, the prompt-token mean's rounding, a request budget below one, the per-request timeout reaching the
connection, ``--prompt`` asking the server to stream the stack's model, the nearest-rank percentiles, and
``--write-stack`` above the engine's parallel."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack import loadtest
from stack.cli import main as cli_main
from stack.loadtest import RequestResult, percentile, plot_levels, run_level, stream_chat, write_back
from tests.conftest import ROOT
from tests.test_loadtest_driver import _body, _Chat
from tests.test_strength_loadtest_s5 import _lv, chat_server, figures

__all__ = ["chat_server", "figures"]  # fixtures, used by name


def test_the_concurrency_axis_marks_only_the_levels_on_a_base_2_log_scale(tmp_path: Path, figures: list[Any]) -> None:
    """Levels double (1, 2, 4, …), so the axis is logarithmic in base 2 and carries no minor ticks: a base-10 scale
    would draw unlabelled marks at 3, 5, 6, 7, 30, … between the levels, which read as levels nobody ran."""
    levels = [_lv(1, 10, 0.2), _lv(2, 19, 0.3), _lv(4, 30, 0.5), _lv(8, 32, 0.9), _lv(32, 40, 1.9)]
    plot_levels(levels, 8, tmp_path / "curve.png", "title", 1.5)
    [fig] = figures
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert ax.get_xlabel() == "concurrency (requests in flight)"
    assert list(ax.get_xticks()) == [1, 2, 4, 8, 32]
    assert list(ax.xaxis.get_minorticklocs()) == []


def _fake_requests(monkeypatch: pytest.MonkeyPatch, prompt_tokens: list[int | None]) -> list[dict[str, Any]]:
    """``stream_chat`` answering request i with ``prompt_tokens[i]`` (3 tokens each); returns the bodies sent."""
    sent: list[dict[str, Any]] = []
    lock = threading.Lock()

    def fake(url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> RequestResult:
        with lock:
            i = len(sent)
            sent.append(body)
        return RequestResult(True, 0.1, 0.2, 3, prompt_tokens=prompt_tokens[i % len(prompt_tokens)])

    monkeypatch.setattr(loadtest, "stream_chat", fake)
    return sent


def test_the_mean_prompt_length_is_reported_to_a_tenth_of_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three requests whose servers counted 1, 1 and 2 prompt tokens: the level's mean is 1.3 (4 / 3 to one decimal),
    as the table and ``--json`` print it."""
    _fake_requests(monkeypatch, [1, 1, 2])
    level = run_level("http://x", 1, requests=3, max_seconds=60, body={}, headers={}, timeout_s=5)
    assert level.requests == 3 and level.prompt_tokens_mean == 1.3


@pytest.mark.parametrize("budget", [0, -1])
def test_a_request_budget_below_one_sends_nothing(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    """``requests`` is an upper bound: a budget of 0 (or a negative one) starts no request at all, rather than
    running until ``max_seconds``."""
    sent = _fake_requests(monkeypatch, [None])
    level = run_level("http://x", 2, requests=budget, max_seconds=5, body={}, headers={}, timeout_s=5)
    assert sent == [] and level.requests == 0


def test_a_server_that_never_answers_fails_the_request_after_its_timeout() -> None:
    """A server that accepts the connection and then says nothing: the request fails with the socket's "timed out"
    once ``timeout_s`` has passed, instead of holding its worker (and the level) forever. The thread's join only
    notices a hang; the verdict is the error the request reports."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    got: list[RequestResult] = []
    worker = threading.Thread(target=lambda: got.append(stream_chat(url, _body("hello"), {}, 0.2)), daemon=True)
    try:
        worker.start()
        worker.join(60)
        assert not worker.is_alive(), "the request waited past its timeout"
    finally:
        listener.close()
    [r] = got
    assert not r.ok and r.tokens == 0 and "timed out" in r.error


def test_a_fixed_prompt_asks_the_server_to_stream(chat_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--prompt`` sends ``"stream": true``: time to first token is read off the stream's first content chunk, and
    an OpenAI-compatible server sends one answer at the end otherwise."""
    args = ["loadtest", chat_server, "--concurrency", "1", "--requests", "2", "--prompt", "hello", "--json"]
    args += ["--model", "llama-3.2-3b"]
    assert cli_main(args) == 0
    [level] = json.loads(capsys.readouterr().out)["levels"]
    assert level["requests"] == 2
    assert [seen["body"]["stream"] for seen in _Chat.seen] == [True, True]
    assert [seen["body"]["model"] for seen in _Chat.seen] == ["llama-3.2-3b"] * 2  # the name the engine serves
    assert {seen["body"]["messages"][0]["content"] for seen in _Chat.seen} == {"hello"}


def test_percentiles_are_nearest_rank() -> None:
    """The p-th percentile is the value at rank ceil(p × n / 100) of the sorted values (the nearest-rank
    method, https://en.wikipedia.org/wiki/Percentile#The_nearest-rank_method): of 1..1000, p95 is 950 and p50
    500; of 1..101, p100 is the largest."""
    thousand = [float(v) for v in range(1000, 0, -1)]
    assert (percentile(thousand, 50), percentile(thousand, 95), percentile(thousand, 1)) == (500.0, 950.0, 10.0)
    assert percentile([float(v) for v in range(1, 102)], 100) == 101.0


def test_a_levels_median_ttft_is_the_fiftieth_percentile_of_its_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """100 requests whose first tokens came after 1, 2, ..., 100 ms: the level's median TTFT is the 50th (0.05 s),
    not the 49th; p95 the 95th."""
    ttfts = iter(range(1, 101))
    lock = threading.Lock()

    def fake(url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> RequestResult:
        with lock:
            ms = next(ttfts)
        return RequestResult(True, ms / 1000, 0.2, 3)

    monkeypatch.setattr(loadtest, "stream_chat", fake)
    level = run_level("http://x", 4, requests=100, max_seconds=60, body={}, headers={}, timeout_s=5)
    assert level.requests == 100 and (level.ttft_p50_s, level.ttft_p95_s) == (0.05, 0.095)


def test_a_recommendation_above_the_engines_parallel_leaves_the_engine_alone(tmp_path: Path) -> None:
    """The dev stack's engine runs 32 sequences; a recommended concurrency of 40 is stored as the service's
    ``scaling.max_concurrency`` only: ``engine.parallel`` is lowered to meet a smaller concurrency, never raised
    (more sequences than the sizing fitted would not fit the GPU's memory)."""
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text((ROOT / "Pulumi.dev.yaml").read_text())
    assert write_back(stack, 40) == ["scaling.max_concurrency = 40"]
    config = yaml.safe_load(stack.read_text())["config"]
    assert config["cloudrun-gpu:scaling"]["max_concurrency"] == 40
    assert "parallel" not in config.get("cloudrun-gpu:engine", {})

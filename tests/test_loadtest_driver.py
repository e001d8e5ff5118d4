"""The load test's own driver (stack/loadtest.py: stream_chat, run_level, main) against a stand-in server (#23: the
module was 28 % covered; the real llama-server run is the slow tests/test_engine_llamacpp.py::test_loadtest_against_
the_real_server).

The stand-in is a stdlib HTTP server on 127.0.0.1 streaming OpenAI-style server-sent events (``data: {chunk}``
lines, a last chunk with ``usage`` when ``stream_options.include_usage`` asks, then ``data: [DONE]``: the format
llama.cpp's server and vLLM send). It records every request, so what the driver sends (path, headers, bodies) and
what it counts (tokens, errors, usage) are checked against what the server did, not against timings.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.llamacpp import free_port
from stack.cli import main as cli_main
from stack.loadtest import LevelResult, percentile, recommend, run_level, stream_chat

from .stub_http import answer, serving


class _Chat(BaseHTTPRequestHandler):
    """Answers by the first word of the prompt: ``fail`` → HTTP 503, ``silent`` → no content, ``garbled`` → a
    chunk that is not JSON, ``usage`` → three content chunks and a usage chunk, anything else → three chunks."""

    seen: ClassVar[list[dict[str, Any]]] = []
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            type(self).seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        prompt = body["messages"][0]["content"]
        if prompt.startswith("fail"):
            answer(self, 503, b"")
            return
        events: list[str] = []
        if prompt.startswith("silent"):
            events.append(json.dumps({"choices": [{"delta": {"role": "assistant"}}]}))
        elif prompt.startswith("garbled"):
            events.append("{not json")
        else:
            events += [json.dumps({"choices": [{"delta": {"content": w}}]}) for w in ("a", " b", " c")]
            if prompt.startswith("usage"):
                events.append(json.dumps({"choices": [], "usage": {"prompt_tokens": 17, "completion_tokens": 5}}))
        payload = "".join(f"data: {e}\n\n" for e in [*events, "[DONE]"]).encode()
        answer(self, 200, payload, "text/event-stream")


@pytest.fixture
def server() -> Iterator[str]:
    _Chat.seen = []
    with serving(_Chat) as base:
        yield base


def _body(prompt: str) -> dict[str, Any]:
    return {"model": "m", "stream": True, "messages": [{"role": "user", "content": prompt}]}


def test_a_stream_counts_content_chunks_and_prefers_the_servers_usage(server: str) -> None:
    plain = stream_chat(server + "/", _body("hello"), {"Authorization": "Bearer t"}, 30)
    assert (plain.ok, plain.tokens, plain.error, plain.prompt_tokens) == (True, 3, "", None)
    assert 0 < plain.ttft_s <= plain.latency_s and plain.itl_s >= 0
    seen = _Chat.seen[0]
    assert seen["path"] == "/v1/chat/completions"  # the base URL's trailing slash is not doubled
    assert seen["headers"]["Authorization"] == "Bearer t"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["body"] == _body("hello")
    counted = stream_chat(server, _body("usage please"), {}, 30)
    assert (counted.ok, counted.tokens, counted.prompt_tokens) == (True, 5, 17)  # usage wins over chunk count


@pytest.mark.parametrize(
    ("prompt", "error"),
    [("fail", "HTTP 503"), ("silent", "no tokens")],
)
def test_a_failed_or_empty_answer_is_an_error_with_no_tokens(server: str, prompt: str, error: str) -> None:
    r = stream_chat(server, _body(prompt), {}, 30)
    assert (r.ok, r.tokens, r.error) == (False, 0, error)
    assert r.itl_s != r.itl_s  # NaN: no gaps to average


def test_a_garbled_stream_and_a_closed_port_are_errors_not_crashes(server: str) -> None:
    garbled = stream_chat(server, _body("garbled"), {}, 30)
    assert not garbled.ok and garbled.tokens == 0 and "Expecting" in garbled.error  # json's message
    refused = stream_chat(f"http://127.0.0.1:{free_port()}", _body("x"), {}, 30)
    assert not refused.ok and refused.tokens == 0 and refused.error


def test_a_level_sends_each_request_its_own_body_and_counts_what_came_back(server: str) -> None:
    bodies = {0: "usage", 1: "fail", 2: "hello", 3: "usage", 4: "silent"}
    progress: list[str] = []

    class Sink:
        def write(self, s: str) -> None:
            progress.append(s)

        def flush(self) -> None:
            pass

    lv = run_level(
        server,
        2,
        requests=5,
        max_seconds=600,
        body=_body("never sent"),
        headers={},
        timeout_s=30,
        progress=Sink(),  # type: ignore[arg-type]
        make_body=lambda i: _body(f"{bodies[i]} {i}"),
    )
    sent = sorted(s["body"]["messages"][0]["content"] for s in _Chat.seen)
    assert sent == sorted(f"{p} {i}" for i, p in bodies.items())
    assert (lv.concurrency, lv.requests, lv.errors) == (2, 5, 2)
    assert sorted(progress) == [".", ".", ".", "x", "x"]
    assert lv.prompt_tokens_mean == 17.0  # the two usage answers; the plain one sent none
    assert lv.output_tokens_mean == round((5 + 3 + 5) / 3, 1)
    assert lv.ttft_p50_s <= lv.ttft_p95_s and lv.latency_p50_s <= lv.latency_p95_s
    assert lv.tokens_per_s > 0 and lv.requests_per_s > 0


def test_a_level_stops_at_its_request_budget_and_a_fixed_body_is_reused(server: str) -> None:
    lv = run_level(server, 3, requests=4, max_seconds=600, body=_body("hello"), headers={}, timeout_s=30)
    assert lv.requests == 4 and lv.errors == 0 and len(_Chat.seen) == 4
    assert all(s["body"] == _body("hello") for s in _Chat.seen)
    assert lv.prompt_tokens_mean != lv.prompt_tokens_mean  # NaN: the server sent no usage


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) != percentile([], 50)  # NaN
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 0), percentile(values, 100)) == (
        5.0,
        10.0,
        1.0,
        10.0,
    )
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # sorts first
    # rank ⌈q/100 × n⌉ for an odd and an even product: round-half-to-even once gave 6 for the median of 1..10
    assert [percentile([float(v) for v in range(1, n + 1)], 50) for n in (4, 5, 10, 11)] == [2.0, 3.0, 5.0, 6.0]


def _lv(c: int, tps: float, p95: float, errors: int = 0) -> LevelResult:
    return LevelResult(c, 8, errors, 10.0, 0.5, tps, p95 / 2, p95, 5.0, 6.0)


def test_recommend_keeps_the_lowest_level_when_none_is_healthy() -> None:
    pick, why = recommend([_lv(4, 50, 9.0), _lv(2, 30, 1.0, errors=1)], 2.0)
    assert pick == 2 and why == "no level met p95 TTFT ≤ 2.0s without errors; keeping the lowest"
    pick, why = recommend([_lv(1, 10, 0.5), _lv(2, 18, 0.6), _lv(4, 19, 0.9), _lv(8, 20, 3.0)], 2.0)
    assert pick == 2  # 18 ≥ 0.9 × 19 (the best healthy level); 8 breaks the SLO
    assert why.startswith("18 tok/s is ≥ 90% of the best 19 tok/s with p95 TTFT 0.6s ≤ 2.0s")


def test_the_cli_drives_every_level_and_prints_the_table_and_the_command(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["loadtest", server, "--concurrency", "2,1,2", "--requests", "2", "--prompt", "usage hi"]
    assert cli_main([*args, "--header", "Authorization:  Bearer tok ", "--max-tokens", "7"]) == 0
    captured = capsys.readouterr()
    assert len(_Chat.seen) == 4  # levels 1 and 2 (deduplicated), two requests each
    assert all(s["headers"]["Authorization"] == "Bearer tok" for s in _Chat.seen)
    assert all(s["body"]["max_tokens"] == 7 and s["body"]["temperature"] == 0 for s in _Chat.seen)
    out = captured.out
    assert "workload: one fixed prompt, max_tokens 7" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[1], r[2]) for r in rows] == [("1", "2", "0"), ("2", "2", "0")]
    assert "recommended max_instance_request_concurrency: " in out
    assert "pulumi config set --path 'cloudrun-gpu:scaling.max_concurrency'" in out
    assert "concurrency    1: " in captured.err and "workload: one fixed prompt" in captured.err


def test_the_cli_json_and_real_shapes_and_write_stack(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parent.parent
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text((root / "Pulumi.dev.yaml").read_text())
    args = ["loadtest", server, "--concurrency", "1", "--requests", "3", "--json", "--write-stack", str(stack)]
    assert cli_main([*args, "--prompt-tokens", "20:0", "--output-tokens", "9", "--no-ignore-eos"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["recommended_concurrency"] == 1 and out["levels"][0]["requests"] == 3
    assert out["workload"].startswith("real shapes") or "20" in out["workload"]
    assert all(s["body"]["max_tokens"] == 9 and "ignore_eos" not in s["body"] for s in _Chat.seen)
    assert len({s["body"]["messages"][0]["content"] for s in _Chat.seen}) == 3  # each request its own prompt
    from stack.config import load_stack

    written = load_stack("dev", tmp_path)
    assert written.concurrency == 1 and written.sizing.max_parallel_sequences == 1  # engine.parallel lowered (R6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--concurrency", "0"], "--concurrency must list levels between 1 and 1000"),
        (["--concurrency", "1001"], "--concurrency must list levels between 1 and 1000"),
        (["--concurrency", ","], "--concurrency must list levels between 1 and 1000"),
        (["--from-guidellm", "/nonexistent/report.json"], "error: --from-guidellm: "),
    ],
)
def test_the_cli_refuses_bad_input_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["loadtest", "http://127.0.0.1:9", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err

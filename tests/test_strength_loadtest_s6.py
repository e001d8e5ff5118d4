"""Issue 23, session 6 on ``stack/loadtest.py``: seed 161's survivor (the real-shape prompt's minimum of one word)
and the survivors of fresh seeds 171 and 181, each pinned where an operator sees it (the request body sent to the
server, the levels read from a guidellm report, the CLI's output and errors, a request's and a level's times)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import gguf
import pytest

from harness.llamacpp import free_port, local_args, plan_for_gguf, run_server, wait_ready
from stack import loadtest
from stack.cli import main as cli_main
from stack.loadtest import WORDS, RequestResult, Shape, levels_from_guidellm, run_level, stream_chat
from tests.stub_http import answer, serving
from tests.test_loadtest_driver import _body, _Chat
from tests.test_strength_loadtest_s4 import DATA
from tests.test_strength_loadtest_s5 import _Counted, chat_server

__all__ = ["chat_server"]  # a fixture, used by name

PREFIX = "Continue this text: "


def _prompt_words(shape: Shape, i: int) -> list[str]:
    content = shape.body(i, "m")["messages"][0]["content"]
    assert isinstance(content, str) and content.startswith(PREFIX)
    return content.removeprefix(PREFIX).split()


@pytest.mark.parametrize(("prompt_tokens", "words"), [(1, 1), (2, 1), (8, 1), (9, 1), (10, 2), (11, 3), (64, 56)])
def test_a_short_real_shape_prompt_still_sends_one_word_and_longer_ones_leave_eight_tokens_for_the_template(
    prompt_tokens: int, words: int
) -> None:
    """A ``--prompt-tokens`` shape of N tokens (no spread) sends N − 8 one-token words after "Continue this text: "
    (the instruction and the chat template take the other eight), and never fewer than one: a 1- to 9-token shape
    is the shortest prompt the driver can send, one word — not two, and not an empty text to continue."""
    shape = Shape(prompt_tokens, 0, 16, 0)
    for i in range(3):
        sent = _prompt_words(shape, i)
        assert len(sent) == words and set(sent) <= set(WORDS)


def test_a_spread_shape_whose_draw_is_clipped_to_one_token_sends_one_word() -> None:
    """A 2 ± 5-token shape draws lengths clipped to [1, 17]; every request whose draw is at most 9 tokens sends one
    word, the rest N − 8."""
    shape = Shape(2, 5, 4, 0, seed=11)
    drawn = [shape.lengths(i)[0] for i in range(40)]
    assert min(drawn) == 1 and any(n > 9 for n in drawn)
    for i, n in enumerate(drawn):
        assert len(_prompt_words(shape, i)) == (1 if n <= 9 else n - 8), (i, n)


# ------------------------------------------------------------------------------ seed 171's survivors


def test_an_older_guidellm_report_counts_the_requests_it_lists_beside_the_metrics(tmp_path: Path) -> None:
    """A guidellm whose metrics do not carry them lists a benchmark's request counts beside ``metrics``, with the
    strategy under ``args`` (``GenerativeBenchmark.request_totals`` and ``args: BenchmarkArgs``,
    src/guidellm/benchmark/benchmark.py in vllm-project/guidellm at 47ce292). Such a level of 6 successful and 2
    errored requests is reported as 8 requests with 2 errors, not as an empty level."""
    metrics = json.loads((DATA / "guidellm-sweep.json").read_text())["benchmarks"][0]["metrics"]
    del metrics["request_totals"]
    benchmark = {
        "args": {"strategy": {"type_": "concurrent", "streams": 4}},
        "duration": 12.5,
        "metrics": metrics,
        "request_totals": {"successful": 6, "incomplete": 1, "errored": 2, "total": 9},
    }
    report = tmp_path / "benchmarks.json"
    report.write_text(json.dumps({"benchmarks": [benchmark]}))
    [level] = levels_from_guidellm(report)
    assert (level.concurrency, level.requests, level.errors, level.wall_s) == (4, 8, 2, 12.5)


def test_a_guidellm_report_without_levels_is_refused_with_how_to_run_guidellm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``loadtest --from-guidellm`` on a report with no benchmarks exits 2 and says, whole, which file and how to run
    guidellm so that it has levels."""
    report = tmp_path / "benchmarks.json"
    report.write_text(json.dumps({"benchmarks": []}))
    assert cli_main(["loadtest", "--from-guidellm", str(report)]) == 2
    assert capsys.readouterr().err == (
        f"error: --from-guidellm: {report}: no concurrency levels found; run guidellm with --profile kind=concurrent "
        "and --output kind=json\n"
    )


def test_a_levels_inter_token_latency_percentiles_are_the_50th_and_95th_of_its_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100 requests whose tokens came 1, 2, ..., 100 ms apart: the level's ITL median is 50 ms and its p95 95 ms
    (nearest rank), the same rule as its TTFT (tests/test_strength_loadtest_s5b.py)."""
    itls = iter(range(1, 101))
    lock = threading.Lock()

    def fake(url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> RequestResult:
        with lock:
            ms = next(itls)
        return RequestResult(True, 0.1, 0.2, 3, itl_s=ms / 1000)

    monkeypatch.setattr(loadtest, "stream_chat", fake)
    level = run_level("http://x", 4, requests=100, max_seconds=60, body={}, headers={}, timeout_s=5)
    assert level.requests == 100 and (level.itl_p50_ms, level.itl_p95_ms) == (50.0, 95.0)


# ------------------------------------------------------------------------------ seed 181's survivors


class _PastDone(BaseHTTPRequestHandler):
    """Streams two content chunks, ``data: [DONE]``, then one more content chunk before it closes."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        events = [json.dumps({"choices": [{"delta": {"content": w}}]}) for w in ("a", " b")]
        events += ["[DONE]", json.dumps({"choices": [{"delta": {"content": " late"}}]})]
        answer(self, 200, "".join(f"data: {e}\n\n" for e in events).encode(), "text/event-stream")


def test_a_stream_ends_at_done_and_nothing_after_it_is_counted() -> None:
    """``data: [DONE]`` ends an OpenAI-style stream: the request saw two tokens, whatever else the connection
    carries before it closes."""
    with serving(_PastDone) as url:
        r = stream_chat(url, _body("hello"), {}, 30)
    assert (r.ok, r.tokens, r.error) == (True, 2, "")


def test_a_request_that_never_connects_reports_no_first_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens: the request failed with the connection's error, saw no token and reports a TTFT of 0, like
    a request the server refused with an HTTP error (tests/test_strength_loadtest_s5c.py)."""
    monkeypatch.setattr(time, "perf_counter", _Counted(1.0, 1.0))
    r = stream_chat(f"http://127.0.0.1:{free_port()}", _body("x"), {}, 30)
    assert (r.ok, r.tokens, r.ttft_s, r.latency_s) == (False, 0, 0, 1.0) and "refused" in r.error.lower()


def test_a_requests_inter_token_latency_is_the_mean_time_between_its_chunks(
    chat_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three content chunks read on a clock that says 1, 2, 3, 4, 5: the first token came 1 s after the start (2 − 1),
    the next two 1 s apart each (3 − 2, 4 − 3): ITL 1 s, the whole request 4 s."""
    clock = _Counted(1.0, 1.0)
    monkeypatch.setattr(time, "perf_counter", clock)
    r = stream_chat(chat_server, _body("hello"), {}, 30)
    assert (r.ok, r.tokens, clock.readings) == (True, 3, 5)
    assert (r.ttft_s, r.itl_s, r.latency_s) == (1.0, 1.0, 4.0)


def test_a_fixed_prompt_asks_for_32_tokens_unless_max_tokens_says_otherwise(
    chat_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--prompt`` without ``--max-tokens`` sends ``max_tokens`` 32 (its ``--help``: "32 with --prompt") and says so
    in the workload line; ``--max-tokens 5`` sends 5."""
    base = ["loadtest", chat_server, "--concurrency", "1", "--requests", "1", "--prompt", "hello"]
    assert cli_main(base) == 0
    assert "workload: one fixed prompt, max_tokens 32\n" in capsys.readouterr().err
    assert cli_main([*base, "--max-tokens", "5"]) == 0
    assert [seen["body"]["max_tokens"] for seen in _Chat.seen] == [32, 5]


def test_the_seed_is_a_whole_number(chat_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--seed 007`` is seed 7 — the same requests as ``--seed 7`` — and ``--seed abc`` is refused by name before
    anything is sent."""
    base = ["loadtest", chat_server, "--concurrency", "1", "--requests", "2", "--prompt-tokens", "32:8"]
    assert cli_main([*base, "--seed", "007"]) == 0
    assert cli_main([*base, "--seed", "7"]) == 0
    bodies = [seen["body"] for seen in _Chat.seen]
    assert bodies[:2] == bodies[2:] and bodies[0] != bodies[1]
    assert "(normal, seed 7, ignore_eos)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        cli_main([*base, "--seed", "abc"])
    assert refused.value.code == 2 and "argument --seed: invalid int value: 'abc'" in capsys.readouterr().err
    assert len(_Chat.seen) == 4


# ------------------------------------------------------------------------------ seed 191's survivor


def test_a_sweep_need_not_start_at_one_request_in_flight(chat_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--concurrency 8,4`` measures levels 4 and 8 (any levels from 1 to 1000, in order); a level 0 among them is
    refused with the allowed range."""
    args = ["loadtest", chat_server, "--concurrency", "8,4", "--requests", "4", "--prompt", "hello", "--json"]
    assert cli_main(args) == 0
    levels = json.loads(capsys.readouterr().out)["levels"]
    assert [(lv["concurrency"], lv["requests"], lv["errors"]) for lv in levels] == [(4, 4, 0), (8, 4, 0)]
    assert cli_main(["loadtest", chat_server, "--concurrency", "0,4", "--prompt", "hello"]) == 2
    assert capsys.readouterr().err == "error: --concurrency must list levels between 1 and 1000\n"


# ------------------------------------------------------------------------------ seed 201's survivors


def test_a_header_value_may_itself_hold_colons(chat_server: str) -> None:
    """``--header 'Name: value'`` splits at the first colon only: a value with colons of its own (a URL, a
    timestamp) reaches the server whole, beside a plain one."""
    args = ["loadtest", chat_server, "--concurrency", "1", "--requests", "1", "--prompt", "hello"]
    args += ["--header", "X-Origin: https://example.com:8443/a", "--header", "Authorization: Bearer t"]
    assert cli_main(args) == 0
    [seen] = _Chat.seen
    assert seen["headers"]["X-Origin"] == "https://example.com:8443/a"
    assert seen["headers"]["Authorization"] == "Bearer t"


def test_an_informational_status_before_the_stream_is_a_failed_request_named_by_its_status() -> None:
    """A server (or proxy) that answers ``103 Early Hints`` before its ``200`` stream: Python's http.client skips only
    ``100 Continue`` and hands the 103 back as the response (with no body), so the driver reports that request as
    failed with "HTTP 103", like any status other than 200 — not as a request that merely saw no tokens. (Noticed,
    left alone: behind such a server every request counts as an error.)"""
    srv = socket.create_server(("127.0.0.1", 0))
    events = [json.dumps({"choices": [{"delta": {"content": "a"}}]}), "[DONE]"]
    stream = "".join(f"data: {e}\n\n" for e in events).encode()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:"))[15:])
            while len(rest) < length:
                rest += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
                + b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: "
                + str(len(stream)).encode()
                + b"\r\n\r\n"
                + stream
            )

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    with srv:
        r = stream_chat(f"http://127.0.0.1:{srv.getsockname()[1]}", _body("hello"), {}, 30)
        worker.join()
    assert (r.ok, r.error, r.tokens, r.ttft_s) == (False, "HTTP 103", 0, 0)


def test_each_prompt_word_is_one_entry_of_a_real_models_vocabulary(smollm2_gguf: Path) -> None:
    """The real-shape prompt counts its length in words because each word, after a space, is one token in the BPE
    vocabularies of the usual models: SmolLM2's GGUF (byte-level BPE, ``Ġ`` for the leading space) holds every one
    of them whole, and a word such as "MUTATED" it does not."""
    reader = gguf.GGUFReader(smollm2_gguf)
    field = reader.fields["tokenizer.ggml.tokens"]
    vocabulary = {bytes(field.parts[i]).decode("utf-8") for i in field.data}
    assert bytes(reader.fields["tokenizer.ggml.model"].parts[-1]) == b"gpt2"
    assert [w for w in WORDS if "Ġ" + w not in vocabulary] == [] and len(WORDS) == len(set(WORDS)) == 80
    assert "ĠMUTATED" not in vocabulary


@pytest.mark.slow
def test_a_prompt_of_n_words_is_n_tokens_to_the_real_llama_server(
    engine_env: dict[str, str], smollm2_gguf: Path, tmp_path: Path
) -> None:
    """llama-server's own tokenizer (``POST /tokenize``) on SmolLM2 reads the whole word list, each word after a
    space, as exactly one token a word."""
    plan = plan_for_gguf(smollm2_gguf, 1024, 1, "q8_0")
    port = free_port()
    with run_server([engine_env["LLAMA_SERVER"], *local_args(plan.engine_args, port)], port, tmp_path / "s.log") as s:
        wait_ready(s)
        request = urllib.request.Request(
            s.base + "/tokenize",
            data=json.dumps({"content": " " + " ".join(WORDS)}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer_:
            tokens = json.loads(answer_.read())["tokens"]
    assert len(tokens) == len(WORDS)

"""container/prompt_cache.py, session 5 (issue 23): the three survivors seed 91 left — what the image build prints
when llama-server dies during the build, how often the build asks ``/health`` while the model loads, and the
``--help`` text that says what the script is for."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

from harness.llamacpp import free_port

from .conftest import ROOT
from .stub_http import answer, serving
from .test_prompt_cache import _stub_server

sys.path.insert(0, str(ROOT / "container"))
import prompt_cache as pc


def test_a_server_that_dies_during_the_build_is_reported_with_its_exit_code_and_nothing_else(tmp_path: Path) -> None:
    """The build's error is the whole message the image build shows for a llama-server that exits before it is
    healthy (a bad flag, a model it cannot load): the program and its exit code."""
    dead = tmp_path / "dead"
    dead.write_text("#!/bin/sh\nexit 7\n")
    dead.chmod(0o755)
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(RuntimeError) as err:
        pc.build(str(dead), str(tmp_path / "s"), str(tmp_path / "p.txt"), ["--port", str(free_port())])
    assert str(err.value) == "llama-server exited with 7"


class _Loading(BaseHTTPRequestHandler):
    """llama-server while it loads the model: ``/health`` answers 503 (tools/server/README.md), each poll counted."""

    polls: ClassVar[int] = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).polls += 1
        answer(self, 503, b'{"error": {"message": "Loading model"}}')


@pytest.fixture
def loading() -> Iterator[str]:
    _Loading.polls = 0
    with serving(_Loading) as base:
        yield base


def test_a_loading_server_is_asked_for_its_health_five_times_a_second(
    loading: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the model loads the build asks ``/health`` every 0.2 s: in 0.9 s (a clock that moves only when the
    build sleeps, so nothing is timed) the server sees five polls, at 0, 0.2, 0.4, 0.6 and 0.8 s, and the build
    slept 0.2 s between each."""
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        if seconds < 0:  # as time.sleep does, so a wrong interval cannot turn the clock back and poll forever
            raise ValueError("sleep length must be non-negative")
        sleeps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", sleep)
    with pytest.raises(TimeoutError, match=r"not ready after 0\.9s"):
        pc.wait_healthy(loading, timeout_s=0.9)
    assert _Loading.polls == 5
    assert sleeps == [0.2] * 5


def test_help_says_what_the_script_does(capsys: pytest.CaptureFixture[str]) -> None:
    """``prompt_cache.py --help`` opens with the module's own description (build-time prompt cache, the prefix
    rule), reflowed by argparse, before its two commands."""
    with pytest.raises(SystemExit) as done:
        pc.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ")
    words = " ".join(out.split())
    assert " ".join(str(pc.__doc__).split()) in words
    assert words.index("Build-time prompt cache for llama.cpp") < words.index("positional arguments: {build,restore}")


# Seed 101's survivors (blind run of 2026-12-07 with the three tests above).


class _JsonApi(BaseHTTPRequestHandler):
    """A healthy stand-in that records each POST's path and the type its body is labelled with."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        answer(self, 200, b'{"status": "ok"}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.path, self.headers.get("Content-Type")))
        answer(self, 200, b"{}")


def test_every_request_to_llama_server_is_sent_as_json(tmp_path: Path) -> None:
    """llama-server's ``/completion`` and ``/slots`` take JSON bodies (tools/server/README.md): each one the build and
    the restore send says so. Without the header urllib labels a body ``application/x-www-form-urlencoded``
    (``AbstractHTTPHandler.do_request_`` in Lib/urllib/request.py)."""
    _JsonApi.seen = []
    (tmp_path / "slot0.bin").write_bytes(b"kv")
    with serving(_JsonApi) as base:
        assert pc.warm_and_save(base, "You are the support desk.\n", 1) == ["slot0.bin"]
        assert pc.restore(base, tmp_path) == ["slot0.bin"]
    assert _JsonApi.seen == [
        ("/completion", "application/json"),
        ("/slots/0?action=save", "application/json"),
        ("/slots/0?action=restore", "application/json"),
    ]


class _NoContent(BaseHTTPRequestHandler):
    """Something on the port that answers ``/health`` with a 2xx that is not llama-server's 200 OK."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()


def test_only_a_200_from_health_counts_as_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    """llama-server answers ``/health`` 503 while it loads and 200 once it serves (tools/server/README.md); the build
    starts filling slots on that 200 only, so any other answer, a 204 No Content included, keeps it waiting until
    the deadline (a clock that moves only when the build sleeps)."""
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: now.__setitem__(0, now[0] + max(seconds, 0.1)))
    with serving(_NoContent) as base, pytest.raises(TimeoutError) as err:
        pc.wait_healthy(base, timeout_s=1)
    assert str(err.value) == f"{base}/health not ready after 1s"


def test_the_build_passes_the_engine_flags_through_as_written_but_the_separator(tmp_path: Path) -> None:
    """``build … -- FLAGS``: llama-server gets FLAGS exactly, only the ``--`` that ends the script's own options left
    out. An empty value (``--alias ""``) stays in its place: dropping it would shift every later flag onto the
    wrong option, and the cache would be built with other flags than the service restores it with (R2)."""
    server, log = _stub_server(tmp_path)
    slots = tmp_path / "slots"
    (tmp_path / "p.txt").write_text("x")
    engine = ["--host", "127.0.0.1", "--port", str(free_port()), "--alias", "", "-np", "1"]
    argv = ["build", "--server", str(server), "--slot-save-path", str(slots), "--preamble", str(tmp_path / "p.txt")]
    assert pc.main([*argv, "--", *engine]) == 0
    assert json.loads(log.read_text().splitlines()[0]) == [*engine, "--slot-save-path", str(slots)]


# Seed 111's survivors.


class _Answer:
    """What ``urllib.request.urlopen`` returns, as a context manager: an empty JSON body."""

    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def read(self) -> bytes:
        return b"{}"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float | None]]:
    """Each request the script opens, as (URL, the socket timeout urllib is given), answered without a network."""
    opened: list[tuple[str, float | None]] = []

    def urlopen(req: urllib.request.Request, timeout: float | None = None) -> _Answer:
        opened.append((req.full_url, timeout))
        return _Answer()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return opened


def test_restore_without_a_url_restores_into_llama_servers_default_address(
    sent: list[tuple[str, float | None]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``prompt_cache.py restore --slot-save-path DIR`` with no ``--url`` talks to llama-server where it listens
    by default, 127.0.0.1:8080 (``llama-server --help``: "--port PORT  port to listen (default: 8080)")."""
    (tmp_path / "slot0.bin").write_bytes(b"kv")
    assert pc.main(["restore", "--slot-save-path", str(tmp_path)]) == 0
    assert [url for url, _ in sent] == ["http://127.0.0.1:8080/slots/0?action=restore"]
    assert capsys.readouterr().out == "slot0.bin\n"


def test_each_request_of_the_build_may_take_five_minutes(sent: list[tuple[str, float | None]], tmp_path: Path) -> None:
    """A prefill of a long preamble on the build machine's CPU is slow, so each request the build and the restore
    send waits up to 300 s for llama-server's answer before it fails the build (rather than hanging it:
    test_strength_prompt_cache_s4.py::test_a_server_that_never_answers_fails_the_call_at_its_timeout)."""
    (tmp_path / "slot0.bin").write_bytes(b"kv")
    assert pc.warm_and_save("http://127.0.0.1:9", "You are the support desk.\n", 1) == ["slot0.bin"]
    assert pc.restore("http://127.0.0.1:9", tmp_path) == ["slot0.bin"]
    assert sent == [
        ("http://127.0.0.1:9/completion", 300),
        ("http://127.0.0.1:9/slots/0?action=save", 300),
        ("http://127.0.0.1:9/slots/0?action=restore", 300),
    ]

"""container/prompt_cache.py, session 4 (issue 23, seed 71): what its survivors showed no test pinned.

- a build into a slot directory that already exists (the image's layer, a second build) must not fail;
- a llama-server that accepts a request and never answers fails the build at the timeout instead of hanging
  the image build forever;
- the server's own log stays out of the build output: the script prints one line, the files it saved.
"""

from __future__ import annotations

import sys
import threading
import time
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


def _noisy_server(tmp_path: Path) -> Path:
    """The stand-in llama-server of test_prompt_cache.py, first writing log lines to stdout and stderr as the real
    one does (llama.cpp logs to stderr, ``-lv`` adds more)."""
    script, _ = _stub_server(tmp_path)
    noisy = tmp_path / "noisy-llama-server"
    noisy.write_text(
        f"#!/bin/sh\necho 'main: server is listening on http://127.0.0.1'\n"
        f"echo 'srv  load_model: loading model' >&2\nexec {script} \"$@\"\n"
    )
    noisy.chmod(0o755)
    return noisy


def test_a_build_into_an_existing_slot_directory_succeeds_and_prints_only_what_it_saved(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    slots = tmp_path / "slots"
    slots.mkdir()  # already there: the Dockerfile's directory, or a second build in the same stage
    (tmp_path / "p.txt").write_text("You are the support desk.\n")
    engine = ["--host", "127.0.0.1", "--port", str(free_port()), "-np", "2"]
    assert pc.build(str(_noisy_server(tmp_path)), str(slots), str(tmp_path / "p.txt"), engine) == 0
    out, err = capfd.readouterr()  # file-descriptor level: what the server process would have written too
    assert out == f"prompt_cache: saved slot0.bin, slot1.bin to {slots}\n"
    assert err == ""
    assert sorted(p.name for p in slots.iterdir()) == ["slot0.bin", "slot1.bin"]


class _Hung(BaseHTTPRequestHandler):
    """Reads the request, then answers only when released (a server stuck in prefill)."""

    release: ClassVar[threading.Event] = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).release.wait(timeout=10)
        answer(self, 200, b"{}")


@pytest.fixture
def hung() -> Iterator[str]:
    _Hung.release = threading.Event()
    with serving(_Hung) as base:
        try:
            yield base
        finally:
            _Hung.release.set()


def test_a_server_that_never_answers_fails_the_call_at_its_timeout(hung: str) -> None:
    with pytest.raises(TimeoutError):
        pc.call(f"{hung}/completion", {"prompt": "x", "n_predict": 0}, timeout=0.3)


@pytest.mark.parametrize(
    ("args", "slots", "port"),
    [
        (["-c", "4096", "--verbose", "-np", "3", "--port", "9001"], 3, 9001),  # each flag at an odd position
        (["--verbose", "--parallel", "2", "--port", "9002"], 2, 9002),
        (["--host", "0.0.0.0", "-c", "8192", "-np", "4"], 4, 8080),
    ],
)
def test_slots_and_port_are_read_wherever_the_flags_stand(args: list[str], slots: int, port: int) -> None:
    """The value is the argument right after its flag, at any position in the rendered flags."""
    assert (pc.slot_count(args), pc.port_of(args)) == (slots, port)


@pytest.mark.parametrize(
    ("argv", "missing"),
    [
        (["restore"], "--slot-save-path"),
        (["build", "--slot-save-path", "/slots", "--preamble", "p.txt"], "--server"),
        (["build", "--server", "s", "--preamble", "p.txt"], "--slot-save-path"),
        (["build", "--server", "s", "--slot-save-path", "/slots"], "--preamble"),
    ],
)
def test_a_missing_required_flag_is_a_usage_error_naming_it(
    argv: list[str], missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's own refusal (exit 2, the flag named), not a traceback from ``Path(None)`` halfway through."""
    with pytest.raises(SystemExit) as done:
        pc.main(argv)
    assert done.value.code == 2
    assert capsys.readouterr().err.strip().endswith(f"error: the following arguments are required: {missing}")


class _FakeClock:
    """``time.monotonic`` and ``time.sleep`` for prompt_cache: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_build_gives_llama_server_five_minutes_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image build's wait for ``/health`` (llama-server answers 503 while it loads the model): five minutes by
    default, named in the error that fails the build."""
    clock = _FakeClock()
    monkeypatch.setattr(time, "monotonic", clock.monotonic)
    monkeypatch.setattr(time, "sleep", clock.sleep)
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens: every poll is refused at once
    with pytest.raises(TimeoutError) as err:
        pc.wait_healthy(base)
    assert str(err.value) == f"{base}/health not ready after 300s"
    assert clock.now >= 1000.0 + 300


def test_the_deadline_is_exclusive_a_zero_wait_polls_nothing(
    monkeypatch: pytest.MonkeyPatch, healthy_server: str
) -> None:
    """At the deadline the wait is over: with no time left (a clock standing still at the deadline) even a healthy
    server is not polled."""
    clock = _FakeClock()
    monkeypatch.setattr(time, "monotonic", clock.monotonic)
    with pytest.raises(TimeoutError, match="not ready after 0s"):
        pc.wait_healthy(healthy_server, timeout_s=0)
    pc.wait_healthy(healthy_server, timeout_s=1)  # the same server, with time left: healthy at once


class _Healthy(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        answer(self, 200, b'{"status": "ok"}')


@pytest.fixture
def healthy_server() -> Iterator[str]:
    with serving(_Healthy) as base:
        yield base

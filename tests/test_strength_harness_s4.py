"""harness/llamacpp.py, session 4 (issue 23, seed 71): what its survivors showed no test pinned."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

from harness import llamacpp as h

from .stub_http import answer, serving


def test_local_args_move_the_listen_address_wherever_the_flags_stand() -> None:
    """The value after ``--host`` and after ``--port`` is replaced at any position (here both flags stand at odd
    indexes, after a flag without a value); every other flag stays as rendered."""
    rendered = ["-m", "/models/m.gguf", "--verbose", "--port", "8080", "-c", "4096", "--host", "0.0.0.0", "-fa", "on"]
    assert h.local_args(rendered, 23456) == [
        *("-m", "/models/m.gguf", "--verbose", "--port", "23456", "-c", "4096", "--host", "127.0.0.1"),
        *("-fa", "on", "-lv", "4"),
    ]


def test_a_failed_prompt_cache_build_fails_the_caller(tmp_path: Path) -> None:
    """container/prompt_cache.py exits non-zero when llama-server dies (the image build fails): the harness raises
    too, so an engine test never goes on without its cache."""
    dead = tmp_path / "dead-server"
    dead.write_text("#!/bin/sh\nexit 3\n")
    dead.chmod(0o755)
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(subprocess.CalledProcessError) as err:
        h.build_prompt_cache(str(dead), tmp_path / "slots", tmp_path / "p.txt", ["--port", str(h.free_port())],
                             capture_output=True)  # fmt: skip
    assert err.value.returncode == 1
    assert b"RuntimeError: llama-server exited with 3" in err.value.stderr


class _Counting(BaseHTTPRequestHandler):
    """Answers the n-th request with status 500 + n: never ready, and every status tells which poll it was."""

    seen: ClassVar[int] = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        code = 500 + type(self).seen
        type(self).seen += 1
        answer(self, code, b"{}")


def test_a_server_never_ready_reports_the_last_five_statuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    _Counting.seen = 0
    with serving(_Counting) as base:
        port = int(base.rsplit(":", 1)[1])
        argv = [sys.executable, "-c", "import time; time.sleep(60)"]  # alive, never serving itself
        with h.run_server(argv, port, tmp_path / "server.log") as server, pytest.raises(TimeoutError) as err:
            h.wait_ready(server, timeout_s=0.1)
    polls = _Counting.seen
    assert polls > 10  # enough polls that "the last five" is a choice
    assert str(err.value) == f"/health not ready in 0.1s; last statuses {[500 + n for n in range(polls - 5, polls)]}"


class _Stuck(BaseHTTPRequestHandler):
    """Accepts the request, answers only when released (a server stuck while it loads)."""

    release: ClassVar[threading.Event] = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).release.wait(timeout=10)
        answer(self, 200, b"{}")


def test_a_server_that_never_answers_counts_as_not_listening_after_the_timeout() -> None:
    """The readiness poll must go on (and reach its own deadline) when a request hangs: each GET gives up at its
    timeout and reads as "nothing answers yet"."""
    _Stuck.release = threading.Event()
    with serving(_Stuck) as base:
        try:
            assert h.http_status(base + "/health", timeout=0.3) is None
        finally:
            _Stuck.release.set()


def test_the_servers_stderr_and_its_environment_reach_the_log(tmp_path: Path) -> None:
    """llama-server logs to stderr: the log (and so the engine report and the failure message) holds it; and the
    process runs with the environment it is given (the engine tests pass ``LLAMA_ARG_*``/CUDA variables)."""
    code = "import os, sys; sys.stderr.write('load: ' + os.environ.get('ENGINE_MARK', 'unset') + '\\n'); sys.exit(4)"
    argv = [sys.executable, "-c", code]
    env = {"ENGINE_MARK": "from-the-caller", "PATH": "/usr/bin:/bin"}
    with (
        h.run_server(argv, h.free_port(), tmp_path / "server.log", env=env) as server,
        pytest.raises(RuntimeError, match=r"llama-server exited \(4\):\nload: from-the-caller\n$"),
    ):
        h.wait_ready(server)
    assert server.log() == "load: from-the-caller\n"

"""container/prompt_cache.py in process (issue 23: it was 0 % covered; the slow engine test runs it as a subprocess).

The real llama-server round trip is tests/test_engine_llamacpp.py::test_build_time_prompt_cache_is_restored_with_the
_same_flags. Here a stand-in server (a stdlib HTTP server on 127.0.0.1 speaking the four endpoints the script uses,
as llama.cpp's tools/server/README.md documents them: ``GET /health``, ``POST /completion``, ``POST
/slots/{id}?action=save|restore``) records every request, so each flag and field the script sends is asserted, and
the failure paths (server exits, never healthy) run too.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.llamacpp import free_port

from .conftest import ROOT
from .stub_http import answer, serving

sys.path.insert(0, str(ROOT / "container"))
import prompt_cache as pc

STUB = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
slots = Path(args[args.index("--slot-save-path") + 1])
log = Path(LOG)
log.write_text(json.dumps(args) + "\n")
health = {"calls": 0}


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _answer(self, code, body):
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        health["calls"] += 1  # 503 while "loading" (llama-server's /health contract), then 200
        self._answer(200 if health["calls"] > 2 else 503, {"status": "ok"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with log.open("a") as f:
            f.write(json.dumps({"path": self.path, "body": body}) + "\n")
        if "action=save" in self.path:
            (slots / body["filename"]).write_bytes(b"kv")
        self._answer(200, {"ok": True})


HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def _stub_server(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "stub.log"
    script = tmp_path / "llama-server"
    script.write_text(f"#!{sys.executable}\nLOG = {str(log)!r}\n{STUB}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def test_build_prefills_every_slot_with_the_preamble_and_saves_each(tmp_path: Path) -> None:
    server, log = _stub_server(tmp_path)
    slots = tmp_path / "slots"
    preamble = tmp_path / "preamble.txt"
    preamble.write_text("You are the support desk.\n")
    port = free_port()
    engine = ["--host", "127.0.0.1", "--port", str(port), "-np", "3", "-c", "4096"]
    rc = pc.main(
        ["build", "--server", str(server), "--slot-save-path", str(slots), "--preamble", str(preamble), "--", *engine]
    )
    assert rc == 0
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    # the service's own flags, then where to save (R2: restored with the same flags)
    assert lines[0] == [*engine, "--slot-save-path", str(slots)]
    requests = lines[1:]
    assert [r["path"] for r in requests] == [p for n in range(3) for p in ("/completion", f"/slots/{n}?action=save")]
    for n in range(3):
        fill, save = requests[2 * n], requests[2 * n + 1]
        assert fill["body"] == {
            "prompt": "You are the support desk.\n",
            "n_predict": 0,
            "id_slot": n,
            "cache_prompt": True,
        }
        assert save["body"] == {"filename": f"slot{n}.bin"}
    assert sorted(p.name for p in slots.iterdir()) == ["slot0.bin", "slot1.bin", "slot2.bin"]


def test_build_keeps_a_slot_save_path_the_flags_already_carry(tmp_path: Path) -> None:
    server, log = _stub_server(tmp_path)
    slots = tmp_path / "slots"
    (tmp_path / "p.txt").write_text("x")
    engine = ["--port", str(free_port()), "--slot-save-path", str(slots)]
    assert pc.build(str(server), str(slots), str(tmp_path / "p.txt"), engine) == 0
    assert json.loads(log.read_text().splitlines()[0]) == engine  # not added twice
    assert [p.name for p in slots.iterdir()] == ["slot0.bin"]  # no -np: one slot


def test_a_server_that_exits_fails_the_build_with_its_exit_code(tmp_path: Path) -> None:
    dead = tmp_path / "dead"
    dead.write_text("#!/bin/sh\nexit 3\n")
    dead.chmod(0o755)
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(RuntimeError, match="llama-server exited with 3"):
        pc.build(str(dead), str(tmp_path / "s"), str(tmp_path / "p.txt"), ["--port", str(free_port())])


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, Any]]] = []
    health: ClassVar[int] = 503

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(type(self).health)
        self.end_headers()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, body))
        answer(self, 200, b"" if body.get("empty") else json.dumps({"echo": body}).encode())


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    _Recorder.health = 503
    with serving(_Recorder) as base:
        yield base


def test_restore_loads_every_saved_slot_by_its_number(
    recorder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in (1, 0, 10):
        (tmp_path / f"slot{n}.bin").write_bytes(b"kv")
    (tmp_path / "other.bin").write_bytes(b"not a slot")
    assert pc.main(["restore", "--url", recorder, "--slot-save-path", str(tmp_path)]) == 0
    assert _Recorder.seen == [
        ("/slots/0?action=restore", {"filename": "slot0.bin"}),
        ("/slots/1?action=restore", {"filename": "slot1.bin"}),
        ("/slots/10?action=restore", {"filename": "slot10.bin"}),
    ]
    assert capsys.readouterr().out.strip() == "slot0.bin, slot1.bin, slot10.bin"


def test_restore_with_nothing_saved_says_so(recorder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert pc.main(["restore", "--url", recorder, "--slot-save-path", str(tmp_path)]) == 0
    assert _Recorder.seen == [] and capsys.readouterr().out.strip() == "nothing to restore"


def test_call_posts_json_and_reads_an_empty_answer_as_empty(recorder: str) -> None:
    assert pc.call(f"{recorder}/x", {"a": 1}) == {"echo": {"a": 1}}
    assert pc.call(f"{recorder}/x", {"empty": True}) == {}


def test_a_server_never_healthy_times_out_naming_the_url(recorder: str) -> None:
    with pytest.raises(TimeoutError, match=rf"{recorder}/health not ready after 0.3s"):
        pc.wait_healthy(recorder, timeout_s=0.3)
    _Recorder.health = 200
    pc.wait_healthy(recorder, timeout_s=30)


def test_an_unreachable_server_is_retried_until_the_deadline() -> None:
    with pytest.raises(TimeoutError, match="not ready"):
        pc.wait_healthy(f"http://127.0.0.1:{free_port()}", timeout_s=0.3)


@pytest.mark.parametrize(
    ("args", "slots", "port"),
    [
        (["-np", "4"], 4, 8080),
        (["--parallel", "2", "--port", "9000"], 2, 9000),
        (["-c", "8192"], 1, 8080),
    ],
)
def test_slots_and_port_are_read_from_the_engine_flags(args: list[str], slots: int, port: int) -> None:
    assert (pc.slot_count(args), pc.port_of(args)) == (slots, port)


def test_the_script_runs_as_the_image_build_runs_it(tmp_path: Path) -> None:
    """``python prompt_cache.py restore …`` as the Dockerfile's stage runs it: the ``__main__`` guard exits with
    main's code."""
    import subprocess

    out = subprocess.run(
        [sys.executable, str(ROOT / "container" / "prompt_cache.py"), "restore", "--slot-save-path", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert (out.returncode, out.stdout.strip()) == (0, "nothing to restore")

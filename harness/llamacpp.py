"""Run a real ``llama-server`` with the flags our sizing renders, and read back what it allocated.

Used by the engine tests and ``scripts/engine_report.py`` to check the sizing engine against
llama.cpp itself: the KV-cache and model-buffer sizes it logs, its ``/health`` readiness, and
its slot cache. Only the listen address changes (loopback and a free port); every other flag is
exactly what the Cloud Run service gets.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudrun_gpu.limits import MIB
from cloudrun_gpu.sizing import SizingPlan, SizingRequest, read_gguf, size

CACHE = Path(os.environ.get("CLOUDRUN_GPU_CACHE", Path.home() / ".cache" / "cloudrun-gpu-llm"))
"""Where scripts/ensure_engine.sh keeps llama-server and the test models (outside the clone)."""
CONTAINER = Path(__file__).resolve().parent.parent / "container"


def read_engine_env(cache: Path = CACHE) -> dict[str, str]:
    """``LLAMA_SERVER`` and ``SMOLLM2_GGUF`` as written by ``scripts/ensure_engine.sh``."""
    pairs = (line.split("=", 1) for line in (cache / "engine.env").read_text().splitlines() if "=" in line)
    return dict(pairs)


def plan_for_gguf(gguf: Path, context: int, parallel: int, kv: str, **extra: Any) -> SizingPlan:
    """The llama.cpp sizing plan for a local GGUF, loaded from its own path."""
    return size(
        SizingRequest(
            model=read_gguf(gguf),
            engine="llama.cpp",
            context_length=context,
            parallel=parallel,
            kv_cache_type=kv,
            model_path=str(gguf),
            **extra,
        )
    )


_KV_LINE = re.compile(r"llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers, +(\d+)/(\d+) seqs\)")
_MODEL_LINE = re.compile(r"load_tensors: +(\S+) model buffer size = +([\d.]+) MiB")


def build_prompt_cache(server: str, slot_dir: Path, preamble: Path, engine_args: list[str], **run: Any) -> None:
    """Run ``container/prompt_cache.py build`` exactly as the image build does (B4)."""
    cmd = [
        sys.executable,
        str(CONTAINER / "prompt_cache.py"),
        "build",
        "--server",
        server,
        "--slot-save-path",
        str(slot_dir),
        "--preamble",
        str(preamble),
        "--",
        *engine_args,
    ]
    subprocess.run(cmd, check=True, **run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def local_args(engine_args: list[str], port: int) -> list[str]:
    """The rendered flags with the listen address moved to loopback:``port``, plus info-level logging
    (``-lv 4``) so the allocation lines appear; nothing that changes memory or concurrency."""
    out = list(engine_args)
    out[out.index("--host") + 1] = "127.0.0.1"
    out[out.index("--port") + 1] = str(port)
    return [*out, "-lv", "4"]


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of a GET, or None when nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def probe_accepts(status: int | None) -> bool:
    """Cloud Run's HTTP startup probe: any response from 200 to 399 is a success."""
    return status is not None and 200 <= status < 400


@dataclass
class MemoryReport:
    kv_bytes: int
    kv_cells_per_seq: int
    n_seqs: int
    model_bytes: int


def parse_memory(log: str) -> MemoryReport:
    """KV and model-buffer sizes from the server log (the last, real load: llama.cpp first runs a fit pass)."""
    kv = _KV_LINE.findall(log)
    if not kv:
        raise ValueError("no 'llama_kv_cache: size = …' line in the log")
    size_mib, cells, _layers, seqs, _ = kv[-1]
    last_load = log[log.rfind("print_info: file size") :]  # every buffer of the last load (GPU + CPU_Mapped …)
    model_mib = sum(float(m) for _kind, m in _MODEL_LINE.findall(last_load))
    return MemoryReport(round(float(size_mib) * MIB), int(cells), int(seqs), round(model_mib * MIB))


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_server(argv: list[str], port: int, log_path: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start ``argv`` (a llama-server command line), yield it, always stop it."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = Server(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(server: Server, path: str = "/health", timeout_s: float = 120) -> list[int | None]:
    """Poll ``path`` until the probe would accept it; returns every status seen (None = refused)."""
    seen: list[int | None] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"llama-server exited ({server.proc.returncode}):\n{server.log()[-3000:]}")
        status = http_status(server.base + path, timeout=1)
        seen.append(status)
        if probe_accepts(status):
            return seen
        time.sleep(0.005)
    raise TimeoutError(f"{path} not ready in {timeout_s}s; last statuses {seen[-5:]}")

"""Measure llama-server's start with and without mmap, from a local file and through a FUSE mount (R7).

Why: the loading methods put the GGUF in very different places (an image layer, a Cloud Storage FUSE mount, an
in-memory volume), and mmap reads each of them differently. This starts the real llama-server (the one
``make engine`` builds) on the SmolLM2 test model, several times per case, and prints time-to-ready (spawn to
``/health`` 200, what Cloud Run's startup probe waits for), the server's resident memory split into file-backed
(the mapping) and anonymous (its own copy) pages, and, through FUSE, how many read requests reached the file
system and how large they were. docs/startup.md records a run.

Cases:
- ``local-warm``: the file's pages are in the page cache (an in-memory volume behaves like this: tmpfs pages).
- ``local-cold``: the file's pages dropped first (``posix_fadvise(DONTNEED)``: only this file, no root needed).
- ``fuse``: a read-only passthrough FUSE file system (mfusepy over libfuse 3) mounted afresh for every start, so
  nothing is cached; ``--fuse-latency-ms`` adds a fixed delay to every read request, a stand-in for the round trip
  a network file system such as gcsfuse pays per request it cannot serve from its read-ahead.

Needs: ``make engine`` (llama-server and the model), Debian's ``fuse3`` (``apt-get install fuse3``) and
``pip install mfusepy==3.1.1`` for the FUSE cases, and root (or /dev/fuse access) to mount.

    .venv/bin/python scripts/startup_report.py --runs 5 --fuse-latency-ms 0 1
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.llamacpp import CACHE, free_port, read_engine_env, run_server, wait_ready  # noqa: E402


def no_mmap_flags(server: str) -> list[str]:
    """How this llama-server build turns mmap off: ``--no-mmap`` (b6700, what production renders) or
    ``--load-mode none`` (newer builds, such as the one llama-cpp-python 0.3.36 vendors)."""
    text = subprocess.run([server, "--help"], capture_output=True, text=True, check=False).stdout
    if "--no-mmap" in text:
        return ["--no-mmap"]
    if "--load-mode" in text:
        return ["--load-mode", "none"]
    raise SystemExit(f"{server} has neither --no-mmap nor --load-mode: cannot turn mmap off")


@dataclass
class Run:
    case: str
    mmap: bool
    ready_s: float
    rss_mib: float
    rss_file_mib: float
    rss_anon_mib: float
    fuse_reads: int = 0
    fuse_bytes: int = 0
    fuse_sizes: dict[str, int] = field(default_factory=dict)


def rss(pid: int) -> tuple[float, float, float]:
    """VmRSS, RssFile and RssAnon of ``pid`` in MiB (/proc/PID/status)."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssFile", "RssAnon"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["RssFile"], values["RssAnon"]


def drop_file_cache(path: Path) -> None:
    """Evict ``path``'s clean pages from the page cache (this file only)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm_file_cache(path: Path) -> None:
    with path.open("rb") as f:
        while f.read(16 << 20):
            pass


# --- a passthrough FUSE file system that counts its read requests ---------------------------------------------


def serve_fuse(source: str, mountpoint: str, latency_ms: float, stats_path: str) -> None:
    """Mount ``source`` read-only at ``mountpoint`` (foreground); on unmount write the read statistics."""
    try:
        import mfusepy  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit("the FUSE cases need mfusepy (requirements-dev.txt): `make .venv/.installed`") from None

    sizes: Counter[int] = Counter()
    lock = threading.Lock()

    class Passthrough(mfusepy.Operations):  # type: ignore[misc]
        """Read-only view of ``source``; every read request is counted by size (and delayed by ``latency_ms``)."""

        def _full(self, path: str) -> str:
            return os.path.join(source, path.lstrip("/"))

        def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
            try:
                st = os.lstat(self._full(path))
            except FileNotFoundError:
                raise mfusepy.FuseOSError(errno.ENOENT) from None
            keys = ("st_mode", "st_size", "st_nlink", "st_uid", "st_gid", "st_atime", "st_mtime", "st_ctime")
            return {k: getattr(st, k) for k in keys}

        def readdir(self, path: str, fh: Any) -> list[str]:
            return [".", "..", *os.listdir(self._full(path))]

        def open(self, path: str, flags: int) -> int:
            return os.open(self._full(path), os.O_RDONLY)

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            if latency_ms:
                time.sleep(latency_ms / 1000)
            with lock:
                sizes[size] += 1
            return os.pread(fh, size, offset)

        def release(self, path: str, fh: int) -> int:
            os.close(fh)
            return 0

    try:
        mfusepy.FUSE(Passthrough(), mountpoint, foreground=True, ro=True, nothreads=False)
    finally:
        Path(stats_path).write_text(json.dumps({str(k): v for k, v in sizes.items()}))


@contextmanager
def fuse_mount(source: Path, latency_ms: float) -> Iterator[tuple[Path, dict[int, int]]]:
    """A fresh FUSE mount of ``source`` (its page cache starts empty); yields the mountpoint and a dict that holds
    the read requests by size (bytes → count) once the block ends and the file system is unmounted."""
    work = Path(tempfile.mkdtemp(prefix="startup-fuse-"))
    mnt, stats = work / "mnt", work / "stats.json"
    mnt.mkdir()
    cmd = [sys.executable, __file__, "--serve-fuse", str(source), str(mnt), str(latency_ms), str(stats)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not os.path.ismount(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read().decode() if proc.stderr else ""
            proc.kill()
            raise SystemExit(f"FUSE mount failed (apt-get install fuse3; pip install mfusepy==3.1.1):\n{err}")
        time.sleep(0.05)
    sizes: dict[int, int] = {}
    try:
        yield mnt, sizes
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=False)
        proc.wait(timeout=20)
        if stats.exists():
            sizes.update({int(k): int(v) for k, v in json.loads(stats.read_text()).items()})
        shutil.rmtree(work, ignore_errors=True)


# --- one start ---------------------------------------------------------------------------------------------------


def start_once(server: str, model: Path, extra: list[str], work: Path) -> tuple[float, tuple[float, float, float]]:
    """Start llama-server on ``model`` (CPU, the test harness's flags), time spawn → /health 200, read its RSS."""
    port = free_port()
    argv = [server, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", "512", "-np", "1", *extra]
    t0 = time.monotonic()
    with run_server(argv, port, work / f"server-{port}.log") as srv:
        wait_ready(srv, "/health", timeout_s=300)
        ready = time.monotonic() - t0
        return ready, rss(srv.proc.pid)


def measure(
    server: str,
    gguf: Path,
    runs: int,
    latencies: list[float],
    cases: list[str],
    out: list[Run],
    log: Path,
    flags: list[str],
) -> None:
    off = no_mmap_flags(server)
    for _ in range(runs):
        for mmap in (True, False):
            extra = [*flags, *([] if mmap else off)]
            if "local-warm" in cases:
                warm_file_cache(gguf)
                ready, (total, file_, anon) = start_once(server, gguf, extra, log)
                out.append(Run("local-warm", mmap, ready, total, file_, anon))
            if "local-cold" in cases:
                drop_file_cache(gguf)
                ready, (total, file_, anon) = start_once(server, gguf, extra, log)
                out.append(Run("local-cold", mmap, ready, total, file_, anon))
            if "fuse" in cases:
                for latency in latencies:
                    with fuse_mount(gguf.parent, latency) as (mnt, sizes):
                        ready, (total, file_, anon) = start_once(server, mnt / gguf.name, extra, log)
                    run = Run(f"fuse+{latency:g}ms", mmap, ready, total, file_, anon)
                    run.fuse_reads = sum(sizes.values())
                    run.fuse_bytes = sum(k * v for k, v in sizes.items())
                    run.fuse_sizes = {f"{k // 1024} KiB": v for k, v in sorted(sizes.items(), key=lambda i: -i[1])}
                    out.append(run)


def table(runs: list[Run]) -> str:
    """Medians per (case, mmap) as a Markdown table."""
    rows = [
        "| case | mmap | ready s (median; min-max) | RSS MiB | file-backed MiB | anonymous MiB | FUSE reads | "
        "most common FUSE read |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys((r.case, r.mmap) for r in runs))
    for case, mmap in keys:
        sel = [r for r in runs if r.case == case and r.mmap == mmap]
        ready = [r.ready_s for r in sel]
        med = statistics.median
        common = next(iter(sel[0].fuse_sizes), "") if sel[0].fuse_sizes else "-"
        reads = f"{med([r.fuse_reads for r in sel]):.0f}" if case.startswith("fuse") else "-"
        rows.append(
            f"| {case} | {'on' if mmap else 'off'} | {med(ready):.2f} ({min(ready):.2f}-{max(ready):.2f}) | "
            f"{med([r.rss_mib for r in sel]):.0f} | {med([r.rss_file_mib for r in sel]):.0f} | "
            f"{med([r.rss_anon_mib for r in sel]):.0f} | {reads} | {common} |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=3, help="starts per case (medians are reported)")
    ap.add_argument("--cases", nargs="+", default=["local-warm", "local-cold", "fuse"])
    ap.add_argument("--fuse-latency-ms", nargs="+", type=float, default=[0.0, 1.0])
    ap.add_argument("--json", type=Path, help="also write every run here")
    ap.add_argument("--flags", default="", help="more llama-server flags for every start, e.g. '--no-warmup'")
    ap.add_argument(
        "--evidence",
        action="store_true",
        help="print docs/startup-evidence.md's tables (published Cloud Run starts against the plan) and exit",
    )
    ap.add_argument("--serve-fuse", nargs=4, metavar=("SRC", "MNT", "LATENCY_MS", "STATS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.evidence:
        from cloudrun_gpu.sizing import startup

        print(startup.render_rates() + "\n\n" + startup.render_table())
        return
    if args.serve_fuse:
        src, mnt, latency, stats = args.serve_fuse
        serve_fuse(src, mnt, float(latency), stats)
        return
    if not (CACHE / "engine.env").is_file():
        raise SystemExit("llama-server and the test model are missing: run `make engine` first")
    env = read_engine_env()
    server, gguf = env["LLAMA_SERVER"], Path(env["SMOLLM2_GGUF"])
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="startup-logs-") as logs:
        measure(server, gguf, args.runs, args.fuse_latency_ms, args.cases, runs, Path(logs), args.flags.split())
    print(f"llama-server: {server}\nmodel: {gguf.name} ({gguf.stat().st_size / 2**20:.0f} MiB)")
    off = " ".join(no_mmap_flags(server))
    print(f"mmap off = {off}; other flags: {args.flags or 'none'}; {args.runs} starts per row\n")
    print(table(runs))
    for case in dict.fromkeys(r.case for r in runs if r.case.startswith("fuse")):
        for mmap in (True, False):
            sel = [r for r in runs if r.case == case and r.mmap == mmap]
            print(f"\n{case} mmap {'on' if mmap else 'off'}: read sizes {sel[0].fuse_sizes}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=1))


if __name__ == "__main__":
    main()

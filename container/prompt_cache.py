"""Build-time prompt cache for llama.cpp (practices B4, R2, S2).

``build``: start llama-server with the *same flags the service uses* plus ``--slot-save-path``,
feed the preamble into every slot (generating nothing), save each slot's KV cache to
``slot<N>.bin``, stop the server. At start-up ``entrypoint.sh`` restores those files with the
same flags, so the first request that shares the preamble skips its prefill.

The cache is a *prefix* cache (S2): keep the preamble byte-identical and at the very start of
every prompt; anything inserted before or inside it turns a hit into a miss.

Standard library only: it runs in the image build stage and in the tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def call(url: str, payload: dict[str, Any] | None = None, timeout: float = 300) -> dict[str, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body: dict[str, Any] = json.loads(resp.read() or b"{}")
        return body


def wait_healthy(base: str, timeout_s: float = 300, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"llama-server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base}/health not ready after {timeout_s}s")


def slot_count(engine_args: list[str]) -> int:
    for flag in ("-np", "--parallel"):
        if flag in engine_args:
            return int(engine_args[engine_args.index(flag) + 1])
    return 1


def port_of(engine_args: list[str]) -> int:
    return int(engine_args[engine_args.index("--port") + 1]) if "--port" in engine_args else 8080


def warm_and_save(base: str, preamble: str, slots: int) -> list[str]:
    """Prefill ``preamble`` into every slot and save each one; returns the file names."""
    saved = []
    for n in range(slots):
        call(f"{base}/completion", {"prompt": preamble, "n_predict": 0, "id_slot": n, "cache_prompt": True})
        name = f"slot{n}.bin"
        call(f"{base}/slots/{n}?action=save", {"filename": name})
        saved.append(name)
    return saved


def restore(base: str, slot_dir: Path) -> list[str]:
    restored = []
    for f in sorted(slot_dir.glob("slot*.bin")):
        n = f.stem.removeprefix("slot")
        call(f"{base}/slots/{n}?action=restore", {"filename": f.name})
        restored.append(f.name)
    return restored


def build(server: str, slot_save_path: str, preamble_file: str, engine_args: list[str]) -> int:
    Path(slot_save_path).mkdir(parents=True, exist_ok=True)
    args = [server, *engine_args]
    if "--slot-save-path" not in engine_args:
        args += ["--slot-save-path", slot_save_path]
    base = f"http://127.0.0.1:{port_of(engine_args)}"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(base, proc=proc)
        files = warm_and_save(base, Path(preamble_file).read_text(), slot_count(engine_args))
        print(f"prompt_cache: saved {', '.join(files)} to {slot_save_path}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--server", required=True)
    b.add_argument("--slot-save-path", required=True)
    b.add_argument("--preamble", required=True)
    b.add_argument("engine_args", nargs=argparse.REMAINDER)
    r = sub.add_parser("restore")
    r.add_argument("--url", default="http://127.0.0.1:8080")
    r.add_argument("--slot-save-path", required=True)
    a = p.parse_args(argv)
    if a.cmd == "build":
        engine_args = [x for x in a.engine_args if x != "--"]
        return build(a.server, a.slot_save_path, a.preamble, engine_args)
    print(", ".join(restore(a.url, Path(a.slot_save_path))) or "nothing to restore")
    return 0


if __name__ == "__main__":
    sys.exit(main())

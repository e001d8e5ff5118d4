"""container/prompt_cache.py, session 4 (issue 23), second sample (seed 81): what its survivors showed no test read —
a slot directory whose parents do not exist yet, the time the server gets to exit after the build, and a call
without a command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.llamacpp import free_port

from .conftest import ROOT
from .test_prompt_cache import _stub_server

sys.path.insert(0, str(ROOT / "container"))
import prompt_cache as pc


def _build(tmp_path: Path, slots: Path) -> int:
    script, _ = _stub_server(tmp_path)
    (tmp_path / "p.txt").write_text("You are the support desk.\n")
    engine = ["--host", "127.0.0.1", "--port", str(free_port()), "-np", "2"]
    return pc.build(str(script), str(slots), str(tmp_path / "p.txt"), engine)


def test_a_slot_directory_is_made_with_its_parents(tmp_path: Path) -> None:
    """The image's slot path (``/models/cache/slots`` style) may be several levels that do not exist yet in the
    build stage: the build makes them all and saves one file per slot there."""
    slots = tmp_path / "models" / "cache" / "slots"
    assert _build(tmp_path, slots) == 0
    assert sorted(p.name for p in slots.iterdir()) == ["slot0.bin", "slot1.bin"]


def test_after_the_build_the_server_is_stopped_and_given_30_s_to_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server is sent SIGTERM once the slots are saved and waited for, at most 30 s (a server that ignores the
    signal fails the build with ``TimeoutExpired`` rather than hanging it)."""
    waits: list[Any] = []

    class Recorded(subprocess.Popen[bytes]):
        def wait(self, timeout: float | None = None) -> int:
            waits.append(timeout)
            return super().wait(timeout)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    assert _build(tmp_path, tmp_path / "slots") == 0
    assert waits == [30]


def test_a_call_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``prompt_cache.py`` alone names what is missing (build or restore) instead of restoring from nowhere."""
    with pytest.raises(SystemExit) as exit_:
        pc.main([])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].endswith("error: the following arguments are required: cmd")
    assert "{build,restore}" in err

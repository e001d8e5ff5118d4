"""``python -m stack`` in process (issue 23: stack/__main__.py ran only in subprocesses, which coverage does not see):
it runs the CLI with the command line and exits with the CLI's status."""

from __future__ import annotations

import runpy
import sys

import pytest


def test_python_m_stack_runs_the_cli_and_exits_with_its_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["stack", "loadtest", "--concurrency", "0", "http://127.0.0.1:9"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("stack", run_name="__main__", alter_sys=True)
    assert exit_.value.code == 2
    assert "--concurrency must list levels between 1 and 1000" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["stack", "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("stack", run_name="__main__", alter_sys=True)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "plan" in out and "loadtest" in out and "size" in out

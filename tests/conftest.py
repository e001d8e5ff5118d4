"""Test harness: Pulumi mocks are installed at import time, before any code under test runs.

Without mocks the SDK fakes registrations and tests pass vacuously (pulumi-style.md pitfall 2),
so every component test goes through :func:`render` / :func:`run_program`, which install fresh
recording mocks and wait for every registration before the assertions run (outside ``apply``,
so a failed assertion always fails the test).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stack.render import Recorded, install_mocks, run_under_mocks  # noqa: E402

install_mocks("test", {})

REFERENCE = ROOT.parent / "shared" / "reference"


class Rendered:
    """What a program registered, with helpers to find resources by type and name."""

    def __init__(self, resources: list[Recorded], value: Any = None) -> None:
        self.resources = resources
        self.value = value
        """What the build function returned, resolved (e.g. child URNs)."""

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, got {[r.name for r in found]}"
        return found[0]

    def types(self) -> list[str]:
        return [r.type for r in self.resources if r.custom]


def render(build: Callable[[], Any], stack: str = "test", config: dict[str, str] | None = None) -> Rendered:
    """Run ``build`` as a Pulumi program under fresh mocks; return every registered resource."""
    mocks = install_mocks(stack, config or {}, gcp_project="test-project")
    result: dict[str, Any] = {}

    def program() -> Any:
        import pulumi

        return pulumi.Output.from_input(build()).apply(lambda v: result.__setitem__("value", v))

    run_under_mocks(program)
    return Rendered(mocks.resources, result.get("value"))


def urns(*resources: Any) -> Any:
    """An Output of the resources' URNs: return it from a build function to read them after the run."""
    import pulumi

    return pulumi.Output.all(*[r.urn for r in resources])


def parent_type(urn: str) -> str:
    """The type chain of a URN (``parent$child``): proves ``parent=self``."""
    return urn.split("::")[2]


@pytest.fixture(scope="session")
def engine_env() -> dict[str, str]:
    """Paths of the llama-server binary and the SmolLM2 GGUF; builds/fetches them on first use."""
    from harness.llamacpp import CACHE, read_engine_env

    if not (CACHE / "engine.env").is_file():
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure_engine.sh")], check=True)
    return read_engine_env(CACHE)


@pytest.fixture(scope="session")
def smollm2_gguf(engine_env: dict[str, str]) -> Path:
    return Path(engine_env["SMOLLM2_GGUF"])

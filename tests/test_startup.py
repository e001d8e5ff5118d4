"""R7, the engines' start-up options: mmap per loading method for llama.cpp and Ollama, and the options kept.

The rule lives in ``cloudrun_gpu/loading.py`` (``MMAP_BY_METHOD``) and its evidence in docs/startup.md. These tests
pin the rendered flags per method and engine (a silent change of the rule fails here, not in production), check
that the engine flags and the mounts agree on where each method puts the model, and, with the real llama-server
(slow), that turning mmap off really changes how the model is held: file-backed pages against an anonymous copy.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from cloudrun_gpu import limits, loading
from cloudrun_gpu.loading import (
    LLAMA_CPP_NO_MMAP,
    MMAP_BY_METHOD,
    MOUNT_PATHS,
    llama_cpp_mmap_args,
    method_for_model_path,
    ollama_model_parameters,
    uses_mmap,
)
from cloudrun_gpu.service import plan as service_plan
from cloudrun_gpu.service.plan import ServingSettings, model_path, plan_service
from cloudrun_gpu.service.settings import GpuSettings, ResourcesSettings, ScalingSettings
from cloudrun_gpu.sizing.settings import EngineSettings, LoadingSettings, ModelSettings

from .conftest import ROOT

MMAP_EXPECTED = {"image": False, "gcs-fuse": True, "gcs-download": True, "internet": True}
"""The decision docs/startup.md argues, written out: changing it must change this line too."""
GGUF_MODEL = ModelSettings(name="llama-3.2-3b", file="m.gguf")


def plan(engine: str, method: str) -> Any:
    return plan_service(
        ServingSettings(
            region="europe-west4",
            model=GGUF_MODEL,
            engine=EngineSettings(name=engine, context_length=4096),  # type: ignore[arg-type]
            loading=LoadingSettings(method=method),  # type: ignore[arg-type]
            gpu=GpuSettings(),
            resources=ResourcesSettings(),
            scaling=ScalingSettings(),
        )
    )


# --- the rule ------------------------------------------------------------------------------------------------


def test_every_file_loading_method_has_the_documented_mmap_choice() -> None:
    file_methods = set(limits.LOADING_METHODS) - {"gcs-stream"}  # gcs-stream is vLLM's streamer: no GGUF file
    assert set(MMAP_BY_METHOD) == file_methods == set(MMAP_EXPECTED)
    assert {m: c.mmap for m, c in MMAP_BY_METHOD.items()} == MMAP_EXPECTED
    doc = (ROOT / "docs" / "startup.md").read_text()
    for method, choice in MMAP_BY_METHOD.items():
        assert len(choice.reason) > 40, method
        assert f"| `{method}` | {'mmap' if choice.mmap else '`--no-mmap`'} |" in doc, method


def test_unknown_paths_keep_the_engine_default_and_unknown_methods_are_refused() -> None:
    assert uses_mmap(None) is True
    with pytest.raises(ValueError, match="gcs-stream"):
        uses_mmap("gcs-stream")


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/models/m.gguf", "image"),
        ("/mnt/models/m.gguf", "gcs-fuse"),
        ("/models-mem/m.gguf", "gcs-download"),  # the longer mount wins over /models
        ("/models", None),  # the mount itself is no file under it
        ("/modelsx/m.gguf", None),
        ("/tmp/m.gguf", None),
        ("gs://bucket/models/m", None),
    ],
)
def test_method_for_model_path(path: str, method: str | None) -> None:
    assert method_for_model_path(path) == method


def test_the_mounts_are_defined_once_and_every_rendered_path_maps_back_to_its_method() -> None:
    assert service_plan.MOUNT_PATHS is MOUNT_PATHS is loading.MOUNT_PATHS
    # methods that share a mount must share the rule, or a path could not tell which one applies
    for a, b in [(a, b) for a in MOUNT_PATHS for b in MOUNT_PATHS if MOUNT_PATHS[a] == MOUNT_PATHS[b]]:
        assert MMAP_BY_METHOD[a].mmap == MMAP_BY_METHOD[b].mmap, (a, b)
    engine = EngineSettings(name="llama.cpp")  # type: ignore[arg-type]
    for method in ("image", "gcs-fuse", "gcs-download"):
        path = model_path(GGUF_MODEL, engine, LoadingSettings(method=method))  # type: ignore[arg-type]
        assert method_for_model_path(path) == method, (method, path)
        assert llama_cpp_mmap_args(path) == ([] if MMAP_EXPECTED[method] else [LLAMA_CPP_NO_MMAP])


def test_the_no_mmap_spelling_was_checked_against_the_pinned_llama_cpp() -> None:
    """``--no-mmap`` is b6700's flag; llama.cpp PR #20834 replaced it with ``--load-mode none`` and newer builds
    reject it. Moving the pin must come with a look at the spelling (docs/startup.md)."""
    from cloudrun_gpu.images import LLAMA_CPP_VERSION

    assert LLAMA_CPP_VERSION == "b6700", "re-check LLAMA_CPP_NO_MMAP against the new llama.cpp, then update this pin"
    assert LLAMA_CPP_NO_MMAP == "--no-mmap"


# --- the rendered flags, per engine and method -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["image", "gcs-fuse", "gcs-download", "internet"])
def test_llama_cpp_gets_no_mmap_exactly_where_the_rule_says(method: str) -> None:
    args = plan("llama.cpp", method).sizing.engine_args
    assert args.count("--no-mmap") == (0 if MMAP_EXPECTED[method] else 1)
    if not MMAP_EXPECTED[method]:
        assert args[-1] == "--no-mmap"  # appended last: every other flag keeps its place
    assert "--mlock" not in args  # not used: docs/startup.md


@pytest.mark.parametrize("method", ["image", "gcs-fuse", "gcs-download", "gcs-stream"])
def test_vllm_gets_no_llama_cpp_load_flags(method: str) -> None:
    args = plan("vllm", method).sizing.engine_args
    assert "--no-mmap" not in args and "--mlock" not in args
    assert "--enforce-eager" not in args  # not used: docs/startup.md weighs it


@pytest.mark.parametrize("method", ["image", "gcs-fuse"])
def test_ollama_mmap_is_a_model_parameter_never_an_env(method: str) -> None:
    """Ollama 0.12.3 has no mmap environment variable; the choice is the model's ``use_mmap`` parameter."""
    env = plan("ollama", method).sizing.engine_env
    assert not [k for k in env if "MMAP" in k.upper()]
    assert ollama_model_parameters(method) == ({} if MMAP_EXPECTED[method] else {"use_mmap": "false"})


def test_ollama_keeps_the_model_loaded_and_leaves_the_load_timeout_alone() -> None:
    """OLLAMA_KEEP_ALIVE=-1: without it Ollama unloads an idle model after 5 minutes (envconfig/config.go
    ``KeepAlive``, default "5m") and the next request pays the load again inside a warm instance.
    OLLAMA_LOAD_TIMEOUT (stall detection, default 5m) is not set: the startup probe bounds the start."""
    env = plan("ollama", "gcs-fuse").sizing.engine_env
    assert env["OLLAMA_KEEP_ALIVE"] == "-1"
    assert "OLLAMA_LOAD_TIMEOUT" not in env


def test_llama_cpp_keeps_its_warmup() -> None:
    """--no-warmup is not used: the warm-up decode would only move to the first request (docs/startup.md)."""
    for method in MMAP_EXPECTED:
        assert "--no-warmup" not in plan("llama.cpp", method).sizing.engine_args


# --- the real llama-server: what mmap off changes --------------------------------------------------------------


def no_mmap_flags(server: str) -> list[str]:
    """This build's spelling of ``--no-mmap`` (newer llama.cpp builds renamed it ``--load-mode none``)."""
    text = subprocess.run([server, "--help"], capture_output=True, text=True, check=False).stdout
    if LLAMA_CPP_NO_MMAP in text:
        return [LLAMA_CPP_NO_MMAP]
    assert "--load-mode" in text, "llama-server has neither --no-mmap nor --load-mode"
    return ["--load-mode", "none"]


def rss_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("RssFile", "RssAnon"):
            fields[key] = int(rest.split()[0])
    return fields


@pytest.mark.slow
def test_the_real_server_maps_the_model_with_mmap_and_copies_it_without(
    engine_env: dict[str, str], smollm2_gguf: Path, tmp_path: Path
) -> None:
    from harness.llamacpp import free_port, run_server, wait_ready

    server = engine_env["LLAMA_SERVER"]
    size_kib = smollm2_gguf.stat().st_size // 1024
    held = {}
    for mmap in (True, False):
        port = free_port()
        argv = [server, "-m", str(smollm2_gguf), "--host", "127.0.0.1", "--port", str(port), "-c", "512"]
        argv += [] if mmap else no_mmap_flags(server)
        with run_server(argv, port, tmp_path / f"mmap-{mmap}.log") as srv:
            wait_ready(srv, "/health", timeout_s=120)
            held[mmap] = rss_kib(srv.proc.pid)
    # measured (docs/startup.md): mmap 105 MiB file-backed + 33 anonymous; off 13 file-backed + 125 anonymous
    assert held[True]["RssFile"] > 0.9 * size_kib > held[True]["RssAnon"], held  # the weights are the mapping
    assert held[False]["RssAnon"] > 0.9 * size_kib > 2 * held[False]["RssFile"], held  # its own copy

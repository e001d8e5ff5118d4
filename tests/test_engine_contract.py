"""The engine contract, for every registered engine profile (issue 18; issue 19 items 1 and 4).

1. Every flag and env var rendered for the pinned engine version exists there, spelled exactly: vLLM and Ollama
   against the tables extracted from their source at the pinned tag (``tests/data/engine-flags/``, provenance in
   each header); llama.cpp by a real ``llama-server`` parsing the rendered args (slow).
2. The ``model`` the ``call`` output sends is exactly the name the engine serves after Cloud Run's ``$(VAR)``
   expansion (prod's 404: vLLM served the expanded ``gs://<bucket>/…`` path, the client sent the literal one).
3. The readiness path answers only once the model is loaded (real llama.cpp, slow).

Plus: the image tag hashes build inputs only (run-time settings never rebuild the image).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cloudrun_gpu.engines import PROFILES, engine_names, expand_cloud_run_refs, profile
from cloudrun_gpu.engines.vllm import KV_CACHE_MEMORY_FLAG
from cloudrun_gpu.sizing import SizingRequest, read_gguf, size
from cloudrun_gpu.sizing.catalogue import catalogue_model
from cloudrun_gpu.sizing.settings import EngineName

import stack.cloudbuild as cb
from harness.llamacpp import free_port, http_status, local_args, probe_accepts, run_server, wait_ready
from stack.cli import build_parser
from stack.compose import call_command
from stack.render import Recorded

from .conftest import DATA, ROOT
from .test_build import deploy, flat_config, gpu_services, validated, with_model

TABLES = DATA / "engine-flags"
SERVICE_URL = "https://llm.example.run.app"


def table(name: str) -> set[str]:
    """A flag/env table: one name per line, ``#`` lines are its provenance."""
    lines = (TABLES / name).read_text().splitlines()
    assert any(line.startswith("# extraction:") for line in lines), f"{name} has no extraction command"
    return {line for line in lines if line and not line.startswith("#")}


def rendered_flags(args: list[str]) -> list[str]:
    """The flag names among the args (values such as ``-1`` or a JSON object are not flags)."""
    return [a for a in args if re.fullmatch(r"--?[A-Za-z][A-Za-z0-9-]*", a)]


# Every (engine, loading method, GPU, version) the profiles render for: each method an engine accepts, on both GPUs
# (the vLLM pin differs per GPU: the L4's DLC renders no KV pin, v0.14.1 on the RTX PRO 6000 does).
MODELS = {"llama.cpp": "llama-3.1-8b", "ollama": "llama-3.1-8b", "vllm": "qwen2.5-7b"}
COMBOS = [
    (engine, method, gpu, version)
    for engine, p in PROFILES.items()
    for method in p.loading_methods
    for gpu, version in (("nvidia-l4", None), ("nvidia-rtx-pro-6000", "v0.14.1" if engine == "vllm" else None))
]


def _plan(engine: str, method: str, gpu: str, version: str | None, **extra: Any) -> Any:
    from cloudrun_gpu.loading import MOUNT_PATHS

    path = "gs://$(MODEL_BUCKET)/models/m" if method == "gcs-stream" else f"{MOUNT_PATHS[method]}/m"
    fields: dict[str, Any] = {"engine": engine, "gpu": gpu, "loading_method": method, "engine_version": version}
    fields |= {"model_path": "m" if engine == "ollama" else path, "served_model_name": "m", "context_length": 4096}
    return size(SizingRequest(model=catalogue_model(MODELS[engine]), **fields, **extra))


@pytest.mark.parametrize(("engine", "method", "gpu", "version"), [c for c in COMBOS if c[0] == "vllm"])
def test_every_vllm_flag_exists_spelled_exactly(engine: str, method: str, gpu: str, version: str | None) -> None:
    known = table(profile("vllm").flag_table or "")
    plan = _plan(engine, method, gpu, version)
    unknown = [f for f in rendered_flags(plan.engine_args) if f not in known]
    assert not unknown, f"not flags of vLLM v0.14.1 (an abbreviation argparse would accept?): {unknown}"
    assert not plan.engine_env.keys() - table(profile("vllm").env_table or "")  # env too, spelled exactly


@pytest.mark.parametrize(
    ("release", "mode"), [(r, m) for r in ("0.11.0", "0.12.0", "0.14.1") for m in ("v0", "v1")] + [("0.7.3", "v1")]
)
def test_vllm_use_v1_is_rendered_only_where_the_release_reads_it(release: str, mode: str) -> None:
    """Before: ``VLLM_USE_V1`` was appended beside the render call for every release, although vLLM v0.12.0 and
    the pinned v0.14.1 no longer read it (their ``envs.py`` tables), and ``v0`` there was sized as V0 while V1 ran."""
    from cloudrun_gpu.engines.vllm import USE_V1_ENV, USE_V1_REMOVED_IN
    from cloudrun_gpu.errors import ConfigError
    from cloudrun_gpu.sizing.engines import parse_vllm_version

    exists = (TABLES / f"vllm-v{release}-env.txt").exists() and USE_V1_ENV in table(f"vllm-v{release}-env.txt")
    version = parse_vllm_version(release)
    assert version is not None
    assert exists == (version < USE_V1_REMOVED_IN) or release == "0.7.3"  # the tables date the removal
    if version >= USE_V1_REMOVED_IN and mode == "v0":
        with pytest.raises(ConfigError) as err:
            _plan("vllm", "image", "nvidia-rtx-pro-6000", release, vllm_mode=mode)
        assert (err.value.field, err.value.value, err.value.allowed) == ("engine.vllm_mode", "v0", "v1")
        return
    plan = _plan("vllm", "image", "nvidia-rtx-pro-6000", release, vllm_mode=mode)
    if version < USE_V1_REMOVED_IN:
        assert plan.engine_env == {USE_V1_ENV: "1" if mode == "v1" else "0"}
    else:
        assert plan.engine_env == {} and any("no VLLM_USE_V1" in n for n in plan.explain)


def test_the_kv_pool_flag_is_the_full_name_not_an_abbreviation() -> None:
    known = table("vllm-v0.14.1.txt")
    assert KV_CACHE_MEMORY_FLAG == "--kv-cache-memory-bytes" in known
    assert "--kv-cache-memory" not in known  # what we rendered before: a prefix argparse happened to accept
    plan = _plan("vllm", "gcs-stream", "nvidia-rtx-pro-6000", "v0.14.1")
    assert KV_CACHE_MEMORY_FLAG in plan.engine_args and "--kv-cache-memory" not in plan.engine_args


@pytest.mark.parametrize(("engine", "method", "gpu", "version"), [c for c in COMBOS if c[0] == "ollama"])
def test_every_ollama_env_var_exists(engine: str, method: str, gpu: str, version: str | None) -> None:
    p = profile("ollama")
    known = table(p.flag_table or "")
    plan = _plan(engine, method, gpu, version)
    assert not plan.engine_args
    unknown = plan.engine_env.keys() - known - p.entrypoint_env
    assert not unknown, f"not environment variables of Ollama 0.12.3: {unknown}"
    entrypoint = (ROOT / "container" / "ollama" / "entrypoint.sh").read_text()
    for name in p.entrypoint_env:  # our own variables: the entrypoint reads each one
        assert f"${name}" in entrypoint or f"${{{name}" in entrypoint, name


def test_the_tables_name_the_flags_the_profiles_use() -> None:
    """A table extracted wrongly (empty, or from the wrong file) must not let everything pass."""
    vllm = table("vllm-v0.14.1.txt")
    assert {"--model", "--served-model-name", "--max-num-seqs", "--load-format", "--host", "--port"} <= vllm
    assert len(vllm) > 150
    assert {"OLLAMA_NUM_PARALLEL", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_MODELS"} <= table("ollama-v0.12.3.txt")
    env = table("vllm-v0.14.1-env.txt")
    assert {"VLLM_HOST_IP", "VLLM_PORT", "VLLM_CACHE_ROOT", "VLLM_USE_V2_MODEL_RUNNER"} <= env and len(env) > 150
    assert "VLLM_USE_V1" in table("vllm-v0.11.0-env.txt") and "VLLM_USE_V1" not in table("vllm-v0.12.0-env.txt")


# --- 2. the name the client sends is the name the engine serves ----------------------------------------------


def _container(service: Recorded) -> tuple[list[str], dict[str, str]]:
    container = service.inputs["template"]["containers"][0]
    env = {e["name"]: e["value"] for e in container.get("envs", []) if "value" in e}
    return list(container.get("args", [])), env


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_call_sends_the_name_the_engine_serves_after_cloud_run_expansion(stack: str) -> None:
    flat = flat_config(stack)
    vs = validated(flat)
    (service,) = gpu_services(deploy(stack, flat))
    args, env = _container(service)
    expanded = [expand_cloud_run_refs(a, env) for a in args]
    assert not any("$(" in a for a in expanded), expanded  # every reference resolves on the revision
    served = profile(vs.config.engine.name).served_name_from_config(expanded, env)
    call = call_command(SERVICE_URL, vs)
    body = json.loads(shlex.split(call)[-1])
    assert body["model"] == served
    assert f"{SERVICE_URL}/v1/chat/completions" in call


def test_prod_vllm_serves_a_name_cloud_run_does_not_rewrite() -> None:
    vs = validated(flat_config("prod"))
    args = vs.sizing.engine_args
    assert args[args.index("--model") + 1] == "gs://$(MODEL_BUCKET)/models/gemma-3-27b-it-awq"
    assert args[args.index("--served-model-name") + 1] == "gemma-3-27b-it-awq"
    before = expand_cloud_run_refs(args[args.index("--model") + 1], {"MODEL_BUCKET": "b"})
    assert before == "gs://b/models/gemma-3-27b-it-awq" != vs.plan.served_model_name  # the 404 without the flag


def test_cloud_run_expansion_rule() -> None:
    env = {"A": "x"}
    assert expand_cloud_run_refs("gs://$(A)/m", env) == "gs://x/m"
    assert expand_cloud_run_refs("$(B)", env) == "$(B)"  # unresolved: unchanged
    assert expand_cloud_run_refs("$$(A)", env) == "$(A)"  # escaped


@pytest.mark.parametrize(("engine", "method", "gpu", "version"), COMBOS)
def test_every_profile_serves_the_name_it_asks_clients_to_send(
    engine: str, method: str, gpu: str, version: str | None
) -> None:
    p = profile(engine)
    plan = _plan(engine, method, gpu, version)
    env = {**plan.engine_env, "MODEL_BUCKET": "bucket-1"}
    args = [expand_cloud_run_refs(a, env) for a in plan.engine_args]
    served = p.served_name_from_config(args, env)
    expected = "m" if engine != "llama.cpp" else plan.engine_args[plan.engine_args.index("-m") + 1]
    assert served == expected == p.client_request(served).model


# --- the registry is the one list of engines ---------------------------------------------------------------


def test_engine_name_choices_come_from_the_registry() -> None:
    assert tuple(e.value for e in EngineName) == engine_names()
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    (engine_opt,) = [a for a in sub.choices["size"]._actions if "--engine" in a.option_strings]
    assert tuple(engine_opt.choices or ()) == engine_names()


# --- the image tag hashes build inputs only (issue 19 item 4) ------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_run_time_settings_leave_the_image_untouched(stack: str) -> None:
    base = validated(flat_config(stack))
    for change in ({"max_parallel": 3}, {"context_length": 2048}):
        vs = validated(flat_config(stack, engine=change))
        assert vs.sizing.engine_args != base.sizing.engine_args or vs.sizing.engine_env != base.sizing.engine_env
        assert cb.image_tag(vs) == cb.image_tag(base), change
        assert cb.cloudbuild_config(vs) == cb.cloudbuild_config(base), change  # the build command is unchanged too


def test_the_prompt_cache_bakes_the_flags_so_they_retag() -> None:
    base = validated(flat_config("dev", engine={"prompt_cache": True}))
    vs = validated(flat_config("dev", engine={"prompt_cache": True, "max_parallel": 3}))
    assert cb.image_tag(vs) != cb.image_tag(base)
    step = cb.cloudbuild_config(vs)["steps"][-1]["args"]
    assert any(a.startswith("ENGINE_ARGS=") and "-np 3" in a for a in step)
    plain = cb.cloudbuild_config(validated(flat_config("dev")))["steps"][-1]["args"]
    assert not any(a.startswith("ENGINE_ARGS=") for a in plain)


def test_the_model_reference_retags() -> None:
    vs = validated(flat_config("staging"))  # Ollama: the store's tag is baked (MODEL_NAME) and served
    assert cb.image_tag(with_model(vs, file="llama3.1:8b-other")) != cb.image_tag(vs)


# --- llama.cpp: the real engine parses our args, serves the name, and is ready only once loaded (slow) ------


PIN_ONLY_FLAGS = {"--no-mmap"}
"""Flags of the production pin (b6700) that the test build (llama-cpp-python 0.3.36's vendored llama.cpp, newer)
no longer parses: ggml-org/llama.cpp PR #20834 replaced ``--no-mmap`` with ``--load-mode none`` (loading.py,
docs/startup.md). The parse test drops them and proves, separately, that the test build refuses exactly them; when
the harness or the pin moves, that proof fails and this set must be revisited."""


@pytest.mark.slow
@pytest.mark.parametrize("method", PROFILES["llama.cpp"].loading_methods)
def test_llama_server_parses_every_rendered_flag_and_serves_the_name(
    engine_env: dict[str, str], smollm2_gguf: Path, tmp_path: Path, method: str
) -> None:
    from cloudrun_gpu.loading import MOUNT_PATHS

    mount = MOUNT_PATHS[method]
    plan = _smollm2_plan(
        smollm2_gguf, context_length=1024, parallel=2, loading_method=method, model_path=f"{mount}/model.gguf"
    )
    args = local_args([a for a in plan.engine_args if a not in PIN_ONLY_FLAGS], free_port())
    args[args.index("-m") + 1] = str(smollm2_gguf)  # the real file; every other flag as rendered for the method
    served = profile("llama.cpp").served_name_from_config(args, {})
    port = int(args[args.index("--port") + 1])
    with run_server([engine_env["LLAMA_SERVER"], *args], port, tmp_path / "server.log") as server:
        wait_ready(server, profile("llama.cpp").readiness_path)
        models = json.loads(_get(server.base + "/v1/models"))
    assert [m["id"] for m in models["data"]] == [served]
    assert "invalid argument" not in (tmp_path / "server.log").read_text()


@pytest.mark.slow
def test_the_pin_only_flags_are_exactly_what_the_test_build_refuses(engine_env: dict[str, str]) -> None:
    for flag in PIN_ONLY_FLAGS:
        out = subprocess.run(
            [engine_env["LLAMA_SERVER"], flag], capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode != 0 and f"invalid argument: {flag}" in out.stdout + out.stderr


@pytest.mark.slow
def test_llama_server_refuses_a_misspelled_flag(engine_env: dict[str, str]) -> None:
    """What the parse test relies on: llama-server stops on an unknown flag (it does not ignore it)."""
    out = subprocess.run(
        [engine_env["LLAMA_SERVER"], "--no-such-flag"], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode != 0 and "--no-such-flag" in out.stdout + out.stderr


@pytest.mark.slow
def test_readiness_path_answers_only_once_loaded(
    engine_env: dict[str, str], smollm2_gguf: Path, tmp_path: Path
) -> None:
    plan = _smollm2_plan(
        smollm2_gguf, context_length=8192, parallel=8, kv_cache_type="f16", model_path=str(smollm2_gguf)
    )
    port = free_port()
    path = profile("llama.cpp").readiness_path
    with run_server(
        [engine_env["LLAMA_SERVER"], *local_args(plan.engine_args, port)], port, tmp_path / "server.log"
    ) as server:
        early: list[int | None] = []
        while not early or early[-1] is None:
            early.append(http_status(server.base + path, timeout=1))
            time.sleep(0.005)
        seen = wait_ready(server, path)
    assert any(s is not None and not probe_accepts(s) for s in seen), seen  # refused while loading …
    assert seen[-1] == 200  # … and 200 once the model is in memory


def _smollm2_plan(gguf: Path, **fields: Any) -> Any:
    """A llama.cpp plan for the SmolLM2 test model (the real engine's runs)."""
    return size(SizingRequest(model=read_gguf(gguf), engine="llama.cpp", **fields))


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
    return body.decode()


def test_the_env_extraction_reads_the_environment_variables_dict(tmp_path: Path) -> None:
    """``vllm-env`` reads the keys of ``environment_variables`` (annotated, as in vLLM's envs.py), nothing else:
    the command each env table's header records, run as written."""
    import sys

    envs = tmp_path / "envs.py"
    envs.write_text(
        'OTHER = {"VLLM_NOT_THIS": 1}\n'
        "environment_variables: dict[str, object] = {\n"
        '    "VLLM_PORT": lambda: os.getenv("VLLM_PORT"),\n'
        '    "VLLM_USE_V1": lambda: bool(int(os.getenv("VLLM_USE_V1", "1"))),\n'
        "}\n"
    )
    script = ROOT / "scripts" / "extract_engine_flags.py"
    out = subprocess.run(
        [sys.executable, str(script), "vllm-env", str(envs)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["VLLM_PORT", "VLLM_USE_V1"]

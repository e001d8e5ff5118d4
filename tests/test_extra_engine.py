"""Prove the engine axis (issue 18): a minimal engine profile, registered inside this test only, renders a complete
stack — config, sizing, flags, image build, GPU service, the ``call`` request — without any other edit.

The profile follows llama.cpp's memory rules (``sizing_engine``), pins its own base image, and reuses
``container/llama.cpp/Dockerfile`` as its Dockerfile (a real engine adds its own under ``container/``).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from cloudrun_gpu.engines import PROFILES, register
from cloudrun_gpu.engines.base import EngineProfile, RenderInputs, flag_value
from cloudrun_gpu.images import EngineImage
from cloudrun_gpu.sizing.settings import EngineName

from stack.compose import call_command

from .test_build import deploy, flat_config, gpu_services, validated

TINY_PIN = EngineImage(
    engine="tiny",
    gpu="nvidia-l4",
    reference="nvidia/cuda:12.2.2-runtime-ubuntu22.04",
    version="t1",
    cuda=(12, 2),
    archs=((8, 9),),
    build_args={"TINY_VERSION": "t1"},
)


class TinyProfile(EngineProfile):
    """A made-up server that takes llama.cpp's model files and memory rules but spells its own flags."""

    name: ClassVar[str] = "tiny"
    image_repository: ClassVar[str] = "tiny"
    dockerfile: ClassVar[str] = "llama.cpp/Dockerfile"
    loading_methods: ClassVar[tuple[str, ...]] = ("image", "gcs-fuse")
    sizing_engine: ClassVar[str] = "llama.cpp"
    pins: ClassVar[dict[str, EngineImage]] = {"nvidia-l4": TINY_PIN}

    def render(self, r: RenderInputs) -> tuple[list[str], dict[str, str]]:
        return ["--listen", "0.0.0.0:8080", "--model-file", r.model_path, "--slots", str(r.parallel)], {}

    def served_model_name(self, model_path: str, file: str, hub_id: str | None, method: str) -> str:
        return "tiny-model"

    def served_name_from_config(self, args: list[str], env: dict[str, str]) -> str:
        return "tiny-model"  # this server names its one model so, whatever the file

    def parallel_from_config(self, args: list[str], env: dict[str, str]) -> int:
        return int(flag_value(args, "--slots") or 0)

    def memory_from_config(self, args: list[str], env: dict[str, str]) -> dict[str, float]:
        return {"parallel": self.parallel_from_config(args, env)}


@pytest.fixture
def tiny() -> Iterator[EngineProfile]:
    profile = register(TinyProfile())
    try:
        yield profile
    finally:
        PROFILES.pop("tiny")


def test_a_registered_engine_renders_a_complete_stack(tiny: EngineProfile) -> None:
    flat = flat_config("dev", model={"source": None, "files": []}, engine={"name": "tiny"})
    vs = validated(flat)
    assert vs.config.engine.name == EngineName("tiny") == "tiny"
    assert vs.sizing.engine_args[:4] == ["--listen", "0.0.0.0:8080", "--model-file", vs.model_path]
    parallel = vs.sizing.max_parallel_sequences
    assert vs.sizing.engine_args[-2:] == ["--slots", str(parallel)] and parallel > 0  # sized by llama.cpp's rules

    res = deploy("dev", flat)
    (service,) = gpu_services(res)
    container = service.inputs["template"]["containers"][0]
    assert container["args"] == vs.sizing.engine_args
    assert container["startupProbe"]["httpGet"]["path"] == tiny.readiness_path
    build = next(r for r in res if r.type == "command:local:Command" and "IMAGE" in r.inputs.get("environment", {}))
    env = build.inputs["environment"]
    assert "/tiny:" in env["IMAGE"] and container["image"] == env["IMAGE"].rsplit(":", 1)[0] + "@sha256:" + "5e" * 32
    docker = json.loads(env["CLOUDBUILD_CONFIG"])["steps"][-1]["args"]
    assert docker[:3] == ["build", "-f", "container/llama.cpp/Dockerfile"] and "TINY_VERSION=t1" in docker

    body = json.loads(shlex.split(call_command("https://x.run.app", vs))[-1])
    assert body["model"] == tiny.served_name_from_config(container["args"], {}) == "tiny-model"


def test_an_unregistered_engine_is_refused_by_name() -> None:
    from cloudrun_gpu.errors import ConfigErrors

    with pytest.raises(ConfigErrors) as err:
        validated(flat_config("dev", engine={"name": "tiny"}))
    assert any(e.field.endswith("engine.name") and e.value == "tiny" for e in err.value.errors)


def test_calibrate_says_an_engine_without_a_log_parser_has_none(
    tiny: EngineProfile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A profile needs no log parser to deploy; ``calibrate --engine tiny`` names the engine and what reads logs."""
    import argparse

    from stack import calibrate

    log = tmp_path / "tiny.log"
    log.write_text("tiny: listening on 0.0.0.0:8080\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    calibrate.add_arguments(parser)
    assert not tiny.reads_logs and tiny.parse_log("x") is None
    assert calibrate.main(parser.parse_args([str(log), "--engine", "tiny"])) == 2
    err = capsys.readouterr().err
    assert "--engine = 'tiny'" in err and "engine tiny has no start-up log parser" in err
    assert "allowed: llama.cpp, ollama, vllm" in err

"""Strength tests for ``cloudrun_gpu.build.image`` (issue 23: the module had no mutation row; a fresh sample,
seed 51, left these survivors).

- The image tag is ``<model>-<first 10 hex of sha256 over the build inputs as sorted JSON>``: restated here from
  the docstring for the dev stack, so a tag never moves unless an input does (an immutable tag that moves rebuilds
  and redeploys); a model name too long for a Docker tag keeps its first 116 characters, so the tag is 127.
- A stack that reads its model at run time (``gcs-fuse``, ``gcs-download``) bakes no weights: changing the model's
  source or bucket prefix must not rebuild its image; the ``image`` method's must.
- The build's disk: four times the weights, at least 100 GB, at most Cloud Build's 1000 GB.
- ``BuildConfig`` is frozen, and the plain bag another Pulumi language passes becomes the same typed config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
from cloudrun_gpu.build.image import TAG_PATTERN, BuildConfig, BuildStep, image_build_config, image_tag
from cloudrun_gpu.images import pinned_image
from cloudrun_gpu.limits import GIB

from stack.config import ValidatedStack, load_stack

from .conftest import ROOT

DIGEST = "c0ffee" * 10 + "abcd"
"""A stand-in for the build context's hash (an input of the tag like any other)."""


def with_model(vs: ValidatedStack, **changes: Any) -> ValidatedStack:
    return dataclasses.replace(
        vs, config=dataclasses.replace(vs.config, model=dataclasses.replace(vs.config.model, **changes))
    )


def with_sizing(vs: ValidatedStack, **changes: Any) -> ValidatedStack:
    return dataclasses.replace(
        vs, plan=dataclasses.replace(vs.plan, sizing=dataclasses.replace(vs.plan.sizing, **changes))
    )


def tag(vs: ValidatedStack) -> str:
    return image_tag(vs.config.serving, vs.plan, DIGEST)


def test_the_dev_image_tag_is_the_hash_of_its_build_inputs() -> None:
    vs = load_stack("dev", ROOT)
    inputs = {  # dev: llama.cpp, Llama 3.2 3B Q4_K_M baked into the image from gs://…/models, no prompt cache
        "args": None,
        "container": DIGEST,
        "engine_build": pinned_image("llama.cpp", "nvidia-l4").build_args,
        "file": "llama-3.2-3b-instruct-q4_k_m.gguf",
        "method": "image",
        "model": "llama-3.2-3b",
        "object_prefix": "models",
        "prompt_cache": False,
        "quant": "Q4_K_M",
        "source": [vs.config.model.source, vs.config.model.files],
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:10]
    assert tag(vs) == f"llama-3.2-3b-{digest}"


def test_a_long_model_name_keeps_116_characters_and_the_tag_stays_valid() -> None:
    vs = with_sizing(load_stack("dev", ROOT), model="Org/" + "a" * 200)
    t = tag(vs)
    assert t.startswith("org-" + "a" * 112 + "-") and len(t) == 116 + 1 + 10 == 127
    assert TAG_PATTERN.fullmatch(t)


@pytest.mark.parametrize("stack", ["staging"])  # Ollama from a Cloud Storage FUSE mount: the image holds no model
def test_a_run_time_load_is_not_rebuilt_when_the_models_source_or_prefix_changes(stack: str) -> None:
    vs = load_stack(stack, ROOT)
    assert vs.config.serving.loading.method == "gcs-fuse"
    assert tag(with_model(vs, source="gs://elsewhere/models/x", files=["x.gguf"])) == tag(vs)
    assert tag(with_model(vs, object_prefix="other/prefix")) == tag(vs)


def test_a_baked_model_is_rebuilt_when_its_source_or_prefix_changes() -> None:
    vs = load_stack("dev", ROOT)
    assert vs.config.serving.loading.method == "image"
    assert tag(with_model(vs, source="gs://elsewhere/models/x")) != tag(vs)
    assert tag(with_model(vs, object_prefix="other/prefix")) != tag(vs)


@pytest.mark.parametrize(
    ("weights_gib", "disk_gb"),
    [(0.5, 100), (24.9, 100), (25.1, 101), (30, 120), (249.9, 1000), (400, 1000)],
)
def test_the_build_disk_is_four_times_the_weights_within_100_and_1000_gb(weights_gib: float, disk_gb: int) -> None:
    vs = with_sizing(load_stack("dev", ROOT), weights_bytes=int(weights_gib * GIB))
    config = image_build_config(vs.config.serving, vs.plan, image="r/i:t")
    assert config.disk_gb == disk_gb
    assert config.to_dict()["options"] == {
        "machineType": "E2_HIGHCPU_32",
        "diskSizeGb": disk_gb,
        "logging": "CLOUD_LOGGING_ONLY",
    }


def test_a_plain_bag_becomes_the_same_typed_config() -> None:
    bag: dict[str, Any] = {
        "steps": [{"id": "build-image", "name": "gcr.io/cloud-builders/docker", "args": ["build", "."]}],
        "images": ["r/i:t"],
        "disk_gb": 200,
    }
    typed = BuildConfig([BuildStep("build-image", "gcr.io/cloud-builders/docker", ["build", "."])], ["r/i:t"], 200)
    assert BuildConfig.of(bag) == typed
    assert BuildConfig.of(typed) is typed
    assert BuildConfig.of(bag).to_dict() == {
        "steps": [{"id": "build-image", "name": "gcr.io/cloud-builders/docker", "args": ["build", "."]}],
        "images": ["r/i:t"],
        "options": {"diskSizeGb": 200, "logging": "CLOUD_LOGGING_ONLY"},
        "timeout": "7200s",
    }


def test_a_build_config_is_frozen() -> None:
    config = BuildConfig([], ["r/i:t"])
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'images'"):
        config.images = []  # type: ignore[misc]


def test_only_llama_cpps_prompt_cache_bakes_the_engine_flags_into_the_image() -> None:
    """The prompt-cache stage runs llama-server with the service's flags at build time (R2), so with it a flag change
    is a new image; without it the flags are the revision's run-time settings and the image stays."""
    from cloudrun_gpu.build.image import bakes_engine_flags

    from .test_build import flat_config, validated

    cached = validated(flat_config("dev", engine={"prompt_cache": True}))
    assert cached.config.serving.engine.name == "llama.cpp" and bakes_engine_flags(cached.config.serving)
    more = [*cached.plan.sizing.engine_args, "--threads", "4"]
    assert tag(with_sizing(cached, engine_args=more)) != tag(cached)
    plain = load_stack("dev", ROOT)
    assert not bakes_engine_flags(plain.config.serving)
    assert tag(with_sizing(plain, engine_args=[*plain.plan.sizing.engine_args, "--threads", "4"])) == tag(plain)


@pytest.mark.parametrize("method", ["internet", "gcs-fuse", "gcs-download", "image"])
def test_only_the_image_method_stages_the_model_into_the_build(method: str) -> None:
    """A model read at run time (from the internet, a FUSE mount or a download at start) is not copied into the
    image: its build is the ``docker build`` alone. ``internet`` sorts after ``image``, ``gcs-*`` before it."""
    from .test_container import stack_for

    vs = stack_for("llama.cpp", method)
    steps = image_build_config(vs.config.serving, vs.plan, image="r/i:t").steps
    staged = ["stage-model", "pin-timestamps"] if method == "image" else []
    assert [s.id for s in steps] == [*staged, "build-image"]
    assert steps[-1].args[steps[-1].args.index("--build-arg") + 1] == f"WITH_GCLOUD={int(method == 'gcs-download')}"


def test_the_build_configs_options_are_keywords_and_its_inputs_may_be_named() -> None:
    """``image``, ``upstream_cache``, ``bucket`` and ``context`` are keyword-only (two strings and a path are easy to
    swap by position); the serving bundle and its plan may be passed by name too."""
    vs = load_stack("dev", ROOT)
    named = image_build_config(serving=vs.config.serving, plan=vs.plan, image="r/i:t")
    assert named == image_build_config(vs.config.serving, vs.plan, image="r/i:t")
    with pytest.raises(TypeError, match=r"takes 2 positional arguments but 3 were given"):
        image_build_config(vs.config.serving, vs.plan, "r/i:t")  # type: ignore[call-arg]

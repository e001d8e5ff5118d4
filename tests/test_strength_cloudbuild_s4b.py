"""Issue 23, session 4 on ``stack/cloudbuild.py``, second sample (seed 81): what its survivors showed no test read —
the staging build's disk for large models, Ollama's ``create`` script whole, the cache image tag's dependence on
its base image, and the staging trigger's form."""

from __future__ import annotations

import dataclasses
import re

import pytest
from cloudrun_gpu.limits import GIB

import stack.cloudbuild as cb
from tests.test_build import flat_config, staged, validated


@pytest.mark.parametrize(
    ("weights_bytes", "disk_gb"),
    [
        (2 * GIB, 100),  # the floor: a small model still gets Cloud Build's default-size disk
        (40 * GIB + 1, 161),  # four times the weights, rounded up (160 GiB and one byte's share)
        (30 * GIB, 120),
        (300 * GIB, 1000),  # capped at Cloud Build's maximum disk, 1000 GB
    ],
)
def test_the_staging_disk_holds_four_times_the_weights_within_cloud_builds_bounds(
    weights_bytes: int, disk_gb: int
) -> None:
    """The staging build downloads the weights, and the layouts that convert them need room for copies: the disk is
    4 × the weights in GB, rounded up, at least 100 and at most Cloud Build's 1000 GB (BuildOptions.diskSizeGb)."""
    vs = validated(flat_config("prod"))
    sizing = dataclasses.replace(vs.sizing, weights_bytes=weights_bytes)
    vs = dataclasses.replace(vs, plan=dataclasses.replace(vs.plan, sizing=sizing))
    assert cb.staging_config(vs, token=False, trigger="t")["options"]["diskSizeGb"] == disk_gb


def test_ollamas_create_step_runs_its_own_server_and_builds_the_store_from_the_gguf() -> None:
    """Ollama's store (manifests/ and blobs/) is made by ``ollama create`` against a server started in the step
    (its log kept out of the build's), waited for up to two minutes, from a Modelfile naming the staged .gguf.
    ``$$`` is Cloud Build's escape for a literal ``$`` (https://cloud.google.com/build/docs/configuring-builds/
    substitute-variable-values#using_user-defined_substitutions)."""
    steps = cb.staging_config(staged("ollama", "gcs-fuse"), token=False, trigger="t")["steps"]
    [create] = [s for s in steps if s["id"] == "ollama-create"]
    assert create["env"] == ["OLLAMA_MODELS=/workspace/store"]
    assert create["args"] == [
        "-c",
        "ollama serve >/tmp/ollama.log 2>&1 & for i in $$(seq 120); do ollama list >/dev/null 2>&1 && break; "
        "sleep 1; done; cd /workspace/model && printf 'FROM ./%s\\n' \"$$(ls *.gguf)\" > Modelfile && "
        "ollama create llama-3.2-3b-instruct-q4_k_m.gguf -f Modelfile",
    ]


def test_a_new_cache_base_image_is_a_new_cache_image_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache image's tag covers its Python base as well as its files: a new base pin must be a new immutable
    tag (and a new revision), not a rebuild pushed over the old tag."""
    vs = validated(flat_config("prod"))
    before = cb.cache_image_uri(vs)
    monkeypatch.setattr(cb, "CACHE_PYTHON_IMAGE", "python:3.11.14-slim-bookworm")
    after = cb.cache_image_uri(vs)
    assert before.rsplit(":", 1)[0] == after.rsplit(":", 1)[0] and before != after


def test_the_staging_trigger_is_16_hex_digits() -> None:
    """The trigger is what the marker object holds and what ``pulumi up`` compares (``triggers``): a 64-bit
    prefix of the SHA-256 of the staging inputs."""
    trigger = cb.staging_trigger(validated(flat_config("dev")), token=False)
    assert re.fullmatch(r"[0-9a-f]{16}", trigger), trigger


def test_only_an_ollama_stacks_staging_follows_the_ollama_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ollama's ``create`` runs in the pinned Ollama image, so a new Ollama pin re-stages an Ollama stack's store;
    a vLLM or llama.cpp stack's staging (seed 91: a vLLM stack) does not use that image and must not re-stage."""
    from cloudrun_gpu.images import EngineImage, pinned_image

    ollama, vllm = staged("ollama", "gcs-fuse"), validated(flat_config("prod"))
    before = (cb.staging_trigger(ollama, token=False), cb.staging_trigger(vllm, token=False))
    real = pinned_image

    def repinned(engine: str, gpu: str) -> EngineImage:
        pin = real(engine, gpu)
        return dataclasses.replace(pin, reference=pin.reference + "-next") if engine == "ollama" else pin

    monkeypatch.setattr(cb, "pinned_image", repinned)
    assert cb.staging_trigger(ollama, token=False) != before[0]
    assert cb.staging_trigger(vllm, token=False) == before[1]


def test_the_cache_image_tag_is_12_hex_digits() -> None:
    """``<registry>/llm-cache:<12 hex digits>``: a 48-bit prefix of the hash of its files and base."""
    uri = cb.cache_image_uri(validated(flat_config("prod")))
    assert re.fullmatch(r"[0-9a-f]{12}", uri.rsplit(":", 1)[1]), uri

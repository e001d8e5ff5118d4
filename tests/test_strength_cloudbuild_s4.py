"""Issue 23, session 4 on ``stack/cloudbuild.py``: what the seed-71 mutation sample showed no listed test read —
the staging trigger's dependence on the hub token and the pinned hub client, the hub fetch step whole, and the
cache image's build."""

from __future__ import annotations

import pytest

import stack.cloudbuild as cb
from tests.test_build import LAYOUTS, SOURCES, flat_config, staged, validated, with_model


def test_a_new_pin_of_the_hub_client_restages_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The staging build downloads with the pinned ``huggingface_hub`` (``HF_HUB``); a new pin may lay the files out
    differently, so the staging trigger (what ``pulumi up`` compares to decide on re-staging) changes with it."""
    vs = validated(flat_config("prod"))
    base = cb.staging_trigger(vs, token=False)
    monkeypatch.setattr(cb, "HF_HUB", "huggingface_hub==0.37.0")
    assert cb.staging_trigger(vs, token=False) != base


def test_setting_or_removing_the_hub_token_reruns_the_staging() -> None:
    """The token is part of what the staging trigger covers, as it is part of the staging build (the fetch step
    gains the Secret Manager secret, ``test_the_hub_fetch_step_downloads_the_pinned_revision_without_telemetry``):
    a token set or removed replaces the staging command (``triggers``) and the marker no longer matches, so the
    model is fetched again under the new access, not skipped as already staged."""
    vs = with_model(validated(flat_config("prod")), source=SOURCES["prod"]["source"])
    assert cb.staging_trigger(vs, token=True) != cb.staging_trigger(vs, token=False)


def test_the_hub_fetch_step_downloads_the_pinned_revision_without_telemetry() -> None:
    """The fetch step of a ``hf://`` source, whole: the pinned client, the pinned revision, the chosen files, no
    pickles, telemetry off (``HF_HUB_DISABLE_TELEMETRY``,
    https://huggingface.co/docs/huggingface_hub/package_reference/environment_variables), and the token from
    Secret Manager in this step's environment only."""
    vs = with_model(validated(flat_config("prod")), source=SOURCES["prod"]["source"])
    [fetch, *_] = cb.staging_config(vs, token=True, trigger="t")["steps"]
    revision = SOURCES["prod"]["source"].rsplit("@", 1)[1]
    assert fetch == {
        "id": "fetch",
        "name": "europe-west4-docker.pkg.dev/my-project/llm-serving-docker-hub/library/python:3.12-slim",
        "entrypoint": "bash",
        "args": [
            "-c",
            "pip install --quiet --no-cache-dir huggingface_hub==0.36.0"
            " && hf download gaunernst/gemma-3-27b-it-int4-awq"
            f" --revision {revision} --include '*.json' '*.safetensors' tokenizer.model"
            " --exclude '*.bin' '*.pt' '*.pth' '*.pkl' '*.ckpt' --local-dir /workspace/model",
        ],
        "env": ["HF_HUB_DISABLE_TELEMETRY=1"],
        "secretEnv": ["HF_TOKEN"],
    }
    [plain, *_] = cb.staging_config(vs, token=False, trigger="t")["steps"]
    assert "secretEnv" not in plain and plain["env"] == ["HF_HUB_DISABLE_TELEMETRY=1"]


def test_the_cache_image_build_with_buildkit_and_a_half_hour_limit() -> None:
    """The response cache's CPU image: one ``docker build`` of ``container/cache`` with BuildKit, the Python base
    straight from Docker Hub, pushed by ``images``, logs to Cloud Logging only, and 30 minutes (a pip install needs
    no more; BuildConfig's default is 2 hours)."""
    vs = validated(flat_config("prod"))
    uri = cb.cache_image_uri(vs)
    assert uri.startswith("europe-west4-docker.pkg.dev/my-project/llm-serving/llm-cache:")
    assert cb.cache_build_config(vs).to_dict() == {
        "steps": [
            {
                "id": "build-cache-image",
                "name": "gcr.io/cloud-builders/docker",
                "args": [
                    "build",
                    "-f",
                    "container/cache/Dockerfile",
                    "-t",
                    uri,
                    "--build-arg",
                    "PYTHON_IMAGE=docker.io/library/python:3.11.13-slim-bookworm",
                    "container/cache",
                ],
                "env": ["DOCKER_BUILDKIT=1"],
            }
        ],
        "images": [uri],
        "options": {"logging": "CLOUD_LOGGING_ONLY"},
        "timeout": "1800s",
    }


def test_submit_fills_only_the_bucket_substitution(monkeypatch: pytest.MonkeyPatch) -> None:
    """``gcloud builds submit --substitutions`` gets the bucket for ``_MODEL_BUCKET`` and an empty value for any
    other substitution the config uses (MUST_MATCH refuses a config whose substitutions are not all given)."""
    vs = validated(flat_config("dev"))
    used = {"_AAA": "set-me", "_MODEL_BUCKET": "set-me", "_ZZZ": "set-me"}
    monkeypatch.setattr(cb, "cloudbuild_config", lambda vs, bucket="${_MODEL_BUCKET}": {"substitutions": used})
    assert cb.submit_command(vs, bucket="my-bucket") == [
        *("gcloud", "builds", "submit", "--config", "/tmp/cloudbuild.yaml"),
        *("--substitutions", "_AAA=,_MODEL_BUCKET=my-bucket,_ZZZ=", "."),
    ]


@pytest.mark.parametrize(("engine", "method"), LAYOUTS)
def test_every_staging_step_names_the_image_it_runs_in(engine: str, method: str) -> None:
    """Cloud Build requires each step's ``name``, the container image it runs
    (https://cloud.google.com/build/docs/build-config-file-schema#name): the fetch in the pinned Python image
    through the registry's Docker Hub cache, the one-.gguf check in ``bash``, the upload and the marker in the Cloud
    SDK image, Ollama's ``create`` in the pinned Ollama image."""
    steps = cb.staging_config(staged(engine, method), token=False, trigger="t")["steps"]
    hub = "europe-west4-docker.pkg.dev/my-project/llm-serving-docker-hub"
    sdk = "gcr.io/google.com/cloudsdktool/cloud-sdk:slim"
    create = [("ollama-create", f"{hub}/ollama/ollama:0.12.3", "bash")] if method == "gcs-fuse" else []
    assert [(s["id"], s["name"], s.get("entrypoint")) for s in steps] == [
        ("fetch", f"{hub}/library/python:3.12-slim", "bash"),
        ("one-gguf", "bash", None),
        *(create if engine == "ollama" else []),
        ("upload", sdk, "gcloud"),
        ("mark-staged", sdk, "bash"),
    ]

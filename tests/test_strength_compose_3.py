"""Issue 23, third pass on ``stack/compose.py``: what the seed-51 mutation sample showed no listed test read.

Each test runs the real program as ``pulumi up`` would, under the project's recording mocks, and asserts the
registered resources' inputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from stack.render import Recorded
from tests.conftest import stack_flat
from tests.test_validation_first import deployable, up

BUCKET_IAM = "gcp:storage/bucketIAMMember:BucketIAMMember"
COMMAND = "command:local:Command"
BUILD = "serviceAccount:llm-build@my-project-123.iam.gserviceaccount.com"
DEV_BUILD = "serviceAccount:llm-dev-build@my-project-123.iam.gserviceaccount.com"
DEV_BUCKET = "llm-dev-models-5eed1e55"  # the mocks' bucket name (tests/test_build.py's DEV_BUCKET)
HUB = "hf://bartowski/Llama-3.2-3B-Instruct-GGUF@" + "a" * 40


def bucket_bindings(resources: list[Recorded]) -> dict[str, tuple[str, str, str]]:
    return {
        r.name: (r.inputs["member"], r.inputs["bucket"], r.inputs["role"]) for r in resources if r.type == BUCKET_IAM
    }


def test_a_gs_model_source_is_readable_by_the_staging_build_and_only_by_it() -> None:
    """A ``gs://`` source is copied into the stack's bucket by the staging build (Cloud Build, as the build
    account): without read access on the source bucket the build fails with 403 on its first ``gcloud storage
    rsync``. The build account gets ``roles/storage.objectViewer`` on that bucket, and nobody else does."""
    model = json.loads(stack_flat("prod")["cloudrun-gpu:model"])
    flat = deployable("prod", model={**model, "source": "gs://their-models/gemma/awq", "files": []})
    resources, error = up("prod", flat)
    assert error is None
    bindings = bucket_bindings(resources)
    assert bindings["llm-build-read-source"] == (BUILD, "their-models", "roles/storage.objectViewer")
    assert [name for name, (_, bucket, _) in bindings.items() if bucket == "their-models"] == ["llm-build-read-source"]
    # a Hugging Face source reads no bucket of the user's
    hub = "hf://RedHatAI/gemma-3-27b-it-quantized.w4a16@" + "a" * 40
    resources, error = up("prod", deployable("prod", model={**model, "source": hub, "files": []}))
    assert error is None and "llm-build-read-source" not in bucket_bindings(resources)


def dev_with_source(source: str | None) -> list[Recorded]:
    model = json.loads(stack_flat("dev")["cloudrun-gpu:model"])
    flat = deployable("dev", model={**model, "source": source, "files": []})
    resources, error = up("dev", flat)
    assert error is None
    return resources


def staging_command(resources: list[Recorded]) -> dict[str, object]:
    (cmd,) = [r.inputs for r in resources if r.type == COMMAND and r.name == "llm-dev-model-submit"]
    return cmd


def test_the_build_account_may_write_the_bucket_only_when_it_stages_the_model(tmp_path: Path) -> None:
    """The staging build writes the model into the stack's bucket (``roles/storage.objectUser``); a stack without a
    source only reads it (the image build's ``objectViewer``): least privilege, and staging cannot fail on 403."""
    (tmp_path / "m-Q4_K_M.gguf").write_bytes(b"GGUF-a")
    for source in (str(tmp_path), HUB):
        bindings = bucket_bindings(dev_with_source(source))
        assert bindings["llm-dev-build-bucket"] == (DEV_BUILD, DEV_BUCKET, "roles/storage.objectUser"), source
    bindings = bucket_bindings(dev_with_source(None))
    assert bindings["llm-dev-build-bucket"] == (DEV_BUILD, DEV_BUCKET, "roles/storage.objectViewer")


def test_a_local_source_is_uploaded_through_the_buckets_staging_folder_and_a_hub_source_is_not(
    tmp_path: Path,
) -> None:
    """A local model is sent to Cloud Build as a source archive under the bucket's staging folder; a hub source is
    fetched by the build itself (``--no-source``), so its command carries no local upload settings at all."""
    (tmp_path / "m-Q4_K_M.gguf").write_bytes(b"GGUF-a")
    env = staging_command(dev_with_source(str(tmp_path)))["environment"]
    assert isinstance(env, dict)
    assert (env["SOURCE_ROOT"], env["SOURCE_FILES"], env["SOURCE_STAGING_DIR"]) == (
        str(tmp_path),
        "m-Q4_K_M.gguf",
        f"gs://{DEV_BUCKET}/.cloudrun-gpu/source",
    )
    env = staging_command(dev_with_source(HUB))["environment"]
    assert isinstance(env, dict)
    assert not {"SOURCE_ROOT", "SOURCE_FILES", "SOURCE_STAGING_DIR"} & set(env)


def test_pulumi_up_restages_a_local_model_when_its_bytes_change_not_its_times(tmp_path: Path) -> None:
    """The staging command's trigger follows the chosen files' content (issue 19): new bytes of the same size
    restage on the next ``pulumi up``; a touched file (a fresh clone) does not."""
    weights = tmp_path / "m-Q4_K_M.gguf"
    weights.write_bytes(b"GGUF-a")
    first = staging_command(dev_with_source(str(tmp_path)))["triggers"]
    os.utime(weights, (1, 1))
    assert staging_command(dev_with_source(str(tmp_path)))["triggers"] == first
    weights.write_bytes(b"GGUF-b")
    changed = staging_command(dev_with_source(str(tmp_path)))["triggers"]
    assert changed != first and isinstance(changed, list) and len(changed) == 1

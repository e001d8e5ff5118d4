"""Issue 23, session 6 on ``stack/cloudbuild.py`` (seed 171's survivors): the vLLM staging build's model-directory
check runs in a named image, and the staging build runs on the machine type the stack sizes it for.
"""

from __future__ import annotations

from cloudrun_gpu import limits

import stack.cloudbuild as cb
from tests.test_build import flat_config, validated


def test_the_vllm_staging_checks_the_model_directory_in_bash_before_uploading() -> None:
    """Cloud Build requires each step's ``name``, the image it runs in
    (https://cloud.google.com/build/docs/build-config-file-schema#name): a vLLM staging without it would be refused
    at submit; the check runs in Docker Hub's ``bash`` and stops the build, before the upload, on a folder without
    ``config.json``."""
    config = cb.staging_config(validated(flat_config("prod")), token=False, trigger="t")
    check = config["steps"][1]
    assert (check["id"], check["name"], check["args"][0]) == ("model-directory", "bash", "-c")
    assert check["args"][1].startswith("test -f /workspace/model/config.json || {")
    assert [s["id"] for s in config["steps"]].index("upload") > 1
    assert all(s.get("name") for s in config["steps"])


def test_the_staging_build_runs_on_the_machine_the_stack_sizes_it_for() -> None:
    """The staging build asks for the stack's machine type (``limits.CLOUD_BUILD_MACHINE``), not Cloud Build's default
    (https://cloud.google.com/build/docs/build-config-file-schema#machinetype), with its sized disk and Cloud Logging
    only."""
    for stack in ("dev", "prod"):
        options = cb.staging_config(validated(flat_config(stack)), token=False, trigger="t")["options"]
        assert options["machineType"] == limits.CLOUD_BUILD_MACHINE
        assert set(options) == {"machineType", "diskSizeGb", "logging"}
        assert options["logging"] == "CLOUD_LOGGING_ONLY"


def test_an_unchanged_staging_keeps_its_trigger_across_releases() -> None:
    """The trigger is written to the staging marker and kept in the stack's state: ``pulumi up`` re-runs the
    staging (a download and upload of the whole model) when it changes. A release that computed it differently for
    the same stack (key order, encoding) would re-stage every stack on upgrade, so its values are pinned: a change
    here is a deliberate re-staging, to be said in the release notes. Written after seed 181 (it counts on the next
    fresh seed)."""
    vs = validated(flat_config("dev"))
    assert cb.staging_trigger(vs, token=False) == "90e035c52815c52e"
    assert cb.staging_trigger(vs, token=True) == "697ea2de06fa9c60"


def test_the_image_build_stages_from_the_bucket_it_is_given() -> None:
    """``cloudbuild_config(vs, bucket)`` (and ``image_build_config``) read the model from the named bucket; the
    default is the ``${_MODEL_BUCKET}`` substitution the submit command fills. Written after seed 181."""
    vs = validated(flat_config("prod", loading={"method": "image"}))
    stage = cb.cloudbuild_config(vs, "my-bucket")["steps"][0]
    assert stage["args"][:4] == ["storage", "rsync", "--recursive", "gs://my-bucket/models/gemma-3-27b-it-awq"]
    default = cb.cloudbuild_config(vs)["steps"][0]
    assert default["args"][3] == "gs://${_MODEL_BUCKET}/models/gemma-3-27b-it-awq"

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

"""Model storage and delivery: bucket, registry, IAM, the four loading methods, images and Cloud Build."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from cloudrun_gpu.bucket import BucketSettings, ModelBucket, ModelBucketArgs
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.loading import GCS_FUSE_MOUNT_OPTIONS, model_delivery
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs, RegistrySettings, RemoteCache

from stack.cloudbuild import cloudbuild_config, image_uri
from stack.config import load_stack, parse_config, validate

from .conftest import ROOT, Rendered, parent_type, refused, render, the_error, urns

SA = "serviceAccount:llm-runtime@test-project.iam.gserviceaccount.com"
CI = "serviceAccount:ci@test-project.iam.gserviceaccount.com"
BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_IAM = "gcp:storage/bucketIAMMember:BucketIAMMember"
REPO = "gcp:artifactregistry/repository:Repository"
REPO_IAM = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"


def bucket(settings: Callable[[], BucketSettings], readers: dict[str, pulumi.Input[str]] | None = None) -> Rendered:
    return render(
        lambda: urns(
            *ModelBucket(
                "models",
                ModelBucketArgs(location="europe-west1", settings=settings(), reader_members=readers or {}),
            ).reader_bindings
        )
    )


def registry(settings: Callable[[], RegistrySettings], readers: dict[str, pulumi.Input[str]] | None = None) -> Rendered:
    return render(
        lambda: urns(
            *ModelRegistry(
                "reg", ModelRegistryArgs(location="europe-west1", settings=settings(), reader_members=readers or {})
            ).reader_bindings
        )
    )


def test_bucket_is_private_uniform_and_soft_deleting() -> None:
    r = bucket(lambda: BucketSettings(soft_delete_days=30, versioning=True), {"runtime": SA})
    b = r.one(BUCKET).inputs
    assert b["name"] == "llm-models-5eed1e55"  # stable random suffix (pulumi_random)
    assert b["location"] == "europe-west1"
    assert b["uniformBucketLevelAccess"] is True
    assert b["publicAccessPrevention"] == "enforced"
    assert b["softDeletePolicy"] == {"retentionDurationSeconds": 30 * 86_400}
    assert b["versioning"] == {"enabled": True}
    assert b["lifecycleRules"][0]["condition"] == {"daysSinceNoncurrentTime": 30}
    assert b["forceDestroy"] is False  # the default: never delete a model with the stack
    assert r.one("random:index/randomId:RandomId").inputs["byteLength"] == 4
    iam = r.one(BUCKET_IAM, "models-reader-runtime").inputs
    assert iam == {"bucket": "llm-models-5eed1e55", "role": "roles/storage.objectViewer", "member": SA}
    assert r.value and all(parent_type(u).startswith("cloudrun-gpu:index:ModelBucket$") for u in r.value)


def test_bucket_defaults_and_soft_delete_off() -> None:
    r = bucket(lambda: BucketSettings(name_prefix="team-weights", soft_delete_days=0, force_destroy=True))
    b = r.one(BUCKET).inputs
    assert b["name"] == "team-weights-5eed1e55"
    assert b["softDeletePolicy"] == {"retentionDurationSeconds": 0}
    assert b["versioning"] == {"enabled": False}
    assert "lifecycleRules" not in b  # no noncurrent copies to expire
    assert b["forceDestroy"] is True
    assert not r.of_type(BUCKET_IAM)  # no reader unless one is named


def test_registry_cleanup_remote_caches_and_reader_iam() -> None:
    r = registry(lambda: RegistrySettings(keep_versions=3), {"runtime": SA})
    repos = {x.inputs["repositoryId"]: x.inputs for x in r.of_type(REPO)}
    assert set(repos) == {"llm-serving", "llm-serving-docker-hub", "llm-serving-ghcr"}
    main = repos["llm-serving"]
    assert main["format"] == "DOCKER" and main["mode"] == "STANDARD_REPOSITORY"
    assert main["dockerConfig"] == {"immutableTags": True}
    assert main["cleanupPolicyDryRun"] is False
    assert main["cleanupPolicies"] == [
        {"id": "keep-recent", "action": "KEEP", "mostRecentVersions": {"keepCount": 3}},
        {"id": "delete-untagged", "action": "DELETE", "condition": {"tagState": "UNTAGGED", "olderThan": "7d"}},
        # Issue 19: tagged images expire too (ANY: tagged or not), the newest keep_versions kept by keep-recent.
        {"id": "delete-old", "action": "DELETE", "condition": {"tagState": "ANY", "olderThan": "30d"}},
    ]
    hub = repos["llm-serving-docker-hub"]
    assert hub["mode"] == "REMOTE_REPOSITORY"
    assert hub["remoteRepositoryConfig"]["dockerRepository"] == {"publicRepository": "DOCKER_HUB"}
    ghcr = repos["llm-serving-ghcr"]
    assert ghcr["remoteRepositoryConfig"]["commonRepository"] == {"uri": "https://ghcr.io"}
    bindings = r.of_type(REPO_IAM)
    assert {(b.inputs["repository"], b.inputs["role"], b.inputs["member"]) for b in bindings} == {
        (repo, "roles/artifactregistry.reader", SA) for repo in repos
    }
    assert all(b.inputs["location"] == "europe-west1" for b in bindings)
    assert {b.name for b in bindings} == {
        "reg-docker-reader-runtime",
        "reg-docker-hub-reader-runtime",
        "reg-ghcr-reader-runtime",
    }
    assert len(r.value) == 3 and all(parent_type(u).startswith("cloudrun-gpu:index:ModelRegistry$") for u in r.value)


def test_registry_without_remote_caches() -> None:
    r = render(
        lambda: (
            ModelRegistry(
                "reg", ModelRegistryArgs(location="us-central1", settings=RegistrySettings(remote_caches=[]))
            ).registry_uri
        )
    )
    assert len(r.of_type(REPO)) == 1
    assert r.value == "us-central1-docker.pkg.dev/test-project/llm-serving"


def test_removing_a_bucket_reader_keeps_the_other_binding() -> None:
    both = bucket(BucketSettings, {"runtime": SA, "ci": CI})
    assert {b.name: b.inputs["member"] for b in both.of_type(BUCKET_IAM)} == {
        "models-reader-runtime": SA,
        "models-reader-ci": CI,
    }
    one = bucket(BucketSettings, {"ci": CI})
    (kept,) = one.of_type(BUCKET_IAM)
    assert kept.name == "models-reader-ci"  # same logical name: no replace, no access gap
    assert kept.inputs == both.one(BUCKET_IAM, "models-reader-ci").inputs


def test_removing_a_registry_reader_keeps_the_other_bindings() -> None:
    both = registry(RegistrySettings, {"runtime": SA, "ci": CI})
    assert len(both.of_type(REPO_IAM)) == 6
    one = registry(RegistrySettings, {"ci": CI})
    kept = {b.name: b.inputs for b in one.of_type(REPO_IAM)}
    assert set(kept) == {"reg-docker-reader-ci", "reg-docker-hub-reader-ci", "reg-ghcr-reader-ci"}
    for name, inputs in kept.items():
        assert inputs == both.one(REPO_IAM, name).inputs
        assert inputs["member"] == CI


# --- settings validation: named field, the value, a fix; nothing registered --------------------


def test_soft_delete_between_one_and_six_days_is_refused() -> None:
    errors = refused(lambda: ModelBucket("models", ModelBucketArgs("europe-west1", BucketSettings(soft_delete_days=3))))
    err = the_error(errors, "BucketSettings.soft_delete_days")
    assert err.value == 3
    assert err.fix == "set 0 (off) or 7..90"
    assert err.allowed == "0, 7..90"


@pytest.mark.parametrize("days", [0, 7, 90])
def test_soft_delete_bounds_are_accepted(days: int) -> None:
    r = bucket(lambda: BucketSettings(soft_delete_days=days))
    assert r.one(BUCKET).inputs["softDeletePolicy"] == {"retentionDurationSeconds": days * 86_400}


def test_soft_delete_above_ninety_days_is_refused() -> None:
    errors = refused(lambda: BucketSettings(soft_delete_days=91))
    assert the_error(errors, "BucketSettings.soft_delete_days").value == 91


@pytest.mark.parametrize("prefix", ["goog-models", "googmodels", "my-google-models", "g00gle-llm", "llm-go0gle"])
def test_bucket_prefix_google_cannot_take_is_refused(prefix: str) -> None:
    # Cloud Storage: names cannot begin with "goog" nor contain "google" or close misspellings.
    errors = refused(lambda: ModelBucket("models", ModelBucketArgs("europe-west1", BucketSettings(name_prefix=prefix))))
    err = the_error(errors, "BucketSettings.name_prefix")
    assert err.value == prefix
    assert "llm-models" in err.fix


@pytest.mark.parametrize("prefix", ["llm-goog-cache", "models-goog"])
def test_bucket_prefix_with_goog_inside_is_accepted(prefix: str) -> None:
    # Only the *prefix* "goog" is reserved (https://cloud.google.com/storage/docs/buckets#naming);
    # "goog" later in the name, not spelling "google", is a valid bucket name.
    r = bucket(lambda: BucketSettings(name_prefix=prefix))
    assert r.one(BUCKET).inputs["name"] == f"{prefix}-5eed1e55"


def test_bucket_prefix_shape_is_checked() -> None:
    errors = refused(lambda: BucketSettings(name_prefix="Models_1"))
    err = the_error(errors, "BucketSettings.name_prefix")
    assert err.value == "Models_1" and err.fix.startswith("set BucketSettings.name_prefix to matching ")


def test_registry_id_shape_is_checked() -> None:
    errors = refused(
        lambda: ModelRegistry("reg", ModelRegistryArgs("europe-west1", RegistrySettings(repository_id="Bad_ID")))
    )
    err = the_error(errors, "RegistrySettings.repository_id")
    assert err.value == "Bad_ID"
    assert err.fix == "set RegistrySettings.repository_id to matching ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"


def test_registry_id_too_long_for_its_cache_ids_is_refused() -> None:
    repo_id = "a" * 53  # "<id>-docker-hub" is 64 characters
    errors = refused(
        lambda: ModelRegistry("reg", ModelRegistryArgs("europe-west1", RegistrySettings(repository_id=repo_id)))
    )
    err = the_error(errors, "RegistrySettings.repository_id")
    assert err.value == repo_id
    assert f"{repo_id}-docker-hub" in err.problem
    assert err.fix == "shorten repository_id to at most 52 characters"


def test_registry_id_that_just_fits_its_cache_ids_is_accepted() -> None:
    repo_id = "a" * 52
    r = registry(lambda: RegistrySettings(repository_id=repo_id))
    ids = {x.inputs["repositoryId"] for x in r.of_type(REPO)}
    assert f"{repo_id}-docker-hub" in ids and max(len(i) for i in ids) == 63
    # Without the docker-hub cache the id may be longer: only the caches created count.
    RegistrySettings(repository_id="a" * 57, remote_caches=[RemoteCache.GHCR])


def test_duplicate_remote_caches_are_refused() -> None:
    raw: dict[str, Any] = {"remote_caches": ["ghcr", "ghcr"]}
    errors = refused(lambda: ModelRegistry("reg", ModelRegistryArgs("europe-west1", RegistrySettings(**raw))))
    err = the_error(errors, "RegistrySettings.remote_caches.1")
    assert err.value == "ghcr"
    assert err.fix == "remove the duplicate"


def test_unknown_registry_cache_is_refused() -> None:
    raw: dict[str, Any] = {"remote_caches": ["dockerhub"]}
    errors = refused(lambda: RegistrySettings(**raw))
    err = the_error(errors, "RegistrySettings.remote_caches.0")
    assert err.value == "dockerhub" and err.fix == "did you mean 'docker-hub'?"


def test_input_bags_from_another_language_use_args_field_names() -> None:
    bag: Any = {"soft_delete_days": 3}
    errors = refused(lambda: ModelBucket("models", ModelBucketArgs("europe-west1", bag)))
    assert the_error(errors, "ModelBucketArgs.settings.soft_delete_days").value == 3
    bag = {"repository_id": "Bad_ID"}
    errors = refused(lambda: ModelRegistry("reg", ModelRegistryArgs("europe-west1", bag)))
    assert the_error(errors, "ModelRegistryArgs.settings.repository_id").value == "Bad_ID"


def test_image_method_mounts_nothing() -> None:
    d = model_delivery("image", mount_path="/models")
    assert (d.volumes, d.mounts, d.env) == ([], [], {})


def test_gcs_fuse_is_a_read_only_volume_with_documented_options() -> None:
    d = model_delivery("gcs-fuse", mount_path="/mnt/models", bucket="b", object_prefix="/models/llama/")
    assert d.volumes == [
        {
            "name": "model",
            "gcs": {
                "bucket": "b",
                "read_only": True,
                "mount_options": [
                    "implicit-dirs",
                    "only-dir=models/llama",
                    "metadata-cache-ttl-secs=-1",
                    "stat-cache-max-size-mb=-1",
                    "sequential-read-size-mb=1024",
                    "log-severity=warning",
                ],
            },
        }
    ]
    assert d.mounts == [{"name": "model", "mount_path": "/mnt/models"}]
    assert all(not o.startswith("-") for o in d.volumes[0]["gcs"]["mount_options"])  # Cloud Run: no dashes
    assert all(why for why in GCS_FUSE_MOUNT_OPTIONS.values())  # every option documented


def test_gcs_download_is_an_in_memory_volume_and_a_gs_uri() -> None:
    d = model_delivery("gcs-download", mount_path="/models-mem", bucket="b", object_prefix="models", in_memory_gib=6)
    assert d.volumes == [{"name": "model", "empty_dir": {"medium": "MEMORY", "size_limit": "6Gi"}}]
    assert d.env == {"MODEL_DOWNLOAD_URI": "gs://b/models/*", "MODEL_DIR": "/models-mem"}
    assert not d.needs_nat


def test_internet_needs_nat_and_warns() -> None:
    d = model_delivery("internet", mount_path="/models-mem", in_memory_gib=2, hub_url="https://hf.co/x/y.gguf")
    assert d.needs_nat and "bucket" in d.notes[0]
    assert d.env["MODEL_DOWNLOAD_URL"] == "https://hf.co/x/y.gguf"


BASE: dict[str, Any] = {
    "gcp:project": "my-project",
    "gcp:region": "europe-west1",
    "cloudrun-gpu:model": {"name": "llama-3.2-3b"},
}


@pytest.mark.parametrize(
    ("method", "volume_key", "mount"),
    [("gcs-fuse", "gcs", "/mnt/models"), ("gcs-download", "emptyDir", "/models-mem"), ("image", None, None)],
)
def test_service_gets_the_volume_and_mount_of_each_method(
    method: str, volume_key: str | None, mount: str | None
) -> None:
    from stack.compose import build_stack

    vs = validate(parse_config({**BASE, "cloudrun-gpu:loading": {"method": method}}))
    r = render(lambda: build_stack(vs)["url"])
    t = r.one("gcp:cloudrunv2/service:Service").inputs["template"]
    if volume_key is None:
        assert "volumes" not in t and "volumeMounts" not in t["containers"][0]
        runtime_iam = [b for b in r.of_type("gcp:storage/bucketIAMMember:BucketIAMMember") if "runtime" in b.name]
        assert not runtime_iam  # least privilege: the runtime identity gets no bucket access
        return
    assert volume_key in t["volumes"][0]
    assert t["containers"][0]["volumeMounts"] == [{"name": "model", "mountPath": mount}]
    assert t["containers"][0]["args"][t["containers"][0]["args"].index("-m") + 1].startswith(mount)
    (iam,) = [b.inputs for b in r.of_type("gcp:storage/bucketIAMMember:BucketIAMMember") if "runtime" in b.name]
    assert iam["role"] == "roles/storage.objectViewer" and iam["member"].endswith(
        "llm-runtime@my-project.iam.gserviceaccount.com"
    )
    if method == "gcs-download":
        limits = t["containers"][0]["resources"]["limits"]
        size_gib = int(t["volumes"][0]["emptyDir"]["sizeLimit"].removesuffix("Gi"))
        assert int(limits["memory"].removesuffix("Gi")) >= size_gib + 4  # memory covers the in-memory copy


def test_internet_without_nat_and_pickle_model_are_refused() -> None:
    with pytest.raises(ConfigErrors, match="Cloud NAT"):
        validate(
            parse_config(
                {
                    **BASE,
                    "cloudrun-gpu:loading": {"method": "internet"},
                    "cloudrun-gpu:network": {"nat": {"enabled": False}},
                }
            )
        )
    with pytest.raises(ConfigErrors, match="pickle"):
        validate(parse_config({**BASE, "cloudrun-gpu:model": {"name": "llama-3.2-3b", "file": "consolidated.pth"}}))


# --- build-time side ---------------------------------------------------------------------------

CONTAINER = ROOT / "container"


def dockerfile_stages(path: Path) -> list[tuple[str, list[str]]]:
    """(FROM line, instructions) per stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


@pytest.mark.parametrize("engine", ["llama.cpp", "ollama", "vllm"])
def test_dockerfile_stages_and_a_single_model_copy(engine: str) -> None:
    stages = dockerfile_stages(CONTAINER / engine / "Dockerfile")
    names = [re.search(r"\bAS (\S+)", f, re.IGNORECASE) for f, _ in stages]
    assert names[0] is not None and names[0].group(1) == "model"  # the model has a stage of its own
    _, final = stages[-1]
    assert names[-1] is None  # the runtime stage is the last, unnamed one
    model_copies = [i for i in final if i.startswith("COPY") and "--from=model" in i]
    assert len(model_copies) == 1 and model_copies[0].endswith("/models /models")  # one layer, same content (L3)
    assert not any(i.startswith("COPY") and "model/" in i.split()[-2:][0] for i in final)  # no other model copy
    assert any(i.startswith("ENTRYPOINT") for i in final)
    assert "ARG" in (CONTAINER / engine / "Dockerfile").read_text()  # base image pinned through an ARG
    for f, _ in stages:
        assert ":latest" not in f


def test_entrypoints_are_posix_shell_and_reference_what_the_images_copy() -> None:
    for script in (CONTAINER / "entrypoint.sh", CONTAINER / "ollama" / "entrypoint.sh"):
        text = script.read_text()
        assert text.startswith("#!/bin/sh") and "set -eu" in text
    assert "api/generate" in (CONTAINER / "ollama" / "entrypoint.sh").read_text()  # preloads before the port opens


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_generated_cloud_build_config_is_valid(stack: str) -> None:
    vs = load_stack(stack, ROOT)
    cfg = yaml.safe_load(yaml.safe_dump(cloudbuild_config(vs)))
    assert cfg["options"]["machineType"] == "E2_HIGHCPU_32"  # the seed's example (L3)
    assert 100 <= cfg["options"]["diskSizeGb"] <= 1000
    assert cfg["images"] == [image_uri(vs)]
    build = cfg["steps"][-1]
    assert build["name"] == "gcr.io/cloud-builders/docker"
    dockerfile = build["args"][build["args"].index("-f") + 1]
    assert (ROOT / dockerfile).is_file()
    assert build["args"][-1] == "container"
    ids = [s["id"] for s in cfg["steps"]]
    if vs.config.loading.method == "image":
        assert ids[:2] == ["stage-model", "pin-timestamps"]  # identical model layer across builds
    else:
        assert "stage-model" not in ids
    engine_args = [a for a in build["args"] if a.startswith("ENGINE_ARGS=")]
    if vs.config.engine.name == "llama.cpp" and vs.config.engine.prompt_cache:  # the cache stage runs the engine
        assert "-np" in engine_args[0] and "-ngl 0" in engine_args[0]
    else:  # otherwise the flags are no build input (issue 19 item 4)
        assert not engine_args


def test_stack_deploys_the_image_cloud_build_produces() -> None:
    from stack.compose import build_stack

    vs = load_stack("dev", ROOT)
    r = render(lambda: build_stack(vs)["image"])
    assert r.value == image_uri(vs)


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-7B-Instruct", "my model", "..x", "a" * 300, "/"])
def test_image_tags_from_any_model_name_are_valid(model: str) -> None:
    from cloudrun_gpu.build.image import TAG_PATTERN, tag_safe

    tag = f"{tag_safe(model)[:116]}-0123456789"
    assert TAG_PATTERN.fullmatch(tag), tag
    assert "/" not in tag and " " not in tag

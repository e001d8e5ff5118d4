"""Issue 10, items 1-4: the model is staged and the image built inside ``pulumi up``, by a least-privilege build
identity, in order (registry, bucket, identity and bindings → staging → build → service), and the service
deploys the built image by digest.

The real program (``__main__.py``) runs under mocks whose ``command:local:Command`` returns a ``stdout``, as
``pulumi up`` would see it; the build scripts themselves run for real against a fake ``gcloud``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import cloudrun_gpu.build.image as image_lib
import pulumi
import pytest
from cloudrun_gpu.build import (
    BUCKET_READ_ROLE,
    BUCKET_WRITE_ROLE,
    FAILED_BUILD_LOGS,
    LOG_ROLE,
    PULL_ROLE,
    PUSH_ROLE,
    SECRET_ROLE,
    build_account_id,
    parse_digest,
)
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.images import EngineImage, pinned_image
from cloudrun_gpu.sizing.settings import ModelSettings
from pulumi.runtime import MockResourceArgs, rpc

import stack.cloudbuild as cb
from stack.config import (
    PLAN_ONLY_ENV,
    PROJECT,
    ValidatedStack,
    parse_config,
    read_config,
    read_stack_file,
    stack_file,
    validate,
)
from stack.render import (
    Recorded,
    RecordingMocks,
    RecordingMonitor,
    _cwd,
    _env,
    _program_path,
    effective_dependencies,
    run_under_mocks,
)

from .conftest import ROOT

STACKS = ["dev", "staging", "prod"]
DIGEST = "sha256:" + "5e" * 32
TOKEN = "hf_s3cr3tT0kenValue"
MOCK_HEX = "5eed1e55"  # the mocks' RandomId hex
DEV_BUCKET = f"llm-dev-models-{MOCK_HEX}"  # issue 19: the prefix follows the service name (llm-dev)


def bucket_of(vs: Any) -> str:
    """The model bucket's name under mocks: the stack's prefix and the RandomId hex."""
    return f"{vs.config.bucket.name_prefix}-{MOCK_HEX}"


PROJECT_ID = "my-project"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SOURCES: dict[str, dict[str, Any]] = {
    # What each committed stack stages (recommended for Pulumi.<stack>.yaml; the commits are placeholders).
    "dev": {"source": f"hf://bartowski/Llama-3.2-3B-Instruct-GGUF@{COMMIT}", "files": ["*Q4_K_M.gguf"]},
    "staging": {"source": f"hf://bartowski/Meta-Llama-3.1-8B-Instruct-GGUF@{COMMIT}", "files": ["*Q4_K_M.gguf"]},
    "prod": {
        "source": f"hf://gaunernst/gemma-3-27b-it-int4-awq@{COMMIT}",
        "files": ["*.json", "*.safetensors", "tokenizer.model"],
    },
}
COMMAND = "command:local:Command"


class CommandMocks(RecordingMocks):
    """The recording mocks, plus what a finished ``local.Command`` reports: the image build prints the pushed
    digest, the staging prints its id."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        rid, out = super().new_resource(args)
        if args.typ == COMMAND:
            env = args.inputs.get("environment", {})
            out["stdout"] = f"{DIGEST}\n" if "IMAGE" in env else f"{env.get('STAGE_ID', '')}\n"
        return rid, out


def flat_config(stack: str, model: dict[str, Any] | None = None, **sections: dict[str, Any]) -> dict[str, str]:
    """The committed stack as Pulumi hands it to the program, with a project, an invoker (of the service, and of
    the cache where the stack has one), the stack's model source
    and any section overrides (merged into the section)."""
    flat = dict(read_stack_file(stack_file(stack, ROOT)))
    flat["gcp:project"] = PROJECT_ID
    changes = {"model": {**SOURCES[stack], **(model or {})}, "service": {"invokers": ["user:me@example.com"]}}
    if f"{PROJECT}:cache" in flat:  # the response cache has callers of its own (pulumi up requires them)
        changes["cache"] = {"invokers": ["user:me@example.com"]}
    for name, extra in sections.items():
        changes[name] = {**changes.get(name, {}), **extra}
    for name, extra in changes.items():
        key = f"{PROJECT}:{name}"
        flat[key] = json.dumps({**json.loads(flat.get(key, "{}")), **extra})
    return flat


def gpu_services(res: list[Recorded]) -> list[Recorded]:
    """The GPU Cloud Run services (a stack with the response cache also has the cache's CPU service)."""
    return [r for r in res if r.type == "gcp:cloudrunv2/service:Service" and "nodeSelector" in r.inputs["template"]]


def validated(flat: dict[str, str]) -> ValidatedStack:
    return read_config(flat, base_dir=ROOT)


def deploy(stack: str, flat: dict[str, str], secret_keys: list[str] | None = None) -> list[Recorded]:
    """Run ``__main__.py`` as ``pulumi up`` would (not plan-only) under :class:`CommandMocks`."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.settings.ROOT.set(None)
    mocks = CommandMocks(gcp_project=PROJECT_ID)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(flat, secret_keys or [])
    program = ROOT / "__main__.py"
    with _cwd(ROOT), _program_path(ROOT), _env(PLAN_ONLY_ENV, None):
        run_under_mocks(lambda: runpy.run_path(str(program), run_name="__main__"))
    return mocks.resources


def one(resources: list[Recorded], typ: str, name: str) -> Recorded:
    found = [r for r in resources if r.type == typ and r.name == name]
    assert len(found) == 1, f"{typ} {name}: {[r.name for r in resources if r.type == typ]}"
    return found[0]


def names(resources: list[Recorded], typ: str) -> list[str]:
    return sorted(r.name for r in resources if r.type == typ)


# --- the exact commands ------------------------------------------------------------------------------------

IMAGE_CREATE = """set -eu
if gcloud artifacts docker images describe "$IMAGE" >/dev/null 2>&1; then
  echo 'up to date: no build' >&2
else
  src=$(mktemp -d)
  trap 'rm -rf "$src" "$src.json" "$src.out" "$src.rc"' EXIT
  printf '%s' "$CLOUDBUILD_CONFIG" > "$src.json"
  printf '%s\\n' "$SOURCE_FILES" | tar -C "$SOURCE_ROOT" -cf - -T - | tar -xf - -C "$src"
  { gcloud builds submit "$src" --gcs-source-staging-dir="$SOURCE_STAGING_DIR" --config="$src.json" \
--service-account="$BUILD_SERVICE_ACCOUNT"{subs} 2>&1 && echo 0 > "$src.rc" || echo $? > "$src.rc"; } \
| tee "$src.out" 1>&2
{failed_logs}fi
gcloud artifacts docker images describe "$IMAGE" --format='value(image_summary.digest)'
"""
STAGING_CREATE = """set -eu
if [ "$(gcloud storage cat "$MARKER" 2>/dev/null || true)" = "$STAGE_ID" ]; then
  echo 'up to date: no build' >&2
else
  src=$(mktemp -d)
  trap 'rm -rf "$src" "$src.json" "$src.out" "$src.rc"' EXIT
  printf '%s' "$CLOUDBUILD_CONFIG" > "$src.json"
  { gcloud builds submit --no-source --config="$src.json" --service-account="$BUILD_SERVICE_ACCOUNT" \
--substitutions="_MODEL_BUCKET=${CB_MODEL_BUCKET}" 2>&1 && echo 0 > "$src.rc" || echo $? > "$src.rc"; } \
| tee "$src.out" 1>&2
{failed_logs}fi
printf '%s\\n' "$STAGE_ID"
"""
SUBS = ' --substitutions="_MODEL_BUCKET=${CB_MODEL_BUCKET}"'


@pytest.mark.parametrize("stack", STACKS)
def test_build_and_staging_commands_exactly(stack: str) -> None:
    flat = flat_config(stack)
    vs = validated(flat)
    res = deploy(stack, flat)
    svc = vs.config.service.name
    sa = f"projects/{PROJECT_ID}/serviceAccounts/{build_account_id(svc)}@{PROJECT_ID}.iam.gserviceaccount.com"
    cache = [f"{svc}-cache-image-submit"] if vs.config.cache is not None else []  # S1's own image (test_cache_stack.py)
    assert names(res, COMMAND) == sorted([f"{svc}-image-submit", f"{svc}-model-submit", f"{svc}-quota", *cache])

    image = one(res, COMMAND, f"{svc}-image-submit").inputs
    bakes = vs.config.loading.method == "image"
    assert image["create"] == IMAGE_CREATE.replace("{subs}", SUBS if bakes else "").replace(
        "{failed_logs}", FAILED_BUILD_LOGS
    )
    assert image["environment"] == {
        "CLOUDBUILD_CONFIG": json.dumps(cb.cloudbuild_config(vs), sort_keys=True),
        "BUILD_SERVICE_ACCOUNT": sa,
        "CLOUDSDK_CORE_PROJECT": PROJECT_ID,
        "IMAGE": cb.image_uri(vs),
        "SOURCE_ROOT": ".",
        "SOURCE_FILES": "\n".join(cb.container_files()),
        "SOURCE_STAGING_DIR": f"gs://{bucket_of(vs)}/.cloudrun-gpu/source",
        **({"CB_MODEL_BUCKET": bucket_of(vs)} if bakes else {}),  # the real bucket name, not a placeholder
    }
    assert image["triggers"] == [cb.image_tag(vs)]

    staging = one(res, COMMAND, f"{svc}-model-submit").inputs
    trigger = cb.staging_trigger(vs, token=False)
    assert staging["create"] == STAGING_CREATE.replace("{failed_logs}", FAILED_BUILD_LOGS)
    assert staging["environment"] == {
        "CLOUDBUILD_CONFIG": json.dumps(cb.staging_config(vs, token=False, trigger=trigger), sort_keys=True),
        "BUILD_SERVICE_ACCOUNT": sa,
        "CLOUDSDK_CORE_PROJECT": PROJECT_ID,
        "CB_MODEL_BUCKET": bucket_of(vs),
        "MARKER": f"gs://{bucket_of(vs)}/.cloudrun-gpu/staged/{vs.config.model.object_prefix.strip('/')}",
        "STAGE_ID": trigger,
    }
    assert staging["triggers"] == [trigger]


@pytest.mark.parametrize("stack", STACKS)
def test_service_deploys_the_built_image_by_digest(stack: str) -> None:
    flat = flat_config(stack)
    vs = validated(flat)
    res = deploy(stack, flat)
    (svc,) = gpu_services(res)
    repository = cb.image_uri(vs).rsplit(":", 1)[0]
    assert svc.inputs["template"]["containers"][0]["image"] == f"{repository}@{DIGEST}"


def test_digest_parsing_refuses_anything_but_a_digest() -> None:
    assert parse_digest(f"noise\n{DIGEST}\n") == DIGEST
    assert parse_digest(None) == ""  # no command ran (offline plan)
    for bad in ("", "sha256:abc", "Listed 0 items.", f"{DIGEST} extra"):
        with pytest.raises(ValueError, match="sha256 digest"):
            parse_digest(bad)


@pytest.mark.parametrize("stack", STACKS)
def test_order_registry_bucket_identity_then_staging_then_build_then_service(stack: str) -> None:
    flat = flat_config(stack)
    svc = validated(flat).config.service.name
    res = deploy(stack, flat)
    deps = effective_dependencies(res)
    by_name = {r.name: r.urn for r in res}
    build_sa = by_name[f"{svc}-build-sa"]
    bindings = [r.urn for r in res if r.registration and r.registration.parent == by_name[f"{svc}-build"]]
    bindings = [u for u in bindings if u != build_sa and not u.endswith("iam-propagation")]
    staging, image = by_name[f"{svc}-model-submit"], by_name[f"{svc}-image-submit"]
    settled = by_name[f"{svc}-build-iam-propagation"]
    for command in (staging, image):
        need = {by_name[f"{svc}-registry-docker"], by_name[f"{svc}-models-bucket"], build_sa, settled, *bindings}
        assert need <= deps[command], sorted(need - deps[command])
    assert set(bindings) <= deps[settled]  # the pause starts after every binding
    assert staging in deps[image]
    service = by_name[f"{svc}-svc"]
    assert {staging, image} <= deps[service]


# --- least privilege ---------------------------------------------------------------------------------------

IAM_TYPES = {
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": "repository",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "bucket",
    "gcp:secretmanager/secretIamMember:SecretIamMember": "secretId",
    "gcp:projects/iAMMember:IAMMember": "project",
}


def build_roles(res: list[Recorded], email: str) -> set[tuple[str, str]]:
    """(role, resource) of every binding that names the build identity."""
    out = set()
    for r in res:
        if r.type in IAM_TYPES and r.inputs.get("member") == f"serviceAccount:{email}":
            out.add((r.inputs["role"], str(r.inputs[IAM_TYPES[r.type]])))
        else:
            assert email not in json.dumps(r.inputs) or r.type == "command:local:Command", r.name
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_build_identity_holds_exactly_its_roles_on_exactly_those_resources(stack: str) -> None:
    flat = flat_config(stack)
    cfg = validated(flat).config
    email = f"{build_account_id(cfg.service.name)}@{PROJECT_ID}.iam.gserviceaccount.com"
    res = deploy(stack, flat)
    assert build_roles(res, email) == {
        (PUSH_ROLE, cfg.registry.repository_id),
        (PULL_ROLE, f"{cfg.registry.repository_id}-docker-hub"),  # base images come through this cache
        # staging writes the model; the build reads it and its source
        (BUCKET_WRITE_ROLE, f"{cfg.bucket.name_prefix}-{MOCK_HEX}"),
        (LOG_ROLE, PROJECT_ID),
    }


def test_gated_model_token_goes_to_secret_manager_and_only_the_identity_reads_it() -> None:
    flat = {**flat_config("prod"), f"{PROJECT}:hf_token": TOKEN}
    vs = validated(flat)
    res = deploy("prod", flat, [f"{PROJECT}:hf_token"])
    secret = one(res, "gcp:secretmanager/secret:Secret", "llm-hf-token-secret")
    assert secret.inputs["secretId"] == "llm-hf-token"
    version = one(res, "gcp:secretmanager/secretVersion:SecretVersion", "llm-hf-token-version")
    # sent as a secret: Pulumi's wire signature for secrets (pulumi/runtime/rpc.py _special_secret_sig)
    assert version.inputs["secretData"] == {rpc._special_sig_key: rpc._special_secret_sig, "value": TOKEN}
    email = f"llm-build@{PROJECT_ID}.iam.gserviceaccount.com"
    assert (SECRET_ROLE, "llm-hf-token") in build_roles(res, email)
    # The token is nowhere else: not in a command's script, environment or triggers, not in any other input.
    for r in res:
        if r is not version:
            assert TOKEN not in json.dumps(r.inputs), f"{r.type} {r.name} carries the token"
    staging = one(res, COMMAND, "llm-model-submit").inputs
    config = json.loads(staging["environment"]["CLOUDBUILD_CONFIG"])
    assert config["availableSecrets"] == {
        "secretManager": [
            {"versionName": f"projects/{PROJECT_ID}/secrets/llm-hf-token/versions/latest", "env": "HF_TOKEN"}
        ]
    }
    (fetch,) = [s for s in config["steps"] if s.get("secretEnv")]
    assert fetch["id"] == "fetch" and fetch["secretEnv"] == ["HF_TOKEN"]
    assert staging["triggers"] == [cb.staging_trigger(vs, token=True)]
    # the staging waits for the secret's version
    deps = effective_dependencies(res)
    assert version.urn in deps[one(res, COMMAND, "llm-model-submit").urn]


def test_a_token_set_without_secret_is_refused() -> None:
    flat = {**flat_config("prod"), f"{PROJECT}:hf_token": TOKEN}
    with pytest.raises(Exception, match="stored in plain text"):
        deploy("prod", flat, [])


def test_token_key_is_accepted_by_the_reader_and_never_shown() -> None:
    vs = validated({**flat_config("dev"), f"{PROJECT}:hf_token": "[secret]"})
    assert vs.config.model.source
    with pytest.raises(ConfigErrors) as exc:
        validated({**flat_config("dev"), f"{PROJECT}:hf_token": "  "})
    assert f"{PROJECT}:hf_token" in str(exc.value) and "--secret" in str(exc.value)


def test_your_own_image_means_no_build_and_no_push_role() -> None:
    own = "europe-west4-docker.pkg.dev/my-project/mine/vllm:v1@sha256:" + "1" * 64
    flat = flat_config("prod", engine={"image": own})
    res = deploy("prod", flat)
    # gcs-stream still reads the bucket: staged; the response cache's CPU image is still ours to build
    assert names(res, COMMAND) == ["llm-cache-image-submit", "llm-model-submit", "llm-quota"]
    assert "llm-image" not in {r.name for r in res if r.type == "cloudrun-gpu:index:ImageBuild"}
    (svc,) = gpu_services(res)
    assert svc.inputs["template"]["containers"][0]["image"] == own
    roles = {role for role, _ in build_roles(res, f"llm-build@{PROJECT_ID}.iam.gserviceaccount.com")}
    assert PUSH_ROLE not in roles


def test_your_own_image_with_the_image_method_registers_no_build_identity() -> None:
    flat = flat_config("dev", engine={"image": "europe-west1-docker.pkg.dev/my-project/mine/llama:v1"})
    res = deploy("dev", flat)
    assert names(res, COMMAND) == ["llm-dev-quota"]  # the quota gate still runs before the service (issue 19)
    assert "llm-dev-build-sa" not in {r.name for r in res}


def test_without_a_source_nothing_is_staged_and_the_build_only_reads_the_bucket() -> None:
    flat = flat_config("dev", model={"source": None, "files": []})
    res = deploy("dev", flat)
    assert names(res, COMMAND) == ["llm-dev-image-submit", "llm-dev-quota"]
    roles = build_roles(res, f"llm-dev-build@{PROJECT_ID}.iam.gserviceaccount.com")
    assert (BUCKET_READ_ROLE, DEV_BUCKET) in roles and (BUCKET_WRITE_ROLE, DEV_BUCKET) not in roles


def test_a_gs_source_gives_read_on_that_bucket_only() -> None:
    flat = flat_config("prod", model={"source": "gs://their-models/gemma/awq", "files": []})
    res = deploy("prod", flat)
    roles = build_roles(res, f"llm-build@{PROJECT_ID}.iam.gserviceaccount.com")
    assert (BUCKET_READ_ROLE, "their-models") in roles
    staging = json.loads(one(res, COMMAND, "llm-model-submit").inputs["environment"]["CLOUDBUILD_CONFIG"])
    assert staging["steps"][0]["args"][-1] == (
        "mkdir -p /workspace/model && gcloud storage rsync --recursive "
        "'--exclude=.*\\.(bin|pt|pth|pkl|ckpt)\\Z' gs://their-models/gemma/awq /workspace/model"
    )


# --- triggers ------------------------------------------------------------------------------------------------


def _tag(vs: ValidatedStack) -> str:
    return cb.image_tag(vs)


def with_model(vs: ValidatedStack, **changes: Any) -> ValidatedStack:
    return dataclasses.replace(
        vs, config=dataclasses.replace(vs.config, model=dataclasses.replace(vs.config.model, **changes))
    )


def test_image_trigger_follows_the_image_inputs_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vs = validated(flat_config("dev"))
    copy = tmp_path / "container"
    shutil.copytree(cb.CONTAINER, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cb, "CONTAINER", copy)
    base = _tag(vs)
    assert _tag(vs) == base  # deterministic

    # not an input: a file staged into container/model/, a cache, a README, a timestamp
    (copy / "model" / "stale.gguf").write_bytes(b"GGUF")
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "x.pyc").write_bytes(b"x")
    (copy / "README.md").write_text("docs only")
    os.utime(copy / "entrypoint.sh", (1, 1))
    assert _tag(vs) == base
    # ... nor are scaling, invokers or the service name
    assert _tag(validated(flat_config("dev", scaling={"max_instances": 1, "min_instances": 1}))) == base
    assert _tag(validated(flat_config("dev", service={"invokers": ["group:x@example.com"]}))) == base

    # inputs: a container file's content, a new file; not its mode (issue 19: a clone with core.fileMode=false
    # must not rebuild; the Dockerfiles set the entrypoints' mode with COPY --chmod)
    (copy / "entrypoint.sh").write_text((copy / "entrypoint.sh").read_text() + "\n# changed\n")
    changed = _tag(vs)
    assert changed != base
    (copy / "entrypoint.sh").chmod(0o644)
    assert _tag(vs) == changed
    (copy / "llama.cpp" / "extra.sh").write_text("echo")
    assert cb.container_files(copy)[-1] == "container/vllm/Dockerfile" and "container/llama.cpp/extra.sh" in (
        cb.container_files(copy)
    )
    # the response cache's image (S1) is not the GPU image's: editing it neither uploads nor retags
    before = _tag(vs)
    (copy / "cache").mkdir(exist_ok=True)
    (copy / "cache" / "app.py").write_text("print('changed')")
    assert _tag(vs) == before
    assert not [f for f in cb.container_files(copy) if f.startswith("container/cache/")]

    monkeypatch.setattr(cb, "CONTAINER", cb.ROOT / "container")
    base = _tag(vs)
    # the model reference (source pin, file choice); not the engine flags, run-time settings without the prompt
    # cache (issue 19 item 4; tests/test_engine_contract.py)
    assert _tag(with_model(vs, source=SOURCES["dev"]["source"].replace(COMMIT, "f" * 40))) != base
    assert _tag(with_model(vs, files=["*Q5_K_M.gguf"])) != base
    assert _tag(validated(flat_config("dev", engine={"context_length": 4096}))) == base


def test_image_trigger_follows_the_engine_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    vs = validated(flat_config("dev"))
    base = _tag(vs)
    real = pinned_image

    def newer(engine: str, gpu: str) -> EngineImage:
        pin = real(engine, gpu)
        return dataclasses.replace(pin, build_args={**pin.build_args, "LLAMA_CPP_VERSION": "b6800"})

    monkeypatch.setattr(image_lib, "pinned_image", newer)
    assert _tag(vs) != base


def test_staging_trigger_follows_what_is_staged_and_nothing_else() -> None:
    vs = validated(flat_config("prod"))
    base = cb.staging_trigger(vs, token=False)
    assert cb.staging_trigger(validated(flat_config("prod", scaling={"max_instances": 2})), token=False) == base
    assert cb.staging_trigger(validated(flat_config("prod", engine={"context_length": 8192})), token=False) == base
    assert (
        cb.staging_trigger(with_model(vs, source=SOURCES["prod"]["source"].replace(COMMIT, "e" * 40)), token=False)
        != base
    )
    assert cb.staging_trigger(with_model(vs, files=["*.safetensors"]), token=False) != base
    assert cb.staging_trigger(with_model(vs, object_prefix="models/other"), token=False) != base


# --- the generated configs ---------------------------------------------------------------------------------

LAYOUTS = [
    (e, m)
    for e, m in (
        ("llama.cpp", "image"),
        ("llama.cpp", "gcs-fuse"),
        ("llama.cpp", "gcs-download"),
        ("ollama", "image"),
        ("ollama", "gcs-fuse"),
    )
]


def staged(engine: str, method: str) -> ValidatedStack:
    """A llama-3.2-3b stack for ``engine`` and ``method`` (as tests/test_container.py's), staged from the Hub."""
    model = {
        "name": "llama-3.2-3b",
        "file": "llama-3.2-3b-instruct-q4_k_m.gguf",
        "object_prefix": "models/llama-3.2-3b",
        "source": SOURCES["dev"]["source"],
        "files": ["*Q4_K_M.gguf"],
    }
    raw: dict[str, Any] = {
        "gcp:project": PROJECT_ID,
        "gcp:region": "europe-west4",
        "cloudrun-gpu:model": model,
        "cloudrun-gpu:engine": {"name": engine, "context_length": 4096},
        "cloudrun-gpu:loading": {"method": method},
    }
    return validate(parse_config(raw))


def every_config() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for stack in STACKS:
        vs = validated(flat_config(stack))
        out.append((f"{stack}-image", cb.cloudbuild_config(vs)))
        for token in (False, True):
            out.append((f"{stack}-staging-{token}", cb.staging_config(vs, token=token, trigger="t")))
    for engine, method in LAYOUTS:
        out.append((f"{engine}-{method}", cb.staging_config(staged(engine, method), token=False, trigger="t")))
    return out


@pytest.mark.parametrize(("name", "config"), every_config())
def test_each_generated_config_defines_every_substitution_it_uses_and_uses_every_one_it_defines(
    name: str, config: dict[str, Any]
) -> None:
    assert set(config.get("substitutions", {})) == image_lib.substitutions_used(config)
    text = json.dumps(config["steps"]).replace("$$", "")
    assert re.findall(r"\$(?!\{?_MODEL_BUCKET\b)", text) == [], name  # every other $ escaped
    assert config["options"]["logging"] == "CLOUD_LOGGING_ONLY"  # a user-specified build account needs it
    for secret in config.get("availableSecrets", {}).get("secretManager", []):  # each secret used by a step
        assert any(secret["env"] in s.get("secretEnv", []) for s in config["steps"])


def test_staging_layouts_per_engine() -> None:
    llama = cb.staging_config(staged("llama.cpp", "gcs-download"), token=False, trigger="t")
    assert [s["id"] for s in llama["steps"]] == ["fetch", "one-gguf", "upload", "mark-staged"]
    assert "t=llama-3.2-3b-instruct-q4_k_m.gguf" in llama["steps"][1]["args"][1]  # renamed to model.file
    assert llama["steps"][2]["args"][-2:] == ["/workspace/model", "gs://${_MODEL_BUCKET}/models/llama-3.2-3b"]

    store = cb.staging_config(staged("ollama", "gcs-fuse"), token=False, trigger="t")
    assert [s["id"] for s in store["steps"]] == ["fetch", "one-gguf", "ollama-create", "upload", "mark-staged"]
    create = store["steps"][2]
    assert create["env"] == ["OLLAMA_MODELS=/workspace/store"]
    assert create["name"].endswith("-docker-hub/ollama/ollama:0.12.3")
    assert create["args"][1].endswith("ollama create llama-3.2-3b-instruct-q4_k_m.gguf -f Modelfile")  # model.file
    assert store["steps"][3]["args"][-2] == "/workspace/store"  # manifests/ + blobs/ under the prefix

    vllm = cb.staging_config(validated(flat_config("prod")), token=False, trigger="t")
    assert [s["id"] for s in vllm["steps"]] == ["fetch", "model-directory", "upload", "mark-staged"]
    fetch = vllm["steps"][0]["args"][1]
    assert fetch == (
        "pip install --quiet --no-cache-dir huggingface_hub==0.36.0 && hf download gaunernst/gemma-3-27b-it-int4-awq "
        f"--revision {COMMIT} --include '*.json' '*.safetensors' tokenizer.model "
        "--exclude '*.bin' '*.pt' '*.pth' '*.pkl' '*.ckpt' --local-dir /workspace/model"
    )
    assert vllm["steps"][2]["args"][-1] == "gs://${_MODEL_BUCKET}/models/gemma-3-27b-it-awq"
    assert vllm["steps"][-1]["args"][-1] == (
        "printf '%s' t | gcloud storage cp - gs://${_MODEL_BUCKET}/.cloudrun-gpu/staged/models/gemma-3-27b-it-awq"
    )


# --- model.source validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "files", "field"),
    [
        ("hf://bartowski/Llama-3.2-3B-Instruct-GGUF", [], "ModelSettings.source"),  # no revision
        ("hf://bartowski/Llama-3.2-3B-Instruct-GGUF@main", [], "ModelSettings.source"),  # a branch moves
        ("hf://bartowski/Llama-3.2-3B-Instruct-GGUF@v1.0", [], "ModelSettings.source"),  # so can a tag
        (f"hf://bartowski/Llama-3.2-3B-Instruct-GGUF@{COMMIT[:12]}", [], "ModelSettings.source"),  # short sha
        (f"hf://not a repo@{COMMIT}", [], "ModelSettings.source"),
        ("s3://bucket/model", [], "ModelSettings.source"),
        ("gs://bucket/models/*", [], "ModelSettings.source"),
        ("weights/model.pth", [], "ModelSettings.source"),  # pickle (B3)
        (f"hf://org/repo@{COMMIT}", ["*.bin"], "ModelSettings.files.0"),  # pickle (B3)
        (f"hf://org/repo@{COMMIT}", ["../secrets"], "ModelSettings.files.0"),
        (f"hf://org/repo@{COMMIT}", ["$(reboot)"], "ModelSettings.files.0"),
        (None, ["*.gguf"], "ModelSettings.files"),  # files without a source
    ],
)
def test_bad_sources_are_refused_with_the_field(source: str | None, files: list[str], field: str) -> None:
    with pytest.raises(ConfigErrors) as exc:
        ModelSettings(name="llama-3.2-3b", source=source, files=files)
    assert field in [e.field for e in exc.value.errors]


def test_good_sources_parse() -> None:
    m = ModelSettings(name="llama-3.2-3b", source=f"hf://bartowski/Llama-3.2-3B-Instruct-GGUF@{COMMIT}")
    src = m.model_source()
    assert src is not None and (src.kind, src.location, src.revision) == (
        "hf",
        "bartowski/Llama-3.2-3B-Instruct-GGUF",
        COMMIT,
    )
    g = ModelSettings(name="llama-3.2-3b", source="gs://my-models/llama/", files=["*.gguf"]).model_source()
    assert g is not None and (g.kind, g.location) == ("gs", "gs://my-models/llama")
    local = ModelSettings(name="llama-3.2-3b", source="weights/llama").model_source()
    assert local is not None and local.kind == "local"


def test_a_bad_source_in_the_stack_file_names_the_stack_key() -> None:
    with pytest.raises(ConfigErrors) as exc:
        validated(flat_config("dev", model={"source": "hf://bartowski/Llama-3.2-3B-Instruct-GGUF@main"}))
    assert "cloudrun-gpu:model.source" in [e.field for e in exc.value.errors]


# --- the scripts, run for real against a fake gcloud -------------------------------------------------------

FAKE_GCLOUD = """#!/bin/sh
# Records each call; `describe` fails until a build "pushed" the image; `builds submit` copies its source.
echo "$*" >> "$FAKE_LOG"
case "$1 $2" in
  "artifacts docker")
    if [ -f "$FAKE_STATE/pushed" ]; then
      case "$*" in *--format*) echo "$FAKE_DIGEST";; esac; exit 0
    fi
    echo "NOT_FOUND" >&2; exit 1;;
  "builds submit")
    echo "streaming build logs"
    if [ -n "${FAKE_FAIL:-}" ]; then
      echo "Created [https://cloudbuild.googleapis.com/v1/projects/p/locations/global/builds/0a1b-2c3d]."
      echo "ERROR: (gcloud.builds.submit) build 0a1b-2c3d completed with status \"FAILURE\"" >&2; exit 1
    fi
    src=$3; [ "$src" = "--no-source" ] || cp -R "$src" "$FAKE_STATE/uploaded"
    for a in "$@"; do case "$a" in --config=*) cp "${a#--config=}" "$FAKE_STATE/config.json";; esac; done
    touch "$FAKE_STATE/pushed"; exit 0;;
  "logging read")
    printf 'Step #2 - "build-image": error: no config.json\nStep #2 - "build-image": ERROR: build step 2 failed\n';;
  "storage cat")
    [ -f "$FAKE_STATE/marker" ] && cat "$FAKE_STATE/marker"; [ -f "$FAKE_STATE/marker" ];;
esac
"""


def fake_env(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    gcloud = bindir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return {
        **env,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_STATE": str(state),
        "FAKE_DIGEST": DIGEST,
    }


def run_script(create: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", create], env=env, cwd=cwd, capture_output=True, text=True, check=True)


def test_image_build_script_uploads_exactly_the_hashed_files_and_prints_only_the_digest(tmp_path: Path) -> None:
    flat = flat_config("dev")
    res = deploy("dev", flat)
    cmd = one(res, COMMAND, "llm-dev-image-submit").inputs
    env = fake_env(tmp_path, cmd["environment"])
    first = run_script(cmd["create"], env, ROOT)
    assert first.stdout == f"{DIGEST}\n"  # the build's log went to stderr
    assert "streaming build logs" in first.stderr
    state = tmp_path / "state"
    uploaded = sorted(
        p.relative_to(state / "uploaded").as_posix() for p in (state / "uploaded").rglob("*") if p.is_file()
    )
    assert uploaded == cb.container_files()
    assert os.access(state / "uploaded" / "container" / "entrypoint.sh", os.X_OK)
    assert json.loads((state / "config.json").read_text()) == cb.cloudbuild_config(validated(flat))
    submit = [line for line in (tmp_path / "calls.log").read_text().splitlines() if line.startswith("builds submit")]
    assert len(submit) == 1 and f"--substitutions=_MODEL_BUCKET={DEV_BUCKET}" in submit[0]
    assert f"--service-account=projects/{PROJECT_ID}/serviceAccounts/llm-dev-build@" in submit[0]
    # a second run (the image is in the registry) builds nothing and prints the same digest
    second = run_script(cmd["create"], env, ROOT)
    assert second.stdout == f"{DIGEST}\n"
    assert sum(line.startswith("builds submit") for line in (tmp_path / "calls.log").read_text().splitlines()) == 1


def test_a_failed_build_prints_its_cloud_logging_lines(tmp_path: Path) -> None:
    """Issue 19: GA ``gcloud builds submit`` does not stream CLOUD_LOGGING_ONLY logs, so a failure showed only
    "BUILD FAILURE". The script reads the build's last lines from Cloud Logging (oldest first) and keeps the build's
    exit status."""
    res = deploy("dev", flat_config("dev"))
    cmd = one(res, COMMAND, "llm-dev-image-submit").inputs
    env = {**fake_env(tmp_path, cmd["environment"]), "FAKE_FAIL": "1"}
    run = subprocess.run(["/bin/sh", "-c", cmd["create"]], env=env, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout == ""
    read = [c for c in (tmp_path / "calls.log").read_text().splitlines() if c.startswith("logging read")]
    assert read == [
        'logging read resource.type="build" AND resource.labels.build_id="0a1b-2c3d" --order=desc --limit=200 '
        "--format=value(textPayload)"
    ]
    err = run.stderr
    assert err.index("streaming build logs") < err.index("the last build log lines of 0a1b-2c3d")
    assert err.index("ERROR: build step 2 failed") < err.index("error: no config.json")  # reversed: oldest first
    # a build that passes reads no logs
    ok = run_script(cmd["create"], {k: v for k, v in env.items() if k != "FAKE_FAIL"}, ROOT)
    assert ok.stdout == f"{DIGEST}\n"
    assert sum(c.startswith("logging read") for c in (tmp_path / "calls.log").read_text().splitlines()) == 1


def test_staging_script_skips_when_the_marker_holds_its_id(tmp_path: Path) -> None:
    res = deploy("prod", flat_config("prod"))
    cmd = one(res, COMMAND, "llm-model-submit").inputs
    env = fake_env(tmp_path, cmd["environment"])
    assert run_script(cmd["create"], env, ROOT).stdout == f"{cmd['environment']['STAGE_ID']}\n"
    (tmp_path / "state" / "marker").write_text(cmd["environment"]["STAGE_ID"])
    run_script(cmd["create"], env, ROOT)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert sum(c.startswith("builds submit --no-source") for c in calls) == 1


def test_a_local_source_is_uploaded_under_model(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "m-Q4_K_M.gguf").write_bytes(b"GGUF")
    (weights / "other.gguf").write_bytes(b"GGUF2")
    (weights / "evil.pt").write_bytes(b"pickle")
    flat = flat_config("dev", model={"source": str(weights), "files": ["*Q4_K_M.gguf"]})
    res = deploy("dev", flat)
    cmd = one(res, COMMAND, "llm-dev-model-submit").inputs
    assert cmd["environment"]["SOURCE_ROOT"] == str(weights)
    assert cmd["environment"]["SOURCE_FILES"] == "m-Q4_K_M.gguf"
    assert cmd["environment"]["SOURCE_STAGING_DIR"] == f"gs://{DEV_BUCKET}/.cloudrun-gpu/source"
    env = fake_env(tmp_path, cmd["environment"])
    run_script(cmd["create"], env, ROOT)
    up = tmp_path / "state" / "uploaded"
    assert sorted(p.relative_to(up).as_posix() for p in up.rglob("*") if p.is_file()) == ["model/m-Q4_K_M.gguf"]
    config = json.loads(cmd["environment"]["CLOUDBUILD_CONFIG"])
    assert [s["id"] for s in config["steps"]] == ["one-gguf", "upload", "mark-staged"]
    # without patterns every file but the pickle is chosen
    vs = validated(flat_config("dev", model={"source": str(weights), "files": []}))
    assert cb.local_source(vs, ROOT)[1] == ["m-Q4_K_M.gguf", "other.gguf"]


def test_a_local_source_trigger_follows_content_not_times(tmp_path: Path) -> None:
    """Issue 19: a fresh clone or a copy of the same bytes restages nothing (no mtimes in the trigger); other bytes
    of the same size do restage."""
    import os

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "m-Q4_K_M.gguf").write_bytes(b"GGUF-a")
    vs = validated(flat_config("dev", model={"source": str(weights), "files": ["*Q4_K_M.gguf"]}))

    def trigger() -> str:
        return cb.staging_trigger(vs, token=False, local_stats=cb.local_source(vs, ROOT)[2])

    base = trigger()
    os.utime(weights / "m-Q4_K_M.gguf", (1, 1))
    assert trigger() == base
    (weights / "m-Q4_K_M.gguf").write_bytes(b"GGUF-b")  # same size, other content
    assert trigger() != base


def test_dockerfiles_set_the_entrypoint_mode_themselves() -> None:
    """The image hash ignores mode bits, so no image may take a mode from the uploaded files."""
    for dockerfile in sorted((ROOT / "container").glob("*/Dockerfile")):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY") and ".sh" in line:
                assert "--chmod=0755" in line, (dockerfile, line)


def test_a_missing_local_source_stops_the_program() -> None:
    with pytest.raises(Exception, match="does not exist"):
        deploy("dev", flat_config("dev", model={"source": "no/such/folder", "files": []}))


def test_build_account_ids_are_valid() -> None:
    assert build_account_id("llm") == "llm-build"
    long = build_account_id("a" * 40)
    assert len(long) <= 30 and long.endswith("-build")
    with pytest.raises(ConfigError) as err:
        from cloudrun_gpu.build import BuildIdentityArgs

        BuildIdentityArgs(account_id="Bad_Id", project="p", location="r")
    assert (err.value.field, err.value.value) == ("BuildIdentityArgs.account_id", "Bad_Id")
    assert "not a valid service account id" in err.value.problem and "6-30 lowercase" in err.value.fix


def _step_script(config: dict[str, Any], step: str, work: Path) -> str:
    """A step's bash script as Cloud Build would run it ($$ → $), with /workspace mapped to ``work``."""
    (script,) = [s["args"][1] for s in config["steps"] if s["id"] == step]
    return str(script).replace("$$", "$").replace("/workspace", str(work))


@pytest.mark.parametrize(
    ("engine", "found", "expect"),
    [
        ("llama.cpp", ["sub/Llama-3.2-3B-Instruct-Q4_K_M.gguf"], ["llama-3.2-3b-instruct-q4_k_m.gguf"]),
        ("llama.cpp", ["llama-3.2-3b-instruct-q4_k_m.gguf"], ["llama-3.2-3b-instruct-q4_k_m.gguf"]),
        ("ollama", ["sub/Llama-3.2-3B-Instruct-Q4_K_M.gguf"], ["Llama-3.2-3B-Instruct-Q4_K_M.gguf"]),
        ("llama.cpp", ["a-Q4_K_M.gguf", "b-Q4_K_M.gguf"], None),  # two candidates: refused
        ("llama.cpp", [], None),
    ],
)
def test_the_one_gguf_step_renames_to_the_engine_file_or_fails(
    tmp_path: Path, engine: str, found: list[str], expect: list[str] | None
) -> None:
    config = cb.staging_config(staged(engine, "image"), token=False, trigger="t")
    model = tmp_path / "model"
    model.mkdir()
    for name in found:
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(b"GGUF")
    run = subprocess.run(["bash", "-c", _step_script(config, "one-gguf", tmp_path)], capture_output=True, text=True)
    if expect is None:
        assert run.returncode != 0 and "exactly one .gguf" in run.stderr
        return
    assert run.returncode == 0, run.stderr
    assert sorted(p.relative_to(model).as_posix() for p in model.rglob("*.gguf")) == expect

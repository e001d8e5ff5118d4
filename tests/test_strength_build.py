"""Mutation-strength tests for build/: the components' rendered inputs under mocks (identity bindings, the
IAM pause, the secret, both commands' scripts and environments) and the digest/account-id rules."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from cloudrun_gpu import build as B
from cloudrun_gpu.errors import ConfigError
from pulumi.runtime import MockResourceArgs

from stack.render import install_mocks, run_under_mocks

from .conftest import Rendered

DIGEST = "sha256:" + "ab" * 32
CMD = "command:local:Command"


def render_with_stdout(build: Any, stdout: str | None) -> Rendered:
    """Like conftest.render, but local commands report ``stdout`` (None: no stdout output at all)."""
    mocks = install_mocks("test", {}, gcp_project="test-project")
    inner = mocks.new_resource

    def new_resource(args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        rid, out = inner(args)
        if args.typ == CMD and stdout is not None:
            out["stdout"] = stdout
        return rid, out

    mocks.new_resource = new_resource  # type: ignore[method-assign]
    result: dict[str, Any] = {}
    run_under_mocks(lambda: pulumi.Output.from_input(build()).apply(lambda v: result.__setitem__("value", v)))
    return Rendered(mocks.resources, result.get("value"))


def test_constants() -> None:
    assert (B.PUSH_ROLE, B.PULL_ROLE) == ("roles/artifactregistry.writer", "roles/artifactregistry.reader")
    assert (B.BUCKET_READ_ROLE, B.BUCKET_WRITE_ROLE) == ("roles/storage.objectViewer", "roles/storage.objectUser")
    assert (B.LOG_ROLE, B.SECRET_ROLE) == ("roles/logging.logWriter", "roles/secretmanager.secretAccessor")
    assert B.IAM_PROPAGATION_S == 120


@pytest.mark.parametrize(
    ("service", "account"),
    [
        ("llm", "llm-build"),
        ("a" * 24, "a" * 24 + "-build"),  # exactly 30
        ("a" * 25, "a" * 24 + "-build"),  # 31 → cut to 24 + -build
        ("a" * 23 + "-x", "a" * 23 + "-build"),  # cut at 24 ends in '-': stripped
    ],
)
def test_build_account_id(service: str, account: str) -> None:
    assert B.build_account_id(service) == account
    assert len(account) <= 30


def test_parse_digest_edges() -> None:
    assert B.parse_digest(f"log\n  {DIGEST}  \n\n") == DIGEST
    assert B.parse_digest(None) == ""
    for bad in ("", "sha256:" + "AB" * 32, DIGEST + "0", f"{DIGEST}\nnoise"):
        with pytest.raises(ValueError, match="not the pushed image's sha256 digest"):
            B.parse_digest(bad)


def test_submit_script_no_source_no_substitutions() -> None:
    assert B.submit_script(source=False, substitutions=[], skip_if="false", result="echo R") == (
        "set -eu\n"
        "if false; then\n"
        "  echo 'up to date: no build' >&2\n"
        "else\n"
        "  src=$(mktemp -d)\n"
        '  trap \'rm -rf "$src" "$src.json" "$src.out" "$src.rc"\' EXIT\n'
        '  printf \'%s\' "$CLOUDBUILD_CONFIG" > "$src.json"\n'
        '  { gcloud builds submit --no-source --config="$src.json" --service-account="$BUILD_SERVICE_ACCOUNT" 2>&1 '
        '&& echo 0 > "$src.rc" || echo $? > "$src.rc"; } | tee "$src.out" 1>&2\n' + B.FAILED_BUILD_LOGS + "fi\n"
        "echo R\n"
    )


def test_submit_script_source_with_prefix_and_substitutions() -> None:
    script = B.submit_script(source=True, substitutions=["_A", "_B"], skip_if="S", result="R", source_prefix="model")
    assert (
        '  mkdir -p "$src/model"\n'
        '  printf \'%s\\n\' "$SOURCE_FILES" | tar -C "$SOURCE_ROOT" -cf - -T - | tar -xf - -C "$src/model"\n'
        '  { gcloud builds submit "$src" --gcs-source-staging-dir="$SOURCE_STAGING_DIR" --config="$src.json" '
        '--service-account="$BUILD_SERVICE_ACCOUNT" --substitutions="_A=${CB_A},_B=${CB_B}" 2>&1 '
        '&& echo 0 > "$src.rc" || echo $? > "$src.rc"; } | tee "$src.out" 1>&2\n'
    ) in script
    plain = B.submit_script(source=True, substitutions=[], skip_if="S", result="R")
    assert "mkdir" not in plain and '| tar -xf - -C "$src"\n' in plain and "--substitutions" not in plain


def test_environment_exact() -> None:
    env = B._environment({"b": 1, "a": 2}, "sa", "prj", {"_X": "x"}, "root", ["f1", "f2"], "gs://d", {"E": "e"})
    assert env == {
        "CLOUDBUILD_CONFIG": '{"a": 2, "b": 1}',
        "BUILD_SERVICE_ACCOUNT": "sa",
        "CLOUDSDK_CORE_PROJECT": "prj",
        "CB_X": "x",
        "E": "e",
        "SOURCE_ROOT": "root",
        "SOURCE_FILES": "f1\nf2",
        "SOURCE_STAGING_DIR": "gs://d",
    }
    no_dir = B._environment({}, "sa", "prj", {}, "root", [], None, {})
    assert "SOURCE_STAGING_DIR" not in no_dir and no_dir["SOURCE_FILES"] == ""
    assert set(B._environment({}, "sa", "prj", {}, None, ["f"], "gs://d", {})) == {
        "CLOUDBUILD_CONFIG",
        "BUILD_SERVICE_ACCOUNT",
        "CLOUDSDK_CORE_PROJECT",
    }


def test_build_secret_rendered() -> None:
    def build() -> Any:
        s = B.BuildSecret("tok", {"secret_id": "hf-token", "value": "v", "labels": {"a": "b"}, "project": "p"})  # type: ignore[arg-type]
        return pulumi.Output.all(s.latest, s.secret_id)

    r = render_with_stdout(build, None)
    secret = r.one("gcp:secretmanager/secret:Secret", "tok-secret")
    assert secret.inputs == {"secretId": "hf-token", "replication": {"auto": {}}, "labels": {"a": "b"}, "project": "p"}
    version = r.one("gcp:secretmanager/secretVersion:SecretVersion", "tok-version")
    assert version.inputs["secret"] == "tok-secret-id"
    assert r.value == ["tok-secret-id/versions/latest", "hf-token"]
    bare = render_with_stdout(lambda: B.BuildSecret("t2", B.BuildSecretArgs("id2", "v")).secret_id, None)
    assert "labels" not in bare.one("gcp:secretmanager/secret:Secret").inputs


def test_build_identity_every_binding() -> None:
    def build() -> Any:
        ident = B.BuildIdentity(
            "bi",
            {  # type: ignore[arg-type]
                "account_id": "llm-build",
                "project": "p",
                "location": "europe-west4",
                "repository": "repo",
                "pull_repositories": {"hub": "hub-cache"},
                "bucket": "models",
                "write_bucket": True,
                "read_buckets": {"src": "src-bucket"},
                "secrets": {"hf": "hf-token"},
            },
        )
        return pulumi.Output.all(ident.resource_name, ident.email, len(ident.bindings))

    r = render_with_stdout(build, None)
    email = "llm-build@p.iam.gserviceaccount.com"
    member = f"serviceAccount:{email}"
    assert r.value == [f"projects/p/serviceAccounts/{email}", email, 6]
    assert r.one("gcp:serviceaccount/account:Account", "bi-sa").inputs == {
        "accountId": "llm-build",
        "displayName": "LLM image and model builds",
        "description": "Runs the Cloud Build jobs that stage the model and build the serving image.",
        "project": "p",
    }
    repo = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
    assert r.one(repo, "bi-push").inputs == {
        "repository": "repo",
        "location": "europe-west4",
        "role": B.PUSH_ROLE,
        "member": member,
        "project": "p",
    }
    assert r.one(repo, "bi-pull-hub").inputs == {
        "repository": "hub-cache",
        "location": "europe-west4",
        "role": B.PULL_ROLE,
        "member": member,
        "project": "p",
    }
    bucket = "gcp:storage/bucketIAMMember:BucketIAMMember"
    assert r.one(bucket, "bi-bucket").inputs == {"bucket": "models", "role": B.BUCKET_WRITE_ROLE, "member": member}
    assert r.one(bucket, "bi-read-src").inputs == {"bucket": "src-bucket", "role": B.BUCKET_READ_ROLE, "member": member}
    assert r.one("gcp:secretmanager/secretIamMember:SecretIamMember", "bi-secret-hf").inputs == {
        "secretId": "hf-token",
        "role": B.SECRET_ROLE,
        "member": member,
        "project": "p",
    }
    assert r.one("gcp:projects/iAMMember:IAMMember", "bi-logs").inputs == {
        "project": "p",
        "role": B.LOG_ROLE,
        "member": member,
    }
    sleep = r.one("time:index/sleep:Sleep", "bi-iam-propagation")
    assert sleep.inputs["createDuration"] == "120s"
    ids = ["bi-push-id", "bi-pull-hub-id", "bi-bucket-id", "bi-read-src-id", "bi-secret-hf-id", "bi-logs-id"]
    assert sleep.inputs["triggers"] == {"bindings": ",".join(ids)}


def test_build_identity_minimal_reads_the_bucket_only() -> None:
    def build() -> Any:
        return len(B.BuildIdentity("m", B.BuildIdentityArgs("llm-build", "p", "r", bucket="models")).bindings)

    r = render_with_stdout(build, None)
    assert r.value == 2
    assert r.one("gcp:storage/bucketIAMMember:BucketIAMMember", "m-bucket").inputs["role"] == B.BUCKET_READ_ROLE
    assert not r.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")


@pytest.mark.parametrize("account_id", ["abcde", "a" * 31, "9abcdef", "abcdef-"])
def test_build_identity_bad_account(account_id: str) -> None:
    with pytest.raises(ConfigError) as err:
        B.BuildIdentityArgs(account_id, "p", "r")
    assert (err.value.field, err.value.value, err.value.problem) == (
        "BuildIdentityArgs.account_id",
        account_id,
        "is not a valid service account id",
    )
    assert err.value.fix == "use 6-30 lowercase letters, digits and hyphens, starting with a letter"
    assert B.BuildIdentityArgs("a" * 6, "p", "r").write_bucket is False


def _image(image: str) -> Any:
    def build() -> Any:
        b = B.ImageBuild(
            "img",
            {  # type: ignore[arg-type]
                "image": image,
                "config": {"steps": [], "images": [image]},  # a bag of BuildConfig's fields (other languages)
                "service_account": "projects/p/serviceAccounts/e",
                "project": "p",
                "trigger": "T1",
                "source_files": ["a", "b"],
                "source_staging_dir": "gs://stage",
                "substitutions": {"_Z": "z", "_A": "a"},
            },
        )
        return pulumi.Output.all(b.digest, b.image_ref)

    return build


def test_image_build_rendered_and_by_digest() -> None:
    image = "europe-west4-docker.pkg.dev/p/repo/llm:abc"
    r = render_with_stdout(_image(image), f"building\n{DIGEST}\n")
    assert r.value == [DIGEST, f"europe-west4-docker.pkg.dev/p/repo/llm@{DIGEST}"]
    cmd = r.one(CMD, "img-submit")
    assert cmd.inputs["triggers"] == ["T1"]
    assert cmd.inputs["environment"] == {
        "CLOUDBUILD_CONFIG": json.dumps(B.BuildConfig(steps=[], images=[image]).to_dict(), sort_keys=True),
        "BUILD_SERVICE_ACCOUNT": "projects/p/serviceAccounts/e",
        "CLOUDSDK_CORE_PROJECT": "p",
        "CB_Z": "z",
        "CB_A": "a",
        "IMAGE": image,
        "SOURCE_ROOT": ".",
        "SOURCE_FILES": "a\nb",
        "SOURCE_STAGING_DIR": "gs://stage",
    }
    assert cmd.inputs["create"] == B.submit_script(
        source=True,
        substitutions=["_A", "_Z"],
        skip_if='gcloud artifacts docker images describe "$IMAGE" >/dev/null 2>&1',
        result="gcloud artifacts docker images describe \"$IMAGE\" --format='value(image_summary.digest)'",
    )


def test_image_ref_without_a_tag_and_without_output() -> None:
    untagged = "localhost:5000/repo/llm"  # the ':' is in the host, not the last path segment
    assert render_with_stdout(_image(untagged), DIGEST).value == [DIGEST, f"{untagged}@{DIGEST}"]
    tagged = "europe-west4-docker.pkg.dev/p/repo/llm:abc"
    assert render_with_stdout(_image(tagged), None).value == ["", tagged]


def test_model_staging_rendered() -> None:
    def build() -> Any:
        s = B.ModelStaging(
            "stg",
            {  # type: ignore[arg-type]
                "config": {"k": 1},
                "service_account": "sa",
                "project": "p",
                "trigger": "S1",
                "marker": "gs://b/.staged",
                "substitutions": {"_M": "m"},
                "source_root": "/models",
                "source_files": ["w.gguf"],
                "source_staging_dir": "gs://b/src",
            },
        )
        return s.staged

    r = render_with_stdout(build, "  S1 \n")
    assert r.value == "S1"
    cmd = r.one(CMD, "stg-submit")
    assert cmd.inputs["triggers"] == ["S1"]
    assert cmd.inputs["environment"] == {
        "CLOUDBUILD_CONFIG": '{"k": 1}',
        "BUILD_SERVICE_ACCOUNT": "sa",
        "CLOUDSDK_CORE_PROJECT": "p",
        "CB_M": "m",
        "MARKER": "gs://b/.staged",
        "STAGE_ID": "S1",
        "SOURCE_ROOT": "/models",
        "SOURCE_FILES": "w.gguf",
        "SOURCE_STAGING_DIR": "gs://b/src",
    }
    assert cmd.inputs["create"] == B.submit_script(
        source=True,
        substitutions=["_M"],
        skip_if='[ "$(gcloud storage cat "$MARKER" 2>/dev/null || true)" = "$STAGE_ID" ]',
        result="printf '%s\\n' \"$STAGE_ID\"",
        source_prefix="model",
    )


def test_model_staging_without_source_and_output() -> None:
    def build() -> Any:
        return B.ModelStaging("s2", B.ModelStagingArgs({}, "sa", "p", "S2", "gs://b/m")).staged

    r = render_with_stdout(build, None)
    assert r.value == ""
    create = r.one(CMD, "s2-submit").inputs["create"]
    assert "--no-source" in create and "SOURCE_ROOT" not in r.one(CMD, "s2-submit").inputs["environment"]

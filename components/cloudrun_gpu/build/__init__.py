"""Cloud Build inside ``pulumi up``: a least-privilege build identity, the model staged into the bucket, the
serving image built and referenced by digest.

Three components, created in this order by a stack (each waits for the one before):

- :class:`BuildSecret` keeps a token (e.g. a Hugging Face token for gated models) in Secret Manager. The
  value comes from a Pulumi secret and reaches a build only through Cloud Build's ``availableSecrets``: never
  a file, a command line, an environment variable of the local command, or a log.
- :class:`BuildIdentity` is the service account builds run as, holding only what they need, each role on
  the single resource it is for: push to the image repository, pull through the registry's remote caches,
  object access on the model bucket, read on the token secret, and write build logs (the one project role).
- :class:`ModelStaging` and :class:`ImageBuild` each run ``gcloud builds submit`` from a
  ``command.local.Command`` (pulumi-command) on the machine running ``pulumi up``, as that identity. Their
  triggers change exactly when what they produce would change; both skip work already done (the image tag is
  already in the registry; the bucket already holds this staging's marker), so a re-run is cheap. The image
  build prints the pushed digest, and the stack deploys ``<repository>@sha256:…``: a rebuild rolls a new
  revision, an unchanged image does not.

Sources for the Cloud Build behaviour relied on:

- A build with a user-specified service account must keep its logs in Cloud Logging or a user-created bucket,
  not the default logs bucket, and the account needs ``roles/logging.logWriter`` to write them to Cloud
  Logging: "Configure user-specified service accounts", section "Set up build logs"
  (https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts). The configs
  set ``options.logging: CLOUD_LOGGING_ONLY`` (``cloudrun_gpu/build/image.py``, ``stack/cloudbuild.py`` for staging).
- ``gcloud builds submit [SOURCE | --no-source] --config --service-account --gcs-source-staging-dir
  --substitutions`` (https://cloud.google.com/sdk/gcloud/reference/builds/submit); the service account is
  written ``projects/PROJECT_ID/serviceAccounts/EMAIL``. Submitting as a service account needs
  ``iam.serviceAccounts.actAs`` on it (``roles/iam.serviceAccountUser``), the same rule Cloud Run states for
  its build service account: "Service Account User (roles/iam.serviceAccountUser) on the Cloud Run service
  identity" (https://cloud.google.com/run/docs/configuring/services/build-service-account, "Required roles").
- ``availableSecrets.secretManager[].versionName`` "projects/*/secrets/*/versions/*" and ``env``, which "must
  be used by at least one build step" through ``secretEnv`` (Cloud Build v1 ``SecretManagerSecret``,
  https://cloud.google.com/php/docs/reference/cloud-build/latest/V1.SecretManagerSecret).
- Artifact Registry roles: ``roles/artifactregistry.writer`` holds the upload (push) permissions and
  ``roles/artifactregistry.reader`` the download (pull) ones, granted per repository
  (https://cloud.google.com/iam/docs/roles-permissions/artifactregistry).
- ``command.local.Command``: ``create`` runs on creation and, with no ``update``, again whenever an input
  changes; a change in ``triggers`` replaces the resource (``pulumi_command/local/command.py`` 1.2.1,
  ``replace_on_changes=["triggers[*]"]``); ``stdout`` is an output.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp
from pulumi_command import local
from pulumiverse_time import Sleep

from cloudrun_gpu import limits
from cloudrun_gpu.build.image import BuildConfig
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.settings import args_types, raise_if

IDENTITY_TOKEN = "cloudrun-gpu:index:BuildIdentity"
SECRET_TOKEN = "cloudrun-gpu:index:BuildSecret"
STAGING_TOKEN = "cloudrun-gpu:index:ModelStaging"
IMAGE_TOKEN = "cloudrun-gpu:index:ImageBuild"

PUSH_ROLE = "roles/artifactregistry.writer"
PULL_ROLE = "roles/artifactregistry.reader"
BUCKET_READ_ROLE = "roles/storage.objectViewer"
BUCKET_WRITE_ROLE = "roles/storage.objectUser"
"""Create, read, overwrite and delete objects (``gcloud storage rsync`` overwrites changed objects)."""
LOG_ROLE = "roles/logging.logWriter"
SECRET_ROLE = "roles/secretmanager.secretAccessor"
IAM_PROPAGATION_S = 120
"""Seconds the first build waits after the identity's bindings (IAM: "typically 2 minutes",
https://cloud.google.com/iam/docs/access-change-propagation); the pause runs when a binding is created or
replaced, not on every update."""
DIGEST_FORMAT = "value(image_summary.digest)"
"""``gcloud artifacts docker images describe`` prints the pushed manifest digest (``sha256:…``) with it."""


def build_account_id(service: str) -> str:
    """The build identity's account id for a service name: 6-30 characters (``llm`` → ``llm-build``)."""
    full = f"{service}-build"
    return full if len(full) <= 30 else f"{service[:24].rstrip('-')}-build"


# --- the token ------------------------------------------------------------------------------------------


@dataclass
class BuildSecretArgs:
    """Inputs of :class:`BuildSecret`."""

    secret_id: str
    """Secret Manager id (letters, digits, ``-``, ``_``), e.g. ``llm-hf-token``."""
    value: pulumi.Input[str]
    """The secret value; pass a Pulumi secret (``pulumi config set --secret …``) so it stays encrypted in state."""
    labels: dict[str, str] = field(default_factory=dict)
    """Labels on the secret."""
    project: str | None = None
    """The project; defaults to the provider's."""

    def __post_init__(self) -> None:
        # Another Pulumi language passes plain values: each named when it does not fit (issue 21).
        raise_if(args_types(self, "BuildSecretArgs."))
        rule = limits.SECRET_ID
        if not (rule.min_len <= len(self.secret_id) <= rule.max_len and re.fullmatch(rule.pattern, self.secret_id)):
            raise ConfigError(
                "BuildSecretArgs.secret_id",
                self.secret_id,
                f"is not a {rule.what}",
                f"use {rule.min_len}-{rule.max_len} letters, digits, '-' and '_'",
            )


class BuildSecret(pulumi.ComponentResource):
    """A token for builds, in Secret Manager (one secret, one version)."""

    secret: gcp.secretmanager.Secret
    """The secret resource."""
    version: gcp.secretmanager.SecretVersion
    """The version holding the value."""
    secret_id: pulumi.Output[str]
    """The secret's id (for IAM bindings)."""
    latest: pulumi.Output[str]
    """``projects/<project>/secrets/<id>/versions/latest``: what a build config reads."""

    def __init__(self, name: str, args: BuildSecretArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = BuildSecretArgs(**args)
        super().__init__(SECRET_TOKEN, name, None, opts)
        self.secret = gcp.secretmanager.Secret(
            f"{name}-secret",
            secret_id=args.secret_id,
            replication=gcp.secretmanager.SecretReplicationArgs(auto=gcp.secretmanager.SecretReplicationAutoArgs()),
            labels=args.labels or None,
            project=args.project,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.version = gcp.secretmanager.SecretVersion(
            f"{name}-version",
            secret=self.secret.id,
            secret_data=pulumi.Output.secret(args.value),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.secret_id = self.secret.secret_id
        self.latest = pulumi.Output.concat(self.secret.id, "/versions/latest")
        self.register_outputs({"secret_id": self.secret_id})


# --- the identity ---------------------------------------------------------------------------------------


@dataclass
class BuildIdentityArgs:
    """Inputs of :class:`BuildIdentity`: the account and the single resources it may use."""

    account_id: str
    """6-30 characters, lowercase letters, digits and hyphens (see :func:`build_account_id`)."""
    project: str
    """The project the builds run in (the log-writer role is granted on it)."""
    location: str
    """Region of the Artifact Registry repositories."""
    repository: pulumi.Input[str] | None = None
    """The image repository the build pushes to (``roles/artifactregistry.writer`` on it); None: no push."""
    pull_repositories: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Remote (pull-through cache) repositories the builds pull base images through, by a stable key
    (``roles/artifactregistry.reader`` on each)."""
    bucket: pulumi.Input[str] | None = None
    """The model bucket: object read (the image method's model, the uploaded build source) or, with
    ``write_bucket``, read and write (staging)."""
    write_bucket: bool = False
    """Grant object write on ``bucket`` too (the staging build writes the model)."""
    read_buckets: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Other buckets the staging build reads a model from (``gs://`` sources), by a stable key."""
    secrets: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secret ids the builds read (``roles/secretmanager.secretAccessor`` on each), by a stable key."""

    def __post_init__(self) -> None:
        raise_if(args_types(self, "BuildIdentityArgs.", skip=["account_id"]))  # issue 21: plain values, named
        if not isinstance(self.account_id, str) or not re.fullmatch(r"[a-z]([-a-z0-9]{4,28}[a-z0-9])", self.account_id):
            raise ConfigError(
                "BuildIdentityArgs.account_id",
                self.account_id,
                "is not a valid service account id",
                "use 6-30 lowercase letters, digits and hyphens, starting with a letter",
            )


class BuildIdentity(pulumi.ComponentResource):
    """The service account builds run as, with each role on one resource, and a pause for IAM propagation."""

    account: gcp.serviceaccount.Account
    """The service account."""
    email: pulumi.Output[str]
    """Its email."""
    member: pulumi.Output[str]
    """``serviceAccount:<email>``."""
    resource_name: pulumi.Output[str]
    """``projects/<project>/serviceAccounts/<email>``: what ``gcloud builds submit --service-account`` takes."""

    def __init__(self, name: str, args: BuildIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = BuildIdentityArgs(**args)
        super().__init__(IDENTITY_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account = gcp.serviceaccount.Account(
            f"{name}-sa",
            account_id=args.account_id,
            display_name="LLM image and model builds",
            description="Runs the Cloud Build jobs that stage the model and build the serving image.",
            project=args.project,
            opts=child,
        )
        self.email = self.account.email
        self.member = self.account.member
        self.resource_name = pulumi.Output.concat("projects/", args.project, "/serviceAccounts/", self.email)
        b: list[pulumi.CustomResource] = []
        if args.repository is not None:
            b.append(
                gcp.artifactregistry.RepositoryIamMember(
                    f"{name}-push",
                    repository=args.repository,
                    location=args.location,
                    role=PUSH_ROLE,
                    member=self.member,
                    project=args.project,
                    opts=child,
                )
            )
        for key, repo in args.pull_repositories.items():
            b.append(
                gcp.artifactregistry.RepositoryIamMember(
                    f"{name}-pull-{key}",
                    repository=repo,
                    location=args.location,
                    role=PULL_ROLE,
                    member=self.member,
                    project=args.project,
                    opts=child,
                )
            )
        if args.bucket is not None:
            b.append(
                gcp.storage.BucketIAMMember(
                    f"{name}-bucket",
                    bucket=args.bucket,
                    role=BUCKET_WRITE_ROLE if args.write_bucket else BUCKET_READ_ROLE,
                    member=self.member,
                    opts=child,
                )
            )
        for key, bucket in args.read_buckets.items():
            b.append(
                gcp.storage.BucketIAMMember(
                    f"{name}-read-{key}", bucket=bucket, role=BUCKET_READ_ROLE, member=self.member, opts=child
                )
            )
        for key, secret in args.secrets.items():
            b.append(
                gcp.secretmanager.SecretIamMember(
                    f"{name}-secret-{key}",
                    secret_id=secret,
                    role=SECRET_ROLE,
                    member=self.member,
                    project=args.project,
                    opts=child,
                )
            )
        b.append(
            gcp.projects.IAMMember(f"{name}-logs", project=args.project, role=LOG_ROLE, member=self.member, opts=child)
        )
        self.bindings = b  # every IAM binding of the account (not an output: no class annotation)
        self.iam_settled = Sleep(
            f"{name}-iam-propagation",
            create_duration=f"{IAM_PROPAGATION_S}s",
            triggers={"bindings": pulumi.Output.all(*[x.id for x in b]).apply(",".join)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=b),
        )
        self.register_outputs({"email": self.email, "member": self.member})


# --- running a build from `pulumi up` -------------------------------------------------------------------


def submit_script(*, source: bool, substitutions: list[str], skip_if: str, result: str, source_prefix: str = "") -> str:
    """The ``sh`` script a build command runs. Constant for a given shape: everything that varies (the config,
    the account, bucket names, the file list) comes through the environment, so the command's inputs change
    only when its values do. Build logs go to stderr; stdout carries only ``result``'s output."""
    subs = ",".join(f"{k}=${{CB{k}}}" for k in substitutions)
    dest = f'"$src/{source_prefix}"' if source_prefix else '"$src"'
    upload = (
        (f"mkdir -p {dest}\n  " if source_prefix else "")
        + f'printf \'%s\\n\' "$SOURCE_FILES" | tar -C "$SOURCE_ROOT" -cf - -T - | tar -xf - -C {dest}\n'
        if source
        else ""
    )
    what = '"$src" --gcs-source-staging-dir="$SOURCE_STAGING_DIR"' if source else "--no-source"
    return (
        "set -eu\n"
        f"if {skip_if}; then\n"
        "  echo 'up to date: no build' >&2\n"
        "else\n"
        "  src=$(mktemp -d)\n"
        '  trap \'rm -rf "$src" "$src.json" "$src.out" "$src.rc"\' EXIT\n'
        '  printf \'%s\' "$CLOUDBUILD_CONFIG" > "$src.json"\n'
        + (f"  {upload}" if upload else "")
        + f'  {{ gcloud builds submit {what} --config="$src.json" --service-account="$BUILD_SERVICE_ACCOUNT"'
        + (f' --substitutions="{subs}"' if subs else "")
        # `&& … || …`: set -e does not stop there, so the status is recorded even when the build fails
        + ' 2>&1 && echo 0 > "$src.rc" || echo $? > "$src.rc"; } | tee "$src.out" 1>&2\n'
        + FAILED_BUILD_LOGS
        + "fi\n"
        f"{result}\n"
    )


FAILED_BUILD_LOGS = (
    '  rc=$(cat "$src.rc")\n'
    '  if [ "$rc" != 0 ]; then\n'
    "    id=$(sed -n 's|.*/builds/\\([0-9a-f-]*\\)].*|\\1|p' \"$src.out\" | head -n 1)\n"
    '    if [ -n "$id" ]; then\n'
    '      echo "--- the last build log lines of $id (Cloud Logging) ---" >&2\n'
    '      gcloud logging read "resource.type=\\"build\\" AND resource.labels.build_id=\\"$id\\"" --order=desc \\\n'
    "        --limit=200 --format='value(textPayload)' \\\n"
    "        | awk '{l[NR]=$0} END {for (i=NR; i>0; i--) print l[i]}' >&2 || true\n"
    "    fi\n"
    '    exit "$rc"\n'
    "  fi\n"
)
"""On a failed build, its last log lines from Cloud Logging, so the failure reaches ``pulumi up``'s output (issue 19).
The configs log ``CLOUD_LOGGING_ONLY`` (required with a user-specified service account, see above), and the GA
``gcloud builds submit`` streams logs only from a Cloud Storage logs bucket, not from Cloud Logging ("the GA
``gcloud builds submit`` can only stream logs from a GCS logs bucket, not from Cloud Logging",
https://github.com/innate-inc/innate-os/pull/573): the failure showed only "BUILD FAILURE". The build id comes from
the ``Created [https://cloudbuild.googleapis.com/v1/projects/…/builds/<id>].`` line ``submit`` prints
(GoogleCloudPlatform/cloud-builders#81 shows it); the entries are ``resource.type="build"`` with label ``build_id``
(Cloud Build's monitored resource in Cloud Logging); ``gcloud logging read`` needs ``roles/logging.viewer``, and its
failure never hides the build's own exit status."""


def _environment(
    config: dict[str, Any],
    service_account: pulumi.Input[str],
    project: str,
    substitutions: dict[str, pulumi.Input[str]],
    source_root: str | None,
    source_files: list[str],
    staging_dir: pulumi.Input[str] | None,
    extra: dict[str, pulumi.Input[str]],
) -> dict[str, pulumi.Input[str]]:
    env: dict[str, pulumi.Input[str]] = {
        "CLOUDBUILD_CONFIG": json.dumps(config, sort_keys=True),
        "BUILD_SERVICE_ACCOUNT": service_account,
        # gcloud reads any property from CLOUDSDK_<SECTION>_<NAME> ("gcloud topic configurations").
        "CLOUDSDK_CORE_PROJECT": project,
        **{f"CB{k}": v for k, v in substitutions.items()},
        **extra,
    }
    if source_root is not None:
        env["SOURCE_ROOT"] = source_root
        env["SOURCE_FILES"] = "\n".join(source_files)
        if staging_dir is not None:
            env["SOURCE_STAGING_DIR"] = staging_dir
    return env


@dataclass
class ImageBuildArgs:
    """Inputs of :class:`ImageBuild`."""

    image: str
    """The tag to build and push, ``<region>-docker.pkg.dev/<project>/<repo>/<name>:<tag>``; the tag must change
    whenever an input of the image does (tags are immutable in ``ModelRegistry``)."""
    config: BuildConfig
    """The Cloud Build config (it pushes ``image``), typed: :func:`~cloudrun_gpu.build.image.image_build_config`
    builds one from the serving bundle and its plan (other Pulumi languages pass the same fields as a bag)."""
    service_account: pulumi.Input[str]
    """``projects/<project>/serviceAccounts/<email>`` of the build identity."""
    project: str
    """The project the build runs in."""
    trigger: str
    """Changes exactly when the image's inputs change (the stack uses the tag's hash)."""
    source_files: list[str]
    """Files uploaded as the build source, relative to ``source_root`` (paths kept)."""
    source_staging_dir: pulumi.Input[str]
    """``gs://…`` folder the source archive is uploaded to (one the build identity can read)."""
    source_root: str = "."
    """Folder ``source_files`` are relative to (the Pulumi project directory by default)."""
    substitutions: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """User substitutions the config uses (``_MODEL_BUCKET`` …), exactly those (MUST_MATCH)."""

    def __post_init__(self) -> None:
        # Another Pulumi language passes the config as a plain bag and every value JSON-shaped: built, or refused
        # naming the argument, here rather than while the component registers (issue 21).
        where = "ImageBuildArgs."
        raise_if(args_types(self, where, skip=["config"]))
        raw: Any = self.config
        try:
            config = BuildConfig.of(raw) if isinstance(raw, BuildConfig | dict) else None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ConfigError(
                f"{where}config", raw, f"is not a Cloud Build config ({exc})", "pass a BuildConfig"
            ) from None
        if config is None:
            raise ConfigError(f"{where}config", raw, "is not a BuildConfig or a mapping of one", "pass a BuildConfig")
        raise_if(
            args_types(config, f"{where}config.")
            + [e for i, s in enumerate(config.steps) for e in args_types(s, f"{where}config.steps.{i}.")]
        )
        self.config = config


class ImageBuild(pulumi.ComponentResource):
    """Builds and pushes the serving image with Cloud Build during ``pulumi up``; ``image_ref`` is by digest."""

    digest: pulumi.Output[str]
    """``sha256:…`` of the pushed image."""
    image_ref: pulumi.Output[str]
    """``<repository path>@sha256:…``: what the service deploys."""

    def __init__(self, name: str, args: ImageBuildArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = ImageBuildArgs(**args)
        super().__init__(IMAGE_TOKEN, name, None, opts)
        exists = 'gcloud artifacts docker images describe "$IMAGE" >/dev/null 2>&1'
        self.command = local.Command(  # the `gcloud builds submit` command
            f"{name}-submit",
            create=submit_script(
                source=True,
                substitutions=sorted(args.substitutions),
                skip_if=exists,
                result=f"gcloud artifacts docker images describe \"$IMAGE\" --format='{DIGEST_FORMAT}'",
            ),
            environment=_environment(
                BuildConfig.of(args.config).to_dict(),
                args.service_account,
                args.project,
                args.substitutions,
                args.source_root,
                args.source_files,
                args.source_staging_dir,
                {"IMAGE": args.image},
            ),
            triggers=[args.trigger],
            opts=pulumi.ResourceOptions(parent=self),
        )
        repository = args.image.rsplit(":", 1)[0] if ":" in args.image.rsplit("/", 1)[-1] else args.image
        self.digest = self.command.stdout.apply(parse_digest)
        # By digest; the tag only where no command ran (an offline plan under mocks reports no stdout).
        self.image_ref = self.digest.apply(lambda d: f"{repository}@{d}" if d else args.image)
        self.register_outputs({"digest": self.digest, "image_ref": self.image_ref})


def parse_digest(stdout: str | None) -> str:
    """The digest the build command printed (its last line); anything else stops the deployment. ``None``
    (no output at all: only a mocked or offline run) gives ``""``."""
    if stdout is None:
        return ""
    last = (stdout or "").strip().splitlines()[-1:] or [""]
    digest = last[0].strip()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ValueError(f"the image build printed {stdout!r}, not the pushed image's sha256 digest")
    return digest


@dataclass
class ModelStagingArgs:
    """Inputs of :class:`ModelStaging`."""

    config: dict[str, Any]
    """The Cloud Build config that fetches the model, lays it out and writes it (and ``marker``) to the bucket."""
    service_account: pulumi.Input[str]
    """``projects/<project>/serviceAccounts/<email>`` of the build identity."""
    project: str
    """The project the build runs in."""
    trigger: str
    """Changes exactly when what is staged would change (source, files, layout); the config writes it to
    ``marker`` last, and a run whose marker already holds it does nothing."""
    marker: pulumi.Input[str]
    """``gs://<bucket>/<object>`` the finished staging writes ``trigger`` to."""
    substitutions: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """User substitutions the config uses, exactly those (MUST_MATCH)."""
    source_root: str | None = None
    """For a local model: the folder ``source_files`` are relative to; None: ``--no-source`` (the config fetches
    the model itself)."""
    source_files: list[str] = field(default_factory=list)
    """Local files uploaded as the build source, under ``model/``."""
    source_staging_dir: pulumi.Input[str] | None = None
    """``gs://…`` folder the local source archive is uploaded to."""

    def __post_init__(self) -> None:
        raise_if(args_types(self, "ModelStagingArgs."))  # issue 21: plain values, named


class ModelStaging(pulumi.ComponentResource):
    """Copies the model into the bucket, in the layout the engine and loading method expect, during ``pulumi up``."""

    staged: pulumi.Output[str]
    """The trigger the bucket's marker holds once staging has finished."""

    def __init__(self, name: str, args: ModelStagingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = ModelStagingArgs(**args)
        super().__init__(STAGING_TOKEN, name, None, opts)
        done = '[ "$(gcloud storage cat "$MARKER" 2>/dev/null || true)" = "$STAGE_ID" ]'
        self.command = local.Command(  # the `gcloud builds submit` command
            f"{name}-submit",
            create=submit_script(
                source=args.source_root is not None,
                substitutions=sorted(args.substitutions),
                skip_if=done,
                result="printf '%s\\n' \"$STAGE_ID\"",
                source_prefix="model",
            ),
            environment=_environment(
                args.config,
                args.service_account,
                args.project,
                args.substitutions,
                args.source_root,
                args.source_files,
                args.source_staging_dir,
                {"MARKER": args.marker, "STAGE_ID": args.trigger},
            ),
            triggers=[args.trigger],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.staged = self.command.stdout.apply(lambda s: (s or "").strip())
        self.register_outputs({"staged": self.staged})


__all__ = [
    "BuildConfig",
    "BuildIdentity",
    "BuildIdentityArgs",
    "BuildSecret",
    "BuildSecretArgs",
    "ImageBuild",
    "ImageBuildArgs",
    "ModelStaging",
    "ModelStagingArgs",
    "build_account_id",
    "parse_digest",
    "submit_script",
]

"""Artifact Registry for the serving images (practices L3, B1).

- A Docker repository with cleanup policies: keep the newest N versions, delete untagged images after a few
  days and tagged ones after a month, so model-baked images that are rebuilt often don't pile up cost.
  Tags are immutable: a deployed tag always means the same image (and the same model layer).
- Optional remote repositories, pull-through caches for Docker Hub and for GitHub's registry
  (ghcr.io, where llama.cpp publishes its server images; Cloud Run cannot pull from it directly).
- The runtime identity gets ``roles/artifactregistry.reader`` on these repositories only.
"""

import enum
import re
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.settings import args_settings, args_types, raise_if, settings

TOKEN = "cloudrun-gpu:index:ModelRegistry"
READER_ROLE = "roles/artifactregistry.reader"
REPOSITORY_ID_PATTERN = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
"""Artifact Registry repository ids: 1-63 lowercase letters, digits and hyphens, starting with a letter."""


class RemoteCache(enum.StrEnum):
    """An upstream registry mirrored by a pull-through cache repository."""

    DOCKER_HUB = "docker-hub"
    """Docker Hub (Ollama and vLLM publish their images there)."""
    GHCR = "ghcr"
    """GitHub's registry (llama.cpp publishes its server images there; Cloud Run cannot pull from it directly)."""


REMOTE_UPSTREAMS: dict[str, str] = {"docker-hub": "DOCKER_HUB", "ghcr": "https://ghcr.io"}


@settings
class RegistrySettings:
    """The serving-image repository and its pull-through caches (L3, B1)."""

    repository_id: str = Field(default="llm-serving", pattern=f"^{REPOSITORY_ID_PATTERN}$")
    """Repository id; each remote cache gets ``<repository_id>-<cache>``."""
    keep_versions: int = Field(default=5, ge=1, le=100)
    """Newest image versions kept by the cleanup policy."""
    delete_untagged_after_days: int = Field(default=7, ge=1, le=365)
    """Untagged images older than this are deleted."""
    delete_tagged_after_days: int = Field(default=30, ge=1, le=3650)
    """Tagged images older than this are deleted too, except the newest ``keep_versions`` of each image (the one a
    revision deploys is among them): every rebuild pushes a new multi-GB tag, which otherwise never expires."""
    remote_caches: list[RemoteCache] = Field(default_factory=lambda: [RemoteCache.DOCKER_HUB, RemoteCache.GHCR])
    """Pull-through caches to create (``docker-hub``, ``ghcr``)."""

    def problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = []
        seen: set[str] = set()
        for i, cache in enumerate(self.remote_caches):
            if cache in seen:
                errors.append(
                    ConfigError(
                        f"remote_caches.{i}",
                        cache.value,
                        "is listed twice (two repositories, one name)",
                        "remove the duplicate",
                    )
                )
            seen.add(cache)
            derived = f"{self.repository_id}-{cache.value}"
            if not re.fullmatch(REPOSITORY_ID_PATTERN, derived):
                errors.append(
                    ConfigError(
                        "repository_id",
                        self.repository_id,
                        f"makes the {cache.value} cache's id {derived!r} longer than 63 characters",
                        f"shorten repository_id to at most {62 - len(cache.value)} characters",
                        f"≤ {62 - len(cache.value)} characters",
                    )
                )
        return errors


@dataclass
class ModelRegistryArgs:
    """Inputs of :class:`ModelRegistry`."""

    location: str
    """Region of the repositories (the service's region: pulls stay in-region)."""
    settings: RegistrySettings = field(default_factory=RegistrySettings)
    """Repository id, cleanup and caches (the ``cloudrun-gpu:registry`` stack section)."""
    reader_members: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """IAM members that may pull, by a stable key (e.g. ``{"runtime": identity.member}``): the key names
    the binding, so adding or removing one member never replaces the others."""
    project: str | None = None
    """The project; defaults to the provider's."""

    def __post_init__(self) -> None:
        # Another Pulumi language passes plain values: parsed, or refused naming the argument (issue 21).
        raise_if(args_settings(self, "ModelRegistryArgs.", {"settings": RegistrySettings}))
        raise_if(args_types(self, "ModelRegistryArgs.", skip=["settings"]))


class ModelRegistry(pulumi.ComponentResource):
    """Artifact Registry for the serving images: a cleaned-up Docker repository with immutable tags and
    optional pull-through caches (L3, B1)."""

    repository: gcp.artifactregistry.Repository
    """The Docker repository for the serving images."""
    registry_uri: pulumi.Output[str]
    """The repository's URI to tag and pull images with (``<region>-docker.pkg.dev/<project>/<id>``)."""
    remote_uris: dict[str, pulumi.Output[str]]
    """Each pull-through cache's URI, by cache name (``docker-hub``, ``ghcr``)."""

    def __init__(self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = ModelRegistryArgs(**args)
        super().__init__(TOKEN, name, None, opts)
        cfg = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-docker",
            repository_id=cfg.repository_id,
            location=args.location,
            format="DOCKER",
            mode="STANDARD_REPOSITORY",
            description="Serving images (engine + model layer) for GPU Cloud Run",
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-recent",
                    action="KEEP",
                    most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=cfg.keep_versions
                    ),
                ),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-untagged",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="UNTAGGED", older_than=f"{cfg.delete_untagged_after_days}d"
                    ),
                ),
                # Tagged images expire too (issue 19). "If an artifact version matches criteria in both a delete
                # policy and a keep policy, Artifact Registry applies the keep policy"
                # (https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy-overview), so
                # keep-recent still holds the newest versions, the deployed one among them.
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="ANY", older_than=f"{cfg.delete_tagged_after_days}d"
                    ),
                ),
            ],
            project=args.project,
            opts=child,
        )
        self.registry_uri = self.repository.registry_uri
        self.remotes: dict[str, gcp.artifactregistry.Repository] = {}
        for cache in (c.value for c in cfg.remote_caches):
            upstream = REMOTE_UPSTREAMS[cache]
            docker = (
                gcp.artifactregistry.RepositoryRemoteRepositoryConfigDockerRepositoryArgs(public_repository=upstream)
                if upstream == "DOCKER_HUB"
                else None
            )
            common = (
                None
                if docker
                else gcp.artifactregistry.RepositoryRemoteRepositoryConfigCommonRepositoryArgs(uri=upstream)
            )
            self.remotes[cache] = gcp.artifactregistry.Repository(
                f"{name}-{cache}",
                repository_id=f"{cfg.repository_id}-{cache}",
                location=args.location,
                format="DOCKER",
                mode="REMOTE_REPOSITORY",
                description=f"Pull-through cache of {upstream} for official engine images",
                remote_repository_config=gcp.artifactregistry.RepositoryRemoteRepositoryConfigArgs(
                    description=f"{cache} upstream",
                    docker_repository=docker,
                    common_repository=common,
                ),
                project=args.project,
                opts=child,
            )
        self.remote_uris = {k: r.registry_uri for k, r in self.remotes.items()}
        self.reader_bindings: list[gcp.artifactregistry.RepositoryIamMember] = []
        for i, (who, member) in enumerate(args.reader_members.items()):
            for key, repo in [("docker", self.repository), *self.remotes.items()]:
                self.reader_bindings.append(
                    gcp.artifactregistry.RepositoryIamMember(
                        f"{name}-{key}-reader-{who}",
                        repository=repo.name,
                        location=args.location,
                        role=READER_ROLE,
                        member=member,
                        project=args.project,
                        # Named by list position before 0.2; the alias adopts those bindings without a replace.
                        opts=pulumi.ResourceOptions(
                            parent=self, aliases=[pulumi.Alias(name=f"{name}-{key}-reader-{i}")]
                        ),
                    )
                )
        self.register_outputs({"registry_uri": self.registry_uri, "remote_uris": self.remote_uris})


__all__ = ["ModelRegistry", "ModelRegistryArgs", "RegistrySettings", "RemoteCache"]

"""Artifact Registry for the serving images (practices L3, B1).

- A Docker repository with cleanup policies: keep the newest N versions and delete untagged
  images after a few days, so model-baked images that are rebuilt often don't pile up cost.
  Tags are immutable: a deployed tag always means the same image (and the same model layer).
- Optional remote repositories, pull-through caches for Docker Hub and for GitHub's registry
  (ghcr.io, where llama.cpp publishes its server images; Cloud Run cannot pull from it directly).
- The runtime identity gets ``roles/artifactregistry.reader`` on these repositories only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_gcp as gcp

TOKEN = "cloudrun-gpu:index:ModelRegistry"
READER_ROLE = "roles/artifactregistry.reader"
REMOTE_UPSTREAMS: dict[str, str] = {"docker-hub": "DOCKER_HUB", "ghcr": "https://ghcr.io"}


@dataclass
class ModelRegistryArgs:
    location: str
    repository_id: str = "llm-serving"
    keep_versions: int = 5
    delete_untagged_after_days: int = 7
    remote_caches: list[Literal["docker-hub", "ghcr"]] = field(default_factory=lambda: ["docker-hub", "ghcr"])
    reader_members: list[pulumi.Input[str]] = field(default_factory=list)
    """IAM members (e.g. ``serviceAccount:…``) that may pull: the runtime identity."""
    project: str | None = None


class ModelRegistry(pulumi.ComponentResource):
    repository: gcp.artifactregistry.Repository
    registry_uri: pulumi.Output[str]
    remote_uris: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-docker",
            repository_id=args.repository_id,
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
                        keep_count=args.keep_versions
                    ),
                ),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-untagged",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="UNTAGGED", older_than=f"{args.delete_untagged_after_days}d"
                    ),
                ),
            ],
            project=args.project,
            opts=child,
        )
        self.registry_uri = self.repository.registry_uri
        self.remotes: dict[str, gcp.artifactregistry.Repository] = {}
        for cache in args.remote_caches:
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
                repository_id=f"{args.repository_id}-{cache}",
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
        for i, member in enumerate(args.reader_members):
            for key, repo in [("docker", self.repository), *self.remotes.items()]:
                self.reader_bindings.append(
                    gcp.artifactregistry.RepositoryIamMember(
                        f"{name}-{key}-reader-{i}",
                        repository=repo.name,
                        location=args.location,
                        role=READER_ROLE,
                        member=member,
                        project=args.project,
                        opts=child,
                    )
                )
        self.register_outputs({"registry_uri": self.registry_uri, "remote_uris": self.remote_uris})

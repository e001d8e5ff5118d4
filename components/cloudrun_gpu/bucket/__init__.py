"""The model bucket: one private copy of the weights in your own project (practices L1, L2, L4).

Secure by default: uniform bucket-level access, public access prevention enforced, soft delete
on, no force-destroy in production. Bucket names are global, so a ``random.RandomId`` suffix
keeps the name unique and stable across updates. The runtime identity gets object read on
this bucket only.
"""

import re
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random
from pydantic import Field

from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.settings import args_settings, args_types, raise_if, settings

TOKEN = "cloudrun-gpu:index:ModelBucket"
READER_ROLE = "roles/storage.objectViewer"
DAY_S = 86_400
SUFFIX_HEX = 8
"""The bucket name is ``<name_prefix>-<8 hex digits>``: globally unique without a naming scheme."""
NAME_PREFIX_MAX = 41
"""The longest ``name_prefix``: a stack adds ``-<region>`` to it only while the result stays this short."""


@settings
class BucketSettings:
    """The private model bucket (L1, L2, L4): uniform access, public access prevention, soft delete."""

    name_prefix: str = Field(default="llm-models", pattern=rf"^[a-z0-9][-a-z0-9]{{2,{NAME_PREFIX_MAX - 1}}}$")
    """Bucket name prefix; a random suffix makes the name globally unique."""
    versioning: bool = False
    """Keep replaced model objects (noncurrent copies are deleted after 30 days)."""
    soft_delete_days: int = Field(default=7, ge=0, le=90)
    """Days deleted objects stay recoverable: 0 (off) or 7-90, as Cloud Storage allows."""
    force_destroy: bool | None = None
    """Delete the objects with the bucket on destroy; the stack defaults it to false in prod, true elsewhere."""

    def problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = []
        if 0 < self.soft_delete_days < 7:
            errors.append(
                ConfigError(
                    "soft_delete_days",
                    self.soft_delete_days,
                    "Cloud Storage keeps soft-deleted objects 7-90 days, or not at all",
                    "set 0 (off) or 7..90",
                    "0, 7..90",
                )
            )
        # Cloud Storage naming rules: no name may begin with "goog" or contain "google" or a close
        # misspelling such as "g00gle" (cloud.google.com/storage/docs/buckets#naming).
        if self.name_prefix.startswith("goog") or re.search(r"g[o0]{2}g[l1]e", self.name_prefix):
            errors.append(
                ConfigError(
                    "name_prefix",
                    self.name_prefix,
                    "Cloud Storage refuses bucket names that begin with 'goog' or contain 'google' (or a look-alike)",
                    "choose another prefix, e.g. 'llm-models'",
                )
            )
        return errors


@dataclass
class ModelBucketArgs:
    """Inputs of :class:`ModelBucket`."""

    location: str
    """Bucket location: the service's region, so weights never cross regions at start-up."""
    settings: BucketSettings = field(default_factory=BucketSettings)
    """Name prefix, versioning, soft delete, force destroy (the ``cloudrun-gpu:bucket`` stack section)."""
    hierarchical_namespace: bool = False
    """Hierarchical namespace (faster listing and folder renames for very large trees)."""
    reader_members: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """IAM members granted object read on this bucket only, by a stable key (e.g. ``{"runtime": …}``)."""
    labels: dict[str, str] = field(default_factory=dict)
    """Labels on the bucket."""
    project: str | None = None
    """The project; defaults to the provider's."""

    def __post_init__(self) -> None:
        # Another Pulumi language passes plain values: parsed, or refused naming the argument (issue 21).
        raise_if(args_settings(self, "ModelBucketArgs.", {"settings": BucketSettings}))
        raise_if(args_types(self, "ModelBucketArgs.", skip=["settings"]))


class ModelBucket(pulumi.ComponentResource):
    """A private model bucket in your own project: uniform access, public access prevention, soft delete
    (L1, L2, L4)."""

    bucket: gcp.storage.Bucket
    """The Cloud Storage bucket resource."""
    bucket_name: pulumi.Output[str]
    """The bucket's globally unique name (``<name_prefix>-<8 hex digits>``)."""
    url: pulumi.Output[str]
    """The bucket's ``gs://`` URL."""

    def __init__(self, name: str, args: ModelBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = ModelBucketArgs(**args)
        super().__init__(TOKEN, name, None, opts)
        cfg = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.suffix = random.RandomId(f"{name}-suffix", byte_length=SUFFIX_HEX // 2, opts=child)
        lifecycle = []
        if cfg.versioning:
            lifecycle.append(
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(days_since_noncurrent_time=30),
                )
            )
        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            name=self.suffix.hex.apply(lambda h: f"{cfg.name_prefix}-{h}"),
            location=args.location,
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=cfg.versioning),
            soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(
                retention_duration_seconds=cfg.soft_delete_days * DAY_S
            ),
            hierarchical_namespace=gcp.storage.BucketHierarchicalNamespaceArgs(enabled=True)
            if args.hierarchical_namespace
            else None,
            lifecycle_rules=lifecycle or None,
            force_destroy=bool(cfg.force_destroy),
            labels=args.labels or None,
            project=args.project,
            opts=child,
        )
        self.bucket_name = self.bucket.name
        self.url = self.bucket.url
        self.reader_bindings = [
            gcp.storage.BucketIAMMember(
                f"{name}-reader-{who}",
                bucket=self.bucket.name,
                role=READER_ROLE,
                member=member,
                opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=f"{name}-reader-{i}")]),
            )
            for i, (who, member) in enumerate(args.reader_members.items())
        ]
        self.register_outputs({"bucket_name": self.bucket_name, "url": self.url})


__all__ = ["BucketSettings", "ModelBucket", "ModelBucketArgs"]

"""The model bucket: one private copy of the weights in your own project (practices L1, L2, L4).

Secure by default: uniform bucket-level access, public access prevention enforced, soft delete
on, no force-destroy in production. Bucket names are global, so a ``random.RandomId`` suffix
keeps the name unique and stable across updates. The runtime identity gets object read on
this bucket only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

TOKEN = "cloudrun-gpu:index:ModelBucket"
READER_ROLE = "roles/storage.objectViewer"
DAY_S = 86_400


@dataclass
class ModelBucketArgs:
    location: str
    name_prefix: str = "llm-models"
    versioning: bool = False
    soft_delete_days: int = 7
    """0 disables soft delete; GCS accepts 7-90 days otherwise."""
    force_destroy: bool = False
    """Never true in production: destroying the stack must not delete the model silently."""
    hierarchical_namespace: bool = False
    reader_members: list[pulumi.Input[str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    project: str | None = None


class ModelBucket(pulumi.ComponentResource):
    bucket: gcp.storage.Bucket
    bucket_name: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: ModelBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.suffix = random.RandomId(f"{name}-suffix", byte_length=4, opts=child)
        lifecycle = []
        if args.versioning:
            lifecycle.append(
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(days_since_noncurrent_time=30),
                )
            )
        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            name=self.suffix.hex.apply(lambda h: f"{args.name_prefix}-{h}"),
            location=args.location,
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=args.versioning),
            soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(
                retention_duration_seconds=args.soft_delete_days * DAY_S
            ),
            hierarchical_namespace=gcp.storage.BucketHierarchicalNamespaceArgs(enabled=True)
            if args.hierarchical_namespace
            else None,
            lifecycle_rules=lifecycle or None,
            force_destroy=args.force_destroy,
            labels=args.labels or None,
            project=args.project,
            opts=child,
        )
        self.bucket_name = self.bucket.name
        self.url = self.bucket.url
        self.reader_bindings = [
            gcp.storage.BucketIAMMember(
                f"{name}-reader-{i}",
                bucket=self.bucket.name,
                role=READER_ROLE,
                member=member,
                opts=child,
            )
            for i, member in enumerate(args.reader_members)
        ]
        self.register_outputs({"bucket_name": self.bucket_name, "url": self.url})

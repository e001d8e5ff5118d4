"""The runtime identity: a dedicated service account that starts with no roles at all.

Access is granted on single resources by the components that own them (object read on the
model bucket, read on the image repository), never project-wide: least privilege by default.
"""

import re
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.settings import args_types, raise_if

TOKEN = "cloudrun-gpu:index:RuntimeIdentity"


@dataclass
class RuntimeIdentityArgs:
    """Inputs of :class:`RuntimeIdentity`."""

    account_id: str
    """6-30 characters, lowercase letters, digits and hyphens (GCP rule); changing it replaces the account."""
    display_name: str = "LLM inference runtime"
    """Shown in the console's IAM pages."""
    project: str | None = None
    """The project; defaults to the provider's."""

    def __post_init__(self) -> None:
        raise_if(args_types(self, "RuntimeIdentityArgs.", skip=["account_id"]))  # issue 21: plain values, named
        if not isinstance(self.account_id, str) or not re.fullmatch(r"[a-z]([-a-z0-9]{4,28}[a-z0-9])", self.account_id):
            raise ConfigError(
                "RuntimeIdentityArgs.account_id",
                self.account_id,
                "is not a valid service account id",
                "use 6-30 lowercase letters, digits and hyphens, starting with a letter",
            )


class RuntimeIdentity(pulumi.ComponentResource):
    """A dedicated service account with no project roles (least privilege)."""

    account: gcp.serviceaccount.Account
    """The service account resource."""
    email: pulumi.Output[str]
    """The service account's email."""
    member: pulumi.Output[str]
    """The IAM member string (``serviceAccount:<email>``) for bindings on single resources."""

    def __init__(self, name: str, args: RuntimeIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = RuntimeIdentityArgs(**args)
        super().__init__(TOKEN, name, None, opts)
        self.account = gcp.serviceaccount.Account(
            f"{name}-sa",
            account_id=args.account_id,
            display_name=args.display_name,
            description="Runtime identity of a GPU Cloud Run inference service (no project roles).",
            project=args.project,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.email = self.account.email
        self.member = self.account.member
        self.register_outputs({"email": self.email, "member": self.member})

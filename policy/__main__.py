"""What the Pulumi CLI runs for ``pulumi preview --policy-pack policy``: serve POLICIES as one pack.

The CLI's analyzer shim runs ``python -m pulumi.policy <engine> .`` in this directory, which
executes this file with the directory on ``sys.path``; hence the top-level
``cloudrun_gpu_policy`` import. Constructing ``PolicyPack`` starts the gRPC server and blocks, so
nothing else constructs one: tests and the offline checker use ``cloudrun_gpu_policy.rules``.
"""

from cloudrun_gpu_policy.rules import DEFAULT_ENFORCEMENT, PACK_NAME, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=list(POLICIES),
    enforcement_level=DEFAULT_ENFORCEMENT,
    description="Cloud Run GPU inference rules (practices L4, L5, D1, D2, A1-A4, B3) on raw resource inputs.",
)

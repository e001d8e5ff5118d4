"""Run the pack's policies without the Pulumi CLI: on a list of resources, or on a stack's offline plan.

``check`` feeds each resource to each policy the way the SDK's analyzer does on ``pulumi preview``
(``pulumi_policy.policy._PolicyAnalyzerServicer.Analyze``): inputs deserialized and wrapped in the
unknown-checking proxy, a real ``ResourceValidationArgs``, the policy's config, and the enforcement
level resolved from config, policy and pack default. So a green offline check means the same
policies found nothing in the same inputs, before any cloud account or CLI is involved.

Command line (from the repository root)::

    python -m policy.cloudrun_gpu_policy.offline --stack dev [--json] [--config FILE] [--production]

exits 1 when any mandatory policy is violated, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from inspect import isawaitable
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from .rules import DEFAULT_ENFORCEMENT, POLICIES

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENVIRONMENTS = ("prod", "production")
ENVIRONMENT_KEY = "cloudrun-gpu:environment"

PolicyConfig = Mapping[str, str | Mapping[str, Any]]
"""Pack config as ``pulumi preview --policy-pack-config`` takes it: policy name -> level, or
-> ``{"enforcementLevel": ..., <property>: ...}``."""


@dataclass(frozen=True)
class Violation:
    """One report from one policy about one resource."""

    policy: str
    resource: str
    resource_type: str
    message: str
    enforcement_level: str
    """``mandatory`` (blocks ``pulumi up``) or ``advisory`` (printed only)."""

    @property
    def mandatory(self) -> bool:
        return self.enforcement_level == EnforcementLevel.MANDATORY.value

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _settings(
    policy: ResourceValidationPolicy, config: PolicyConfig, production: bool
) -> tuple[EnforcementLevel, dict[str, Any]]:
    """Enforcement level and properties for one policy, resolved as the SDK does.

    Level: the pack config's, else the policy's own, else the pack default (SDK:
    ``_get_enforcement_level``). ``remediate`` reports as ``mandatory`` (SDK ``Analyze``).
    ``production`` goes to every policy whose schema declares it.
    """
    entry = config.get(policy.name)
    props: dict[str, Any] = {}
    level = policy.enforcement_level or DEFAULT_ENFORCEMENT
    if isinstance(entry, str):
        level = EnforcementLevel(entry)
    elif isinstance(entry, Mapping):
        props = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        if "enforcementLevel" in entry:
            level = EnforcementLevel(entry["enforcementLevel"])
    schema = policy.config_schema.properties if policy.config_schema else {}
    if production and "production" in schema:
        props["production"] = True
    return (EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level), props


def _wire(value: Any) -> Any:
    """Inputs as the analyzer receives them: a protobuf Struct, where every number is a double.

    So ``64`` reaches a policy as ``64.0`` under the CLI; converting here keeps the offline check
    from passing a policy that would misread the real wire values.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def _args(resource: Mapping[str, Any], props: dict[str, Any], stack: str, project: str) -> ResourceValidationArgs:
    typ, name = str(resource["type"]), str(resource["name"])
    inputs = unknown_checking_proxy(deserialize_properties(_wire(resource.get("inputs") or {})))
    opts = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=None,
    )
    urn = f"urn:pulumi:{stack}::{project}::{typ}::{name}"
    return ResourceValidationArgs(typ, inputs, urn, name, opts, None, props or None)


def _reporter(
    found: list[Violation], policy: str, args: ResourceValidationArgs, level: EnforcementLevel
) -> ReportViolation:
    def report(message: str, urn: str | None = None) -> None:
        found.append(Violation(policy, args.name, args.resource_type, message, level.value))

    return report


def check(
    resources: Sequence[Mapping[str, Any]],
    *,
    production: bool,
    config: PolicyConfig | None = None,
    policies: Sequence[ResourceValidationPolicy] = POLICIES,
    stack: str = "offline",
    project: str = "offline",
) -> list[Violation]:
    """Every violation the policies report for ``resources`` (``{"type", "name", "inputs"}`` dicts).

    ``production`` marks the whole stack as production (the ``production`` property of policies that
    declare one); resources labelled ``environment: prod`` count as production regardless.
    """
    found: list[Violation] = []
    for policy in policies:
        level, props = _settings(policy, config or {}, production)
        if level == EnforcementLevel.DISABLED:
            continue
        for resource in resources:
            args = _args(resource, props, stack, project)
            try:
                result = policy.validate(args, _reporter(found, policy.name, args, level))
                if isawaitable(result):
                    raise TypeError(f"policy {policy.name} is async; the offline checker runs synchronous ones")
            except UnknownValueError as exc:
                # The SDK turns this into an advisory "can't run during preview" diagnostic; same here.
                found.append(
                    Violation(
                        policy.name,
                        args.name,
                        args.resource_type,
                        f"can't run during preview: {exc.message}",
                        EnforcementLevel.ADVISORY.value,
                    )
                )
    return found


def stack_is_production(stack: str, root: Path = ROOT) -> bool:
    """Whether ``Pulumi.<stack>.yaml`` sets ``cloudrun-gpu:environment`` to prod (or production)."""
    import yaml

    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return False
    data = yaml.safe_load(path.read_text()) or {}
    env = (data.get("config") or {}).get(ENVIRONMENT_KEY)
    return isinstance(env, str) and env.lower() in PRODUCTION_ENVIRONMENTS


def stack_resources(stack: str, root: Path = ROOT) -> list[dict[str, Any]]:
    """The custom resources the stack's program would create, rendered offline under mocks."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from stack.cli import plan_json

    resources: list[dict[str, Any]] = plan_json(stack, root)["resources"]
    return resources


def _render_text(stack: str, production: bool, n: int, violations: list[Violation]) -> str:
    lines = [
        f"Policy check of stack {stack!r} (production: {'yes' if production else 'no'}): "
        f"{n} resources × {len(POLICIES)} policies"
    ]
    for v in violations:
        lines.append(f"  [{v.enforcement_level}] {v.policy}  {v.resource_type}  {v.resource}")
        lines.append(f"      {v.message}")
    mandatory = sum(v.mandatory for v in violations)
    summary = f"{len(violations)} violation(s), {mandatory} mandatory." if violations else "No violations."
    lines.append(summary)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policy.cloudrun_gpu_policy.offline",
        description="Run the Cloud Run GPU policy pack on a stack's offline plan (no Pulumi CLI, no cloud).",
    )
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--root", default=str(ROOT), help="project directory holding Pulumi.<stack>.yaml")
    parser.add_argument("--json", action="store_true", help="print the violations as JSON")
    parser.add_argument("--config", help="policy pack config JSON, as for pulumi --policy-pack-config")
    parser.add_argument(
        "--production",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"treat the stack as production (default: {ENVIRONMENT_KEY} is prod in Pulumi.<stack>.yaml)",
    )
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    production = stack_is_production(args.stack, root) if args.production is None else args.production
    config = json.loads(Path(args.config).read_text()) if args.config else {}
    resources = stack_resources(args.stack, root)
    violations = check(resources, production=production, config=config, stack=args.stack)
    if args.json:
        out = {
            "stack": args.stack,
            "production": production,
            "resources": len(resources),
            "policies": [p.name for p in POLICIES],
            "violations": [v.to_dict() for v in violations],
        }
        print(json.dumps(out, indent=2))
    else:
        print(_render_text(args.stack, production, len(resources), violations))
    return 1 if any(v.mandatory for v in violations) else 0


if __name__ == "__main__":
    sys.exit(main())

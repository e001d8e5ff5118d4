"""Command line: ``python -m stack plan|size|preflight|loadtest``.

``plan`` is the main job, offline: it validates a stack file, explains the sizing, and renders
the resources the stack would create under Pulumi mocks (no Pulumi CLI, no cloud account).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudrun_gpu.engines import engine_names
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.quota import quota_need

if TYPE_CHECKING:
    from cloudrun_gpu.pricing import StackCost

    from stack.config import ValidatedStack
    from stack.render import Recorded

ROOT = Path(__file__).resolve().parent.parent
BAR_WIDTH = 60
API_TYPE = "gcp:projects/service:Service"

# Inputs worth showing per resource type in the text plan (wire names, dotted paths).
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "gcp:cloudrunv2/service:Service": (
        "name",
        "location",
        "ingress",
        "deletionProtection",
        "template.nodeSelector.accelerator",
        "template.gpuZonalRedundancyDisabled",
        "template.containers.0.resources.limits",
        "template.containers.0.resources.cpuIdle",
        "template.executionEnvironment",
        "template.maxInstanceRequestConcurrency",
        "template.scaling",
        "template.containers.0.startupProbe",
        "template.vpcAccess.egress",
        "template.volumes",
    ),
    "gcp:compute/subnetwork:Subnetwork": ("ipCidrRange", "region", "privateIpGoogleAccess"),
    "gcp:compute/globalAddress:GlobalAddress": ("name", "address", "addressType", "purpose"),
    "gcp:compute/globalForwardingRule:GlobalForwardingRule": ("name", "target", "loadBalancingScheme"),
    "gcp:dns/managedZone:ManagedZone": ("dnsName", "visibility"),
    "gcp:dns/recordSet:RecordSet": ("name", "type", "rrdatas"),
    "gcp:compute/routerNat:RouterNat": (
        "sourceSubnetworkIpRangesToNat",
        "enableDynamicPortAllocation",
        "minPortsPerVm",
        "maxPortsPerVm",
        "logConfig",
    ),
    "gcp:artifactregistry/repository:Repository": ("repositoryId", "mode", "cleanupPolicies", "remoteRepositoryConfig"),
    "gcp:storage/bucket:Bucket": (
        "name",
        "location",
        "uniformBucketLevelAccess",
        "publicAccessPrevention",
        "softDeletePolicy",
        "versioning",
        "forceDestroy",
    ),
    "gcp:storage/bucketIAMMember:BucketIAMMember": ("role", "member"),
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": ("role", "member"),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": ("role", "member"),
    "gcp:serviceaccount/account:Account": ("accountId",),
    API_TYPE: ("service", "disableOnDestroy"),
    "gcp:compute/regionNetworkEndpointGroup:RegionNetworkEndpointGroup": ("region", "networkEndpointType", "cloudRun"),
    "gcp:compute/backendService:BackendService": (
        "loadBalancingScheme",
        "protocol",
        "backends",
        "outlierDetection",
        "securityPolicy",
    ),
    "gcp:compute/regionBackendService:RegionBackendService": ("region", "loadBalancingScheme", "protocol", "backends"),
    "gcp:compute/uRLMap:URLMap": ("defaultService",),
    "gcp:compute/regionUrlMap:RegionUrlMap": ("region", "defaultService"),
    "gcp:compute/targetHttpsProxy:TargetHttpsProxy": ("urlMap", "sslCertificates"),
    "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy": ("region", "urlMap", "sslCertificates"),
    "gcp:compute/forwardingRule:ForwardingRule": ("region", "target", "loadBalancingScheme", "portRange"),
    "gcp:compute/managedSslCertificate:ManagedSslCertificate": ("managed",),
}

FRONT_DOOR_TYPE = "cloudrun-gpu:index:FrontDoor"
FRONT_DOOR_CHAIN: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    (
        "serverless NEG",
        ("gcp:compute/regionNetworkEndpointGroup:RegionNetworkEndpointGroup",),
        None,
    ),
    (
        "backend service",
        ("gcp:compute/backendService:BackendService", "gcp:compute/regionBackendService:RegionBackendService"),
        "backends",
    ),
    ("URL map", ("gcp:compute/uRLMap:URLMap", "gcp:compute/regionUrlMap:RegionUrlMap"), "defaultService"),
    (
        "HTTPS proxy",
        ("gcp:compute/targetHttpsProxy:TargetHttpsProxy", "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy"),
        "urlMap",
    ),
    (
        "forwarding rule",
        ("gcp:compute/globalForwardingRule:GlobalForwardingRule", "gcp:compute/forwardingRule:ForwardingRule"),
        "target",
    ),
)
"""The front door's request path, each step with the input that points at the step before it."""


def _dig(d: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(d, list) and part.isdigit() and int(part) < len(d):
            d = d[int(part)]
        elif isinstance(d, dict) and part in d:
            d = d[part]
        else:
            return None
    return d


def memory_bar(sizing: dict[str, Any]) -> str:
    total = sizing["vram_bytes"]
    parts = [("W", sizing["weights_bytes"]), ("o", sizing["runtime_overhead_bytes"]), ("K", sizing["kv_cache_bytes"])]
    reserved = total - sizing["budget_bytes"]
    cells = []
    for ch, n in parts:
        cells.append(ch * max(1, round(n / total * BAR_WIDTH)) if n else "")
    used = sum(len(c) for c in cells)
    res_cells = max(1, round(reserved / total * BAR_WIDTH))
    free = max(0, BAR_WIDTH - used - res_cells)
    bar = "".join(cells) + "." * free + "#" * res_cells
    legend = (
        f"W weights {sizing['weights_bytes'] / GIB:.2f} GiB | o engine {sizing['runtime_overhead_bytes'] / GIB:.2f}"
        f" GiB | K KV {sizing['kv_cache_bytes'] / GIB:.2f} GiB ({sizing['max_parallel_sequences']} × "
        f"{sizing['kv_cache_bytes_per_sequence'] / GIB:.3f}) | . free | # reserved {reserved / GIB:.2f} GiB"
        f" of {total / GIB:.2f} GiB"
    )
    return f"[{bar}]\n  {legend}"


def plan_json(stack: str, root: Path) -> dict[str, Any]:
    """Everything ``plan --json`` prints for ``stack``: sizing, service numbers and every resource."""
    return _plan(stack, root)[1]


def _plan(stack: str, root: Path) -> tuple[ValidatedStack, dict[str, Any]]:
    """The validated stack and its ``plan --json`` document: the stack file is read and sized once here (the
    program run under mocks sizes it again, as ``pulumi up`` would)."""
    from stack.config import read_config, read_stack_file, stack_file
    from stack.render import effective_dependencies, render_program, urn_name

    flat = read_stack_file(stack_file(stack, root))
    vs = read_config(flat, base_dir=root, plan_only=True)
    resources = render_program(root / "__main__.py", stack, flat)
    deps = effective_dependencies(resources)

    def entry(r: Recorded) -> dict[str, Any]:
        # What the resource waits for, own and inherited through its parents, by logical name.
        return {**r.to_dict(), "dependencies": sorted({urn_name(u) for u in deps.get(r.urn, ())})}

    cfg = vs.config
    doc = {
        "stack": stack,
        "warnings": list(vs.warnings),
        "project": cfg.project,
        "region": cfg.region,
        "sizing": vs.sizing.to_dict(),
        "service": {
            "cpu": vs.cpu,
            "memory_gib": vs.memory_gib,
            "max_instance_request_concurrency": vs.concurrency,
            "in_memory_volume_gib": vs.in_memory_volume_gib,
            "model_path": vs.model_path,
        },
        "resources": [entry(r) for r in resources if r.custom],
        "components": [entry(r) for r in resources if not r.custom],
        "quota_need": quota_need(
            cfg.gpu.type, cfg.gpu.zonal_redundancy, cfg.scaling.max_instances, vs.cpu, vs.memory_gib
        ).to_dict(),
    }
    # Only stacks that use the multi-region sections get the keys below: a single-region plan stays as it was.
    if cfg.regions or cfg.frontdoor is not None:
        doc["regions"] = [_region_entry(r) for r in vs.regional]
    if cfg.frontdoor is not None:
        doc["frontdoor"] = {"scheme": cfg.frontdoor.scheme.value, "chain": front_door_chain(resources)}
    if vs.capacity is not None:
        doc["capacity"] = vs.capacity.to_dict()
    doc["cost"] = stack_cost(vs).to_dict()
    return vs, doc


def stack_cost(vs: ValidatedStack) -> StackCost:
    """The stack's price (#24): each region's instance at list price, × min instances (idle) and × max instances
    (full), and per million output tokens at the per-instance throughput the capacity section declares (measured
    or estimated); with a capacity plan, also what the planned instances cost for the throughput they serve."""
    from cloudrun_gpu.pricing import RegionCost, StackCost, instance_cost

    by_region = {r.name: r for r in vs.capacity.regions} if vs.capacity is not None else {}
    regions = []
    for region in vs.regional:
        rc = region.config
        planned = by_region.get(rc.region)
        thr = planned.throughput if planned is not None else None
        regions.append(
            RegionCost(
                instance=instance_cost(
                    rc.region, rc.gpu.type.value, rc.gpu.zonal_redundancy, region.cpu, region.memory_gib
                ),
                min_instances=rc.scaling.min_instances,
                max_instances=rc.scaling.max_instances,
                output_tokens_per_s=thr.output_tokens_per_s if thr is not None else None,
                throughput_source=thr.source if thr is not None else "",
                throughput_measured=thr.measured if thr is not None else False,
            )
        )
    cap = vs.capacity
    return StackCost(
        regions=tuple(regions),
        planned_per_hour=cap.usd_per_hour if cap is not None else None,
        planned_output_tokens_per_s=cap.output_tokens_per_s if cap is not None else None,
    )


def _region_entry(vs: ValidatedStack) -> dict[str, Any]:
    """One region of the plan: where, on which GPU, how its service is sized, and what it reads."""
    cfg = vs.config
    return {
        "region": cfg.region,
        "gpu": cfg.gpu.type.value,
        # The Cloud Run service's own name (what `gcloud run services describe --region` finds): every region
        # deploys it under `service.name`; only the Pulumi logical name carries the region suffix.
        "service": cfg.service.name,
        "cpu": vs.cpu,
        "memory_gib": vs.memory_gib,
        "max_instance_request_concurrency": vs.concurrency,
        "max_parallel_sequences": vs.sizing.max_parallel_sequences,
        "min_instances": cfg.scaling.min_instances,
        "max_instances": cfg.scaling.max_instances,
        "gpu_quota": cfg.gpu.quota,
        "subnet_cidr": None if cfg.network.byo else cfg.network.subnet_cidr,
        "bucket_location": vs.bucket_location,
        "quota_need": quota_need(
            cfg.gpu.type, cfg.gpu.zonal_redundancy, cfg.scaling.max_instances, vs.cpu, vs.memory_gib
        ).to_dict(),
    }


def front_door_chain(resources: list[Recorded]) -> list[dict[str, Any]]:
    """The front door's resources in request order (NEG → backend service → URL map → proxy → forwarding rule),
    each with the resources its pointing input was computed from (the SDK's property dependencies, so the
    references are the program's, not guessed from names)."""
    from stack.render import urn_name

    ours = [r for r in resources if r.custom and r.registration and f"{FRONT_DOOR_TYPE}$" in r.urn]
    chain = []
    for step, types, prop in FRONT_DOOR_CHAIN:
        for r in ours:
            if r.type not in types:
                continue
            deps = r.registration.property_dependencies.get(prop, []) if prop and r.registration else []
            chain.append(
                {
                    "step": step,
                    "type": r.type,
                    "name": r.name,
                    "via": prop,
                    "refers_to": sorted(urn_name(u) for u in deps),
                }
            )
    return chain


def cmd_plan(args: argparse.Namespace) -> int:
    vs, out = _plan(args.stack, Path(args.root).resolve())
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for warning in vs.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    custom = out["resources"]
    sizing = out["sizing"]
    cfg = vs.config
    p = vs.sizing
    print(f"Stack {args.stack}: project {cfg.project}, region {cfg.region}, environment {cfg.environment}")
    print(f"Model {p.model} ({p.weights_quant}) on {p.gpu} with {p.engine}; loading: {cfg.loading.method}\n")
    print("GPU memory")
    print(memory_bar(sizing) + "\n")
    print("Sizing derivation")
    for line in p.explain:
        print(f"  - {line}")
    sp = p.startup_probe
    print(
        f"\nCloud Run: {vs.cpu} vCPU, {vs.memory_gib} GiB, concurrency {vs.concurrency}, "
        f"startup probe GET {sp.path} delay {sp.initial_delay_seconds}s period {sp.period_seconds}s "
        f"timeout {sp.timeout_seconds}s × {sp.failure_threshold}"
    )
    for region in vs.regional:  # each region draws on its own region's quotas
        rc = region.config
        need = quota_need(rc.gpu.type, rc.gpu.zonal_redundancy, rc.scaling.max_instances, region.cpu, region.memory_gib)
        print((f"{rc.region}: " if vs.others else "") + need.summary())
    if "regions" in out:
        _print_regions(out, vs)
    from cloudrun_gpu.pricing import render_cost

    print("\nCost")
    for line in render_cost(stack_cost(vs)):
        print(f"  {line}")
    apis = [r["inputs"]["service"] for r in custom if r["type"] == API_TYPE]
    if apis:
        print(f"\nAPIs enabled first, everything else waits for them ({len(apis)}): {', '.join(sorted(apis))}")
    print(f"\nResources ({len(custom)})")
    for r in custom:
        print(f"  + {r['type']}  {r['name']}")
        for key in KEY_SETTINGS.get(r["type"], ()):
            value = _dig(r["inputs"], key)
            if value is not None:
                print(f"      {key}: {json.dumps(value, default=str)}")
    return 0


def _print_regions(out: dict[str, Any], vs: ValidatedStack) -> None:
    """The multi-region part of the text plan: each region, the front door's chain, the capacity table."""
    from cloudrun_gpu.capacity import render_region_table

    regions = out["regions"]
    print(f"\nRegions ({len(regions)}, nearest the users first; the first keeps single-region names)")
    for r in regions:
        print(
            f"  {r['region']}: {r['gpu']}, {r['cpu']} vCPU, {r['memory_gib']} GiB, concurrency "
            f"{r['max_instance_request_concurrency']}, instances {r['min_instances']}..{r['max_instances']} "
            f"(GPU quota {r['gpu_quota']}), subnet {r['subnet_cidr']}, model bucket in {r['bucket_location']}, "
            f"service {r['service']}"
        )
    door = out.get("frontdoor")
    if door:
        print(f"\nFront door ({door['scheme']}): request path")
        for link in door["chain"]:
            via = f" ← {link['via']}: {', '.join(link['refers_to'])}" if link["via"] else ""
            print(f"  {link['step']}: {link['name']}{via}")
    if vs.capacity is not None:
        print("\nCapacity plan")
        print(render_region_table(vs.capacity))


SIZE_FLAGS = {
    "engine.context_length": "--context",
    "engine.parallel": "--parallel",
    "engine.kv_cache_type": "--kv-type",
    "engine.name": "--engine",
    "model.quantization": "--quant",
    "model.gguf": "--gguf",
    "model.hf_config": "--hf-config",
    "model": "MODEL",
    "gpu.type": "--gpu",
    "loading.method": "--loading",
    "loading.throughput_gib_per_s": "--loading",
    "model_path": "--model-path",
    "engine.memory_fraction": "--memory-fraction",
    "engine.max_num_batched_tokens": "--max-num-batched-tokens",
    "engine.version": "--engine-version",
    "gpu.vram": "--vram-gib",
}
"""Library field → the ``size`` flag a user typed, so errors name what the user wrote."""


def cmd_size(args: argparse.Namespace) -> int:
    from cloudrun_gpu.settings import as_errors, rename_fields

    try:
        return _size(args)
    except (ConfigError, ConfigErrors) as exc:
        raise rename_fields(as_errors(exc), SIZE_FLAGS, "--") from None


def _size(args: argparse.Namespace) -> int:
    from cloudrun_gpu.sizing import SizingRequest, catalogue_model, catalogue_names, read_gguf, read_hf, size

    if args.list:
        print("\n".join(catalogue_names()))
        return 0
    _check_flags(args)
    sources = [x for x in (args.model, args.gguf, args.hf_config) if x]
    if len(sources) != 1:
        raise ConfigError("model", sources or None, "give exactly one model", "a catalogue name, --gguf or --hf-config")
    if args.model:
        spec = catalogue_model(args.model)
    elif args.gguf:
        spec = read_gguf(Path(args.gguf), field="model.gguf")
    else:
        spec = read_hf(Path(args.hf_config), field="model.hf_config")
    plan = size(
        SizingRequest(
            model=spec,
            engine=args.engine,
            gpu=args.gpu,
            context_length=args.context,
            parallel=args.parallel,
            kv_cache_type=args.kv_type,
            weights_quant=args.quant,
            loading_method=args.loading,
            model_path=args.model_path or ("/models/model.gguf" if args.engine != "vllm" else "/models/model"),
            vram_bytes=int(args.vram_gib * GIB) if args.vram_gib is not None else None,
            memory_fraction=args.memory_fraction,
            engine_version=args.engine_version,
            max_num_batched_tokens=args.max_num_batched_tokens,
            vllm_mode=args.vllm_mode,
        )
    )
    if args.json:
        print(json.dumps({"sizing": plan.to_dict()}, indent=2))
    else:
        print(memory_bar(plan.to_dict()))
        for line in plan.explain:
            print(f"  - {line}")
    return 0


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse ``size`` flags the plan cannot honour, all at once, named as typed.

    The library's ``size`` trusts its request (the stack validates before it builds one), and this command built
    it straight from the flags: ``--parallel 0`` planned zero sequences, ``--context 100`` a context the stack
    refuses, and ``--context 0``, ``--vram-gib 0`` or ``--memory-fraction 0`` silently sized the defaults instead.
    Context, memory fraction and batched tokens take the stack's ranges (``EngineSettings``); ``--parallel`` only
    its lower bound, since ``size`` sizes vLLM's own default of 1024 sequences (docs/sizing-evidence.md) and the
    engine's upper bound is the library's.
    """
    from cloudrun_gpu.settings import as_errors, parse, raise_if
    from cloudrun_gpu.sizing.settings import EngineSettings

    given = {
        "context_length": args.context,
        "memory_fraction": args.memory_fraction,
        "max_num_batched_tokens": args.max_num_batched_tokens,
    }
    errors: list[ConfigError] = []
    try:
        parse(EngineSettings, {k: v for k, v in given.items() if v is not None}, "engine.")
    except (ConfigError, ConfigErrors) as exc:
        errors += as_errors(exc)
    if args.parallel is not None and args.parallel < 1:
        errors.append(ConfigError("engine.parallel", args.parallel, "is out of range", "set --parallel to ≥ 1", "≥ 1"))
    if args.vram_gib is not None and not args.vram_gib > 0:
        errors.append(
            ConfigError(
                "gpu.vram",
                args.vram_gib,
                "is not a GPU memory size",
                "give the GPU's CUDA-visible total in GiB, or leave --vram-gib out to use the GPU type's",
                "> 0",
            )
        )
    raise_if(errors)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from stack.calibrate import main as calibrate_main

    return calibrate_main(args)


def cmd_cloudbuild(args: argparse.Namespace) -> int:
    import yaml

    from stack.cloudbuild import cloudbuild_config, submit_command
    from stack.config import load_stack

    vs = load_stack(args.stack, Path(args.root).resolve())
    if args.region is not None:  # a multi-region stack builds one image per region (its GPU, its registry)
        chosen = [r for r in vs.regional if r.config.region == args.region]
        if not chosen:
            regions = [r.config.region for r in vs.regional]
            raise ConfigError(
                "--region",
                args.region,
                f"is not a region of stack {args.stack}",
                "pick one of them",
                ", ".join(regions),
            )
        vs = chosen[0]
    print(yaml.safe_dump(cloudbuild_config(vs), sort_keys=False, width=1000), end="")
    print(f"# submit with: {shlex.join(submit_command(vs))}", file=sys.stderr)
    return 0


def cmd_loadtest(args: argparse.Namespace) -> int:
    from stack.loadtest import main as loadtest_main

    return loadtest_main(args)


def cmd_preflight(args: argparse.Namespace) -> int:
    from stack.preflight import main as preflight_main

    return preflight_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="explain sizing and list the resources a stack would create (offline)")
    p.add_argument("--stack", default="dev")
    p.add_argument("--root", default=str(ROOT), help="project directory holding Pulumi.<stack>.yaml")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)
    s = sub.add_parser("size", help="size one model/engine/GPU combination")
    s.add_argument("model", nargs="?", help="catalogue name (see --list)")
    s.add_argument("--gguf")
    s.add_argument("--hf-config")
    s.add_argument("--list", action="store_true")
    s.add_argument("--engine", default="llama.cpp", choices=list(engine_names()))
    s.add_argument("--gpu", default="nvidia-l4")
    s.add_argument("--context", type=int)
    s.add_argument(
        "--parallel", type=int, help="parallel sequences (llama.cpp/Ollama ≤ 256, LLAMA_MAX_SEQ; vLLM: any that fit)"
    )
    s.add_argument("--kv-type")
    s.add_argument("--quant")
    s.add_argument("--loading", default="image")
    s.add_argument("--model-path")
    s.add_argument("--vram-gib", type=float, help="GPU memory (vLLM: the CUDA-visible total the fraction applies to)")
    s.add_argument("--memory-fraction", type=float, help="share of GPU memory the engine may use")
    s.add_argument("--engine-version", help="engine release whose memory rules apply, e.g. 0.14.1")
    s.add_argument("--max-num-batched-tokens", type=int, help="vLLM: tokens per scheduler step")
    s.add_argument(
        "--vllm-mode", choices=["v0", "v1"], help="vLLM engine that runs (VLLM_USE_V1); default: the version's own"
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_size)
    cal = sub.add_parser(
        "calibrate", help="compare the sizing plan with an engine's start-up log (vLLM, llama.cpp, Ollama)"
    )
    from stack.calibrate import add_arguments as calibrate_arguments

    calibrate_arguments(cal)
    cal.set_defaults(func=cmd_calibrate)
    cb = sub.add_parser("cloudbuild", help="print the Cloud Build config that bakes the stack's serving image")
    cb.add_argument("--stack", default="dev")
    cb.add_argument("--root", default=str(ROOT))
    cb.add_argument("--region", help="with cloudrun-gpu:regions: the region whose image to build (default: the first)")
    cb.set_defaults(func=cmd_cloudbuild)
    pf = sub.add_parser(
        "preflight", help="enable Cloud Quotas and check the stack's Cloud Run quotas before pulumi up (your ADC)"
    )
    from stack.preflight import add_arguments as preflight_arguments

    preflight_arguments(pf, str(ROOT))
    pf.set_defaults(func=cmd_preflight)
    lt = sub.add_parser("loadtest", help="drive an OpenAI-compatible endpoint and recommend concurrency (A3)")
    from stack.loadtest import add_arguments

    add_arguments(lt)
    lt.set_defaults(func=cmd_loadtest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except (ConfigError, ConfigErrors) as exc:
        print(f"error: invalid configuration\n{exc}", file=sys.stderr)
        return 2

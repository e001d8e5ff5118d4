"""The component package schema other Pulumi languages see (``provider/``), checked offline.

The schema comes from the SDK's own analyzer over the components the plugin serves, so these tests pin
what a TypeScript/Go/YAML/C# user gets: the tokens, the types, a description on every input, enums with
their values, and that an input bag as the provider host maps it builds the components' Args.
"""

import dataclasses
import io
import json
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from functools import cache
from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.network import InferenceNetworkArgs
from cloudrun_gpu.service import Accelerator, GpuInferenceServiceArgs
from cloudrun_gpu.sizing.settings import EngineName, LoadingMethod

from provider import schema as schema_cli
from provider.analysis import CloudRunGpuProvider
from provider.components import COMPONENTS, NAME, NAMESPACE, VERSION

PKG = "cloudrun-gpu"
TYPE_REF = f"#/types/{PKG}:index:"
CLASSES = [
    "GpuInferenceService",
    "InferenceNetwork",
    "ModelRegistry",
    "ModelBucket",
    "RuntimeIdentity",
    "ProjectApis",
    "BuildIdentity",
    "BuildSecret",
    "ModelStaging",
    "ImageBuild",
    "FrontDoor",
    "ResponseCache",
]


@contextmanager
def sdk_quiet() -> Iterator[None]:
    """The analyzer leaves pulumi_gcp's pulumi-plugin.json open (``.open().read()``); its ResourceWarning
    would surface as an unraisable error in whichever test runs next under ``filterwarnings = error``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


@cache
def schema() -> dict[str, Any]:
    with sdk_quiet():
        return schema_cli.build_schema()


@cache
def provider() -> CloudRunGpuProvider:
    """The provider exactly as the plugin's host builds it."""
    with sdk_quiet():
        return CloudRunGpuProvider(COMPONENTS, NAME, NAMESPACE, VERSION)


def resource(cls: str) -> dict[str, Any]:
    res: dict[str, Any] = schema()["resources"][f"{PKG}:index:{cls}"]
    return res


def type_of(ref: str) -> dict[str, Any]:
    assert ref.startswith(TYPE_REF), ref
    typ: dict[str, Any] = schema()["types"][f"{PKG}:index:{ref[len(TYPE_REF) :]}"]
    return typ


def walk(props: Mapping[str, Any], where: str, seen: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property under ``props``, through referenced types, list items and map values (once per type)."""
    for name, prop in props.items():
        path = f"{where}.{name}"
        yield path, prop
        for inner in (prop, prop.get("items") or {}, prop.get("additionalProperties") or {}):
            ref = inner.get("$ref", "")
            if ref.startswith(TYPE_REF) and ref not in seen:
                seen.add(ref)
                yield from walk(type_of(ref).get("properties", {}), ref[len(TYPE_REF) :], seen)


def input_types(cls: str) -> set[str]:
    seen: set[str] = set()
    list(walk(resource(cls)["inputProperties"], cls, seen))
    return {ref[len(TYPE_REF) :] for ref in seen}


def test_printer_serves_what_the_host_serves() -> None:
    out = io.StringIO()
    with redirect_stdout(out), sdk_quiet():
        schema_cli.main()
    printed = json.loads(out.getvalue())
    served = provider().schema
    assert served is not None
    assert printed == json.loads(served) == schema()
    assert printed["name"] == PKG and printed["version"] == VERSION


def test_every_component_under_the_package_tokens() -> None:
    assert sorted(schema()["resources"]) == sorted(f"{PKG}:index:{c}" for c in CLASSES)
    assert [c.__name__ for c in COMPONENTS] == CLASSES
    for cls in CLASSES:
        assert resource(cls).get("isComponent") is True
        assert resource(cls).get("description"), f"{cls} has no class docstring"


@pytest.mark.parametrize("cls", CLASSES)
def test_every_input_has_a_description(cls: str) -> None:
    missing = [path for path, prop in walk(resource(cls)["inputProperties"], cls, set()) if not prop.get("description")]
    assert not missing


@pytest.mark.parametrize("cls", CLASSES)
def test_every_output_has_a_description(cls: str) -> None:
    props = resource(cls).get("properties", {})
    assert props
    assert not [name for name, prop in props.items() if not prop.get("description")]


@pytest.mark.parametrize("cls", CLASSES)
def test_every_input_type_is_documented(cls: str) -> None:
    undocumented = [t for t in input_types(cls) if not type_of(TYPE_REF + t).get("description")]
    assert not undocumented


def enum_names() -> list[str]:
    return sorted(k.split(":")[-1] for k, t in schema()["types"].items() if "enum" in t)


@pytest.mark.parametrize("name", enum_names())
def test_enums_and_their_values_are_documented(name: str) -> None:
    typ = type_of(TYPE_REF + name)
    assert typ.get("description")
    assert all(v.get("description") for v in typ["enum"])


def test_gpu_inference_service_inputs() -> None:
    res = resource("GpuInferenceService")
    props = res["inputProperties"]
    assert props["region"]["type"] == "string" and "region" in res["requiredInputs"]
    assert props["image"]["type"] == "string" and "plain" not in props["image"]  # pulumi.Input[str]
    assert props["model"]["$ref"] == TYPE_REF + "ModelSettings" and "model" in res["requiredInputs"]
    assert props["engine"]["$ref"] == TYPE_REF + "EngineSettings"
    engine = type_of(props["engine"]["$ref"])["properties"]
    assert engine["contextLength"]["type"] == "integer"
    assert engine["memoryFraction"]["type"] == "number"
    assert engine["name"]["$ref"] == TYPE_REF + "EngineName"
    assert props["vpc"]["$ref"] == TYPE_REF + "VpcEgressArgs"
    assert props["labels"]["type"] == "object" and props["labels"]["additionalProperties"]["type"] == "string"
    service = type_of(props["service"]["$ref"])["properties"]
    assert service["invokers"]["type"] == "array" and service["invokers"]["items"]["type"] == "string"
    assert service["ingress"]["$ref"] == TYPE_REF + "Ingress"
    outputs = res["properties"]
    assert outputs["url"]["type"] == "string" and outputs["concurrency"]["type"] == "integer"


def test_inference_network_inputs() -> None:
    res = resource("InferenceNetwork")
    props = res["inputProperties"]
    assert props["region"]["type"] == "string" and "region" in res["requiredInputs"]
    assert props["maxInstances"]["type"] == "integer"
    net = type_of(props["settings"]["$ref"])
    assert props["settings"]["$ref"] == TYPE_REF + "NetworkSettings"
    assert net["properties"]["nat"]["$ref"] == TYPE_REF + "NatSettings"
    nat = type_of(net["properties"]["nat"]["$ref"])["properties"]
    assert nat["minPortsPerVm"]["type"] == "integer"
    assert nat["logFilter"]["$ref"] == TYPE_REF + "NatLogFilter"
    assert net["properties"]["tags"]["items"]["type"] == "string"
    assert res["properties"]["pscIp"]["type"] == "string" and "pscIp" not in res["required"]


@pytest.mark.parametrize(
    ("name", "value", "py"),
    [
        ("LoadingMethod", "gcs-fuse", LoadingMethod),
        ("Accelerator", "nvidia-l4", Accelerator),
        ("EngineName", "llama.cpp", EngineName),
    ],
)
def test_enums_render_with_their_allowed_values(name: str, value: str, py: type[Any]) -> None:
    typ = type_of(TYPE_REF + name)
    assert typ["type"] == "string"
    assert value in [v["value"] for v in typ["enum"]]
    assert [v["value"] for v in typ["enum"]] == [m.value for m in py]  # the one source of truth, all of it


def python_required(cls: type[Any]) -> set[str]:
    """The fields a Python caller must pass: neither a default nor a default factory."""
    missing = dataclasses.MISSING
    fields = getattr(cls, "__pydantic_fields__", None)
    if fields is not None:
        return {k for k, f in fields.items() if f.is_required()}
    return {f.name for f in dataclasses.fields(cls) if f.default is missing and f.default_factory is missing}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def required_cases() -> Iterator[tuple[str, list[str], set[str]]]:
    """(schema name, schema's required list, what Python requires) for each component's args and input types."""
    for component in COMPONENTS:
        cls = component.__name__
        args = component.__init__.__annotations__["args"]
        yield cls, resource(cls).get("requiredInputs", []), {camel(n) for n in python_required(args)}
        for t in sorted(input_types(cls)):
            typ = type_of(TYPE_REF + t)
            py = provider()._type_defs[t].python_type  # the Python class the analyzer read
            if "enum" not in typ:
                yield t, typ.get("required", []), {camel(n) for n in python_required(py)}


def test_inputs_with_python_defaults_are_optional() -> None:
    wrong = {name: sorted(set(req) - py) for name, req, py in required_cases() if set(req) != py}
    assert not wrong


def test_python_required_inputs_are_required() -> None:
    """What Python cannot do without, the schema requires too (holds today and after the defaults fix)."""
    missing = {name: sorted(py - set(req)) for name, req, py in required_cases() if py - set(req)}
    assert not missing


def mapped(cls: str, bag: Mapping[str, Any]) -> Mapping[str, Any]:
    """``bag`` (camelCase, numbers as floats, as it arrives over gRPC) mapped to Python names by the host's code."""
    p = provider()
    return p.map_inputs(bag, p._component_defs[cls])


FULL_SERVICE_BAG: dict[str, Any] = {
    "region": "europe-west1",
    "image": "europe-west1-docker.pkg.dev/p/llm-serving/llama-cpp:b5000",
    "model": {"name": "llama-3.2-3b", "quantization": "Q4_K_M", "file": "m.gguf", "objectPrefix": "models/l3"},
    "engine": {"name": "llama.cpp", "contextLength": 8192.0, "kvCacheType": "q8_0", "promptCache": False},
    "loading": {"method": "gcs-fuse"},
    "gpu": {"type": "nvidia-l4", "zonalRedundancy": False, "quota": 3.0},
    "resources": {"cpu": 8.0},
    "scaling": {"minInstances": 0.0, "maxInstances": 2.0, "requestTimeoutS": 600.0},
    "service": {
        "name": "llm-dev",
        "invokers": ["group:llm@example.com"],
        "ingress": "INGRESS_TRAFFIC_ALL",
        "livenessProbe": True,
    },
    "vpc": {"network": "projects/p/global/networks/n", "subnetwork": "s", "tags": ["llm-inference"]},
    "bucketName": "llm-models-0a1b2c3d",
    "labels": {"team": "ml"},
}


def test_service_bag_round_trips_into_its_args() -> None:
    py = mapped("GpuInferenceService", FULL_SERVICE_BAG)
    assert py["bucket_name"] == "llm-models-0a1b2c3d" and py["engine"]["context_length"] == 8192
    args = GpuInferenceServiceArgs(**py)
    assert args.engine.context_length == 8192 and isinstance(args.engine.context_length, int)
    assert args.engine.name is EngineName("llama.cpp") and args.loading.method is LoadingMethod("gcs-fuse")
    assert args.gpu.type is Accelerator("nvidia-l4") and args.gpu.quota == 3
    assert args.scaling.max_instances == 2 and args.resources.cpu == 8
    assert args.service.invokers == ["group:llm@example.com"] and args.service.ingress == "INGRESS_TRAFFIC_ALL"
    assert args.vpc is not None and args.vpc.network == "projects/p/global/networks/n"
    assert args.vpc.tags == ["llm-inference"] and args.labels == {"team": "ml"}
    assert args.model.object_prefix == "models/l3"
    assert args.plan().concurrency >= 1  # the args are whole: the sizing plan runs on them


def test_service_bag_errors_name_the_field() -> None:
    bag = {**FULL_SERVICE_BAG, "scaling": {**FULL_SERVICE_BAG["scaling"], "minInstances": 5.0}}
    with pytest.raises(ConfigErrors) as exc:
        GpuInferenceServiceArgs(**mapped("GpuInferenceService", bag))
    assert [e.field for e in exc.value.errors] == ["GpuInferenceServiceArgs.scaling.min_instances"]


def test_minimal_service_bag_round_trips() -> None:
    """What a TypeScript user writes for a baked-in model: everything else takes the Python defaults."""
    bag = {"region": "europe-west1", "image": "img:1", "model": {"name": "llama-3.2-3b"}}
    args = GpuInferenceServiceArgs(**mapped("GpuInferenceService", bag))
    assert args.engine.name == "llama.cpp" and args.loading.method == "image" and args.gpu.type == "nvidia-l4"


FULL_NETWORK_BAG: dict[str, Any] = {
    "region": "europe-west1",
    "maxInstances": 4.0,
    "settings": {
        "subnetCidr": "10.8.0.0/26",
        "psc": {
            "enabled": True,
            "address": "10.255.255.254",
            "target": "all-apis",
            "name": "llmapis",
            "dnsZones": ["googleapis.com.", "pkg.dev."],
        },
        "nat": {
            "enabled": True,
            "dynamicPortAllocation": True,
            "minPortsPerVm": 128.0,
            "maxPortsPerVm": 4096.0,
            "logFilter": "ERRORS_ONLY",
        },
        "tags": ["llm-inference"],
    },
}


def test_network_bag_round_trips_into_its_args() -> None:
    args = InferenceNetworkArgs(**mapped("InferenceNetwork", FULL_NETWORK_BAG))
    assert args.max_instances == 4
    nat = args.settings.nat
    assert nat.min_ports_per_vm == 128 and isinstance(nat.min_ports_per_vm, int) and nat.log_filter == "ERRORS_ONLY"
    assert args.settings.psc.target == "all-apis" and args.settings.psc.dns_zones == ["googleapis.com.", "pkg.dev."]
    assert args.settings.subnet_cidr == "10.8.0.0/26" and args.settings.tags == ["llm-inference"]


def test_network_bag_errors_name_the_field() -> None:
    bag = json.loads(json.dumps(FULL_NETWORK_BAG))
    bag["settings"]["nat"]["minPortsPerVm"] = 100.0
    with pytest.raises(ConfigErrors) as exc:
        InferenceNetworkArgs(**mapped("InferenceNetwork", bag))
    assert [e.field for e in exc.value.errors] == ["InferenceNetworkArgs.settings.nat.min_ports_per_vm"]


def test_minimal_network_bag_round_trips() -> None:
    args = InferenceNetworkArgs(**mapped("InferenceNetwork", {"region": "europe-west1", "settings": {"nat": {}}}))
    assert args.max_instances == 1 and args.settings.nat.min_ports_per_vm == 64


def test_integer_inputs_become_int_in_the_args() -> None:
    """pulumi 3.272's ``map_input_properties`` hands JSON numbers over as floats (component.py converts to
    int and then overwrites it); the args turn whole floats back into ints, so names and checks see ``4``."""
    py = mapped("InferenceNetwork", FULL_NETWORK_BAG)
    args = InferenceNetworkArgs(**py)
    assert isinstance(args.max_instances, int) and args.max_instances == py["max_instances"]

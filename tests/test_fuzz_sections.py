"""Issue 21: the property fuzz over the newer sections (regions, front door, capacity, cache, model source).

Each example starts from a committed stack that validates and applies one generated change. The oracle is written
here, independently of the code under test, from the documented rule (``limits.py`` cites each): when the change
breaks a rule we can state, the error must name exactly the stack key the change wrote; when it breaks none, the
stack must validate. Anything but a clean ConfigErrors (a traceback) fails. A second property runs the program as
``pulumi up`` would and asserts that a refused stack registered nothing. The Args path has its own property in
tests/test_args_plain.py.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stack.config import read_config
from tests.conftest import ROOT, stack_flat
from tests.test_validation_first import deployable, up

NS = "cloudrun-gpu:"
Change = tuple[str, dict[str, Any], str | None]
"""(stack, section changes merged into the committed ones, the key the error must name or None: valid)."""


def section(stack: str, name: str) -> Any:
    return json.loads(stack_flat(stack).get(NS + name, "null"))


def merged(stack: str, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {**(section(stack, name) or {}), **extra}


lower = "abcdefghijklmnopqrstuvwxyz"
tag = st.text(lower, min_size=1, max_size=10)


@st.composite
def region_change(draw: st.DrawFn) -> Change:
    regions = section("multi", "regions")
    i = draw(st.integers(0, len(regions) - 1))
    what = draw(st.sampled_from(["cpu", "psc", "max", "gpu"]))
    if what == "gpu":  # the region entry's gpu section: its type must be a Cloud Run GPU (limits.GPU_TYPES)
        kind = draw(st.sampled_from([regions[i]["gpu"]["type"], "tpu", "nvidia-a100", ""]))
        regions[i]["gpu"] = {**regions[i]["gpu"], "type": kind}
        ok = kind in limits.GPU_TYPES
        return "multi", {"regions": regions}, None if ok else f"{NS}regions[{i}].gpu.type"
    if what == "cpu":
        cpu = draw(st.one_of(st.sampled_from(limits.ALLOWED_CPU), st.integers(-5, 40), st.just(10**12)))
        regions[i]["resources"] = {"cpu": cpu}
        gpu = limits.GPU_TYPES[regions[i]["gpu"]["type"]]
        if cpu not in limits.ALLOWED_CPU:
            return "multi", {"regions": regions}, f"{NS}regions[{i}].resources.cpu"
        # an allowed count below the GPU type's minimum is refused by the service plan (its own rule)
        return "multi", {"regions": regions}, None if cpu >= gpu.min_cpu else f"{NS}regions[{i}].resources.cpu"
    if what == "psc":
        name = draw(
            st.one_of(st.text(lower + "0123456789", min_size=1, max_size=40), st.sampled_from(["a" * 20, "a" * 21]))
        )
        regions[i]["network"] = {**regions[i]["network"], "psc": {"name": name}}
        ok = len(name) <= 20 and name[0].isalpha()
        return "multi", {"regions": regions}, None if ok else f"{NS}regions[{i}].network.psc.name"
    mx = draw(st.one_of(st.integers(-3, 5), st.integers(6, 2000)))
    regions[i]["scaling"] = {"min_instances": 0, "max_instances": mx}
    quota = regions[i]["gpu"]["quota"]
    ok = 1 <= mx <= quota  # the quota holds max instances (zonal redundancy off: one GPU each)
    return "multi", {"regions": regions}, None if ok else f"{NS}regions[{i}].scaling.max_instances"


@st.composite
def front_door_change(draw: st.DrawFn) -> Change:
    what = draw(st.sampled_from(["domains", "tags", "zones", "name"]))
    if what == "domains":
        n = draw(st.one_of(st.sampled_from([99, 100, 101]), st.integers(1, 130)))
        door = merged("multi", "frontdoor", {"domains": [f"d{i}.corp.com" for i in range(n)]})
        return "multi", {"frontdoor": door}, None if n <= 100 else f"{NS}frontdoor.domains"
    if what == "tags":
        n = draw(st.one_of(st.sampled_from([63, 64, 65]), st.integers(1, 80)))
        tags = [f"t{i}" for i in range(n)]
        if n > 1 and draw(st.booleans()):
            tags[-1] = tags[0]
        net = merged("dev", "network", {"tags": tags})
        if n > 64:
            return "dev", {"network": net}, f"{NS}network.tags"
        if len(set(tags)) != n:
            return "dev", {"network": net}, f"{NS}network.tags.{n - 1}"
        return "dev", {"network": net}, None
    if what == "zones":
        zones = draw(st.lists(st.sampled_from(["pkg.dev.", "gcr.io.", "googleapis.com."]), min_size=1, max_size=4))
        net = merged("dev", "network", {"psc": {"dns_zones": zones}})
        dup = next((j for j, z in enumerate(zones) if z in zones[:j]), None)
        return "dev", {"network": net}, None if dup is None else f"{NS}network.psc.dns_zones.{dup}"
    n = draw(st.one_of(st.sampled_from([22, 23, 24]), st.integers(1, 42)))
    name = "a" * n
    # <name>-frontdoor-proxy-only-<region> is the longest child the check knows (a superset: the proxy-only subnet
    # exists with the internal scheme only); 63 characters with Pulumi's 8-character suffix (limits.py)
    regions = [r["region"] for r in section("multi", "regions")]
    longest = len(name) + len("-frontdoor") + len("-proxy-only-") + max(map(len, regions))
    svc = merged("multi", "service", {"name": name})
    return "multi", {"service": svc}, None if longest + 8 <= 63 else f"{NS}service.name"


@st.composite
def proxy_subnet_change(draw: st.DrawFn) -> Change:
    prefix = draw(st.integers(16, 26))
    base = draw(st.sampled_from(["10.8.0.0", "10.129.0.0", "10.255.255.0", "10.200.0.0"]))
    cidr = str(ipaddress.ip_network(f"{base}/{prefix}", strict=False))
    door = {
        "scheme": "INTERNAL_MANAGED",
        "certificate": "projects/p/regions/europe-west1/sslCertificates/c",
        "proxy_only_subnet_cidr": cidr,
    }
    svc = {"name": "llm-dev", "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}
    net = ipaddress.ip_network(cidr)
    clash = net.overlaps(ipaddress.ip_network("10.8.0.0/26")) or ipaddress.ip_address("10.255.255.254") in net
    return "dev", {"frontdoor": door, "service": svc}, f"{NS}frontdoor.proxy_only_subnet_cidr" if clash else None


@st.composite
def capacity_change(draw: st.DrawFn) -> Change:
    capacity = section("multi", "capacity")
    measured: dict[str, Any] = {"requests_per_s": 1.5, "output_tokens_per_s": 300.0, "concurrency": 4, "source": "x"}
    key = draw(st.sampled_from([*measured, None]))
    value = draw(st.one_of(st.none(), st.floats(-1, 10), st.integers(-1, 10)))
    entry = dict(measured)
    if key is not None:
        entry[key] = value
    capacity["throughput"]["nvidia-l4"] = entry
    bad = key is not None and (
        value is None
        or (key == "source" and True)  # a number is not a source text
        or (key == "concurrency" and (not float(value).is_integer() or value < 1))
        or (key != "concurrency" and value <= 0)
    )
    where = f"{NS}capacity.throughput.nvidia-l4.{key}"
    # a valid throughput may still fall short of the target: that is the plan's own refusal, on capacity
    return "multi", {"capacity": capacity}, where if bad else "capacity-or-none"


@st.composite
def cache_change(draw: st.DrawFn) -> Change:
    what = draw(st.sampled_from(["version", "service_name", "account_id"]))
    if what == "version":
        v = draw(st.from_regex(r"VALKEY_[0-9]{1,2}_[0-9]", fullmatch=True))
        ok = v in limits.VALKEY_VERSIONS
        return (
            "prod",
            {"cache": merged("prod", "cache", {"valkey_version": v})},
            None if ok else f"{NS}cache.valkey_version",
        )
    if what == "service_name":
        v = draw(st.sampled_from(["llm", "llm-cache", "llm-answers"]))
        where = f"{NS}cache.service_name" if v == "llm" else None  # prod's GPU service is "llm"
        return "prod", {"cache": merged("prod", "cache", {"service_name": v})}, where
    v = draw(st.sampled_from(["llm-runtime", "llm-build", "llm-cache-build", "llm-cache", "llm-answers"]))
    where = f"{NS}cache.account_id" if v in ("llm-runtime", "llm-build", "llm-cache-build") else None
    return "prod", {"cache": merged("prod", "cache", {"account_id": v})}, where


@st.composite
def source_change(draw: st.DrawFn) -> Change:
    length = draw(st.sampled_from([1, 20, 255, 256, 4096, 10_000]))
    text = draw(st.text("abcxyz", min_size=1, max_size=3))
    path = (text * length)[:length]
    model = merged("dev", "model", {"source": f"no-such-dir/{path}"})
    return "dev", {"model": model}, f"{NS}model.source"  # never exists here: always named, never an OSError


@st.composite
def empty_change(draw: st.DrawFn) -> Change:
    where = draw(st.sampled_from([("model", "quantization"), ("engine", "kv_cache_type"), ("engine", "image")]))
    blank = draw(st.sampled_from(["", " ", "\t"]))
    return "dev", {where[0]: merged("dev", where[0], {where[1]: blank})}, f"{NS}{where[0]}.{where[1]}"


CHANGES: list[Callable[[], st.SearchStrategy[Change]]] = [
    region_change,
    front_door_change,
    proxy_subnet_change,
    capacity_change,
    cache_change,
    source_change,
    empty_change,
]


def fields_of(stack: str, changes: dict[str, Any]) -> list[str] | None:
    """The fields the reader refused, or None when it accepted; anything else escapes and fails the test."""
    try:
        read_config(stack_flat(stack, **changes), base_dir=ROOT, plan_only=True)
    except ConfigErrors as exc:
        assert exc.errors and all(e.fix and e.field.startswith((NS, "gcp:")) for e in exc.errors)
        return [e.field for e in exc.errors]
    except ConfigError as exc:
        assert exc.fix and exc.field.startswith((NS, "gcp:"))
        return [exc.field]
    return None


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of([c() for c in CHANGES]))
def test_newer_sections_are_refused_exactly_when_the_oracle_says(change: Change) -> None:
    stack, changes, expect = change
    fields = fields_of(stack, changes)
    if expect == "capacity-or-none":
        assert fields is None or all(f.startswith(NS + "capacity") for f in fields), fields
    elif expect is None:
        assert fields is None, fields
    else:
        assert fields is not None, f"accepted, but the oracle expects {expect}"
        assert expect in fields, fields


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of([c() for c in CHANGES]))
def test_a_refused_stack_registers_nothing_under_pulumi_up(change: Change) -> None:
    stack, changes, expect = change
    if expect in (None, "capacity-or-none"):
        return
    resources, error = up(stack, deployable(stack, **changes))
    assert error is not None and expect in str(error), str(error)
    assert [r.name for r in resources] == []


# --- Every section, and the program under ``pulumi up`` over all of them ----------------------------------------


def test_every_section_of_the_stack_file_is_fuzzed() -> None:
    """The ten base sections are generated by tests/test_fuzz_config.py; each optional section (and each section a
    region entry overrides) by a strategy here: a section added to stack/config.py without a fuzz strategy fails."""
    from hypothesis import find

    from stack.config import OPTIONAL_SECTIONS, REGIONAL_SECTIONS, SECTIONS
    from tests.test_fuzz_config import sections

    assert set(SECTIONS) <= set(sections)
    every = st.one_of([c() for c in CHANGES])
    for name in OPTIONAL_SECTIONS:
        find(every, lambda c, name=name: name in c[1])  # type: ignore[misc]
    for name in REGIONAL_SECTIONS:
        find(every, lambda c, name=name: any(name in r for r in c[1].get("regions", [])))  # type: ignore[misc]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_section_change_under_pulumi_up_registers_all_or_nothing(data: st.DataObject) -> None:
    """Each of the ten base sections changed by test_fuzz_config's strategies, on a deployable committed stack, run
    as ``pulumi up``. The oracle: the reader's verdict (plan's) and the program's agree; a refusal names a stack key
    and registers nothing, and the program adds refusals only from its derived-name pass (still 0 resources); an
    accepted stack registers its resources without an exception."""
    from stack.config import SECTIONS
    from tests.test_fuzz_config import sections

    stack = data.draw(st.sampled_from(["dev", "staging", "prod", "multi"]))
    name = data.draw(st.sampled_from(sorted(SECTIONS)))
    change = data.draw(sections[name])
    flat = deployable(stack, **{name: merged(stack, name, change)})
    try:
        read_config(flat, base_dir=ROOT, plan_only=False, secret_keys=frozenset())
        reader: list[str] | None = None
    except ConfigErrors as exc:
        reader = [e.field for e in exc.errors]
    resources, error = up(stack, flat)
    if reader is not None:
        assert error is not None and all(f in str(error) for f in reader), (reader, str(error))
        assert [r.name for r in resources] == []
    elif error is not None:
        assert "invalid stack configuration" in str(error) and NS in str(error), str(error)
        assert [r.name for r in resources] == []
    else:
        assert len(resources) > 20

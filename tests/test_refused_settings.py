"""Issue 21, "accepted, but wrong": settings GCP or the project cannot honour are refused before anything
registers, each error naming the stack key the user wrote. Every case here was accepted before the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.frontdoor import child_names

from stack.config import read_config
from stack.render import render_program
from tests.conftest import ROOT, stack_flat
from tests.test_validation_first import deployable, refused_up

NS = "cloudrun-gpu:"


def refused_fields(stack: str, **changes: Any) -> list[str]:
    with pytest.raises(ConfigErrors) as exc:
        read_config(stack_flat(stack, **changes), base_dir=ROOT, plan_only=True)
    return [e.field for e in exc.value.errors]


def multi_regions() -> list[dict[str, Any]]:
    regions: list[dict[str, Any]] = json.loads(stack_flat("multi")["cloudrun-gpu:regions"])
    return regions


NET = {"subnet_cidr": "10.8.0.0/26", "nat": {"enabled": False}}
INTERNAL_DOOR = {
    "scheme": "INTERNAL_MANAGED",
    "certificate": "projects/p/regions/europe-west1/sslCertificates/c",
}
BEHIND_LB = {"name": "llm-dev", "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}


def test_a_region_entry_passes_its_sections_own_rules() -> None:
    regions = multi_regions()
    regions[1]["resources"] = {"cpu": 10**12}
    assert refused_fields("multi", regions=regions) == [f"{NS}regions[1].resources.cpu"]
    regions = multi_regions()
    regions[1]["network"] = {**regions[1]["network"], "psc": {"name": "a" * 30}}
    assert refused_fields("multi", regions=regions) == [f"{NS}regions[1].network.psc.name"]
    # and under pulumi up nothing registers
    regions = multi_regions()
    regions[0]["resources"] = {"cpu": 10**12}
    refused_up("multi", deployable("multi", regions=regions), f"{NS}regions[0].resources.cpu")


def test_a_long_service_name_behind_a_front_door_is_named_not_an_api_error() -> None:
    long = {"name": "a" * 42, "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}
    assert refused_fields("multi", service=long) == [f"{NS}service.name"]
    refused_up("multi", deployable("multi", service=long), f"{NS}service.name")
    # without a front door the same name is fine (no load balancer resources)
    assert read_config(stack_flat("dev", service={"name": "a" * 42}), base_dir=ROOT, plan_only=True)


def test_every_front_door_child_is_one_the_name_check_knows() -> None:
    """The oracle for the name check: each resource the component registers under the front door has a logical
    name from :func:`child_names`, and every name the committed multi stack produces fits 63 with the suffix."""
    resources = render_program(ROOT / "__main__.py", "multi", deployable("multi"), plan_only=False)
    door = "llm-multi-frontdoor"
    known = set(child_names(door, ["europe-west1", "us-central1"]))
    children = [r.name for r in resources if r.name.startswith(door + "-") and r.type.startswith("gcp:compute/")]
    assert children and set(children) <= known, sorted(set(children) - known)
    most = int(limits.COMPUTE_NAME_MAX.value - limits.AUTONAME_SUFFIX.value)
    assert all(len(n) <= most for n in children)


def test_a_dns_zone_listed_twice_is_refused() -> None:
    net = {**NET, "psc": {"dns_zones": ["pkg.dev.", "gcr.io.", "pkg.dev."]}}
    assert refused_fields("dev", network=net) == [f"{NS}network.psc.dns_zones.2"]


@pytest.mark.parametrize(("count", "ok"), [(64, True), (65, False)])
def test_network_tags_are_at_most_64(count: int, ok: bool) -> None:
    net = {**NET, "tags": [f"t{i}" for i in range(count)]}
    if ok:
        assert len(read_config(stack_flat("dev", network=net), base_dir=ROOT, plan_only=True).config.network.tags) == 64
    else:
        assert refused_fields("dev", network=net) == [f"{NS}network.tags"]


def test_a_network_tag_listed_twice_is_refused() -> None:
    assert refused_fields("dev", network={**NET, "tags": ["a", "b", "a"]}) == [f"{NS}network.tags.2"]


@pytest.mark.parametrize(("count", "ok"), [(100, True), (101, False)])
def test_certificate_domains_are_at_most_100(count: int, ok: bool) -> None:
    door = {"domains": [f"d{i}.corp.com" for i in range(count)]}
    if ok:
        vs = read_config(stack_flat("multi", frontdoor=door), base_dir=ROOT, plan_only=True)
        assert vs.config.frontdoor is not None and len(vs.config.frontdoor.domains) == 100
    else:
        assert refused_fields("multi", frontdoor=door) == [f"{NS}frontdoor.domains"]


def test_a_proxy_only_subnet_overlapping_the_service_subnet_is_refused() -> None:
    door = {**INTERNAL_DOOR, "proxy_only_subnet_cidr": "10.8.0.0/23"}  # holds dev's 10.8.0.0/26
    assert refused_fields("dev", frontdoor=door, service=BEHIND_LB) == [f"{NS}frontdoor.proxy_only_subnet_cidr"]
    door = {**INTERNAL_DOOR, "proxy_only_subnet_cidr": "10.255.254.0/23"}  # holds the PSC address 10.255.255.254
    assert refused_fields("dev", frontdoor=door, service=BEHIND_LB) == [f"{NS}frontdoor.proxy_only_subnet_cidr"]
    door = {**INTERNAL_DOOR, "proxy_only_subnet_cidr": "10.129.0.0/23"}
    assert read_config(stack_flat("dev", frontdoor=door, service=BEHIND_LB), base_dir=ROOT, plan_only=True)


def test_the_cache_names_are_its_own() -> None:
    assert refused_fields("prod", cache={"enabled": True, "service_name": "llm"}) == [f"{NS}cache.service_name"]
    for taken in ("llm-runtime", "llm-build", "llm-cache-build"):
        assert refused_fields("prod", cache={"enabled": True, "account_id": taken}) == [f"{NS}cache.account_id"], taken


@pytest.mark.parametrize("version", ["VALKEY_6_0", "VALKEY_10_1"])
def test_an_unknown_valkey_version_is_refused(version: str) -> None:
    assert refused_fields("prod", cache={"enabled": True, "valkey_version": version}) == [f"{NS}cache.valkey_version"]
    assert "VALKEY_8_0" in limits.VALKEY_VERSIONS


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ("model", {"name": "llama-3.2-3b", "file": "x.gguf", "quantization": ""}),
        ("engine", {"name": "llama.cpp", "kv_cache_type": "  "}),
    ],
)
def test_an_empty_string_does_not_silently_mean_the_default(section: str, values: dict[str, Any]) -> None:
    key = next(k for k, v in values.items() if isinstance(v, str) and not v.strip())
    assert set(refused_fields("dev", **{section: values})) == {f"{NS}{section}.{key}"}


# --- Messages a user reads, whole (they killed stack/config.py's mutation survivors at seed 31) ------------------


def the_message(stack: str, field: str, **changes: Any) -> str:
    with pytest.raises(ConfigErrors) as exc:
        read_config(stack_flat(stack, **changes), base_dir=ROOT, plan_only=True)
    found = [e for e in exc.value.errors if e.field == field]
    assert len(found) == 1, [e.field for e in exc.value.errors]
    return str(ConfigErrors(found))


def test_the_longest_service_name_a_front_door_allows_is_computed_not_guessed() -> None:
    """``<name>-frontdoor-proxy-only-<region>`` plus Pulumi's 8 random characters must fit 63: with the multi
    stack's longest region (12 characters) that leaves 63 - 8 - 34 - 12 = 9 characters over 21 … for a 30-character
    name, the fix names 21."""
    regions = [r["region"] for r in multi_regions()]
    name = "a" * 30
    longest = f"{name}-frontdoor-proxy-only-{max(regions, key=len)}"
    fit = 30 - (len(longest) + 8 - 63)
    msg = the_message("multi", f"{NS}service.name", service={"name": name, "ingress": BEHIND_LB["ingress"]})
    assert f"makes the front door's resource {longest!r} (+ 8 random characters) longer than the 63 characters" in msg
    assert msg.endswith(f"fix: shorten {NS}service.name to {fit} characters or fewer") and fit == 21


def test_a_cache_with_a_front_door_is_refused_with_the_reason() -> None:
    door = json.loads(stack_flat("multi")[NS + "frontdoor"])
    msg = the_message(
        "prod", f"{NS}cache.enabled", frontdoor=door, service={"name": "llm", "ingress": BEHIND_LB["ingress"]}
    )
    assert (
        "is not supported together with a front door or several regions yet: the cache would call one region's "
        "service directly, around the load balancer" in msg
    )
    assert (
        "fix: remove cloudrun-gpu:cache (or set cloudrun-gpu:cache.enabled: false), or drop frontdoor and regions"
        in msg
    )


def test_an_account_the_cache_would_share_is_refused_naming_whose_it_is() -> None:
    msg = the_message("prod", f"{NS}cache.account_id", cache={"enabled": True, "account_id": "llm-build"})
    assert "= 'llm-build': is the image build's account: each identity needs its own service account" in msg


def test_up_without_a_domain_names_the_command_to_run() -> None:
    door = {k: v for k, v in json.loads(stack_flat("multi")[NS + "frontdoor"]).items() if k != "domains"}
    flat = stack_flat("multi", frontdoor=door, **{"gcp:project": "my-project-123"})
    with pytest.raises(ConfigErrors) as exc:
        read_config(flat, base_dir=ROOT, plan_only=False)
    (error,) = exc.value.errors
    assert error.field == f"{NS}frontdoor.domains" and error.value == []
    assert (
        error.fix
        == "set a name you control: pulumi config set --path 'cloudrun-gpu:frontdoor.domains[0]' llm.<your-domain>"
    )


def test_a_value_json_cannot_hold_is_found_after_good_ones(tmp_path: Any) -> None:
    """A binary value after an ordinary one inside a section is still found (the walk does not stop at the first
    acceptable value)."""
    from stack.config import read_stack_file

    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  cloudrun-gpu:model:\n    name: gemma-3-4b\n    blob: !!binary aGk=\n")
    with pytest.raises(ConfigErrors) as exc:
        read_stack_file(path)
    assert [(e.field, e.value) for e in exc.value.errors] == [(f"{NS}model", "b'hi'")]


def test_the_in_memory_volume_of_a_download_stack_is_the_plans() -> None:
    vs = read_config(stack_flat("multi"), base_dir=ROOT, plan_only=True)
    assert isinstance(vs.in_memory_volume_gib, int) and vs.in_memory_volume_gib == vs.plan.in_memory_volume_gib > 0


def test_up_with_a_cache_nobody_may_call_names_the_command_to_run() -> None:
    service = {**json.loads(stack_flat("prod")[NS + "service"]), "invokers": ["user:me@corp.com"]}
    flat = stack_flat("prod", service=service, **{"gcp:project": "my-project-123"})
    with pytest.raises(ConfigErrors) as exc:
        read_config(flat, base_dir=ROOT, plan_only=False)
    (error,) = exc.value.errors
    assert (error.field, error.value) == (f"{NS}cache.invokers", [])
    assert error.problem == "nobody could call the response cache (no public invoker by default)"
    assert error.fix == (
        "add yourself: pulumi config set --path 'cloudrun-gpu:cache.invokers[0]' "
        '"user:$(gcloud config get-value account)"'
    )
    # plan renders it with a warning instead
    assert any("cache.invokers is empty" in w for w in read_config(flat, base_dir=ROOT, plan_only=True).warnings)


@pytest.mark.parametrize("token", ["", "   ", 5, ["hf_x"]])
def test_a_hub_token_that_is_not_a_token_is_refused_without_showing_it(token: Any) -> None:
    flat = {**stack_flat("dev"), f"{NS}hf_token": token}
    with pytest.raises(ConfigErrors) as exc:
        read_config(flat, base_dir=ROOT, plan_only=True)
    (error,) = exc.value.errors
    assert (error.field, error.value, error.problem) == (f"{NS}hf_token", "[hidden]", "is not a token")
    assert error.fix == "pulumi config set --secret cloudrun-gpu:hf_token <your Hugging Face token>"


def test_a_stack_file_whose_config_is_not_a_mapping_says_how_to_write_it(tmp_path: Any) -> None:
    from cloudrun_gpu.errors import ConfigError

    from stack.config import read_stack_file

    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  - cloudrun-gpu:gpu\n")
    with pytest.raises(ConfigError) as exc:
        read_stack_file(path)
    assert (exc.value.field, exc.value.value, exc.value.problem, exc.value.fix) == (
        "Pulumi.x.yaml: config",
        ["cloudrun-gpu:gpu"],
        "is not a mapping",
        "write each setting as 'namespace:key: value'",
    )

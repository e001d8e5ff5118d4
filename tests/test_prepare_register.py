"""Issue 21, made structural: the program validates everything before it registers anything.

``stack/compose.py`` composes in two phases: :func:`~stack.compose.prepare` builds every component's ``…Args``
(each runs its own rules on construction), sizes each region's service, builds the Cloud Build configs and checks
every derived name, registering nothing; :func:`~stack.compose.register` only constructs resources from those
prepared arguments. These tests hold the structure itself, not just today's refusals:

- an instrumented run of every committed stack records each rule that can refuse (every ``__post_init__`` and
  settings constructor of the library, the service plan, every ``ConfigError`` built) and each resource
  constructed, in program order: no rule runs after the first resource;
- a check only a component knows (its sizing plan), failing in the *last* region of the multi stack, stops the
  program with 0 resources registered (before the split, the first region's ~50 resources were registered);
- every derived name is checked against its resource's rule and its scope's other names, naming the setting.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import pkgutil
import runpy
from collections.abc import Callable, Iterator
from typing import Any

import cloudrun_gpu
import pulumi
import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.service import GpuInferenceService

from stack import compose
from stack.config import PLAN_ONLY_ENV, load_stack
from stack.render import _cwd, _env, _program_path, install_mocks, run_under_mocks
from tests.conftest import ROOT
from tests.test_validation_first import PROJECT_ID, deployable, up

NS = "cloudrun-gpu:"
STACKS = ("dev", "staging", "prod", "multi")


def library_classes() -> Iterator[type]:
    """Every class defined in the library (``cloudrun_gpu`` and its subpackages)."""
    seen: set[type] = set()
    for info in pkgutil.walk_packages(cloudrun_gpu.__path__, "cloudrun_gpu."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and cls not in seen:
                seen.add(cls)
                yield cls


def instrument(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
    """Record, in program order, every rule that can refuse and every resource constructed."""

    def recorded(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            events.append(label)
            return fn(*args, **kwargs)

        return wrapper

    checks = 0
    for cls in library_classes():
        if "__pydantic_fields__" in vars(cls):  # a settings type: validates on construction
            monkeypatch.setattr(cls, "__init__", recorded(f"check {cls.__name__}()", vars(cls)["__init__"]))
            checks += 1
        elif dataclasses.is_dataclass(cls) and "__post_init__" in vars(cls):  # an Args type
            monkeypatch.setattr(cls, "__post_init__", recorded(f"check {cls.__name__}", vars(cls)["__post_init__"]))
            checks += 1
    assert checks >= 20  # the instrument reaches the library's rules (12 Args, the settings types)
    service_module = importlib.import_module("cloudrun_gpu.service")
    monkeypatch.setattr(service_module, "plan_service", recorded("check plan_service", service_module.plan_service))
    monkeypatch.setattr(ConfigError, "__init__", recorded("check ConfigError", ConfigError.__init__))
    init = pulumi.Resource.__init__

    def resource(self: Any, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        if t != "pulumi:pulumi:Stack":
            events.append(f"register {t} {name}")
        init(self, t, name, *args, **kwargs)

    monkeypatch.setattr(pulumi.Resource, "__init__", resource)


def run_program(stack: str, flat: dict[str, str]) -> Exception | None:
    install_mocks(stack, flat, gcp_project=PROJECT_ID)
    with _cwd(ROOT), _program_path(ROOT), _env(PLAN_ONLY_ENV, None):
        try:
            run_under_mocks(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
        except Exception as exc:
            return exc
    return None


@pytest.mark.parametrize("stack", STACKS)
def test_no_rule_runs_after_the_first_resource(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    flat = deployable(stack)
    instrument(monkeypatch, events)
    assert run_program(stack, flat) is None
    first = next(i for i, e in enumerate(events) if e.startswith("register "))
    late = [e for e in events[first:] if e.startswith("check ")]
    assert late == [], f"rules run after {events[first]!r}: {late[:5]}"
    # and the instrument saw the phase it guards: the service plan ran (in prepare), resources followed
    assert "check plan_service" in events[:first] and sum(e.startswith("register ") for e in events) > 30


def test_the_prepared_arguments_are_the_ones_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The components receive exactly the prepared (validated) objects, wired, never rebuilt: the service plan
    the GPU service uses is the one prepare computed."""
    prepared: list[compose.Prepared] = []
    real = compose.prepare

    def prepare(vs: Any) -> compose.Prepared:
        prepared.append(real(vs))
        return prepared[-1]

    monkeypatch.setattr(compose, "prepare", prepare)
    built: list[Any] = []
    init = GpuInferenceService.__init__

    def service(self: Any, name: str, args: Any, opts: Any = None) -> None:
        built.append(args)
        init(self, name, args, opts)
        built.append(self.plan)

    monkeypatch.setattr(GpuInferenceService, "__init__", service)
    assert run_program("multi", deployable("multi")) is None
    (p,) = prepared
    assert [a for a in built[::2]] == [r.service for r in p.regions]
    assert all(a is r.service for a, r in zip(built[::2], p.regions, strict=True))
    assert all(plan is r.service.__dict__["_planned"][2] for plan, r in zip(built[1::2], p.regions, strict=True))
    assert not compose._pending(p, "Prepared")  # every placeholder was wired


def test_a_component_rule_failing_in_the_last_region_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The multi stack's second region's sizing refused by the component itself (a rule read_config does not
    repeat): before the prepare pass the first region's chain (~50 resources) was registered first."""
    service_module = importlib.import_module("cloudrun_gpu.service")
    real = service_module.plan_service

    def plan_service(serving: Any, base_dir: Any = None) -> Any:
        if serving.region == "us-central1":
            raise ConfigError("engine.context_length", 1, "is refused by the component in us-central1", "fix it")
        return real(serving, base_dir)

    monkeypatch.setattr(service_module, "plan_service", plan_service)
    resources, error = up("multi", deployable("multi"))
    assert isinstance(error, pulumi.RunError), repr(error)
    assert "invalid stack configuration" in str(error)
    assert "GpuInferenceServiceArgs.engine.context_length" in str(error) and "us-central1" in str(error)
    assert [r.name for r in resources] == []


def names(flat: dict[str, str], stack: str) -> list[str]:
    """The fields a prepare pass refuses for ``flat`` (the validation reader accepted it)."""
    from stack.config import read_config

    vs = read_config(flat, base_dir=ROOT, plan_only=False, secret_keys=frozenset({NS + "hf_token"}))
    with _cwd(ROOT):
        install_mocks(stack, flat, gcp_project=PROJECT_ID, secret_keys=[NS + "hf_token"])
        try:
            compose.prepare(vs)
        except ConfigErrors as exc:
            return [e.field for e in exc.errors]
    return []


def refused_on(stack: str, flat: dict[str, str], key: str) -> str:
    """``pulumi up`` stops naming ``key`` with 0 resources; returns the message."""
    resources, error = up(stack, flat, secret_keys=[NS + "hf_token"])
    assert isinstance(error, pulumi.RunError), repr(error)
    assert key in str(error), str(error)
    assert [r.name for r in resources] == []
    return str(error)


@pytest.mark.parametrize("length", [22, 23, 24, 30, 42])
def test_a_long_service_name_gives_the_cache_build_and_the_gpu_build_one_account(length: int) -> None:
    """``build_account_id`` keeps 24 characters of a name too long for ``<name>-build`` (30), and the cache's default
    service name is ``<service>-cache``: from 23 characters on, both build accounts were ``<service[:24]>-build`` —
    accepted, and the second account's create failed at deploy. 22 characters still give two accounts."""
    name = "a" * length
    service = json.loads(deployable("prod")[NS + "service"])
    flat = deployable("prod", service={**service, "name": name})
    if length == 22:
        assert names(flat, "prod") == []
        return
    msg = refused_on("prod", flat, NS + "cache.service_name")
    assert f"'{name[:24]}-build'" in msg and "the cache's build account" in msg
    assert "already given to europe-west4's build account (from cloudrun-gpu:service.name)" in msg


def distinct_valid_accounts(p: compose.Prepared) -> list[str]:
    """The oracle, written from IAM's rule (not limits.py): 6-30 characters, ``[a-z]([-a-z0-9]*[a-z0-9])``."""
    import re

    accounts = [p.identity.account_id, *(r.builds.identity.account_id for r in p.regions if r.builds is not None)]
    assert all(re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", a) for a in accounts), accounts
    assert len(set(accounts)) == len(accounts), accounts
    return accounts


@pytest.mark.parametrize("length", [1, 5, 16, 17, 21])
def test_every_account_the_multi_stack_derives_is_valid_and_distinct(length: int) -> None:
    """The secondary region's build account (``<service[:16]>-build-<6 hex of the region>``) among the others."""
    name = "b" * length
    service = json.loads(deployable("multi")[NS + "service"])
    flat = deployable("multi", service={**service, "name": name})
    from stack.config import read_config

    vs = read_config(flat, base_dir=ROOT, plan_only=False, secret_keys=frozenset())
    install_mocks("multi", flat, gcp_project=PROJECT_ID)
    with _cwd(ROOT):
        p = compose.prepare(vs)
    accounts = distinct_valid_accounts(p)
    assert len(accounts) == 3 and accounts[2].startswith(name[:16] + "-build-")


def test_the_cache_service_may_not_reuse_a_gpu_service_name_in_its_region() -> None:
    prod = deployable("prod")
    cache = json.loads(prod[NS + "cache"])
    flat = deployable("prod", cache={**cache, "service_name": "llm"})
    with pytest.raises(ConfigErrors) as exc:  # the reader already refuses it; the prepare pass agrees
        from stack.config import read_config

        read_config(flat, base_dir=ROOT, plan_only=True)
    assert NS + "cache.service_name" in [e.field for e in exc.value.errors]


@pytest.mark.parametrize("rule", limits.NAME_RULES, ids=lambda r: r.what)
def test_each_name_rule_refuses_what_its_source_refuses(rule: limits.NameRule) -> None:
    """The rules as data: a name one character too long, or with a character outside the pattern, is refused;
    the longest valid one is accepted."""
    import re

    longest = "a" * rule.max_len
    assert re.fullmatch(rule.pattern, longest)
    assert not (rule.min_len <= rule.max_len + 1 <= rule.max_len)
    assert not re.fullmatch(rule.pattern, "a" * (rule.max_len - 1) + "!")
    assert rule.unique_in in ("project", "region") and rule.source


def test_derived_names_name_the_setting_that_produced_them() -> None:
    """Every name the prepared committed stacks give a resource satisfies its rule, and each is attributed to a
    stack key the user writes."""
    for stack in STACKS:
        vs = load_stack(stack, ROOT)
        install_mocks(stack, deployable(stack), gcp_project=PROJECT_ID)
        with _cwd(ROOT):
            p = compose.prepare(vs)
        found = compose.derived_names(p)
        assert found and all(n.setting.startswith(NS) for n in found)
        assert compose.derived_name_problems(p) == []
        kinds = {n.rule.what for n in found}
        assert {"service account id", "Cloud Run service name", "Artifact Registry repository id"} <= kinds


def test_a_long_private_dns_zone_is_refused_on_the_zone_not_deployed_with_an_invalid_name() -> None:
    """The zone's Cloud DNS name is ``<network component>-<zone slug>``: a 64-character zone gave
    ``llm-dev-n-aaa…-com`` (71 characters), which the DNS API refuses only at deploy, after 40-odd resources."""
    zone = "a" * 60 + ".com."
    net = {**json.loads(deployable("dev")[NS + "network"]), "psc": {"dns_zones": ["pkg.dev.", zone]}}
    msg = refused_on("dev", deployable("dev", network=net), NS + "network.psc.dns_zones.1")
    assert f"= {zone!r}" in msg and "Cloud DNS zone name 'llm-dev-n-" in msg and "1-63 characters" in msg


def test_plan_reports_a_refusal_of_the_validation_pass_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``plan`` renders the program under mocks: a refusal from the program's validation pass (here a derived
    name) is printed like the reader's refusals, exit status 2, no ``RunError`` traceback."""
    import stack.config as config
    from stack.cli import main

    real = config.read_stack_file

    def read(path: Any) -> dict[str, str]:
        flat = real(path)
        net = json.loads(flat[NS + "network"])
        flat[NS + "network"] = json.dumps({**net, "psc": {"dns_zones": ["b" * 60 + ".com."]}})
        return flat

    monkeypatch.setattr(config, "read_stack_file", read)
    assert main(["plan", "--stack", "dev"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration\n") and "Traceback" not in err and "RunError" not in err
    assert "- cloudrun-gpu:network.psc.dns_zones.0 = 'bbbb" in err and "fix: shorten or change" in err


SOURCE_UNSET = (
    "cloudrun-gpu:model.source is not set: put the model into the bucket under {prefix!r} yourself before the first "
    "request (docs/deploy.md, bucket layout)"
)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_a_stack_without_a_model_source_is_told_where_to_put_the_model(caplog: pytest.LogCaptureFixture) -> None:
    """Without ``model.source`` nothing stages the weights: ``pulumi up`` says where they must go, once per region
    that reads them from a bucket or bakes them into the image (the internet method fetches them itself)."""
    caplog.set_level("WARNING")
    resources, error = up("dev", deployable("dev"))  # the image method, no source
    assert error is None and resources
    assert warnings_of(caplog).count(SOURCE_UNSET.format(prefix="models")) == 1
    caplog.clear()
    net = {**json.loads(deployable("dev")[NS + "network"]), "nat": {"enabled": True}}
    resources, error = up("dev", deployable("dev", loading={"method": "internet"}, network=net))
    assert error is None and resources
    assert not [w for w in warnings_of(caplog) if "model.source is not set" in w]


def test_a_refused_stack_prints_no_deployment_warning(caplog: pytest.LogCaptureFixture) -> None:
    """The warning is the register pass's: a stack the prepare pass refuses stops with its error alone."""
    caplog.set_level("WARNING")
    net = {**json.loads(deployable("dev")[NS + "network"]), "psc": {"dns_zones": ["c" * 60 + ".com."]}}
    refused_on("dev", deployable("dev", network=net), NS + "network.psc.dns_zones.0")
    assert not [w for w in warnings_of(caplog) if "model.source is not set" in w]


def test_a_hub_token_is_one_secret_its_build_accounts_may_read(caplog: pytest.LogCaptureFixture) -> None:
    """With a Hub source and ``hf_token`` set as a secret, the token is one Secret Manager secret for every region,
    and each region's staging build account gets ``roles/secretmanager.secretAccessor`` on it, and only on it."""
    hub = "hf://bartowski/Llama-3.2-3B-Instruct-GGUF@" + "a" * 40
    model = {**json.loads(deployable("multi")[NS + "model"]), "source": hub}
    flat = deployable("multi", model=model, hf_token="hf_test")
    resources, error = up("multi", flat, secret_keys=[NS + "hf_token"])
    assert error is None, error
    secrets = [r for r in resources if r.type == "gcp:secretmanager/secret:Secret"]
    assert [r.inputs["secretId"] for r in secrets] == [f"{json.loads(flat[NS + 'service'])['name']}-hf-token"]
    readers = [r for r in resources if r.type == "gcp:secretmanager/secretIamMember:SecretIamMember"]
    builds = sorted(r.inputs["accountId"] for r in resources if r.type == "gcp:serviceaccount/account:Account")
    members = sorted(r.inputs["member"].split(":", 1)[1].split("@", 1)[0] for r in readers)
    assert len(readers) == 2 and members == [b for b in builds if "-build" in b]
    assert {r.inputs["role"] for r in readers} == {"roles/secretmanager.secretAccessor"}
    assert {r.inputs["secretId"] for r in readers} == {secrets[0].inputs["secretId"]}


def test_wiring_leaves_no_placeholder_behind() -> None:
    """``register`` constructs a component only from fully wired arguments: a placeholder left (a wiring this module
    forgot) stops at once naming where it is, instead of deploying the text ``<wired at registration>``."""
    from cloudrun_gpu.build import BuildIdentityArgs

    args = BuildIdentityArgs(
        account_id="llm-build",
        project="p-123456",
        location="europe-west1",
        bucket=compose.PENDING,
        pull_repositories={"ghcr": compose.PENDING},
    )
    with pytest.raises(AssertionError) as exc:
        compose._wire(args, bucket="b")
    assert str(exc.value) == "not wired: ['BuildIdentityArgs.pull_repositories.ghcr']"
    assert compose._wire(args, pull_repositories={"ghcr": "r"}) is args and args.bucket == "b"
    with pytest.raises(AssertionError) as replaced:  # a value prepare checked is never replaced by the wiring
        compose._wire(args, location="us-central1")
    assert str(replaced.value) == "BuildIdentityArgs.location was not left pending"
    assert compose._wire(args, location="europe-west1") is args  # the same value again is no change


def test_two_committed_stacks_in_one_project_derive_disjoint_names() -> None:
    """Any two committed stacks deployed into one project: no project-wide name (service accounts, private DNS zone
    names, the token's secret) and no name of a shared region (Cloud Run services, Artifact Registry repositories)
    is given by both (tests/test_fresh_project.py compares their rendered resources; this compares every name the
    prepare pass checks)."""
    import itertools

    def scoped(stack: str) -> set[tuple[str, str, str]]:
        flat = deployable(stack)
        from stack.config import read_config

        vs = read_config(flat, base_dir=ROOT, plan_only=False, secret_keys=frozenset())
        install_mocks(stack, flat, gcp_project=PROJECT_ID)
        with _cwd(ROOT):
            p = compose.prepare(vs)
        return {
            (n.rule.what, n.region if n.rule.unique_in == "region" else "", n.name) for n in compose.derived_names(p)
        }

    names = {s: scoped(s) for s in STACKS}
    for a, b in itertools.combinations(STACKS, 2):
        assert not names[a] & names[b], (a, b, sorted(names[a] & names[b]))


def test_derived_name_messages_are_whole() -> None:
    """The two refusals of the derived-name pass, as a user reads them."""
    zone = "d" * 60 + ".com."
    net = {**json.loads(deployable("dev")[NS + "network"]), "psc": {"dns_zones": [zone]}}
    msg = refused_on("dev", deployable("dev", network=net), NS + "network.psc.dns_zones.0")
    name = "llm-dev-n-" + "d" * 60 + "-com"
    assert (
        f"- {NS}network.psc.dns_zones.0 = {zone!r}: gives europe-west1's private zone for {zone} the Cloud DNS zone "
        f"name {name!r}, which is not 1-63 characters matching [a-z]([-a-z0-9]*[a-z0-9])?\n"
        f"  fix: shorten or change {NS}network.psc.dns_zones.0"
    ) in msg
    service = json.loads(deployable("prod")[NS + "service"])
    msg = refused_on("prod", deployable("prod", service={**service, "name": "e" * 23}), NS + "cache.service_name")
    cache = "e" * 23 + "-cache"
    assert (
        f"- {NS}cache.service_name = {cache!r}: gives the cache's build account the service account id "
        f"'{'e' * 23}-build', already given to europe-west4's build account (from {NS}service.name): a service "
        f"account id is unique per project\n  fix: change {NS}cache.service_name so the two differ"
    ) in msg

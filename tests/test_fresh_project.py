"""Issue 19: every committed stack answers on a fresh project, and a short quota stops ``pulumi up`` in minutes.

- any two committed stacks share one project: their project- and region-level names are disjoint;
- multi commits no placeholder domain and no foreign bucket; ``up`` stops with the exact ``pulumi config set``;
- ``python -m stack preflight`` enables Cloud Quotas, reads the stack's quotas and prints the request when short
  (against a fake Cloud Quotas / Service Usage server on 127.0.0.1, not GCP);
- inside ``up`` the quota gate waits for the APIs and every build, staging and GPU service waits for it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import pytest
import requests
import yaml
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.quota import CPU_QUOTA_ID, MEMORY_QUOTA_ID, quota_info_wire

from stack.cli import plan_json
from stack.config import PLAN_DOMAIN, SET_DOMAIN, read_config, read_stack_file
from stack.preflight import QUOTAS_API, Endpoints
from stack.preflight import main as preflight_main
from stack.render import render_program

from .conftest import ROOT, stack_flat

STACKS = ("dev", "staging", "prod", "multi")
NAME_KEYS = ("accountId", "repositoryId", "secretId", "instanceId", "name")
NOT_NAMED_HERE = (
    "gcp:dns/recordSet:RecordSet",  # a record's name is scoped to its (uniquely named) zone
    "gcp:projects/service:Service",  # enabling an API is shared by design (never disabled on destroy)
    "command:",
    "time:",
    "random:",
)
"""Types whose ``name`` input is not a project- or region-level name of their own (IAM members name their target)."""


@pytest.fixture(scope="module")
def plans() -> dict[str, dict[str, Any]]:
    return {s: plan_json(s, ROOT) for s in STACKS}


def cloud_names(plan: dict[str, Any]) -> set[tuple[str, str, str]]:
    """``(scope, type, name)`` of every resource that holds a name in the project (global) or in a region."""
    out: set[tuple[str, str, str]] = set()
    for r in plan["resources"]:
        t, inputs = r["type"], r["inputs"]
        if t.startswith(NOT_NAMED_HERE) or "iam" in t.lower():
            continue
        for key in NAME_KEYS:
            value = inputs.get(key)
            if isinstance(value, str) and value:
                scope = inputs.get("location") or inputs.get("region") or "global"
                out.add((str(scope), t, value))
                break
    return out


def test_any_two_committed_stacks_share_a_project(plans: dict[str, dict[str, Any]]) -> None:
    """Issue 19 item 6: before, dev, staging and multi all named their PSC endpoint ``llmapis`` and every stack's
    registries ``llm-serving*``; the second stack's ``up`` failed with "already exists"."""
    names = {s: cloud_names(p) for s, p in plans.items()}
    assert all(len(n) > 10 for n in names.values()), {s: len(n) for s, n in names.items()}
    for a, b in itertools.combinations(STACKS, 2):
        assert not names[a] & names[b], (a, b, sorted(names[a] & names[b]))
    psc = {
        s: sorted(
            r["inputs"]["name"]
            for r in p["resources"]
            if r["type"].endswith("GlobalForwardingRule") and "name" in r["inputs"]
        )
        for s, p in plans.items()
    }
    assert psc["dev"] == ["llmdevapis"] and psc["prod"] == ["llmapisprod"]
    assert "llmmultiapis2" in psc["multi"]


def test_a_name_written_in_the_stack_wins_and_llm_keeps_the_library_names() -> None:
    written = read_config(
        stack_flat("dev", registry={"repository_id": "mine"}, network={"psc": {"name": "mypsc"}}), plan_only=True
    )
    assert written.config.registry.repository_id == "mine" and written.config.network.psc.name == "mypsc"
    llm = read_config(stack_flat("dev", service={"name": "llm"}), plan_only=True).config
    assert (llm.registry.repository_id, llm.network.psc.name, llm.bucket.name_prefix) == (
        "llm-serving",
        "llmapis",
        "llm-models",
    )


# --- multi: the user's domain and model, never a committed placeholder -------------------------------------


def test_multi_commits_no_placeholder_domain_and_no_foreign_bucket() -> None:
    text = (ROOT / "Pulumi.multi.yaml").read_text()
    config = yaml.safe_load(text)["config"]
    assert "domains" not in config["cloudrun-gpu:frontdoor"]
    assert "source" not in config["cloudrun-gpu:model"]
    assert "example.com" not in text and "gs://" not in text


def test_up_without_a_domain_stops_with_the_config_set_and_plan_warns() -> None:
    flat = stack_flat(
        "multi",
        **{"gcp:project": "my-real-project"},
        service={
            "name": "llm-multi",
            "invokers": ["user:me@x.io"],
            "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        },
    )
    with pytest.raises(pulumi.RunError) as err:
        render_program(ROOT / "__main__.py", "multi", flat, plan_only=False)
    assert SET_DOMAIN in str(err.value) and "cloudrun-gpu:frontdoor.domains" in str(err.value)
    vs = read_config(read_stack_file(ROOT / "Pulumi.multi.yaml"), plan_only=True)
    assert vs.config.frontdoor is not None and vs.config.frontdoor.domains == [PLAN_DOMAIN]
    assert any(SET_DOMAIN in w for w in vs.warnings)


def test_up_refuses_a_reserved_documentation_domain() -> None:
    flat = stack_flat("multi", frontdoor={"domains": ["llm.example.com"]})
    with pytest.raises(ConfigErrors) as err:
        read_config(flat, plan_only=False)
    e = err.value.errors[0]
    assert e.field == "cloudrun-gpu:frontdoor.domains[0]" and "RFC 2606" in e.problem and SET_DOMAIN in e.fix


def test_multi_outputs_the_certificate_to_wait_for(plans: dict[str, dict[str, Any]]) -> None:
    certs = [r for r in plans["multi"]["resources"] if r["type"].endswith("ManagedSslCertificate")]
    assert [c["inputs"]["managed"]["domains"] for c in certs] == [[PLAN_DOMAIN]]
    compose = (ROOT / "stack" / "compose.py").read_text()
    assert 'outputs["frontdoor_certificate"] = door.managed_certificate.name' in compose


# --- the quota gate inside `pulumi up` ----------------------------------------------------------------------


def by_name(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"]}


@pytest.mark.parametrize("stack", STACKS)
def test_quota_gate_runs_after_the_apis_and_before_every_build(plans: dict[str, dict[str, Any]], stack: str) -> None:
    """Issue 19 item 3: the quota check waits for Cloud Quotas to be enabled, and no staging, image build (engine
    or cache) or GPU service starts before it passed: recorded dependencies, through the components' parents."""
    res = by_name(plans[stack])
    gates = {n: r for n, r in res.items() if r["type"] == "command:local:Command" and "-quota" in n}
    regions = plans[stack].get("regions") or [{"region": plans[stack]["region"]}]
    assert len(gates) == len(regions)
    apis = {n for n, r in res.items() if r["type"] == "gcp:projects/service:Service"}
    for gate in gates.values():
        assert apis <= set(gate["dependencies"]), sorted(apis - set(gate["dependencies"]))
        assert "preflight" in gate["inputs"]["create"] and "--no-enable" in gate["inputs"]["create"]
        assert gate["inputs"]["environment"]["REGION"] in {r["region"] for r in regions}
    builds = [r for n, r in res.items() if r["type"] == "command:local:Command" and n.endswith("-submit")]
    services = [r for r in res.values() if r["type"] == "gcp:cloudrunv2/service:Service" and "cache" not in r["name"]]
    assert builds and services
    for r in [*builds, *services]:
        assert set(r["dependencies"]) & set(gates), (r["name"], r["dependencies"])


def test_quota_gate_reruns_when_the_need_changes() -> None:
    from stack.compose import QUOTA_GATE_SCRIPT

    def gate(max_instances: int) -> dict[str, Any]:
        flat = stack_flat("dev", scaling={"min_instances": 0, "max_instances": max_instances})
        r = [x for x in render_program(ROOT / "__main__.py", "dev", flat) if x.name.endswith("-quota")]
        assert len(r) == 1
        return dict(r[0].inputs)

    one, two = gate(1), gate(2)
    assert one["create"] == two["create"] == QUOTA_GATE_SCRIPT  # constant: only the triggers vary
    assert json.loads(one["triggers"][0])["gpus"] == 1 and json.loads(two["triggers"][0])["gpus"] == 2


def test_quota_gate_script_runs_preflight_with_the_project_venv_and_fails_with_it(tmp_path: Path) -> None:
    """The gate's shell runs ``.venv/bin/python -m stack preflight`` (Pulumi.yaml's virtualenv) for its stack and
    region without enabling the API, and its exit status is the command's: a short quota fails the resource."""
    import os
    import subprocess

    from stack.compose import QUOTA_GATE_SCRIPT

    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    fake = venv / "python"
    fake.write_text('#!/bin/sh\necho "$*" > "$OUT"\nexit "${RC:-0}"\n')
    fake.chmod(0o755)
    env = {**os.environ, "STACK": "multi", "REGION": "us-central1", "OUT": str(tmp_path / "args")}
    for rc in (0, 2):
        run = subprocess.run(["/bin/sh", "-c", QUOTA_GATE_SCRIPT], cwd=tmp_path, env={**env, "RC": str(rc)})
        assert run.returncode == rc
        args = (tmp_path / "args").read_text().split()
        assert args == ["-m", "stack", "preflight", "--stack", "multi", "--region", "us-central1", "--no-enable"]


# --- python -m stack preflight against a fake Cloud Quotas / Service Usage ----------------------------------


L4 = limits.GPU_TYPES["nvidia-l4"].quota_no_zonal
PROJECT = "my-real-project"


class FakeGoogle(ThreadingHTTPServer):
    """Answers the two REST calls preflight makes: Service Usage ``…:enable`` (an operation, done after ``polls``
    GETs) and Cloud Quotas ``quotaInfos/<id>`` from ``infos``; records every request in order."""

    def __init__(self, infos: dict[str, dict[str, Any]], polls: int = 0, status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.infos, self.polls, self.status = infos, polls, status
        self.log: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGoogle

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.server.log.append(("POST", self.path))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(200, {"name": "operations/acf.p2-1", "done": self.server.polls == 0})

    def do_GET(self) -> None:
        self.server.log.append(("GET", self.path))
        if self.path.startswith("/v1/operations/"):
            self.server.polls -= 1
            self._send(200, {"name": "operations/acf.p2-1", "done": self.server.polls <= 0})
            return
        quota_id = self.path.rsplit("/", 1)[-1]
        if self.server.status != 200:
            self._send(self.server.status, {"error": {"code": 403, "message": "Permission denied on quotaInfos"}})
        elif quota_id in self.server.infos:
            self._send(200, self.server.infos[quota_id])
        else:
            self._send(404, {"error": {"code": 404, "message": f"{quota_id} not found"}})

    def log_message(self, *args: Any) -> None:
        pass


def rest_info(quota_id: str, values: dict[str, str]) -> dict[str, Any]:
    """A v1 REST ``QuotaInfo``: like the Pulumi wire answer, but ``details`` is one object, not a list."""
    wire = quota_info_wire(quota_id, values)
    for d in wire["dimensionsInfos"]:
        d["details"] = d["details"][0]
    return wire


def fresh(gpus: str = "0") -> dict[str, dict[str, Any]]:
    """A fresh project in europe-west1: no GPU quota (issue 19), 20 vCPU and 40 GiB of Cloud Run."""
    return {
        L4: rest_info(L4, {"": gpus}),
        CPU_QUOTA_ID: rest_info(CPU_QUOTA_ID, {"": "20000"}),
        MEMORY_QUOTA_ID: rest_info(MEMORY_QUOTA_ID, {"": str(40 * limits.GIB)}),
    }


@pytest.fixture
def dev_root(tmp_path: Path) -> Path:
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["gcp:project"] = PROJECT
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


Server = TypeVar("Server", bound=ThreadingHTTPServer)


def serve(server: Server) -> Iterator[Server]:
    """``server`` answering on its thread for the loop's one pass, shut down after."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def run(server: FakeGoogle, root: Path, *, no_enable: bool = False) -> tuple[int | ConfigErrors, list[str]]:
    args = argparse.Namespace(stack="dev", root=str(root), region=None, no_enable=no_enable)
    printed: list[str] = []
    ep = Endpoints(quotas=server.url, usage=server.url, sleep=lambda s: None)
    try:
        return preflight_main(args, session=requests.Session(), ep=ep, out=printed.append), printed
    except ConfigErrors as e:
        return e, printed


def test_preflight_on_a_fresh_project_enables_quotas_and_prints_the_request(dev_root: Path) -> None:
    for server in serve(FakeGoogle(fresh("0"), polls=2)):
        result, _ = run(server, dev_root)
        assert isinstance(result, ConfigErrors), result
        text = result.render()
        assert f"quota {L4} of project {PROJECT} in europe-west1 is 0" in text
        assert (
            f"gcloud beta quotas preferences create --service=run.googleapis.com --project={PROJECT} "
            f"--quota-id={L4} --preferred-value=1 --dimensions=region=europe-west1" in text
        )
        methods = [m for m, _ in server.log]
        assert server.log[0] == ("POST", f"/v1/projects/{PROJECT}/services/{QUOTAS_API}:enable")
        assert methods[:3] == ["POST", "GET", "GET"] and server.log[1][1] == "/v1/operations/acf.p2-1"
        reads = [p for m, p in server.log if "quotaInfos" in p]
        prefix = f"/v1/projects/{PROJECT}/locations/global/services/run.googleapis.com/quotaInfos/"
        assert sorted(reads) == sorted(prefix + q for q in (L4, CPU_QUOTA_ID, MEMORY_QUOTA_ID))


def test_preflight_passes_when_the_quota_is_granted(dev_root: Path) -> None:
    for server in serve(FakeGoogle(fresh("3"))):
        result, printed = run(server, dev_root, no_enable=True)
        assert result == 0
        assert not any(m == "POST" for m, _ in server.log)  # --no-enable: pulumi up has enabled the API
        assert printed and printed[0].startswith("europe-west1: quota OK")


def test_preflight_names_an_unreadable_quota_and_the_role_to_read_it(dev_root: Path) -> None:
    for server in serve(FakeGoogle(fresh("3"), status=403)):
        result, _ = run(server, dev_root, no_enable=True)
        assert isinstance(result, ConfigErrors)
        text = result.render()
        assert "could not be read (HTTP 403: Permission denied on quotaInfos)" in text
        assert "roles/cloudquotas.viewer" in text


def test_preflight_needs_a_project(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    args = argparse.Namespace(stack="dev", root=str(tmp_path), region=None, no_enable=False)
    with pytest.raises(Exception) as err:
        preflight_main(args, session=requests.Session())
    assert "pulumi config set gcp:project" in str(err.value)


# --- smaller items (issue 19 item 7) -------------------------------------------------------------------------


def test_memorystore_does_not_wait_for_the_gpu_service(plans: dict[str, dict[str, Any]]) -> None:
    """Only the cache's Cloud Run service (and its invoker binding) needs the GPU service's URL; the Valkey instance
    and the connection policy, a long create, start without waiting for the GPU service or any build."""
    res = by_name(plans["prod"])
    slow = [r for r in res.values() if r["type"].startswith(("gcp:memorystore/", "gcp:networkconnectivity/"))]
    assert len(slow) == 2
    for r in slow:
        assert not {"llm-svc", "llm-image-submit", "llm-cache-image-submit"} & set(r["dependencies"]), r["name"]
    cache = res["llm-cache-svc"]
    assert {"llm-svc", "llm-cache-image-submit"} <= set(cache["dependencies"])


@pytest.mark.parametrize(("stack", "waits"), [("staging", True), ("prod", True), ("multi", True), ("dev", False)])
def test_a_service_that_loads_from_the_bucket_waits_for_psc_and_its_dns(
    plans: dict[str, dict[str, Any]], stack: str, waits: bool
) -> None:
    """staging (gcs-fuse), prod (gcs-stream) and multi (gcs-download) read the bucket through the PSC endpoint at
    start-up: each GPU service waits for its region's endpoint and every private DNS record; dev bakes the model."""
    res = by_name(plans[stack])
    services = [r for r in res.values() if r["type"] == "gcp:cloudrunv2/service:Service" and "cache" not in r["name"]]
    assert services
    for svc in services:
        net = svc["name"].removesuffix("-svc").replace("-us-central1", "") + "-net"
        net += "-us-central1" if "us-central1" in svc["name"] else ""
        psc = [n for n in res if n == net + "-psc"]
        records = [
            n
            for n, r in res.items()
            if n.startswith(net + "-dns-")
            and r["type"] == "gcp:dns/recordSet:RecordSet"
            and "us-central1" not in n[len(net) :]
        ]
        assert len(psc) == 1 and len(records) == 6, (svc["name"], psc, records)
        assert (set(psc + records) <= set(svc["dependencies"])) is waits, svc["name"]


# --- the README's per-stack model rows (issue 19 item 5) -----------------------------------------------------


def readme_model_rows() -> dict[str, tuple[str, list[str]]]:
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- model-sources -->", 1)[1].split("<!-- /model-sources -->", 1)[0]
    rows: dict[str, tuple[str, list[str]]] = {}
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        rows[cells[0]] = (cells[2], json.loads(cells[3]))
    return rows


@pytest.mark.parametrize("stack", STACKS)
def test_readme_model_rows_fit_each_stack(stack: str) -> None:
    """Issue 19 item 5: the deploy sequence was written for dev (``*Q4_K_M.gguf`` gave prod's vLLM nothing to load).
    Each committed stack has a row; its source validates, staging plans for that stack's engine and loading method,
    and its patterns choose what the engine loads: one GGUF for llama.cpp and Ollama, the model directory for vLLM."""
    import fnmatch

    from stack.cloudbuild import staging_config, staging_needed

    rows = readme_model_rows()
    assert set(rows) == set(STACKS)
    source, files = rows[stack]
    commit = "0123456789abcdef0123456789abcdef01234567"
    vs = read_config(
        stack_flat(
            stack, model={**_model_section(stack), "source": source.replace("<commit>", commit), "files": files}
        ),
        plan_only=True,
    )
    assert staging_needed(vs), stack
    assert staging_config(vs, token=False, trigger="t")["steps"]
    engine = vs.config.engine.name

    def picks(name: str) -> bool:
        return any(fnmatch.fnmatch(name, p) for p in files)

    if engine == "vllm":
        wanted = ("config.json", "model-00001-of-00004.safetensors", "tokenizer.json", "generation_config.json")
        assert all(picks(n) for n in wanted) and not picks("model-Q4_K_M.gguf")
    else:
        assert picks(f"Model-{vs.config.model.quantization}.gguf") and not picks("model.safetensors")
        assert not picks("Model-Q8_0.gguf")  # one GGUF: the quantization the stack is sized for


def _model_section(stack: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]["cloudrun-gpu:model"])

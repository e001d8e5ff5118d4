"""Strength tests for the CLI's text plan, session 5 (issue 23; `stack/cli.py` seed 101's survivors).

The text plan is what a platform engineer reads before `pulumi up`: under each resource it prints the inputs worth
checking. Two of them went unpinned: the private DNS records that send Google API traffic to the Private Service
Connect endpoint (a wrong ``rrdatas`` and every model download leaves through NAT, or fails), and the regional
internal load balancer's HTTPS proxy (which certificate it serves, in which region).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.cli import main

from .conftest import ROOT


def _lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["plan", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["plan", *argv, "--json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def _shown(lines: list[str], type_: str, name: str) -> list[str]:
    """The indented input lines printed under one resource of the text plan."""
    at = lines.index(f"  + {type_}  {name}")
    shown = []
    for line in lines[at + 1 :]:
        if not line.startswith("      "):
            break
        shown.append(line.strip())
    return shown


def test_the_text_plan_shows_each_private_google_api_record_and_where_it_points(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each A record of the private zones points at the PSC endpoint's own address; each wildcard CNAME at its
    domain: the plan prints the name, the type and the data of every record (P2, Private Service Connect DNS)."""
    doc = _json(capsys, "--stack", "dev")
    [psc] = [
        r["inputs"]["address"]
        for r in doc["resources"]
        if r["type"] == "gcp:compute/globalAddress:GlobalAddress"
        and r["inputs"].get("purpose") == "PRIVATE_SERVICE_CONNECT"
    ]
    lines = _lines(capsys, "--stack", "dev")
    records = [r for r in doc["resources"] if r["type"] == "gcp:dns/recordSet:RecordSet"]
    assert {r["inputs"]["name"] for r in records} >= {"googleapis.com.", "*.googleapis.com.", "pkg.dev.", "*.pkg.dev."}
    for r in records:
        name = r["inputs"]["name"]
        domain = name.removeprefix("*.")
        kind, data = ("CNAME", [domain]) if name.startswith("*.") else ("A", [psc])
        assert _shown(lines, "gcp:dns/recordSet:RecordSet", r["name"]) == [
            f"name: {json.dumps(name)}",
            f'type: "{kind}"',
            f"rrdatas: {json.dumps(data)}",
        ]


def test_the_text_plan_shows_the_internal_front_doors_proxy_its_region_url_map_and_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A one-region stack behind the regional internal Application Load Balancer: the plan shows the HTTPS proxy's
    region, the URL map it serves and the regional certificate the user named in the stack."""
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    config = stack["config"]
    region = config["gcp:region"]
    certificate = f"projects/p/regions/{region}/sslCertificates/llm-internal"
    config["cloudrun-gpu:frontdoor"] = {"scheme": "INTERNAL_MANAGED", "certificate": certificate}
    config.setdefault("cloudrun-gpu:service", {})["ingress"] = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    (tmp_path / "Pulumi.internal.yaml").write_text(yaml.safe_dump(stack))
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    argv = ("--stack", "internal", "--root", str(tmp_path))
    doc = _json(capsys, *argv)
    [proxy] = [r for r in doc["resources"] if r["type"] == "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy"]
    [url_map] = [r for r in doc["resources"] if r["type"] == "gcp:compute/regionUrlMap:RegionUrlMap"]
    assert proxy["inputs"]["urlMap"] == f"{url_map['name']}-id"  # the mocks' id of the URL map resource
    lines = _lines(capsys, *argv)
    assert _shown(lines, proxy["type"], proxy["name"]) == [
        f'region: "{region}"',
        f'urlMap: "{url_map["name"]}-id"',
        f'sslCertificates: ["{certificate}"]',
    ]

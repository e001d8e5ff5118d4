"""Mutation-strength tests (issue 23, session 5, blind seed 101) for ``python -m stack preflight``
(``stack/preflight.py``): what the command prints and refuses when Google's answers are not the plain happy path.

The same local fake of Service Usage and Cloud Quotas as ``tests/test_cov_preflight.py`` (documented shapes and
citations there); each test names the answer it scripts.
"""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.quota import CPU_QUOTA_ID, MEMORY_QUOTA_ID, quota_info_wire

from stack.cli import build_parser
from stack.preflight import QUOTAS_API, authorized_session

from .conftest import ROOT
from .stub_http import answer, serving
from .test_cov_preflight import DISABLED, FIX, Google, run
from .test_fresh_project import L4, PROJECT, rest_info, serve
from .test_fresh_project import dev_root as dev_root

EARLY_HINTS = (103, "")
"""A 1xx other than 100 as the whole answer: CPython's ``http.client`` skips only ``100 Continue`` before the final
response (``HTTPResponse.begin``: ``if status != CONTINUE: break``), so requests hands a ``103 Early Hints`` back as
the response itself (status 103, empty body; checked with requests 2.34.2 / urllib3 2.8.0 here). It is not a 200."""


def quota_reads(server: Google) -> list[str]:
    return [p.rsplit("/", 1)[-1] for _, p in server.log if "quotaInfos" in p]


# --- enabling the Cloud Quotas API: when the operation is finished, and when an answer is not a 200 -------------


@pytest.mark.parametrize(
    "enabled",
    [
        {"name": "operations/acf.p2-1", "done": True},
        {"done": False},
    ],
    ids=["done-at-once", "no-operation-name"],
)
def test_an_enable_that_needs_no_polling_reads_the_quotas_without_waiting(dev_root: Path, enabled: Any) -> None:
    """An operation answered ``done`` (or with no ``name`` to poll) is not polled: no 5-second wait, no GET of an
    operation. Polling it anyway made every preflight wait POLLS × POLL_S = five minutes, or asked for
    ``/v1/operations/<missing>``."""
    for server in serve(Google(enable=[(200, enabled)])):
        result, printed, slept = run(server, dev_root)
        assert result == 0 and printed[0].startswith("europe-west1: quota OK")
        assert slept == []
        assert [m for m, p in server.log if "operations" in p] == []
        assert server.log[0][0] == "POST" and sorted(quota_reads(server)) == sorted([L4, CPU_QUOTA_ID, MEMORY_QUOTA_ID])


def test_a_1xx_answer_is_not_taken_for_success_anywhere(dev_root: Path) -> None:
    """Each call wants exactly 200: a 103 (see :data:`EARLY_HINTS`) from the enable, the operation poll or a quota
    read is reported with its status, never parsed as JSON (a traceback) or taken as a quota."""
    for server in serve(Google(enable=[EARLY_HINTS])):
        result, _, _ = run(server, dev_root)
        assert isinstance(result, ConfigError) and (result.field, result.fix) == ("--stack", FIX)
        assert result.problem == f"could not enable {QUOTAS_API}: HTTP 103 "
    for server in serve(Google(operation=[EARLY_HINTS])):
        result, _, _ = run(server, dev_root)
        assert isinstance(result, ConfigError) and result.fix == FIX
        assert result.problem == f"enabling {QUOTAS_API}: HTTP 103 "
    for server in serve(Google(quota=[EARLY_HINTS, None])):
        result, _, _ = run(server, dev_root, no_enable=True)
        assert isinstance(result, ConfigErrors) and len(result.errors) == 1
        assert f"quota {L4} of project {PROJECT} in europe-west1 could not be read (HTTP 103: );" in (
            result.errors[0].problem
        )


def test_a_json_error_body_that_is_not_googles_error_object_is_quoted_to_200_characters(dev_root: Path) -> None:
    """A proxy's own JSON (no ``error`` object) is shown as it came, cut at 200 characters like a text page."""
    body = {"detail": "upstream connect error or disconnect/reset before headers " * 8}
    for server in serve(Google(enable=[(502, body)])):
        result, _, _ = run(server, dev_root)
        assert isinstance(result, ConfigError)
        shown = str(body)[:200]
        assert len(shown) == 200 and result.problem == f"could not enable {QUOTAS_API}: HTTP 502 {shown}"


# --- reading the quotas: which answers are waited on, and what a QuotaInfo says ----------------------------------


def test_a_read_still_disabled_is_waited_on_for_half_a_minute_then_reported(dev_root: Path) -> None:
    """A just-enabled API answers 403 SERVICE_DISABLED for a while: each quota read is retried 6 times, 5 seconds
    apart (30 s per quota), then reported as unreadable."""
    for server in serve(Google(quota=[(403, DISABLED)])):
        result, _, slept = run(server, dev_root, no_enable=True)
        assert isinstance(result, ConfigErrors) and len(result.errors) == 3
        assert slept == [5.0] * 18
        assert quota_reads(server).count(L4) == 7, "the first read and 6 retries"


@pytest.mark.parametrize(
    "refusal",
    [
        (403, {"error": {"code": 403, "message": "Permission 'cloudquotas.quotas.get' denied", "status": "X"}}),
        (429, {"error": {"code": 429, "message": "SERVICE_DISABLED is not the reason of a 429", "status": "X"}}),
    ],
    ids=["403-without-service-disabled", "429-that-mentions-it"],
)
def test_only_a_403_service_disabled_read_is_waited_on(dev_root: Path, refusal: tuple[int, Any]) -> None:
    """A permission refusal will not change by waiting, nor will another status whose text happens to name the
    reason: read once, reported at once with the status and Google's message."""
    for server in serve(Google(quota=[refusal])):
        result, _, slept = run(server, dev_root, no_enable=True)
        assert isinstance(result, ConfigErrors) and slept == []
        assert sorted(quota_reads(server)) == sorted([L4, CPU_QUOTA_ID, MEMORY_QUOTA_ID])
        status, body = refusal
        assert f"could not be read (HTTP {status}: {body['error']['message']});" in result.errors[0].problem


def test_the_regions_own_value_wins_over_another_regions_and_the_default(dev_root: Path) -> None:
    """A QuotaInfo lists one entry per region that has its own value plus the default: the stack's region reads its
    own entry (3 GPUs granted in europe-west1), not the first entry listed (us-central1's 0) nor the default (0)."""
    for server in serve(Google()):
        server.infos[L4] = rest_info(L4, {"us-central1": "0", "europe-west1": "3", "": "0"})
        result, printed, _ = run(server, dev_root, no_enable=True)
        assert result == 0 and printed[0].startswith("europe-west1: quota OK")


def test_a_short_quota_is_shown_in_the_unit_the_quotainfo_names(dev_root: Path) -> None:
    """The answer's ``metricUnit`` is read: a CPU quota of 2000 milli-vCPU is 2 vCPU, and the refusal shows the raw
    value in that unit (what the console shows) beside it."""
    for server in serve(Google()):
        server.infos[CPU_QUOTA_ID] = rest_info(CPU_QUOTA_ID, {"": "2000"})
        server.infos[MEMORY_QUOTA_ID] = quota_info_wire(MEMORY_QUOTA_ID, {"": "40960"}, unit="MiBy")
        for d in server.infos[MEMORY_QUOTA_ID]["dimensionsInfos"]:
            d["details"] = d["details"][0]
        result, _, _ = run(server, dev_root, no_enable=True)
        assert isinstance(result, ConfigErrors) and len(result.errors) == 1, "40960 MiBy is 40 GiB: memory fits"
        assert result.errors[0].problem.endswith(
            f"but project {PROJECT} has 2 vCPU (raw 2000 milli-vCPU) in europe-west1"
        )


# --- the command's own refusals and flags ------------------------------------------------------------------------


def _stack_with_project(root: Path, project: str) -> Path:
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["gcp:project"] = project
    (root / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    return root


@pytest.mark.parametrize("written", [None, "your-project-id"], ids=["unset", "placeholder-written-out"])
def test_a_stack_without_a_real_project_is_refused_before_any_call(tmp_path: Path, written: str | None) -> None:
    """Unset, or the placeholder the docs print written into the stack file: the same refusal, naming
    ``gcp:project`` and the command that sets it; nothing is asked of Google."""
    if written is None:
        (tmp_path / "Pulumi.dev.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    else:
        _stack_with_project(tmp_path, written)
    for server in serve(Google()):
        result, _, _ = run(server, tmp_path)
        assert isinstance(result, ConfigError)
        assert (result.field, result.value, result.problem, result.fix) == (
            "gcp:project",
            None,
            "is not set: there is no project to read quotas of",
            "pulumi config set gcp:project <your-project-id>",
        )
        assert server.log == []


def test_a_project_named_after_the_placeholder_alphabetically_is_checked(tmp_path: Path) -> None:
    """Only the placeholder is refused: a real project id that sorts after it is enabled and read."""
    root = _stack_with_project(tmp_path, "zz-prod-1")
    for server in serve(Google()):
        result, printed, _ = run(server, root)
        assert result == 0 and printed[0].startswith("europe-west1: quota OK")
        assert server.log[0] == ("POST", f"/v1/projects/zz-prod-1/services/{QUOTAS_API}:enable")


def test_a_foreign_region_is_refused_with_the_stacks_regions_to_pick_from(dev_root: Path) -> None:
    for server in serve(Google()):
        result, _, _ = run(server, dev_root, region="asia-east1")
        assert isinstance(result, ConfigError)
        assert (result.field, result.value, result.problem, result.fix, result.allowed) == (
            "--region",
            "asia-east1",
            "is not a region of stack dev",
            "pick one of them",
            "europe-west1",
        )


def test_no_enable_is_a_switch_on_the_command_line() -> None:
    """``python -m stack preflight --no-enable`` (what ``pulumi up``'s quota gate runs) takes no value."""
    parser = build_parser()
    args = parser.parse_args(["preflight", "--stack", "dev", "--no-enable"])
    assert args.no_enable is True and args.stack == "dev"
    assert parser.parse_args(["preflight"]).no_enable is False


def test_a_service_account_key_as_credentials_asks_for_the_cloud_platform_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Application Default Credentials may be a service-account key (``GOOGLE_APPLICATION_CREDENTIALS``, as in CI):
    such a key carries no scope of its own, so the token request must ask for ``cloud-platform``
    (the ``scope`` claim of the JWT assertion, "a space-delimited list of the permissions that the application
    requests", https://developers.google.com/identity/protocols/oauth2/service-account, "Forming the JWT claim set").
    A local token endpoint reads the assertion's claims; the API call then carries the token it issued."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    claims: list[dict[str, Any]] = []
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the token endpoint: grant_type=jwt-bearer&assertion=<JWT>
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            payload = form["assertion"][0].split(".")[1]
            claims.append(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
            if "scope" not in claims[-1]:
                answer(self, 400, b'{"error": "invalid_scope", "error_description": "Invalid OAuth scope"}')
                return
            answer(self, 200, b'{"access_token": "issued-token", "expires_in": 3600, "token_type": "Bearer"}')

        def do_GET(self) -> None:  # the API
            seen.append(self.headers.get("Authorization"))
            answer(self, 200, b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        key_file = tmp_path / "sa.json"
        key_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT,
                    "private_key_id": "k1",
                    "private_key": pem,
                    "client_email": f"deployer@{PROJECT}.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"{url}/token",
                }
            )
        )
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        session = authorized_session()
        assert session.get(f"{url}/v1/projects/{PROJECT}", timeout=10).status_code == 200
    assert [c.get("scope") for c in claims] == ["https://www.googleapis.com/auth/cloud-platform"]
    assert seen == ["Bearer issued-token"]

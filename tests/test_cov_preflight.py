"""``python -m stack preflight`` when Google's APIs do not simply say yes: enabling the Cloud Quotas API refused,
its operation failing or never finishing, quota reads answering ``SERVICE_DISABLED`` right after the enable, error
bodies that are not JSON, no Application Default Credentials, and a ``--region`` the stack does not have.

A local HTTP server plays Service Usage and Cloud Quotas with the documented shapes: ``services.enable`` returns a
long-running ``Operation`` (``name``, ``done``, ``error``;
https://cloud.google.com/service-usage/docs/reference/rest/v1/services/enable,
https://cloud.google.com/service-usage/docs/reference/rest/Shared.Types/Operation), errors are Google's JSON error
object (``{"error": {"code", "message", "status"}}``, https://cloud.google.com/apis/design/errors#http_mapping) and a
just-enabled API answers 403 ``SERVICE_DISABLED`` for a while
(https://cloud.google.com/service-usage/docs/enable-disable#propagation: changes take a few minutes to propagate)."""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.quota import CPU_QUOTA_ID, MEMORY_QUOTA_ID

from stack import preflight
from stack.preflight import QUOTAS_API, Endpoints, authorized_session
from stack.preflight import main as preflight_main

from .stub_http import answer
from .test_fresh_project import L4, PROJECT, fresh, serve
from .test_fresh_project import dev_root as dev_root

STALL = "stall"
"""A body that makes the fake server wait before answering (a hung Google API)."""
Answer = tuple[int, Any]
"""An HTTP status and a body: a dict is sent as JSON, a str as text/html."""
FIX = f"gcloud services enable {QUOTAS_API} --project={PROJECT} (needs serviceusage.services.enable)"
DISABLED = {
    "error": {
        "code": 403,
        "message": "Cloud Quotas API has not been used in project 123 before or it is disabled.",
        "status": "PERMISSION_DENIED",
        "details": [{"reason": "SERVICE_DISABLED"}],
    }
}


class Google(ThreadingHTTPServer):
    """Scripted answers per kind of call (``enable``, ``operation``, ``quota``): each call takes the next answer and
    the last one repeats, unless it is None: then the default answer follows (quota reads: the fresh project's info
    of the quota asked). Every request is logged in order."""

    def __init__(self, **script: list[Answer | None]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.infos = fresh("3")
        self.log: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next(self, kind: str, default: Answer) -> Answer:
        answers = self.script.get(kind) or [None]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return default if answer is None else answer


class _Handler(BaseHTTPRequestHandler):
    server: Google

    def _send(self, reply: Answer) -> None:
        status, body = reply
        if body == STALL:
            time.sleep(2)  # longer than the test's TIMEOUT_S: the client has given up, nothing to answer
            return
        if isinstance(body, dict):
            answer(self, status, json.dumps(body).encode())
        else:
            answer(self, status, str(body).encode(), "text/html")

    def do_POST(self) -> None:
        self.server.log.append(("POST", self.path))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(self.server.next("enable", (200, {"name": "operations/acf.p2-1", "done": False})))

    def do_GET(self) -> None:
        self.server.log.append(("GET", self.path))
        if self.path.startswith("/v1/operations/"):
            self._send(self.server.next("operation", (200, {"name": "operations/acf.p2-1", "done": True})))
            return
        quota_id = self.path.rsplit("/", 1)[-1]
        self._send(self.server.next("quota", (200, self.server.infos[quota_id])))

    def log_message(self, *args: Any) -> None:
        pass


def run(
    server: Google, root: Path, *, no_enable: bool = False, region: str | None = None
) -> tuple[int | ConfigError | ConfigErrors, list[str], list[float]]:
    args = argparse.Namespace(stack="dev", root=str(root), region=region, no_enable=no_enable)
    printed: list[str] = []
    slept: list[float] = []
    ep = Endpoints(quotas=server.url, usage=server.url, sleep=slept.append)
    try:
        return preflight_main(args, session=requests.Session(), ep=ep, out=printed.append), printed, slept
    except (ConfigError, ConfigErrors) as e:
        return e, printed, slept


def test_enabling_the_quotas_api_refused_names_the_reason_and_the_command(dev_root: Path) -> None:
    denied = {"error": {"code": 403, "message": "Permission denied to enable service", "status": "PERMISSION_DENIED"}}
    for server in serve(Google(enable=[(403, denied)])):
        result, _, _ = run(server, dev_root)
        assert isinstance(result, ConfigError)
        assert (result.field, result.value, result.fix) == ("--stack", PROJECT, FIX)
        assert result.problem == f"could not enable {QUOTAS_API}: HTTP 403 Permission denied to enable service"
        assert [m for m, _ in server.log] == ["POST"], "no quota is read without the API"


def test_an_error_page_that_is_not_json_is_quoted_as_text(dev_root: Path) -> None:
    """A proxy or load balancer answers HTML: the first 200 characters are shown, not a JSON traceback."""
    page = "<html><body>502 Bad Gateway" + " " * 300 + "</body></html>"
    for server in serve(Google(enable=[(502, page)])):
        result, _, _ = run(server, dev_root)
        assert isinstance(result, ConfigError)
        assert result.problem == f"could not enable {QUOTAS_API}: HTTP 502 {page[:200]}"


def test_a_failed_poll_and_a_failed_operation_each_stop_with_the_command(dev_root: Path) -> None:
    for server in serve(Google(operation=[(500, {"error": {"code": 500, "message": "backend error"}})])):
        result, _, slept = run(server, dev_root)
        assert isinstance(result, ConfigError) and result.fix == FIX
        assert result.problem == f"enabling {QUOTAS_API}: HTTP 500 backend error"
        assert slept == [preflight.POLL_S], "one wait before the first poll"
    failed = {"name": "operations/acf.p2-1", "done": True, "error": {"code": 7, "message": "billing disabled"}}
    for server in serve(Google(operation=[(200, failed)])):
        result, _, _ = run(server, dev_root)
        assert isinstance(result, ConfigError) and result.fix == FIX
        assert result.problem == f"enabling {QUOTAS_API} failed: {{'code': 7, 'message': 'billing disabled'}}"


def test_an_operation_still_running_after_every_poll_goes_on_to_read_the_quotas(dev_root: Path) -> None:
    """Enabling takes seconds to minutes; after POLLS polls the reads go ahead (and retry while disabled)."""
    running = (200, {"name": "operations/acf.p2-1", "done": False})
    for server in serve(Google(operation=[running])):
        result, printed, slept = run(server, dev_root)
        assert result == 0 and printed[0].startswith("europe-west1: quota OK")
        polls = [p for m, p in server.log if p.startswith("/v1/operations/")]
        assert len(polls) == preflight.POLLS and slept == [preflight.POLL_S] * preflight.POLLS


def test_quota_reads_wait_while_the_just_enabled_api_still_answers_service_disabled(dev_root: Path) -> None:
    for server in serve(Google(quota=[(403, DISABLED), (403, DISABLED), None])):
        result, printed, slept = run(server, dev_root, no_enable=True)
        assert result == 0 and printed[0].startswith("europe-west1: quota OK")
        assert slept == [preflight.POLL_S, preflight.POLL_S]
        reads = [p.rsplit("/", 1)[-1] for m, p in server.log if "quotaInfos" in p]
        assert reads.count(L4) == 3 and reads.count(CPU_QUOTA_ID) == 1 and reads.count(MEMORY_QUOTA_ID) == 1


def test_quota_reads_give_up_after_the_retries_and_say_why(dev_root: Path) -> None:
    for server in serve(Google(quota=[(403, DISABLED)])):
        result, _, slept = run(server, dev_root, no_enable=True)
        assert isinstance(result, ConfigErrors)
        assert len(slept) == 3 * preflight.RETRIES, "each of the three quotas retried RETRIES times"
        assert all(
            "could not be read (HTTP 403: Cloud Quotas API has not been used" in e.problem for e in result.errors
        )


def test_a_region_the_stack_does_not_have_is_refused_with_its_regions(dev_root: Path) -> None:
    for server in serve(Google()):
        result, _, _ = run(server, dev_root, region="us-central1")
        assert isinstance(result, ConfigError)
        assert (result.field, result.value, result.allowed) == ("--region", "us-central1", "europe-west1")
        assert result.problem == "is not a region of stack dev" and server.log == []
        ok, printed, _ = run(server, dev_root, region="europe-west1", no_enable=True)
        assert ok == 0 and len(printed) == 1


def test_no_application_default_credentials_says_how_to_log_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError) as err:
        authorized_session()
    assert (err.value.field, err.value.fix) == ("credentials", "gcloud auth application-default login")
    assert err.value.problem.startswith("no Application Default Credentials (File ")


def test_the_credentials_gcloud_writes_sign_the_session_for_the_cloud_platform_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gcloud auth application-default login`` writes an ``authorized_user`` file; the session signs with exactly
    those credentials (no request is made until a call)."""
    from google.auth.transport.requests import AuthorizedSession

    adc = tmp_path / "application_default_credentials.json"
    adc.write_text(
        json.dumps({"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"})
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    session = authorized_session()
    assert isinstance(session, AuthorizedSession)
    creds = session.credentials
    assert (creds.client_id, creds.client_secret, creds.refresh_token) == ("c", "s", "r")


@pytest.mark.parametrize(
    ("script", "no_enable"),
    [({"enable": [(200, STALL)]}, False), ({"quota": [(403, DISABLED), (200, STALL)]}, True)],
    ids=["enable", "retried-read"],
)
def test_a_hung_api_times_out_instead_of_hanging_the_command(
    script: dict[str, list[Answer | None]], no_enable: bool, dev_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every call carries ``TIMEOUT_S``: the enable POST and the reads retried while the API is still disabled."""
    monkeypatch.setattr(preflight, "TIMEOUT_S", 0.3)
    for server in serve(Google(**script)):
        with pytest.raises(requests.exceptions.Timeout):
            run(server, dev_root, no_enable=no_enable)

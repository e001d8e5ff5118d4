"""``python -m stack preflight --stack S``: before ``pulumi up`` spends an hour building, read the Cloud Run quotas
the stack needs and stop, printing the exact request, when one is short (issue 19).

A fresh project has no GPU quota ("there is no quota for either zonal or non-zonal redundancy by default",
https://cloud.google.com/run/docs/configuring/services/gpu), and the Cloud Quotas API is off until enabled, so the
check inside ``pulumi up`` could only warn on a first run. This command runs with the user's Application Default
Credentials (``gcloud auth application-default login``; ``google.auth.default``) and:

1. enables the Cloud Quotas API through Service Usage
   (``POST https://serviceusage.googleapis.com/v1/projects/P/services/cloudquotas.googleapis.com:enable``, a
   long-running operation polled at ``GET https://serviceusage.googleapis.com/v1/operations/…``;
   https://cloud.google.com/service-usage/docs/reference/rest/v1/services/enable);
2. reads each quota of each region (``GET https://cloudquotas.googleapis.com/v1/projects/P/locations/global/
   services/run.googleapis.com/quotaInfos/QUOTA_ID``, a ``QuotaInfo`` with ``metricUnit`` and ``dimensionsInfos[]``
   of ``dimensions`` and ``details.value``;
   https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.services.quotaInfos/get);
3. compares them with the need at ``max_instances`` through the same pure code as the in-program check
   (:func:`cloudrun_gpu.quota.quota_problems`), printing ``gcloud beta quotas preferences create …`` for each short
   one (https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences).

Inside ``pulumi up`` the same command runs (``--no-enable``: the stack's ``ProjectApis`` enabled the API) as a
``command.local.Command`` that waits for the APIs and that every staging and image build waits for
(``stack/compose.py`` ``_quota_gates``), so a short quota stops ``up`` in minutes, before any build.

The HTTP goes through a ``requests.Session``: ``google.auth.transport.requests.AuthorizedSession`` in use, a plain
session against a local fake server in the tests (``tests/test_preflight.py``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.quota import SERVICE, QuotaAnswer, QuotaNeed, answer_from_info, quota_need, quota_problems

if TYPE_CHECKING:
    import requests

    from stack.config import ValidatedStack

QUOTAS_API = "cloudquotas.googleapis.com"
QUOTAS_ROOT = f"https://{QUOTAS_API}"
USAGE_ROOT = "https://serviceusage.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TIMEOUT_S = 60
POLL_S = 5.0
POLLS = 60
"""Seconds between operation polls, and how many: enabling an API takes seconds to a few minutes."""
RETRIES = 6
"""Reads retried (POLL_S apart) while a just-enabled API still answers 403 SERVICE_DISABLED."""


@dataclass
class Endpoints:
    """Where the two APIs answer (the real ones by default; a local fake server in the tests)."""

    quotas: str = QUOTAS_ROOT
    usage: str = USAGE_ROOT
    sleep: Callable[[float], None] = field(default=time.sleep)


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    err = body.get("error") if isinstance(body, dict) else None
    return str(err.get("message", err)) if isinstance(err, dict) else str(body)[:200]


def enable_quotas_api(session: requests.Session, project: str, ep: Endpoints) -> None:
    """Enable the Cloud Quotas API on ``project`` and wait for the operation; a refusal is a ConfigError with the
    ``gcloud`` to run by hand."""
    fix = f"gcloud services enable {QUOTAS_API} --project={project} (needs serviceusage.services.enable)"
    url = f"{ep.usage}/v1/projects/{project}/services/{QUOTAS_API}:enable"
    resp = session.post(url, json={}, timeout=TIMEOUT_S)
    if resp.status_code != 200:
        raise ConfigError(
            "--stack", project, f"could not enable {QUOTAS_API}: HTTP {resp.status_code} {_message(resp)}", fix
        )
    op: dict[str, Any] = resp.json()
    for _ in range(POLLS):
        if op.get("done") or not op.get("name"):
            break
        ep.sleep(POLL_S)
        poll = session.get(f"{ep.usage}/v1/{op['name']}", timeout=TIMEOUT_S)
        if poll.status_code != 200:
            raise ConfigError(
                "--stack", project, f"enabling {QUOTAS_API}: HTTP {poll.status_code} {_message(poll)}", fix
            )
        op = poll.json()
    if op.get("error"):
        raise ConfigError("--stack", project, f"enabling {QUOTAS_API} failed: {op['error']}", fix)


def read_quota_http(session: requests.Session, project: str, region: str, quota_id: str, ep: Endpoints) -> QuotaAnswer:
    """One quota's value for ``region`` from the Cloud Quotas REST API (camelCase ``QuotaInfo``), through the same
    region/default choice as the Pulumi data source path (:func:`cloudrun_gpu.quota.answer_from_info`)."""
    url = f"{ep.quotas}/v1/projects/{project}/locations/global/services/{SERVICE}/quotaInfos/{quota_id}"
    resp = session.get(url, timeout=TIMEOUT_S)
    for _ in range(RETRIES):
        if resp.status_code != 403 or "SERVICE_DISABLED" not in resp.text:
            break
        ep.sleep(POLL_S)  # a just-enabled API takes a moment to answer
        resp = session.get(url, timeout=TIMEOUT_S)
    if resp.status_code != 200:
        return QuotaAnswer(quota_id, None, detail=f"HTTP {resp.status_code}: {_message(resp)}")
    body = resp.json()
    info = {
        "metric_unit": body.get("metricUnit", ""),
        "dimensions_infos": [
            {"dimensions": d.get("dimensions") or {}, "details": d.get("details") or {}}
            for d in body.get("dimensionsInfos") or []
        ],
    }
    return answer_from_info(quota_id, region, info)


def region_needs(vs: ValidatedStack) -> list[tuple[str, str, QuotaNeed]]:
    """``(project, region, need)`` for every region of the stack: each region draws on its own quotas."""
    return [
        (
            r.config.project,
            r.config.region,
            quota_need(
                r.config.gpu.type, r.config.gpu.zonal_redundancy, r.config.scaling.max_instances, r.cpu, r.memory_gib
            ),
        )
        for r in vs.regional
    ]


def check(
    vs: ValidatedStack,
    session: requests.Session,
    *,
    regions: list[str] | None = None,
    enable: bool = True,
    ep: Endpoints | None = None,
    out: Callable[[str], None] = print,
) -> list[ConfigError]:
    """Every quota of the stack (or of ``regions``) that cannot hold it at max instances; prints what it read."""
    ep = ep or Endpoints()
    needs = [n for n in region_needs(vs) if regions is None or n[1] in regions]
    if enable:
        for project in sorted({p for p, _, _ in needs}):
            enable_quotas_api(session, project, ep)
    problems: list[ConfigError] = []
    for project, region, need in needs:
        answers = {q: read_quota_http(session, project, region, q, ep) for q, _, _, _ in need.items()}
        found = quota_problems(need, answers, project, region)
        problems.extend(found)
        if not found:
            out(f"{region}: quota OK. {need.summary()}")
    return problems


def authorized_session() -> requests.Session:
    """A session signed with the user's Application Default Credentials (``gcloud auth application-default
    login``); none found is a ConfigError with that command."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.auth.transport.requests import AuthorizedSession

    try:
        creds, _ = google.auth.default(scopes=[SCOPE])
    except DefaultCredentialsError as exc:
        raise ConfigError(
            "credentials", None, f"no Application Default Credentials ({exc})", "gcloud auth application-default login"
        ) from None
    session: requests.Session = AuthorizedSession(creds)  # type: ignore[no-untyped-call]  # google-auth: untyped
    return session


def main(
    args: argparse.Namespace,
    session: requests.Session | None = None,
    ep: Endpoints | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """0 when every quota fits; a ConfigErrors (the CLI prints it, exit 2) naming each short quota and its request."""
    from stack.config import PLAN_PROJECT, read_config, read_stack_file, stack_file

    root = Path(args.root).resolve()
    vs = read_config(read_stack_file(stack_file(args.stack, root)), base_dir=root, plan_only=True)
    if vs.config.project == PLAN_PROJECT:
        raise ConfigError(
            "gcp:project",
            None,
            "is not set: there is no project to read quotas of",
            "pulumi config set gcp:project <your-project-id>",
        )
    known = [r.config.region for r in vs.regional]
    if args.region is not None and args.region not in known:
        raise ConfigError(
            "--region", args.region, f"is not a region of stack {args.stack}", "pick one of them", ", ".join(known)
        )
    regions = [args.region] if args.region is not None else None
    problems = check(vs, session or authorized_session(), regions=regions, enable=not args.no_enable, ep=ep, out=out)
    if problems:
        raise ConfigErrors(problems)
    return 0


def add_arguments(p: argparse.ArgumentParser, root: str) -> None:
    p.add_argument("--stack", default="dev")
    p.add_argument("--root", default=root, help="project directory holding Pulumi.<stack>.yaml")
    p.add_argument("--region", help="only this region of the stack (default: every region)")
    p.add_argument(
        "--no-enable", action="store_true", help=f"do not enable {QUOTAS_API} first (pulumi up has enabled it)"
    )

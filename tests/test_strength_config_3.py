"""Issue 23, third pass on ``stack/config.py``: what the seed-51 mutation sample showed no test read.

Each test asserts what a user sees: the warnings ``plan`` prints, word for word, and the refusals of a local model
source whole (field, value, problem, fix).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cloudrun_gpu.errors import ConfigErrors

from stack.config import read_config
from tests.conftest import ROOT, stack_flat
from tests.test_multiregion import _flat, _section

NS = "cloudrun-gpu:"
MODEL = {"name": "llama-3.2-3b", "quantization": "Q4_K_M", "file": "llama-3.2-3b-instruct-q4_k_m.gguf"}
NO_PROJECT = (
    "gcp:project is not set: plan renders with 'your-project-id'; before pulumi up run "
    "`pulumi config set gcp:project <your-project-id>`"
)
NO_INVOKER = (
    "cloudrun-gpu:service.invokers is empty: nobody could call the service (no public invoker by default); before "
    "pulumi up run pulumi config set --path 'cloudrun-gpu:service.invokers[0]' \"user:$(gcloud config get-value "
    'account)"'
)
NO_CACHE_INVOKER = (
    "cloudrun-gpu:cache.invokers is empty: nobody could call the response cache (no public invoker by default); "
    "before pulumi up run pulumi config set --path 'cloudrun-gpu:cache.invokers[0]' \"user:$(gcloud config get-value "
    'account)"'
)
NO_DOMAIN = (
    "cloudrun-gpu:frontdoor.domains is empty: the load balancer's Google-managed certificate needs the DNS name "
    "clients use; plan renders with 'llm.your-domain.example'; before pulumi up run pulumi config set --path "
    "'cloudrun-gpu:frontdoor.domains[0]' llm.<your-domain>"
)


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        ("dev", (NO_PROJECT, NO_INVOKER)),
        ("prod", (NO_PROJECT, NO_INVOKER, NO_CACHE_INVOKER)),
        ("multi", (NO_PROJECT, NO_DOMAIN, NO_INVOKER)),
    ],
)
def test_plan_warns_about_what_pulumi_up_will_refuse_word_for_word(stack: str, expected: tuple[str, ...]) -> None:
    """``python -m stack plan`` prints these lines for the committed stacks (none names a project, an invoker or a
    domain); each says what is missing and the exact command to run before ``pulumi up``."""
    assert read_config(stack_flat(stack), base_dir=ROOT, plan_only=True).warnings == expected


def test_a_local_folder_with_nothing_to_upload_is_refused_whole(tmp_path: Path) -> None:
    """Pickle files are never uploaded, so a folder holding only one leaves nothing: the error names
    ``model.files`` (the choice), the folder as written, and what to change."""
    (tmp_path / "only.pt").write_bytes(b"pickle")
    flat = stack_flat("dev", model={**MODEL, "source": str(tmp_path), "files": []})
    with pytest.raises(ConfigErrors) as exc:
        read_config(flat, base_dir=ROOT, plan_only=True)
    assert [(e.field, e.value, e.problem, e.fix) for e in exc.value.errors] == [
        (f"{NS}model.files", [], f"chooses no file in {tmp_path}", "fix the patterns or the path")
    ]


def test_a_validated_stack_cannot_be_changed_after_its_checks() -> None:
    """Validation first (issue 21): what registers is what passed the checks and was sized. The result is frozen,
    so no later step (composing regions, rendering) can swap its config or plan for one that never passed."""
    vs = read_config(stack_flat("dev"), base_dir=ROOT, plan_only=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        vs.plan = vs.plan  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        vs.config = vs.config  # type: ignore[misc]


def test_a_vpc_shared_by_two_regions_is_given_one_psc_endpoint_whole() -> None:
    """Two regions on the same brought-your-own VPC: its PSC endpoint and private googleapis.com zones exist once
    per VPC, so the second region is told which region already creates them and the exact setting to change."""
    byo = {"existing_network": "projects/p/global/networks/corp"}
    regions = _section("regions")
    regions[0]["network"] = {**byo, "existing_subnetwork": "projects/p/regions/europe-west1/subnetworks/a"}
    regions[1]["network"] = {**byo, "existing_subnetwork": "projects/p/regions/us-central1/subnetworks/b"}
    with pytest.raises(ConfigErrors) as exc:
        read_config(_flat(regions=regions), base_dir=ROOT, plan_only=True)
    assert [(e.field, e.value, e.problem, e.fix, e.allowed) for e in exc.value.errors] == [
        (
            f"{NS}regions[1].network.psc.enabled",
            True,
            "regions[0] already creates the PSC endpoint and its private DNS in projects/p/global/networks/corp: "
            "a VPC needs them once",
            f"set {NS}regions[1].network.psc.enabled: false (the VPC's endpoint serves every region)",
            "",
        )
    ]


def test_a_stack_file_reports_every_bad_value_and_reads_past_secrets(tmp_path: Path) -> None:
    """One run shows every mistake of a stack file (ConfigErrors), not the first: a value Pulumi config cannot hold,
    a key that is not a string and another bad value after them are all named; a secret (``secure:``) is kept as
    ``[secret]`` and the keys after it are still read."""
    from stack.config import read_stack_file

    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(
        "config:\n"
        "  cloudrun-gpu:a: !!binary aGk=\n"
        "  7: x\n"
        "  cloudrun-gpu:b: !!set {q: null}\n"
        "  cloudrun-gpu:hf_token:\n"
        "    secure: AAABAJ\n"
        "  cloudrun-gpu:gpu: nvidia-l4\n"
    )
    with pytest.raises(ConfigErrors) as exc:
        read_stack_file(path)
    assert [(e.field, e.value, e.problem) for e in exc.value.errors] == [
        (f"{NS}a", "b'hi'", "is not a value Pulumi config can hold"),
        ("Pulumi.x.yaml: 7", "x", "is not a config key"),
        (f"{NS}b", "{'q'}", "is not a value Pulumi config can hold"),
    ]
    path.write_text("config:\n  cloudrun-gpu:hf_token:\n    secure: AAABAJ\n  cloudrun-gpu:gpu: nvidia-l4\n")
    assert read_stack_file(path) == {f"{NS}hf_token": "[secret]", f"{NS}gpu": "nvidia-l4"}


def test_up_with_a_service_nobody_may_call_names_the_command_to_run() -> None:
    """Under ``pulumi up`` (not plan) a service without invokers is refused, saying why and the exact command."""
    flat = stack_flat("dev", **{"gcp:project": "my-project-123"})
    with pytest.raises(ConfigErrors) as exc:
        read_config(flat, base_dir=ROOT, plan_only=False)
    assert [(e.field, e.value, e.problem, e.fix) for e in exc.value.errors] == [
        (
            f"{NS}service.invokers",
            [],
            "nobody could call the service (no public invoker by default)",
            "add yourself: pulumi config set --path 'cloudrun-gpu:service.invokers[0]' "
            '"user:$(gcloud config get-value account)"',
        )
    ]

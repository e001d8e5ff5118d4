"""Issue 21: a refused stack registers nothing, on ``plan`` and under ``pulumi up`` alike, and no input crashes.

Each refusal runs the real ``__main__.py`` under recording mocks exactly as ``pulumi up`` would (not plan-only),
and asserts both the error (it names the stack key the user wrote) and the count of registered resources: 0.
Before issue 21 these stacks registered 40-77 resources before the program stopped, or crashed with a traceback.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pulumi
import pytest
from cloudrun_gpu.errors import ConfigErrors

from stack.config import PLAN_ONLY_ENV, load_stack, read_config
from stack.render import Recorded, _cwd, _env, _program_path, install_mocks, render_program, run_under_mocks
from tests.conftest import ROOT, stack_flat

PROJECT_ID = "my-project-123"
MODEL = {"name": "llama-3.2-3b", "quantization": "Q4_K_M", "file": "llama-3.2-3b-instruct-q4_k_m.gguf"}
HUB = "hf://bartowski/Llama-3.2-3B-Instruct-GGUF@" + "a" * 40


def deployable(stack: str, **changes: Any) -> dict[str, str]:
    """A committed stack with what ``pulumi up`` needs set (project, invokers, a real domain), plus ``changes``."""
    flat = stack_flat(stack, **changes)
    flat["gcp:project"] = PROJECT_ID
    service = json.loads(flat.get("cloudrun-gpu:service", "{}"))
    flat["cloudrun-gpu:service"] = json.dumps({**service, "invokers": ["user:me@corp.com"]})
    if "cloudrun-gpu:cache" in flat:
        cache = json.loads(flat["cloudrun-gpu:cache"])
        flat["cloudrun-gpu:cache"] = json.dumps({"invokers": ["user:me@corp.com"], **cache})
    if "cloudrun-gpu:frontdoor" in flat:
        door = json.loads(flat["cloudrun-gpu:frontdoor"])
        flat["cloudrun-gpu:frontdoor"] = json.dumps({"domains": ["llm.corp.com"], **door})
    return flat


def up(stack: str, flat: dict[str, str], secret_keys: Sequence[str] = ()) -> tuple[list[Recorded], Exception | None]:
    """Run the program as ``pulumi up`` would; what it registered and what stopped it (None: nothing did)."""
    mocks = install_mocks(stack, flat, gcp_project=PROJECT_ID, secret_keys=secret_keys)
    program = ROOT / "__main__.py"
    error: Exception | None = None
    with _cwd(ROOT), _program_path(ROOT), _env(PLAN_ONLY_ENV, None):
        try:
            run_under_mocks(lambda: runpy.run_path(str(program), run_name="__main__"))
        except Exception as exc:  # the program's RunError, or anything that escaped it
            error = exc
    return mocks.resources, error


def refused_up(stack: str, flat: dict[str, str], key: str, secret_keys: Sequence[str] = ()) -> str:
    """The program stops with a clean configuration error naming ``key``, having registered nothing."""
    resources, error = up(stack, flat, secret_keys)
    assert isinstance(error, pulumi.RunError), repr(error)
    assert "invalid stack configuration" in str(error) and key in str(error), str(error)
    assert [r.name for r in resources] == []
    return str(error)


def test_a_missing_local_source_registers_nothing_and_plan_names_it() -> None:
    flat = deployable("dev", model={**MODEL, "source": "models/no-such.gguf"})
    msg = refused_up("dev", flat, "cloudrun-gpu:model.source")
    assert "does not exist" in msg
    with pytest.raises(ConfigErrors) as exc:  # plan: the same reader, a ConfigError instead of a RunError traceback
        read_config(flat, base_dir=ROOT, plan_only=True)
    assert [e.field for e in exc.value.errors] == ["cloudrun-gpu:model.source"]


def test_a_10000_character_local_source_is_an_error_not_an_oserror() -> None:
    flat = deployable("dev", model={**MODEL, "source": "x" * 10_000})
    msg = refused_up("dev", flat, "cloudrun-gpu:model.source")
    assert "PATH_MAX" in msg and "x" * 10_000 not in msg  # the value is shortened, not printed whole


def test_a_local_source_whose_patterns_choose_nothing_registers_nothing(tmp_path: Path) -> None:
    (tmp_path / "only.pt").write_bytes(b"pickle")  # pickles are never chosen: nothing left to upload
    flat = deployable("dev", model={**MODEL, "source": str(tmp_path), "files": []})
    refused_up("dev", flat, "cloudrun-gpu:model.files")


def test_a_plain_text_hub_token_registers_nothing() -> None:
    flat = deployable("dev", model={**MODEL, "source": HUB}, hf_token="hf_not_a_secret")
    msg = refused_up("dev", flat, "cloudrun-gpu:hf_token")
    assert "plain text" in msg and "hf_not_a_secret" not in msg
    # the same token set with --secret deploys, and plan (which cannot tell) renders it
    resources, error = up("dev", flat, secret_keys=["cloudrun-gpu:hf_token"])
    assert error is None and resources
    assert read_config(flat, base_dir=ROOT, plan_only=True).config.model.source == HUB


@pytest.mark.parametrize("length", [30, 41])
def test_a_long_bucket_prefix_on_the_multi_stack_deploys_every_region(length: int) -> None:
    """Issue 21: any prefix BucketSettings accepts used to fail in the second region after 75 resources, when
    ``-us-central1`` made it longer than the prefix rule allows. The region is added only while it fits."""
    prefix = "a" * length
    flat = deployable("multi", bucket={"name_prefix": prefix})
    resources = render_program(ROOT / "__main__.py", "multi", flat, plan_only=False)
    names = sorted(r.inputs["name"] for r in resources if r.type == "gcp:storage/bucket:Bucket")
    assert len(names) == 2 and all(len(n) <= 63 for n in names), names
    assert all(n.startswith(prefix + "-") for n in names)


def test_committed_stacks_still_validate() -> None:
    for stack in ("dev", "staging", "prod", "multi"):
        assert load_stack(stack, ROOT).config.service.name


@pytest.mark.parametrize("missing", ["requests_per_s", "output_tokens_per_s", "concurrency"])
def test_a_measured_throughput_with_a_null_number_is_named_not_an_assertion(missing: str) -> None:
    measured = {"requests_per_s": 1.5, "output_tokens_per_s": 300, "concurrency": 4, "source": "loadtest"}
    flat = stack_flat("multi")
    capacity = json.loads(flat["cloudrun-gpu:capacity"])
    capacity["throughput"]["nvidia-l4"] = {**measured, missing: None}
    flat["cloudrun-gpu:capacity"] = json.dumps(capacity)
    with pytest.raises(ConfigErrors) as exc:
        read_config(flat, base_dir=ROOT, plan_only=True)
    assert [e.field for e in exc.value.errors] == [f"cloudrun-gpu:capacity.throughput.nvidia-l4.{missing}"]

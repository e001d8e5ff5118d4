"""Stack config validation: every bad input names the field, the value, what is allowed and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigErrors

from stack.cli import main
from stack.config import parse_config, raw_from_flat, read_stack_file, validate

from .conftest import ROOT

BASE: dict[str, Any] = {"project": "my-project", "region": "europe-west1", "model": {"name": "llama-3.2-3b"}}


def errors_for(**overrides: Any) -> ConfigErrors:
    raw = {**BASE, **overrides}
    with pytest.raises(ConfigErrors) as err:
        validate(parse_config(raw))
    return err.value


def only(errs: ConfigErrors, field: str) -> str:
    assert [e.field for e in errs.errors] == [field], errs.render()
    text = errs.errors[0].render()
    assert "fix:" in text
    return text


def test_unknown_gpu() -> None:
    text = only(errors_for(gpu={"type": "nvidia-h100"}), "gpu.type")
    assert "nvidia-h100" in text and "nvidia-l4" in text


def test_cpu_under_the_gpu_minimum() -> None:
    text = only(
        errors_for(gpu={"type": "nvidia-rtx-pro-6000"}, region="europe-west4", resources={"cpu": 8}), "resources.cpu"
    )
    assert "20" in text


def test_memory_under_the_gpu_minimum() -> None:
    text = only(errors_for(resources={"memory_gib": 8}), "resources.memory_gib")
    assert "16" in text


def test_region_without_that_gpu() -> None:
    text = only(errors_for(region="us-west1"), "region")
    assert "europe-west1" in text


@pytest.mark.parametrize("value", [0, 1001])
def test_concurrency_outside_1_to_1000(value: int) -> None:
    text = only(errors_for(scaling={"max_concurrency": value}), "scaling.max_concurrency")
    assert (str(value) in text and "1000" in text) or "1" in text


def test_model_that_does_not_fit() -> None:
    text = only(errors_for(model={"name": "llama-3.1-70b"}), "model")
    assert "4-bit" in text and "nvidia-rtx-pro-6000" in text


def test_typo_in_a_key_is_caught() -> None:
    text = only(errors_for(engine={"contxt_length": 4096}), "engine.contxt_length")
    assert "remove this key" in text


def test_several_errors_are_reported_together() -> None:
    errs = errors_for(region="us-west1", resources={"cpu": 2}, scaling={"max_instances": 9})
    assert {e.field for e in errs.errors} == {"region", "resources.cpu", "scaling.max_instances"}


def test_download_needs_memory_for_the_in_memory_copy() -> None:
    text = only(
        errors_for(model={"name": "qwen2.5-32b"}, loading={"method": "gcs-download"}, resources={"memory_gib": 16}),
        "resources.memory_gib",
    )
    assert "in-memory" in text


def test_internet_needs_nat() -> None:
    only(errors_for(loading={"method": "internet"}, network={"nat": {"enabled": False}}), "loading.method")


def test_pickle_model_file_is_refused() -> None:
    text = only(errors_for(model={"name": "llama-3.2-3b", "file": "pytorch_model.bin"}), "model.file")
    assert "B3" in text


def test_concurrency_below_engine_parallel_breaks_r6() -> None:
    only(errors_for(engine={"parallel": 8}, scaling={"max_concurrency": 4}), "scaling.max_concurrency")


def test_defaults_follow_the_seed() -> None:
    vs = validate(parse_config(BASE))
    assert vs.sizing.weights_quant == "Q4_K_M"  # B2
    assert vs.sizing.kv_cache_type == "q8_0"  # R4
    assert vs.cpu == 8 and vs.memory_gib == 32
    assert not vs.deletion_protection and vs.force_destroy  # dev
    prod = validate(parse_config({**BASE, "environment": "prod"}))
    assert prod.deletion_protection and not prod.force_destroy


def test_no_force_destroy_in_production() -> None:
    only(errors_for(environment="prod", bucket={"force_destroy": True}), "bucket.force_destroy")


def test_stack_file_is_read_like_pulumi_does(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n  gcp:project: my-project\n  gcp:region: europe-west1\n"
        "  cloudrun-gpu:environment: prod\n  cloudrun-gpu:engine:\n    name: vllm\n"
        "  cloudrun-gpu:token:\n    secure: AAAB\n"
    )
    flat = read_stack_file(tmp_path / "Pulumi.x.yaml")
    assert flat["cloudrun-gpu:engine"] == '{"name": "vllm"}'
    raw = raw_from_flat(flat)
    assert raw["environment"] == "prod" and raw["engine"] == {"name": "vllm"}


def test_cli_prints_the_error_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text(
        "config:\n  gcp:project: my-project\n  gcp:region: us-west1\n  cloudrun-gpu:gpu:\n    type: nvidia-l4\n"
    )
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    assert main(["plan", "--stack", "bad", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "region = 'us-west1'" in err and "fix:" in err and "Traceback" not in err

"""Stack config: one reader for ``plan``, ``size`` and the program; every bad input names the stack key the
user wrote, its value, what is allowed and the fix — never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from cloudrun_gpu.errors import ConfigErrors

from stack.cli import main
from stack.config import parse_config, read_config, read_stack_file, validate
from stack.render import render_program

from .conftest import ROOT

NS = "cloudrun-gpu:"
BASE: dict[str, Any] = {
    "gcp:project": "my-project",
    "gcp:region": "europe-west1",
    f"{NS}model": {"name": "llama-3.2-3b"},
    f"{NS}service": {"invokers": ["user:me@example.com"]},
}


def flat(**sections: Any) -> dict[str, Any]:
    """A flat config as Pulumi hands it over: ``cloudrun-gpu:<section>`` → JSON string."""
    out = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for name, value in sections.items():
        key = name if ":" in name else NS + name
        if value is None:
            out.pop(key, None)
        else:
            out[key] = json.dumps(value) if not isinstance(value, str) else value
    return out


def errors_for(**sections: Any) -> ConfigErrors:
    with pytest.raises(ConfigErrors) as err:
        read_config(flat(**sections))
    return err.value


def only(errs: ConfigErrors, field: str) -> str:
    assert [e.field for e in errs.errors] == [field], errs.render()
    text = errs.errors[0].render()
    assert "fix:" in text
    return text


def test_unknown_gpu_lists_the_allowed_types() -> None:
    text = only(errors_for(gpu={"type": "nvidia-h100"}), f"{NS}gpu.type")
    assert "nvidia-h100" in text and "nvidia-l4" in text and "nvidia-rtx-pro-6000" in text


def test_cpu_under_the_gpu_minimum() -> None:
    errs = errors_for(gpu={"type": "nvidia-rtx-pro-6000"}, resources={"cpu": 8}, **{"gcp:region": "europe-west4"})
    text = only(errs, f"{NS}resources.cpu")
    assert "20" in text


def test_cpu_that_cloud_run_does_not_offer() -> None:
    text = only(errors_for(resources={"cpu": 7}), f"{NS}resources.cpu")
    assert "4, 6, 8" in text


def test_memory_under_the_gpu_minimum() -> None:
    text = only(errors_for(resources={"memory_gib": 8}), f"{NS}resources.memory_gib")
    assert "16" in text


def test_region_without_that_gpu() -> None:
    text = only(errors_for(**{"gcp:region": "us-west1"}), "gcp:region")
    assert "europe-west1" in text


@pytest.mark.parametrize(("value", "bound"), [(0, "≥ 1"), (1001, "≤ 1000")])
def test_concurrency_outside_1_to_1000(value: int, bound: str) -> None:
    errs = errors_for(scaling={"max_concurrency": value})
    text = only(errs, f"{NS}scaling.max_concurrency")
    assert errs.errors[0].value == value and errs.errors[0].allowed == bound and bound in text


def test_model_that_does_not_fit() -> None:
    text = only(errors_for(model={"name": "llama-3.1-70b"}), f"{NS}model")
    assert "4-bit" in text and "nvidia-rtx-pro-6000" in text


def test_typo_in_a_key_suggests_the_known_one() -> None:
    errs = errors_for(engine={"contxt_length": 4096})
    text = only(errs, f"{NS}engine.contxt_length")
    assert "did you mean cloudrun-gpu:engine.context_length?" in text
    assert "context_length" in errs.errors[0].allowed


def test_misspelt_section_is_an_error_with_a_suggestion() -> None:
    text = only(errors_for(scalling={"max_instances": 2}), f"{NS}scalling")
    assert "did you mean cloudrun-gpu:scaling?" in text


def test_misspelt_section_stops_pulumi_up_too() -> None:
    """The program reads every key the engine passes, through the same reader as ``plan``."""
    cfg = read_stack_file(ROOT / "Pulumi.dev.yaml")
    cfg[f"{NS}scalling"] = json.dumps({"max_instances": 2})
    with pytest.raises(pulumi.RunError) as err:
        render_program(ROOT / "__main__.py", "typo", cfg)
    assert "cloudrun-gpu:scalling" in str(err.value) and "did you mean cloudrun-gpu:scaling?" in str(err.value)


def test_missing_project_says_which_command_sets_it() -> None:
    text = only(errors_for(**{"gcp:project": None}), "gcp:project")
    assert "pulumi config set gcp:project" in text and "Input should" not in text


def test_enum_error_lists_values_not_python_types() -> None:
    errs = errors_for(loading={"method": "gcs"})
    text = only(errs, f"{NS}loading.method")
    assert "gcs-fuse" in text and "LoadingMethod" not in text and "Input should" not in text


def test_type_error_reads_as_english() -> None:
    text = only(errors_for(scaling={"max_instances": "many"}), f"{NS}scaling.max_instances")
    assert "whole number" in text and "int" not in text.split("fix:")[0].replace("into", "")


def test_section_that_is_not_a_mapping() -> None:
    text = only(errors_for(engine=["vllm"]), f"{NS}engine")
    assert "mapping" in text and "context_length" in text


def test_several_errors_are_reported_together() -> None:
    errs = errors_for(resources={"cpu": 2}, scaling={"max_instances": 9}, **{"gcp:region": "us-west1"})
    assert {e.field for e in errs.errors} == {"gcp:region", f"{NS}resources.cpu", f"{NS}scaling.max_instances"}


def test_download_needs_memory_for_the_in_memory_copy() -> None:
    errs = errors_for(model={"name": "qwen2.5-32b"}, loading={"method": "gcs-download"}, resources={"memory_gib": 16})
    text = only(errs, f"{NS}resources.memory_gib")
    assert "in-memory" in text


def test_internet_needs_nat() -> None:
    text = only(errors_for(loading={"method": "internet"}, network={"nat": {"enabled": False}}), f"{NS}loading.method")
    assert "'internet'" in text and "Cloud NAT" in text and "network.nat.enabled: true" in text


def test_pickle_model_file_is_refused() -> None:
    text = only(errors_for(model={"name": "llama-3.2-3b", "file": "pytorch_model.bin"}), f"{NS}model.file")
    assert "B3" in text


def test_concurrency_below_engine_parallel_breaks_r6() -> None:
    text = only(errors_for(engine={"parallel": 8}, scaling={"max_concurrency": 4}), f"{NS}scaling.max_concurrency")
    assert "= 4:" in text and "8 parallel sequences" in text and "8..1000" in text and "max_concurrency ≥ 8" in text


def test_ideal_batch_size_zero_is_refused() -> None:
    text = only(errors_for(engine={"ideal_batch_size": 0}), f"{NS}engine.ideal_batch_size")
    assert "= 0:" in text and "allowed: ≥ 1" in text


@pytest.mark.parametrize(
    ("member", "hint"),
    [("bob", "prefix"), ("user:", "user:name@example.com"), ("*", "prefix"), ("allusers", "allUsers")],
)
def test_invalid_invokers_are_refused(member: str, hint: str) -> None:
    errs = errors_for(service={"invokers": ["group:ok@example.com", member]})
    text = only(errs, f"{NS}service.invokers.1")
    assert hint in text and errs.errors[0].value == member


def test_long_service_name_derives_a_valid_service_account() -> None:
    name = "a" * 20 + "-" + "b" * 8  # 29 characters: the old [:30] cut left a trailing hyphen
    vs = validate(parse_config(flat(service={"name": name})))
    account = vs.config.service.account_id
    assert len(account) <= 30 and not account.endswith("-") and account.startswith("a" * 20)


def test_defaults_follow_the_seed() -> None:
    vs = validate(parse_config(flat()))
    assert vs.sizing.weights_quant == "Q4_K_M"  # B2
    assert vs.sizing.kv_cache_type == "q8_0"  # R4
    assert vs.cpu == 8 and vs.memory_gib == 32
    assert not vs.deletion_protection and vs.force_destroy  # dev
    prod = validate(parse_config(flat(environment="prod")))
    assert prod.deletion_protection and not prod.force_destroy


def test_no_force_destroy_in_production() -> None:
    text = only(errors_for(environment="prod", bucket={"force_destroy": True}), f"{NS}bucket.force_destroy")
    assert "= True:" in text and "delete the production model" in text and "remove cloudrun-gpu:bucket" in text


def test_unknown_environment() -> None:
    text = only(errors_for(environment="production"), f"{NS}environment")
    assert "dev, staging, prod" in text


def test_stack_file_is_read_like_pulumi_does(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n  gcp:project: my-project\n  gcp:region: europe-west1\n"
        "  cloudrun-gpu:environment: prod\n  cloudrun-gpu:engine:\n    name: vllm\n"
        "  other:token:\n    secure: AAAB\n"
    )
    cfg = read_stack_file(tmp_path / "Pulumi.x.yaml")
    assert cfg["cloudrun-gpu:engine"] == '{"name": "vllm"}' and cfg["other:token"] == "[secret]"
    parsed = parse_config(cfg)
    assert parsed.environment == "prod" and parsed.engine.name == "vllm"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("- just\n- a list\n", "Pulumi.bad.yaml"),
        ("config: [1, 2]\n", "Pulumi.bad.yaml: config"),
        ("config:\n  1: x\n", "Pulumi.bad.yaml: 1"),
        ("config:\n  cloudrun-gpu:model: !!binary aGVsbG8=\n", "cloudrun-gpu:model"),
        ("config:\n  cloudrun-gpu:model: !!set {a, b}\n", "cloudrun-gpu:model"),
        ("config: {a: [\n", "Pulumi.bad.yaml"),
        ("\x00\x01\x02 not yaml", "Pulumi.bad.yaml"),
    ],
)
def test_files_that_are_not_stack_files_give_a_clean_error(tmp_path: Path, text: str, field: str) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text(text)
    with pytest.raises((ConfigErrors, ValueError)) as err:
        read_stack_file(tmp_path / "Pulumi.bad.yaml")
    fields = [e.field for e in getattr(err.value, "errors", [err.value])]
    assert fields == [field], str(err.value)


def test_dates_stay_strings_and_are_then_judged_as_values(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.d.yaml").write_text(
        "config:\n  gcp:project: my-project\n  gcp:region: europe-west1\n"
        "  cloudrun-gpu:service:\n    name: 2026-01-01\n"
    )
    with pytest.raises(ConfigErrors) as err:
        validate(parse_config(read_stack_file(tmp_path / "Pulumi.d.yaml")))
    assert [e.field for e in err.value.errors] == [f"{NS}service.name"]


def test_cli_prints_the_error_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text(
        "config:\n  gcp:project: my-project\n  gcp:region: us-west1\n  cloudrun-gpu:gpu:\n    type: nvidia-l4\n"
    )
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    assert main(["plan", "--stack", "bad", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "gcp:region = 'us-west1'" in err and "fix:" in err and "Traceback" not in err


def test_size_errors_name_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "llama-3.2-3b", "--context", "400000"]) == 2
    err = capsys.readouterr().err
    assert "--context = 400000" in err and "engine.context_length" not in err


def test_ollama_cannot_download_its_model() -> None:
    errs = errors_for(engine={"name": "ollama"}, loading={"method": "gcs-download"})
    text = only(errs, f"{NS}loading.method")
    assert errs.errors[0].value == "gcs-download" and "gcs-fuse" in text


def test_vllm_through_fuse_loads_the_mounted_directory() -> None:
    vs = read_config(
        flat(
            model={"name": "llama-3.1-8b", "quantization": "awq-int4", "file": "x"},
            engine={"name": "vllm"},
            loading={"method": "gcs-fuse"},
        )
    )
    assert vs.model_path == "/mnt/models"  # only-dir=<object_prefix> mounts the model directory itself


def test_internal_load_balancer_ingress_is_refused_without_a_load_balancer() -> None:
    text = only(
        errors_for(service={"ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "invokers": ["user:a@b.co"]}),
        f"{NS}service.ingress",
    )
    assert "INGRESS_TRAFFIC_ALL" in text and "load balancer" in text


def test_the_default_ingress_is_reachable() -> None:
    assert read_config(flat()).config.service.ingress == "INGRESS_TRAFFIC_ALL"

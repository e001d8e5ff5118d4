"""gcs-stream (issue 14, R7): vLLM streams safetensors from Cloud Storage to the GPU with the Run:ai Model Streamer.

The plan side: the exact vLLM flags, the model URI, the startup probe at the streamer's measured rate, and the
refusal for llama.cpp and Ollama. The reading side (the real ``runai-model-streamer`` reading from the Cloud
Storage emulator) was written and passed once, but is not part of the suite: the streamer depends on torch, whose
PyPI wheel brings ~4.4 GB of CUDA libraries into every developer's and CI's install.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.loading import MODEL_BUCKET_ENV, model_delivery
from cloudrun_gpu.service.plan import STREAM_BUCKET_REF, model_path, plan_service
from cloudrun_gpu.service.settings import GpuSettings, ResourcesSettings, ScalingSettings
from cloudrun_gpu.sizing import SizingRequest, size
from cloudrun_gpu.sizing.engines import (
    RUNAI_STREAMER_CONCURRENCY,
    RUNAI_STREAMER_MEMORY_LIMIT_BYTES,
    render_engine_config,
    seconds_to_load,
    streamer_extra_config,
)
from cloudrun_gpu.sizing.settings import EngineSettings, LoadingMethod, LoadingSettings, ModelSettings

pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using a Python version:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Please install grpcio-status:ImportWarning"),
]

BUCKET = "stream-bucket"
MODEL = ModelSettings(name="llama-3.2-3b", file="llama-3.2-3b", object_prefix="/models/llama-3.2-3b/")
URI = f"gs://{STREAM_BUCKET_REF}/models/llama-3.2-3b"


def plan(engine: str = "vllm", method: str = "gcs-stream", **kw: Any) -> Any:
    args: dict[str, Any] = {
        "region": "europe-west4",
        "model": MODEL,
        "engine": EngineSettings(name=engine, context_length=4096),  # type: ignore[arg-type]
        "loading": LoadingSettings(method=method),  # type: ignore[arg-type]
        "gpu": GpuSettings(),
        "resources": ResourcesSettings(),
        "scaling": ScalingSettings(),
        **kw,
    }
    return plan_service(**args)


# --- the plan ----------------------------------------------------------------------------------------------


def test_gcs_stream_is_a_loading_method_with_its_cited_rate() -> None:
    facts = limits.LOADING_METHODS["gcs-stream"]
    assert LoadingMethod("gcs-stream") is LoadingMethod.GCS_STREAM
    assert facts.bytes_per_s == 0.8 * GIB == limits.LOADING_METHODS["gcs-download"].bytes_per_s
    assert "58.28 GiB" in facts.source and "73 s" in facts.source and "§4.4" in facts.source
    assert pytest.approx(facts.bytes_per_s / GIB, abs=0.01) == 58.28 / 73  # the measurement gives the rate
    assert any("Direct VPC" in n for n in facts.needs)


def test_model_path_is_the_bucket_uri_cloud_run_expands() -> None:
    assert model_path(MODEL, EngineSettings(name="vllm"), LoadingSettings(method="gcs-stream")) == URI  # type: ignore[arg-type]
    p = plan()
    assert p.model_path == URI and p.mount_path == "" and p.in_memory_volume_gib == 0
    d = model_delivery("gcs-stream", mount_path=p.mount_path, bucket=BUCKET, object_prefix=MODEL.object_prefix)
    assert (d.volumes, d.mounts, d.env, d.needs_nat) == ([], [], {MODEL_BUCKET_ENV: BUCKET}, False)
    assert f"$({MODEL_BUCKET_ENV})" == STREAM_BUCKET_REF


def test_vllm_args_for_gcs_stream_exactly() -> None:
    args, env = render_engine_config(
        "vllm", model_path=URI, context=4096, parallel=8, kv_type="fp8", memory_fraction=0.9, vram_bytes=24 * GIB
    )
    assert env == {}
    assert args == [
        *("--model", URI, "--host", "0.0.0.0", "--port", "8080", "--max-model-len", "4096"),
        *("--max-num-seqs", "8", "--gpu-memory-utilization", "0.90", "--kv-cache-dtype", "fp8"),
        *("--enable-prefix-caching", "--enable-chunked-prefill", "--max-num-batched-tokens", "2048"),
        *("--load-format", "runai_streamer"),
        *("--model-loader-extra-config", '{"concurrency":16,"memory_limit":5368709120}'),
    ]
    assert json.loads(streamer_extra_config()) == {
        "concurrency": RUNAI_STREAMER_CONCURRENCY,
        "memory_limit": RUNAI_STREAMER_MEMORY_LIMIT_BYTES,
    }


def test_the_plan_renders_the_streamer_flags_and_only_for_gcs_stream() -> None:
    stream = plan().sizing.engine_args
    download = plan(method="gcs-download").sizing.engine_args
    assert stream[stream.index("--model") + 1] == URI
    i = stream.index("--load-format")
    assert stream[i : i + 4] == [
        "--load-format",
        "runai_streamer",
        "--model-loader-extra-config",
        streamer_extra_config(),
    ]
    assert "--load-format" not in download and "--model-loader-extra-config" not in download
    # everything else is the same vLLM command line
    assert [a for a in stream[:i] + stream[i + 4 :] if a != URI] == [
        a for a in download if a != "/models-mem/llama-3.2-3b"
    ]


def test_startup_probe_uses_the_streamer_rate() -> None:
    req = SizingRequest(
        model=MODEL.spec(), engine="vllm", context_length=4096, kv_cache_type="fp8", loading_method="gcs-stream"
    )
    stream = size(req)
    image = size(SizingRequest(**{**req.__dict__, "loading_method": "image"}))
    rate = limits.LOADING_METHODS["gcs-stream"].bytes_per_s
    gap = stream.startup_probe.expected_start_seconds - image.startup_probe.expected_start_seconds
    want = (
        limits.DIRECT_VPC_CONNECT_S.value
        + seconds_to_load(stream.weights_bytes, rate)
        - seconds_to_load(stream.weights_bytes, limits.LOADING_METHODS["image"].bytes_per_s)
    )
    assert gap == pytest.approx(want, abs=0.2)
    assert any("via gcs-stream at 0.80 GiB/s" in n for n in stream.explain)


@pytest.mark.parametrize("engine", ["llama.cpp", "ollama"])
def test_other_engines_are_refused_naming_loading_method(engine: str) -> None:
    model = ModelSettings(name="llama-3.2-3b", file="m.gguf")
    with pytest.raises(ConfigErrors) as err:
        plan(engine=engine, model=model)
    fields = [(e.field, e.value) for e in err.value.errors]
    assert fields == [("loading.method", "gcs-stream")], err.value.render()
    text = err.value.errors[0].render()
    assert "Run:ai Model Streamer" in text and "vllm" in text and "fix:" in text
    usable = "image, gcs-fuse" if engine == "ollama" else "image, gcs-fuse, gcs-download, internet"
    assert err.value.errors[0].allowed == usable


# --- the real streamer against a real Cloud Storage emulator ----------------------------------------------------


def test_the_stack_grants_the_runtime_identity_read_on_the_bucket_it_streams_from() -> None:
    import json as _json

    from stack.compose import build_stack
    from stack.config import read_config

    from .conftest import render

    flat = {
        "gcp:project": "my-project",
        "gcp:region": "europe-west4",
        "cloudrun-gpu:gpu": _json.dumps({"type": "nvidia-rtx-pro-6000"}),
        "cloudrun-gpu:resources": _json.dumps({"cpu": 20, "memory_gib": 80}),
        "cloudrun-gpu:model": _json.dumps({"name": "llama-3.1-8b", "quantization": "awq-int4", "file": "m"}),
        "cloudrun-gpu:engine": _json.dumps({"name": "vllm"}),
        "cloudrun-gpu:loading": _json.dumps({"method": "gcs-stream"}),
        "cloudrun-gpu:service": _json.dumps({"invokers": ["user:me@example.com"]}),
    }
    vs = read_config(flat)
    r = render(lambda: build_stack(vs)["url"])
    readers = [b.inputs for b in r.of_type("gcp:storage/bucketIAMMember:BucketIAMMember") if "runtime" in b.name]
    assert [(b["role"], b["member"].split("@")[0]) for b in readers] == [
        ("roles/storage.objectViewer", "serviceAccount:llm-runtime")
    ]
    env = {
        e["name"]: e["value"]
        for e in r.one("gcp:cloudrunv2/service:Service").inputs["template"]["containers"][0]["envs"]
    }
    assert env[MODEL_BUCKET_ENV].startswith("llm-models-")

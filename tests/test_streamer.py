"""gcs-stream (issue 14, R7): vLLM streams safetensors from Cloud Storage to the GPU with the Run:ai Model Streamer.

The plan side: the exact vLLM flags, the model URI, the startup probe at the streamer's measured rate, and the
refusal for llama.cpp and Ollama. The reading side: the real ``runai-model-streamer`` (its C++ core and its GCS
backend, ``runai-model-streamer-gcs``) reads a real safetensors model from the Cloud Storage emulator at the URI
the plan renders, the way vLLM's loader calls it, and the tensors it hands over match the file byte for byte.
The streamer's Python API imports torch; the CPU build pinned in requirements-dev.txt is enough (no GPU: vLLM
itself streams to the CPU and moves tensors to the GPU afterwards unless it runs distributed).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.loading import MODEL_BUCKET_ENV, model_delivery
from cloudrun_gpu.service.plan import STREAM_BUCKET_REF, ServingSettings, model_path, plan_service
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

from .test_container import gcs  # noqa: F401  (the Cloud Storage emulator fixture, shared with the download tests)

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
    return plan_service(ServingSettings(**args))


# --- the plan ----------------------------------------------------------------------------------------------


def test_gcs_stream_is_a_loading_method_with_its_cited_rate() -> None:
    facts = limits.LOADING_METHODS["gcs-stream"]
    assert LoadingMethod("gcs-stream") is LoadingMethod.GCS_STREAM
    # The rate is fitted on the published start (docs/startup-evidence.md): its total implies 0.64 GiB/s once
    # the container, Direct VPC and vLLM init terms are off; the streamer's own log line (58.28 GiB in 73 s) is
    # quoted, not used, since the plan's expected start must match the start's total.
    assert facts.bytes_per_s == 0.64 * GIB
    assert "58.28 GiB" in facts.source and "73 s" in facts.source and "startup-evidence" in facts.source
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
        *("--model", URI, "--served-model-name", URI),  # no name given: vLLM's own default, the --model value
        *("--host", "0.0.0.0", "--port", "8080", "--max-model-len", "4096"),
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
    assert any("via gcs-stream at 0.640 GiB/s" in n for n in stream.explain)


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


# --- the real streamer reading from the Cloud Storage emulator ------------------------------------------------------
#
# How the streamer reaches the emulator (both halves are configured by environment, nothing is patched):
# - listing and the small files: runai_model_streamer_gcs/files/files.py builds a google-cloud-storage client
#   (``storage.Client(credentials=...)``), which honours STORAGE_EMULATOR_HOST (google/cloud/storage/_helpers.py
#   ``STORAGE_EMULATOR_ENV_VAR``); RUNAI_STREAMER_GCS_USE_ANONYMOUS_CREDENTIALS=true gives it anonymous credentials
#   (runai_model_streamer_gcs/credentials/credentials.py).
# - the tensor bytes: libstreamergcs.so is google-cloud-cpp's storage client, whose ``GetEmulator()`` reads
#   CLOUD_STORAGE_EMULATOR_ENDPOINT and then uses anonymous credentials (googleapis/google-cloud-cpp
#   google/cloud/storage/client_options.cc); the streamer's own tests run against fake-gcs-server the same way
#   (run-ai/runai-model-streamer tests/Makefile: ``CLOUD_STORAGE_EMULATOR_ENDPOINT=…``
#   ``RUNAI_STREAMER_GCS_USE_ANONYMOUS_CREDENTIALS=True``).

STREAM_PREFIX = "models/tiny-llm"
OBJECT_STORE_MIN_CHUNK = 5 * 1024 * 1024
"""RUNAI_STREAMER_CHUNK_BYTESIZE's minimum for object storage (run-ai/runai-model-streamer docs/src/env-vars.md):
one tensor above it is read in several ranged requests."""
HOW_TO_INSTALL = (
    "install the pinned test requirements: `.venv/bin/python -m pip install -r requirements-dev.txt` "
    "(`make unit` does it; torch==2.13.0 is the CPU build, runai-model-streamer[-gcs]==0.17.0, safetensors)"
)


def streamer_api() -> tuple[Any, Any, Any]:
    """``SafetensorsStreamer``, ``list_safetensors`` and ``pull_files``, or a failure that says how to install them.

    A missing prerequisite fails (it never skips): the read is what guards gcs-stream.
    """
    try:
        import runai_model_streamer as rms  # type: ignore[import-untyped]
        import runai_model_streamer_gcs  # type: ignore[import-untyped]  # noqa: F401  (the gs:// backend)
    except ImportError as exc:
        pytest.fail(f"the Run:ai Model Streamer cannot be imported ({exc}): {HOW_TO_INSTALL}", pytrace=False)
    return rms.SafetensorsStreamer, rms.list_safetensors, rms.pull_files


def tiny_model() -> tuple[dict[str, bytes], dict[str, Any]]:
    """A two-shard safetensors model (as Hugging Face shards them) with its config and tokenizer, and its tensors.

    Several dtypes and shapes, one tensor above the object-store chunk so it arrives in several ranged reads.
    """
    import numpy as np
    from numpy.typing import NDArray

    try:
        from safetensors.numpy import save
    except ImportError as exc:
        pytest.fail(f"safetensors cannot be imported ({exc}): {HOW_TO_INSTALL}", pytrace=False)

    rng = np.random.default_rng(14)
    shard1: dict[str, NDArray[Any]] = {
        "model.embed_tokens.weight": rng.standard_normal((1536, 1024)).astype(np.float32),  # 6 MiB
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((64, 48)).astype(np.float16),
    }
    shard2: dict[str, NDArray[Any]] = {
        "model.layers.0.mlp.gate_proj.qweight": rng.integers(-128, 127, (96, 33), dtype=np.int8),
        "model.layers.0.mlp.gate_proj.g_idx": np.arange(777, dtype=np.int32),
        "lm_head.bias": rng.standard_normal(5).astype(np.float64),
    }
    files = {
        "model-00001-of-00002.safetensors": save(shard1, metadata={"format": "pt"}),
        "model-00002-of-00002.safetensors": save(shard2, metadata={"format": "pt"}),
        "config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "torch_dtype": "float16"}).encode(),
        "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}',
    }
    return files, {**shard1, **shard2}


@pytest.fixture
def streamed_bucket(
    gcs: str,  # noqa: F811  (the imported fixture, requested by name)
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    """The tiny model uploaded under the plan's object prefix (a decoy beside it), the streamer pointed at the
    emulator, and vLLM's loader settings applied the way vLLM applies them. Yields the engine's model URI."""
    from .test_container import BUCKET as EMULATOR_BUCKET
    from .test_container import client

    files, tensors = tiny_model()
    bucket = client(gcs).bucket(EMULATOR_BUCKET)
    for name, data in files.items():
        bucket.blob(f"{STREAM_PREFIX}/{name}").upload_from_string(data)
    bucket.blob(f"{STREAM_PREFIX}-other/model.safetensors").upload_from_string(files["config.json"])
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs)
    monkeypatch.setenv("CLOUD_STORAGE_EMULATOR_ENDPOINT", gcs)
    monkeypatch.setenv("RUNAI_STREAMER_GCS_USE_ANONYMOUS_CREDENTIALS", "true")
    monkeypatch.setenv("RUNAI_STREAMER_CHUNK_BYTESIZE", str(OBJECT_STORE_MIN_CHUNK))
    # vLLM's RunaiModelStreamerLoader turns --model-loader-extra-config into these two variables
    # (vllm/model_executor/model_loader/runai_streamer_loader.py): our rendered config, applied the same way.
    extra = json.loads(streamer_extra_config())
    monkeypatch.setenv("RUNAI_STREAMER_CONCURRENCY", str(extra["concurrency"]))
    monkeypatch.setenv("RUNAI_STREAMER_MEMORY_LIMIT", str(extra["memory_limit"]))
    model = ModelSettings(name="tiny-llm", file="tiny-llm", object_prefix=f"/{STREAM_PREFIX}/")
    uri = model_path(model, EngineSettings(name="vllm"), LoadingSettings(method="gcs-stream"))  # type: ignore[arg-type]
    # Cloud Run expands $(MODEL_BUCKET) from the env that model_delivery sets (Container.args)
    env = model_delivery("gcs-stream", mount_path="", bucket=EMULATOR_BUCKET, object_prefix=model.object_prefix).env
    return uri.replace(STREAM_BUCKET_REF, env[MODEL_BUCKET_ENV]), files, tensors


def test_the_streamer_reads_the_plans_uri_from_the_emulator_tensor_for_tensor(
    streamed_bucket: tuple[str, dict[str, bytes], dict[str, Any]],
) -> None:
    """vLLM's path, call for call (vllm/model_executor/model_loader/runai_streamer_loader.py ``_prepare_weights``
    lists the weights with ``list_safetensors``; weight_utils.py ``runai_safetensors_weights_iterator`` does
    ``with SafetensorsStreamer() as streamer: streamer.stream_files(files, device="cpu", is_distributed=False)``
    and yields ``streamer.get_tensors()``): every tensor arrives with its name, dtype, shape and bytes."""
    from .test_container import BUCKET as EMULATOR_BUCKET

    uri, _files, tensors = streamed_bucket
    SafetensorsStreamer, list_safetensors, _pull = streamer_api()
    assert uri == f"gs://{EMULATOR_BUCKET}/{STREAM_PREFIX}"
    shards = sorted(list_safetensors(uri))
    assert shards == [f"{uri}/model-0000{i}-of-00002.safetensors" for i in (1, 2)]  # not the -other neighbour
    got: dict[str, tuple[str, tuple[int, ...], bytes]] = {}
    with SafetensorsStreamer() as streamer:
        streamer.stream_files(shards, device="cpu", is_distributed=False)
        for name, tensor in streamer.get_tensors():
            array = tensor.numpy()  # the streamer reuses its buffers: copy the bytes out now
            got[name] = (str(array.dtype), tuple(array.shape), array.tobytes())
    want = {name: (str(a.dtype), tuple(a.shape), a.tobytes()) for name, a in tensors.items()}
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name
    assert len(want["model.embed_tokens.weight"][2]) > OBJECT_STORE_MIN_CHUNK  # it came in several ranges


def test_the_streamer_pulls_config_and_tokenizer_but_no_weights(
    streamed_bucket: tuple[str, dict[str, bytes], dict[str, Any]], tmp_path: Any
) -> None:
    """The rest of the model folder reaches the engine through ``pull_files`` with the weights ignored (vLLM's
    ObjectStorageModel.pull_files, vllm/transformers_utils/runai_utils.py): so the bucket prefix must hold
    config.json and the tokenizer beside the safetensors (docs/deploy.md), and only they are copied."""
    uri, files, _tensors = streamed_bucket
    _streamer, _list, pull_files = streamer_api()
    pull_files(uri, str(tmp_path), ignore_pattern=["*.safetensors"])
    landed = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert landed == {name: data for name, data in files.items() if not name.endswith(".safetensors")}


def test_a_prefix_with_no_weights_lists_nothing(streamed_bucket: tuple[str, dict[str, bytes], dict[str, Any]]) -> None:
    """A wrong object_prefix gives vLLM an empty list ("Cannot find any safetensors model weights"), and a prefix
    is a folder: ``tiny-llm`` does not pick up ``tiny-llm-other``."""
    uri, _files, _tensors = streamed_bucket
    _streamer, list_safetensors, _pull = streamer_api()
    assert list_safetensors(uri + "-missing") == []
    assert list_safetensors(uri + "-other") == [uri + "-other/model.safetensors"]


def test_a_missing_streamer_fails_and_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never a silent skip: without the package the read tests fail with the install command."""
    import sys

    monkeypatch.setitem(sys.modules, "runai_model_streamer", None)  # what `import` sees when it is not installed
    with pytest.raises(pytest.fail.Exception, match=r"pip install -r requirements-dev\.txt"):
        streamer_api()

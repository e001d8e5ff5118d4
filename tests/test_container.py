"""The build-time and start-up side against real pieces (issue 10, items 7-10): the model download through a
real Cloud Storage emulator and the real entrypoint, the Cloud Build configs' substitutions and exact command
lines, the Ollama build for every loading method, and engine images pinned per GPU."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudrun_gpu.build.image import substitutions_used
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.images import ENGINE_IMAGES, GPU_DRIVERS, OLD_VLLM_DLC, EngineImage, check_image, pinned_image
from cloudrun_gpu.loading import model_delivery

from stack.cloudbuild import cloudbuild_config, image_uri, submit_command
from stack.config import ValidatedStack, load_stack, parse_config, read_config, read_stack_file, stack_file, validate

from .conftest import ROOT
from .test_storage import dockerfile_stages

# google-api-core warns that Python 3.11 support ends in 2027: not this project's concern today.
# grpc (installed for Pulumi) without grpcio-status: an ImportWarning on import; HTTP is all we use.
pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using a Python version:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Please install grpcio-status:ImportWarning"),
]

CONTAINER = ROOT / "container"
BUCKET = "models-bucket"


# --- a real Cloud Storage emulator ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def gcs() -> Iterator[str]:
    """gcp-storage-emulator (PyPI) on a free loopback port, in memory; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "gcp_storage_emulator", "start", "--port", str(port), "-H", "127.0.0.1"),
            *("--in-memory", "--default-bucket", BUCKET, "-q"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("the Cloud Storage emulator did not start")
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(url: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    os.environ["STORAGE_EMULATOR_HOST"] = url
    return storage.Client(project="test", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]


SMALL_SLICE = 64 * 1024
SLICED_ABOVE = 200 * 1024
"""Test thresholds: one file above SLICED_ABOVE goes through the sliced (ranged-read) path in 64 KiB slices."""


def upload(url: str, prefix: str, tree: dict[str, bytes]) -> None:
    bucket = client(url).bucket(BUCKET)
    for rel, data in tree.items():
        bucket.blob(f"{prefix}/{rel}").upload_from_string(data)
    # a neighbour whose name starts with the same characters must not be fetched
    bucket.blob(f"{prefix}-other/decoy.bin").upload_from_string(b"not this model")


def stack_for(engine: str, method: str) -> ValidatedStack:
    raw: dict[str, Any] = {"gcp:project": "my-project", "gcp:region": "europe-west4"}
    if engine == "vllm":  # the production stack itself (vLLM, RTX PRO 6000), with the method under test
        flat = read_stack_file(stack_file("prod", ROOT))
        flat["cloudrun-gpu:loading"] = json.dumps({"method": method})
        return read_config(flat, base_dir=ROOT, plan_only=True)
    raw["cloudrun-gpu:model"] = {
        "name": "llama-3.2-3b",
        "file": "llama-3.2-3b-instruct-q4_k_m.gguf",
        "object_prefix": "models/llama-3.2-3b",
    }
    raw["cloudrun-gpu:engine"] = {"name": engine, "context_length": 4096}
    raw["cloudrun-gpu:loading"] = {"method": method}
    return validate(parse_config(raw))


def dockerfile_env(engine: str) -> dict[str, str]:
    """The ENV the runtime stage of ``container/<engine>/Dockerfile`` sets."""
    _, final = dockerfile_stages(CONTAINER / engine / "Dockerfile")[-1]
    env: dict[str, str] = {}
    for line in final:
        if line.startswith("ENV "):
            env.update(dict(kv.split("=", 1) for kv in shlex.split(line[4:])))
    return env


def model_tree(engine: str) -> dict[str, bytes]:
    """The documented bucket layout under ``<object_prefix>/`` (docs/deploy.md)."""
    big = os.urandom(SLICED_ABOVE * 3 + 12345)  # sliced: 10 ranged reads of 64 KiB
    if engine == "vllm":
        return {
            "config.json": json.dumps({"architectures": ["Gemma3ForConditionalGeneration"]}).encode(),
            "model-00001-of-00002.safetensors": big,
            "model-00002-of-00002.safetensors": os.urandom(5000),
            "tokenizer.json": b'{"version": "1.0"}',
            "tokenizer_config.json": b"{}",
            "generation_config.json": b"{}",
            "extra/chat_template.jinja": b"{{ messages }}",
        }
    return {"llama-3.2-3b-instruct-q4_k_m.gguf": b"GGUF" + big, "notes/README.md": b"# model card"}


def path_without_gcloud(tmp_path: Path) -> str:
    """A PATH with only what entrypoint.sh needs, and python3 = this interpreter (google-cloud-storage)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # keeps the venv
    (bindir / "python3").chmod(0o755)
    for tool in ("dirname", "mkdir", "sh"):
        (bindir / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    return str(bindir)


GCLOUD = shutil.which("gcloud")


@pytest.mark.parametrize(
    ("engine", "tool"),
    [
        ("llama.cpp", "python"),
        ("llama.cpp", "gcloud"),
        ("vllm", "python"),
    ],
)
def test_gcs_download_lands_at_the_engine_model_path_byte_for_byte(
    gcs: str, tmp_path: Path, engine: str, tool: str
) -> None:
    """The real entrypoint.sh against the emulator, with download_gcs.py (transfer manager, process workers;
    the vLLM image) or ``gcloud storage rsync`` (the llama.cpp image with WITH_GCLOUD=1): every object under
    gs://bucket/<object_prefix>/ arrives, byte for byte, where the engine is told to load it."""
    vs = stack_for(engine, "gcs-download")
    cfg, plan = vs.config, vs.plan
    prefix = cfg.model.object_prefix.strip("/")
    tree = model_tree(engine)
    upload(gcs, prefix, tree)
    delivery = model_delivery(
        "gcs-download", mount_path=plan.mount_path, bucket=BUCKET, object_prefix=prefix, in_memory_gib=1
    )
    root = tmp_path / "container-root"  # the container's "/" for this test
    engine_args = [a.replace(plan.mount_path, f"{root}{plan.mount_path}") for a in vs.sizing.engine_args]
    record = tmp_path / "argv.json"
    fake_engine = tmp_path / "engine"
    code = f"import json,sys; json.dump(sys.argv[1:], open('{record}','w'))"
    fake_engine.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{code}" "$@"\n')
    fake_engine.chmod(0o755)
    env = {
        "STORAGE_EMULATOR_HOST": gcs,
        "DOWNLOAD_SLICED_ABOVE": str(SLICED_ABOVE),
        "DOWNLOAD_CHUNK_SIZE": str(SMALL_SLICE),
        **{k: v for k, v in dockerfile_env(engine).items() if k == "MODEL_LAYOUT"},
        **{k: str(v).replace(plan.mount_path, f"{root}{plan.mount_path}") for k, v in delivery.env.items()},
    }
    assert env["MODEL_DOWNLOAD_URI"] == f"gs://{BUCKET}/{prefix}/*"
    if tool == "gcloud" and GCLOUD is None:  # a prerequisite, not an optional extra: no silent skip
        pytest.fail(
            "the gcloud CLI is not on PATH; the llama.cpp image downloads with `gcloud storage rsync`, so this "
            "test runs it against the emulator. Install the Google Cloud CLI (Debian/Ubuntu: add Google's apt "
            "repository and `apt-get install google-cloud-cli`, https://cloud.google.com/sdk/docs/install), or "
            "deselect this case explicitly with `-k 'not gcloud'`",
            pytrace=False,
        )
    if tool == "gcloud":  # the gcloud CLI pointed at the emulator, without credentials, slicing above 200 KiB
        (tmp_path / "gcloud-config").mkdir()
        env |= {
            "PATH": f"{Path(str(GCLOUD)).parent}:/usr/bin:/bin",
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud-config"),
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{gcs}/",
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "True",
            "CLOUDSDK_CORE_PROJECT": "test",
            "CLOUDSDK_STORAGE_SLICED_OBJECT_DOWNLOAD_THRESHOLD": str(SLICED_ABOVE),
            "CLOUDSDK_STORAGE_SLICED_OBJECT_DOWNLOAD_COMPONENT_SIZE": str(SMALL_SLICE),
        }
    else:
        env["PATH"] = path_without_gcloud(tmp_path)
    run = subprocess.run(
        ["sh", str(CONTAINER / "entrypoint.sh"), str(fake_engine), *engine_args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    started_with = json.loads(record.read_text())
    flag = "--model" if engine == "vllm" else "-m"
    loaded = Path(started_with[started_with.index(flag) + 1])
    assert str(loaded) == f"{root}{plan.model_path}"  # the engine loads exactly plan.model_path
    model_dir = loaded if engine == "vllm" else loaded.parent
    if engine == "llama.cpp":
        assert loaded.read_bytes() == tree[cfg.model.file]
    got = {str(p.relative_to(model_dir)): p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
    assert {k: hashlib.sha256(v).hexdigest() for k, v in got.items()} == {
        k: hashlib.sha256(v).hexdigest() for k, v in tree.items()
    }
    assert "decoy.bin" not in run.stdout + str(list(root.rglob("*")))


def test_download_requests_each_object_once_with_threads_too(gcs: str, tmp_path: Path) -> None:
    """download() in process with thread workers: the sliced file is checked against its CRC32C, names are
    relative to the prefix (the old code requested ``<prefix>/<prefix>/name`` and got 404)."""
    sys.path.insert(0, str(CONTAINER))
    try:
        import download_gcs
    finally:
        sys.path.remove(str(CONTAINER))
    tree = {"a.bin": os.urandom(1000), "deep/er/b.bin": os.urandom(SLICED_ABOVE + 1)}
    upload(gcs, "threads/m", tree)
    files = download_gcs.download(
        f"gs://{BUCKET}/threads/m",
        tmp_path,
        client=client(gcs),
        sliced_above=SLICED_ABOVE,
        chunk_size=SMALL_SLICE,
        worker_type="thread",
    )
    assert sorted(str(f.relative_to(tmp_path)) for f in files) == sorted(tree)
    assert all((tmp_path / k).read_bytes() == v for k, v in tree.items())
    assert download_gcs.split_uri(f"gs://{BUCKET}/threads/m/*") == (BUCKET, "threads/m/")
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        download_gcs.download(f"gs://{BUCKET}/nothing-here", tmp_path / "x", client=client(gcs))


# --- Cloud Build: substitutions and the exact steps ----------------------------------------------------

ENGINES_METHODS = [("llama.cpp", m) for m in ("image", "gcs-fuse", "gcs-download")] + [
    ("ollama", m)
    for m in ("image", "gcs-fuse")  # Ollama + gcs-download is refused: its image cannot download
]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_each_substitution_is_defined_and_used(stack: str) -> None:
    cfg = yaml.safe_load(yaml.safe_dump(cloudbuild_config(load_stack(stack, ROOT))))
    assert set(cfg.get("substitutions", {})) == substitutions_used(cfg)
    # every other $ is escaped ($$): Cloud Build would read a bare $name as a substitution
    text = json.dumps(cfg["steps"]).replace("$$", "")
    assert re.findall(r"\$(?!\{?_MODEL_BUCKET\b)", text) == []


@pytest.mark.parametrize(("engine", "method"), ENGINES_METHODS)
def test_substitutions_match_for_every_engine_and_method(engine: str, method: str) -> None:
    vs = stack_for(engine, method)
    cfg = cloudbuild_config(vs)
    used = substitutions_used(cfg)
    assert set(cfg.get("substitutions", {})) == used == ({"_MODEL_BUCKET"} if method == "image" else set())
    cmd = submit_command(vs)
    assert ("--substitutions" in cmd) == (method == "image")


def build_args(cfg: dict[str, Any]) -> dict[str, str]:
    args = cfg["steps"][-1]["args"]
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--build-arg")


def test_dev_build_steps_exactly() -> None:
    vs = load_stack("dev", ROOT)
    cfg = cloudbuild_config(vs)
    cache = "europe-west1-docker.pkg.dev/your-project-id/llm-dev-serving-docker-hub"  # issue 19: <service>-serving
    assert cfg["steps"] == [
        {
            "id": "stage-model",
            "name": "gcr.io/google.com/cloudsdktool/cloud-sdk:slim",
            "entrypoint": "gcloud",
            "args": ["storage", "rsync", "--recursive", "gs://${_MODEL_BUCKET}/models", "container/model/"],
        },
        {"id": "pin-timestamps", "name": "bash", "args": ["-c", "find container/model -exec touch -h -d @0 {} +"]},
        {
            "id": "build-image",
            "name": "gcr.io/cloud-builders/docker",
            "args": [
                "build",
                "-f",
                "container/llama.cpp/Dockerfile",
                "-t",
                image_uri(vs),
                *("--build-arg", "WITH_GCLOUD=0"),
                *("--build-arg", "LLAMA_CPP_VERSION=b6700"),
                *("--build-arg", "CUDA_VERSION=12.2.2"),
                *("--build-arg", "UBUNTU_VERSION=22.04"),
                *("--build-arg", "CUDA_ARCH=89"),
                *("--build-arg", f"REGISTRY={cache}"),
                *("--build-arg", "PROMPT_CACHE=0"),  # no ENGINE_ARGS: without the prompt cache no build input
                "container",
            ],
            "env": ["DOCKER_BUILDKIT=1"],
        },
    ]
    assert cfg["substitutions"] == {"_MODEL_BUCKET": "set-me"}
    assert submit_command(vs) == [
        *("gcloud", "builds", "submit", "--config", "/tmp/cloudbuild.yaml"),
        *("--substitutions", "_MODEL_BUCKET=<bucket>", "."),
    ]


def test_staging_ollama_from_a_bucket_mount_builds_without_a_model() -> None:
    vs = load_stack("staging", ROOT)
    cfg = cloudbuild_config(vs)
    assert "substitutions" not in cfg
    assert cfg["steps"] == [
        {
            "id": "build-image",
            "name": "gcr.io/cloud-builders/docker",
            "args": [
                *("build", "-f", "container/ollama/Dockerfile", "-t", image_uri(vs)),
                *("--build-arg", "WITH_GCLOUD=0"),
                *("--build-arg", "OLLAMA_TAG=0.12.3"),
                *("--build-arg", "REGISTRY=us-central1-docker.pkg.dev/your-project-id/llm-staging-serving-docker-hub"),
                *("--build-arg", "MODEL_NAME=llama3.1:8b-instruct-q4_K_M"),
                "container",
            ],
            "env": ["DOCKER_BUILDKIT=1"],
        }
    ]
    assert submit_command(vs) == ["gcloud", "builds", "submit", "--config", "/tmp/cloudbuild.yaml", "."]


def test_prod_vllm_build_uses_the_blackwell_pin() -> None:
    vs = load_stack("prod", ROOT)
    cfg = cloudbuild_config(vs)
    assert "substitutions" not in cfg
    assert cfg["steps"] == [
        {
            "id": "build-image",
            "name": "gcr.io/cloud-builders/docker",
            "args": [
                *("build", "-f", "container/vllm/Dockerfile", "-t", image_uri(vs)),
                # gcs-stream: vLLM's streamer reads the bucket itself, so the image needs no gcloud
                *("--build-arg", "WITH_GCLOUD=0"),
                *(
                    "--build-arg",
                    "VLLM_IMAGE=europe-west4-docker.pkg.dev/your-project-id/llm-serving-docker-hub/vllm/vllm-openai:v0.14.1",
                ),
                "container",
            ],
            "env": ["DOCKER_BUILDKIT=1"],
        }
    ]


def test_ollama_image_method_writes_a_modelfile_with_an_escaped_dollar() -> None:
    cfg = cloudbuild_config(stack_for("ollama", "image"))
    ids = [s["id"] for s in cfg["steps"]]
    assert ids == ["stage-model", "pin-timestamps", "modelfile", "build-image"]
    script = cfg["steps"][2]["args"][1]
    assert "$$(cd container/model && ls *.gguf | head -1)" in script
    # what bash runs after Cloud Build turns $$ into $, on a staged folder
    with_dollar = script.replace("$$", "$")
    assert with_dollar.endswith("> container/model/Modelfile")


def test_ollama_image_modelfile_turns_mmap_off_and_bash_writes_it(tmp_path: Path) -> None:
    """R7: a baked-in image loads with ``use_mmap false`` (loading.ollama_model_parameters); the step is run by
    real bash on a staged folder, so the printf escapes are checked, not just the string."""
    script = cloudbuild_config(stack_for("ollama", "image"))["steps"][2]["args"][1].replace("$$", "$")
    (tmp_path / "container" / "model").mkdir(parents=True)
    (tmp_path / "container" / "model" / "m.gguf").write_bytes(b"GGUF")
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True)
    modelfile = (tmp_path / "container" / "model" / "Modelfile").read_text()
    assert modelfile == "FROM ./m.gguf\nPARAMETER use_mmap false\n"


def test_vllm_image_method_stages_the_model_directory_at_the_engine_path() -> None:
    raw: dict[str, Any] = {
        "gcp:project": "my-project",
        "gcp:region": "europe-west4",
        "cloudrun-gpu:gpu": {"type": "nvidia-rtx-pro-6000"},
        "cloudrun-gpu:resources": {"cpu": 20, "memory_gib": 80},
        "cloudrun-gpu:model": {"name": "gemma-3-27b", "quantization": "awq-int4", "file": "gemma-3-27b-it-awq"},
        "cloudrun-gpu:engine": {"name": "vllm", "context_length": 8192},
        "cloudrun-gpu:loading": {"method": "image"},
    }
    vs = validate(parse_config(raw))
    stage = cloudbuild_config(vs)["steps"][0]
    assert stage["args"][-1] == "container/model/gemma-3-27b-it-awq/"  # COPY model/ /models/ → /models/<file>
    assert vs.plan.model_path == "/models/gemma-3-27b-it-awq"


# --- Ollama: builds for every loading method -----------------------------------------------------------


def test_ollama_model_stage_creates_only_when_a_modelfile_was_staged() -> None:
    stages = dockerfile_stages(CONTAINER / "ollama" / "Dockerfile")
    model_from, model_steps = stages[0]
    assert model_from.endswith("AS model")
    runs = [s for s in model_steps if s.startswith("RUN")]
    assert len(runs) == 1 and "if [ -f /import/Modelfile ]" in runs[0] and "mkdir -p /models" in runs[0]
    assert runs[0].index("if [ -f /import/Modelfile ]") < runs[0].index("ollama create")
    # the stage's shell logic, run here: without a Modelfile nothing is created and /models exists
    script = runs[0].removeprefix("RUN ").replace("/import", "$IMPORT").replace("/models", "$MODELS")
    assert "OLLAMA_NOPRUNE=1" in next(s for s in stages[-1][1] if s.startswith("ENV"))
    assert (CONTAINER / "model" / ".keep").exists()  # COPY model/ never fails on an empty staging folder
    assert script  # exercised below


def test_ollama_model_stage_script_without_a_modelfile(tmp_path: Path) -> None:
    _, model_steps = dockerfile_stages(CONTAINER / "ollama" / "Dockerfile")[0]
    run = next(s for s in model_steps if s.startswith("RUN")).removeprefix("RUN ")
    script = run.replace("/import", str(tmp_path / "import")).replace("/models", str(tmp_path / "models"))
    (tmp_path / "import").mkdir()
    (tmp_path / "import" / ".keep").touch()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ollama").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n')
    (bindir / "ollama").chmod(0o755)
    out = subprocess.run(["sh", "-c", script], env={"PATH": f"{bindir}:/usr/bin:/bin"}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "models").is_dir() and not (tmp_path / "calls").exists()


# --- engine images pinned per GPU ----------------------------------------------------------------------


@pytest.mark.parametrize(("engine", "gpu"), sorted(ENGINE_IMAGES))
def test_every_pin_runs_on_its_gpu_driver(engine: str, gpu: str) -> None:
    pin = pinned_image(engine, gpu)
    assert pin.cuda <= GPU_DRIVERS[gpu].max_cuda
    assert GPU_DRIVERS[gpu].compute_capability in pin.archs
    assert ":latest" not in pin.reference and pin.version in pin.reference + str(pin.build_args)


def test_the_march_2025_vllm_image_is_refused_on_blackwell() -> None:
    with pytest.raises(ConfigError) as err:
        check_image(OLD_VLLM_DLC, "nvidia-rtx-pro-6000")
    assert err.value.field == "engine.image" and "12.0" in err.value.problem


def test_a_cuda_12_8_llama_cpp_image_is_refused_on_the_l4() -> None:
    upstream = EngineImage(
        engine="llama.cpp",
        gpu="nvidia-l4",
        reference="ghcr.io/ggml-org/llama.cpp:server-cuda",
        version="floating",
        cuda=(12, 8),  # .devops/cuda.Dockerfile ARG CUDA_VERSION=12.8.1
        archs=((8, 9), (12, 0)),
    )
    with pytest.raises(ConfigError) as err:
        check_image(upstream, "nvidia-l4")
    assert err.value.field == "engine.image" and "CUDA 12.8" in err.value.problem and "12.2" in err.value.problem


def test_cloud_build_passes_the_pin_of_the_stack_gpu() -> None:
    for stack in ("dev", "staging", "prod"):
        vs = load_stack(stack, ROOT)
        pin = ENGINE_IMAGES[(vs.config.engine.name, vs.config.gpu.type)]
        args = build_args(cloudbuild_config(vs))
        for k, v in pin.build_args.items():
            assert args[k] == v or args[k].endswith(f"/{v}"), (stack, k)


def test_prompt_cache_is_built_and_restored_by_the_same_engine_build() -> None:
    stages = dockerfile_stages(CONTAINER / "llama.cpp" / "Dockerfile")
    froms = [f for f, _ in stages]
    assert not any("ggml-org/llama.cpp:" in f for f in froms)  # no floating upstream image
    assert "FROM engine AS prompt-cache" in froms and froms[-1] == "FROM engine"
    text = (CONTAINER / "llama.cpp" / "Dockerfile").read_text()
    pin = ENGINE_IMAGES[("llama.cpp", "nvidia-l4")]
    for k, v in pin.build_args.items():  # the Dockerfile's defaults are the L4 pin
        assert f"ARG {k}={v}" in text


def test_vllm_dockerfile_default_is_a_pin() -> None:
    text = (CONTAINER / "vllm" / "Dockerfile").read_text()
    default = re.search(r"^ARG VLLM_IMAGE=(\S+)$", text, re.MULTILINE)
    assert default and default.group(1) == ENGINE_IMAGES[("vllm", "nvidia-l4")].build_args["VLLM_IMAGE"]
    assert "MODEL_LAYOUT=directory" in text

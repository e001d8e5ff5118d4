"""Mutation-strength tests for the Ollama engine profile (``cloudrun_gpu/engines/ollama.py``; issue 23: not re-scored
since the engine profiles moved out of the sizing module).

What reaches a deployment or a user, pinned whole: every environment variable the profile renders (Ollama reads
them, ``envconfig/config.go`` at the pinned tag), the Modelfile step baked into the image, the refusal of the loading
methods the Ollama image cannot do, the names clients send, and what ``calibrate`` reads from Ollama's start-up log
(its scheduler's ``memory.*`` estimate and its runner's command line, with the runner's own llama.cpp lines winning).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudrun_gpu.engines import profile
from cloudrun_gpu.engines.base import RenderInputs
from cloudrun_gpu.engines.logs import LogFacts
from cloudrun_gpu.engines.ollama import OLLAMA, read_ollama_log
from cloudrun_gpu.limits import GIB, MIB

LOG = Path(__file__).parent / "data" / "logs" / "ollama-llama-3.2-3b-parallel4.log"


def test_the_profile_is_registered_under_its_name_with_its_image_and_methods() -> None:
    assert profile("ollama") is OLLAMA
    assert (OLLAMA.name, OLLAMA.image_repository, OLLAMA.dockerfile) == ("ollama", "ollama", "ollama/Dockerfile")
    assert OLLAMA.loading_methods == ("image", "gcs-fuse")
    assert OLLAMA.entrypoint_env == frozenset({"OLLAMA_MODEL"})


def test_every_environment_variable_ollama_is_started_with() -> None:
    args, env = OLLAMA.render(
        RenderInputs(
            model_path="llama3.2:3b", context=8192, parallel=4, kv_type="q8_0", memory_fraction=0.9, vram_bytes=24 * GIB
        )
    )
    assert args == []
    assert env == {
        "OLLAMA_HOST": "127.0.0.1:11434",  # private: the entrypoint opens PORT only once the model is loaded (D2)
        "OLLAMA_NUM_PARALLEL": "4",
        "OLLAMA_CONTEXT_LENGTH": "8192",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_FLASH_ATTENTION": "1",
        "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_MAX_LOADED_MODELS": "1",
        "OLLAMA_GPU_OVERHEAD": str(int(24 * GIB * 0.1)),  # what is left of the GPU beyond the fraction, in bytes
        "OLLAMA_MODEL": "llama3.2:3b",
    }
    # what calibrate reads back from a rendered config
    assert OLLAMA.parallel_from_config(args, env) == 4
    assert OLLAMA.memory_from_config(args, env) == {"context_length": 8192, "num_parallel": 4}
    assert OLLAMA.served_name_from_config(args, env) == "llama3.2:3b"
    assert OLLAMA.served_name_from_config([], {}) == ""


def test_clients_send_the_stores_tag_as_the_model() -> None:
    assert OLLAMA.served_model_name("/models/x", "llama3.2:3b", "meta-llama/Llama-3.2-3B", "image") == "llama3.2:3b"


@pytest.mark.parametrize(("method", "params"), [("image", "PARAMETER use_mmap false\\n"), ("gcs-fuse", "")])
def test_the_modelfile_is_written_next_to_the_baked_gguf(method: str, params: str) -> None:
    """``$$`` is Cloud Build's escape for a literal ``$``; ``use_mmap false`` only where mmap is off (R7)."""
    [step] = OLLAMA.bake_steps(method, "ctx")
    assert (step.id, step.name, step.entrypoint, step.env) == ("modelfile", "bash", None, [])  # the bash image
    assert step.args == [
        "-c",
        f"printf 'FROM ./%s\\n{params}' \"$$(cd ctx/model && ls *.gguf | head -1)\" > ctx/model/Modelfile",
    ]


@pytest.mark.parametrize("method", ["gcs-download", "internet"])
def test_the_ollama_image_cannot_download_its_model(method: str) -> None:
    err = OLLAMA.check_loading(method)
    assert err is not None
    assert (err.field, err.value, err.allowed) == ("loading.method", method, "image, gcs-fuse")
    assert err.problem == (
        "the Ollama image has no downloader (neither gcloud nor Python): it reads its model store from the image or "
        "a Cloud Storage FUSE mount"
    )
    assert err.fix == (
        "use loading.method gcs-fuse (an Ollama store: manifests/ and blobs/ under model.object_prefix) or image"
    )


def test_the_methods_ollama_can_load_are_accepted_and_streaming_is_vllms() -> None:
    assert OLLAMA.check_loading("image") is None and OLLAMA.check_loading("gcs-fuse") is None
    err = OLLAMA.check_loading("gcs-stream")
    assert err is not None and err.problem.endswith("ollama cannot load from it")


@pytest.mark.parametrize(
    ("text", "ours"),
    [
        ('source=ollama msg="offload to cuda"', True),
        ("ollama: offload to cuda", True),  # each of the three lines alone is enough
        ("OLLAMA runner: starting llama server", True),
        ('ollama level=INFO msg="x"', True),
        ("ollama, and nothing it prints", False),
        ('msg="starting llama server" offload to cuda', False),  # no word of Ollama's
    ],
)
def test_an_ollama_log_is_recognised_by_its_name_and_one_of_its_lines(text: str, ours: bool) -> None:
    assert OLLAMA.recognises_log(text) is ours


def test_the_committed_ollama_log_reads_as_its_lines_say() -> None:
    facts = OLLAMA.parse_log(LOG.read_text(encoding="utf-8"))
    assert (facts.engine, facts.ctx_size, facts.parallel, facts.n_ubatch) == ("ollama", 8192, 4, 512)
    assert facts.kv_bytes == 896 * MIB  # memory.required.kv="896.0 MiB"
    assert facts.weights_bytes == int(2.4 * GIB)  # memory.weights.total="2.4 GiB"
    assert facts.compute_bytes == 424 * MIB  # memory.graph.full="424.0 MiB"
    assert facts.ollama_graph_partial_bytes == int(570.7 * MIB)
    assert facts.notes == [
        "KV from Ollama's own estimate (memory.required.kv); the runner's llama.cpp lines are absent"
    ]


SCHEDULER = (
    'msg="offload to cuda" memory.required.kv="1.5 GiB" memory.weights.total="512.0 MiB" '
    'memory.graph.full="2.0 GiB" memory.graph.partial="3.0 GiB"\n'
    "cmd=runner --ctx-size 4096 --batch-size 256 --parallel 2\n"
    "OLLAMA_KV_CACHE_TYPE:q4_0\n"
)


def test_each_scheduler_quantity_in_gib_or_mib_and_the_runner_flags() -> None:
    f = LogFacts(engine="ollama")
    read_ollama_log(SCHEDULER, f)
    assert (f.kv_bytes, f.weights_bytes, f.compute_bytes, f.ollama_graph_partial_bytes) == (
        int(1.5 * GIB),
        512 * MIB,
        2 * GIB,
        3 * GIB,
    )
    assert (f.ctx_size, f.n_ubatch, f.parallel, f.kv_cache_dtype) == (4096, 256, 2, "q4_0")
    assert len(f.notes) == 1


@pytest.mark.parametrize("runner_line", ["llama_kv_cache: size = 1 MiB", "KV self size = 1 MiB"])
def test_the_runners_own_lines_win_and_silence_the_estimate_note(runner_line: str) -> None:
    f = LogFacts(engine="ollama", kv_bytes=7, weights_bytes=8, compute_bytes=9, n_ubatch=10)
    read_ollama_log(SCHEDULER + runner_line + "\nOLLAMA_KV_CACHE_TYPE=f16\n", f)
    assert (f.kv_bytes, f.weights_bytes, f.compute_bytes, f.n_ubatch) == (7, 8, 9, 10)
    assert f.notes == []
    assert f.kv_cache_dtype == "f16"  # the last one printed


def test_a_log_without_scheduler_lines_leaves_the_facts_alone() -> None:
    f = LogFacts(engine="ollama")
    read_ollama_log("nothing here", f)
    assert f == LogFacts(engine="ollama")

"""Each engine profile reads its own start-up log for ``calibrate`` (issue 18); calibrate only asks the registry.

The parsers moved from ``stack/calibrate.py`` into ``cloudrun_gpu.engines`` unchanged: the real log excerpts under
``tests/data/logs/`` are read by the engine their file name says, through the registry, and calibrate's advice
names the exact vLLM flag the profile renders, never vLLM's abbreviated log spelling.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from cloudrun_gpu.engines import PROFILES, profile
from cloudrun_gpu.engines.logs import LogFacts, detect_log_engine, parse_start_up_log
from cloudrun_gpu.engines.vllm import KV_CACHE_MEMORY_FLAG
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB

from stack import calibrate

from .test_engine_contract import table

LOGS = Path(__file__).parent / "data" / "logs"


def _engine_of(log: Path) -> str:
    return {"vllm": "vllm", "llamacpp": "llama.cpp", "ollama": "ollama"}[log.name.split("-")[0]]


@pytest.mark.parametrize("log", sorted(LOGS.glob("*.log")), ids=lambda p: p.name)
def test_every_log_is_read_by_its_engines_profile(log: Path) -> None:
    text = log.read_text(encoding="utf-8")
    engine = _engine_of(log)
    assert detect_log_engine(text) == engine
    facts = calibrate.parse_log(text)
    assert facts.engine == engine and facts == profile(engine).parse_log(text)
    assert facts.kv_bytes is not None or facts.kv_tokens is not None  # the parser read the pool


def test_every_built_in_profile_reads_logs() -> None:
    assert all(PROFILES[name].reads_logs for name in ("vllm", "llama.cpp", "ollama"))


def test_detection_order_ollama_before_vllm_before_the_llama_cpp_fallback() -> None:
    ollama = 'time=x level=INFO msg="starting llama server" source=ollama blocks: 3\nllama_kv_cache: size'
    assert detect_log_engine(ollama) == "ollama"  # its runner prints llama.cpp's lines (and vLLM-like words)
    assert detect_log_engine("INFO vLLM API server version 0.14.1") == "vllm"
    assert detect_log_engine("vllm ... llama_kv_cache: size = 1 MiB") == "llama.cpp"  # llama.cpp's own words win
    assert detect_log_engine("nothing anyone prints") == "llama.cpp"


def test_an_unregistered_engine_is_refused_on_the_flag() -> None:
    with pytest.raises(ConfigError) as err:
        parse_start_up_log("x", "sglang")
    assert err.value.field == "--engine" and err.value.value == "sglang" and "vllm" in err.value.allowed


def _cal(*argv: str) -> tuple[int, calibrate.Calibration]:
    parser = argparse.ArgumentParser()
    calibrate.add_arguments(parser)
    args = parser.parse_args(list(argv))
    facts = calibrate.parse_log(Path(args.log).read_text(encoding="utf-8"), args.engine)
    return calibrate.main(args), calibrate.calibrate(facts, calibrate._spec(args), args)


def test_the_kv_advice_names_the_flag_the_profile_renders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the advice was vLLM's log spelling ``--kv-cache-memory=N``, a prefix vLLM's argparse accepts only as
    an abbreviation (``allow_abbrev``); pasted into a config it would break with the next flag of that prefix."""
    log = tmp_path / "vllm.log"
    log.write_text(
        "INFO vLLM API server version 0.14.1\n"
        "INFO non-default args: {'max_model_len': 4096, 'gpu_memory_utilization': 0.9}\n"
        "INFO Free memory on device (22.0/22.03 GiB) on startup. Desired GPU memory utilization is (0.9, 19.83 GiB)\n"
        "INFO Loading model weights took 2.50 GiB\n"
        "INFO Available KV cache memory: 15.00 GiB\n"
        "INFO GPU KV cache size: 140,000 tokens\n"
        # vllm/v1/worker/gpu_worker.py at v0.14.1 (determine_available_memory's debug message), verbatim form:
        "DEBUG Replace gpu_memory_utilization config with `--kv-cache-memory=16106127360` (15.00 GiB) to fit "
        "into requested memory, or `--kv-cache-memory=17179869184` (16.00 GiB) to fully utilize gpu memory.\n",
        encoding="utf-8",
    )
    rc, cal = _cal(str(log), "--model", "llama-3.1-8b", "--quant", "awq-int4")
    assert rc == 0
    assert cal.facts.kv_cache_memory_hint == 16106127360  # read in vLLM's own spelling
    flags = {s.split("=")[0].split()[-1] for s in cal.settings if "--kv-cache-memory" in s}
    assert flags == {KV_CACHE_MEMORY_FLAG} == {"--kv-cache-memory-bytes"}
    assert KV_CACHE_MEMORY_FLAG in table(profile("vllm").flag_table or "")  # the exact name at the pinned tag
    assert f"{KV_CACHE_MEMORY_FLAG}={int(15 * GIB)}" in capsys.readouterr().out
    assert any("own advice" in s and s.endswith(f"{KV_CACHE_MEMORY_FLAG}=16106127360") for s in cal.settings)


OLDER_LLAMA_CPP_LOG = """\
llama_new_context_with_model: n_seq_max     = 3
llama_new_context_with_model: n_ctx         = 6144
llama_new_context_with_model: n_ubatch      = 256
llama_kv_cache_init:      CUDA0 KV buffer size =   768.00 MiB
llama_new_context_with_model: KV self size  =  768.00 MiB, K (q8_0):  384.00 MiB, V (q8_0):  384.00 MiB
llm_load_tensors:        CUDA0 model buffer size =  1918.35 MiB
llama_new_context_with_model:      CUDA0 compute buffer size =   300.01 MiB
"""
"""The pre-2025 llama.cpp start-up lines (``llama_new_context_with_model``/``llama_kv_cache_init``), which print the
cache as "KV self size" and the context and sequences on lines of their own."""


def _llama_cpp_facts(text: str) -> LogFacts:
    facts = profile("llama.cpp").parse_log(text)
    assert facts is not None
    return facts


def test_the_llama_cpp_profile_reads_the_older_log_format() -> None:
    facts = _llama_cpp_facts(OLDER_LLAMA_CPP_LOG)
    assert facts.kv_bytes == 768 * 1024**2
    assert facts.kv_cache_dtype == "q8_0"
    assert (facts.ctx_size, facts.parallel, facts.n_ubatch) == (6144, 3, 256)
    assert facts.weights_bytes == int(1918.35 * 1024**2)
    assert facts.compute_bytes == int(300.01 * 1024**2)


def test_a_log_with_only_the_cuda_kv_buffer_line_still_gives_the_cache_size() -> None:
    facts = _llama_cpp_facts("llama_kv_cache_init:      CUDA0 KV buffer size =   1,024.50 MiB\n")
    assert facts.kv_bytes == int(1024.5 * 1024**2)
    assert facts.kv_cache_dtype is None and facts.ctx_size is None


def test_the_newer_kv_line_wins_over_the_separate_context_lines() -> None:
    """A unified cache (one stream) holds every slot's cells: "2048 cells, 4/1 seqs" is `-c 2048 -np 4`."""
    text = (
        "llama_context: n_ctx = 9999\nllama_context: n_seq_max = 7\n"
        "llama_kv_cache: size =  112.00 MiB (  2048 cells,  28 layers,  4/1 seqs), K (f16):   56.00 MiB\n"
    )
    facts = _llama_cpp_facts(text)
    assert (facts.kv_bytes, facts.ctx_size, facts.parallel, facts.kv_cache_dtype) == (112 * 1024**2, 2048, 4, "f16")


def test_a_non_unified_kv_line_prints_the_cells_of_one_stream() -> None:
    """kv_size is per stream and a non-unified cache has a stream per sequence (src/llama-kv-cache.cpp): the
    context is cells × streams, the slots n_seq_max."""
    text = "llama_kv_cache: size =  112.00 MiB (   512 cells,  28 layers,  4/4 seqs), K (q8_0):   56.00 MiB\n"
    facts = _llama_cpp_facts(text)
    assert (facts.kv_bytes, facts.ctx_size, facts.parallel, facts.kv_cache_dtype) == (112 * 1024**2, 2048, 4, "q8_0")


def test_the_llama_cpp_profile_reads_context_and_slots_back_from_its_flags() -> None:
    llama = profile("llama.cpp")
    flags = ["-m", "/m.gguf", "-c", "8192", "-np", "4"]
    assert llama.memory_from_config(flags, {}) == {"ctx_size": 8192, "parallel": 4}
    assert llama.memory_from_config(["-m", "/m.gguf"], {}) == {"ctx_size": 0, "parallel": 0}
    assert llama.parallel_from_config(["-np", "6"], {}) == 6

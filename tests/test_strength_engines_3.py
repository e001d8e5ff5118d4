"""Strength tests for ``cloudrun_gpu.engines.base`` (issue 23: the module had no mutation row; a fresh sample,
seed 51, left these survivors).

- The refusal of a loading method an engine cannot read is the message a user fixes their stack from: the
  Run:ai-streamer one for ``gcs-stream`` (only vLLM streams), the generic one for anything else. Both are checked
  whole, as rendered.
- ``RenderInputs`` and ``ClientRequest`` are frozen: every profile renders from the one plan, and none may change
  it for the next; the request a client is told to send is the one the tests compared with the served name.
- A profile that leaves out ``render`` or one of the read-back methods cannot be made (``abstractmethod``).
- The profile's class-level settings carry real annotations (``str | None``, not ``str >> None``): an engine
  author's tools (``typing.get_type_hints``, the provider's analyzer) read them.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import ClassVar

import pytest
from cloudrun_gpu.engines import profile
from cloudrun_gpu.engines.base import ClientRequest, EngineProfile, RenderInputs, flag_value
from cloudrun_gpu.images import EngineImage
from cloudrun_gpu.sizing.engines import Engine


class OnlyImage(EngineProfile):
    """An engine that reads its model from the image alone (never registered)."""

    name: ClassVar[str] = "only-image"
    image_repository: ClassVar[str] = "only-image"
    dockerfile: ClassVar[str] = "llama.cpp/Dockerfile"
    loading_methods: ClassVar[tuple[str, ...]] = ("image",)
    sizing_engine: ClassVar[str] = "llama.cpp"

    def render(self, r: RenderInputs) -> tuple[list[str], dict[str, str]]:
        return ["--model", r.model_path], {}

    def served_name_from_config(self, args: list[str], env: dict[str, str]) -> str:
        return flag_value(args, "--model") or ""

    def parallel_from_config(self, args: list[str], env: dict[str, str]) -> int:
        return 1

    def memory_from_config(self, args: list[str], env: dict[str, str]) -> dict[str, float]:
        return {}


def test_llama_cpp_refuses_gcs_stream_naming_the_streamer_and_vllm() -> None:
    err = profile("llama.cpp").check_loading("gcs-stream")
    assert err is not None
    assert str(err) == (
        "loading.method = 'gcs-stream': streams safetensors with vLLM's Run:ai Model Streamer; llama.cpp cannot "
        "load from it\n"
        "  allowed: image, gcs-fuse, gcs-download, internet\n"
        "  fix: use engine.name vllm, or one of image, gcs-fuse, gcs-download, internet"
    )


def test_an_engine_refuses_another_method_with_the_generic_message() -> None:
    err = OnlyImage().check_loading("gcs-fuse")
    assert err is not None
    assert str(err) == (
        "loading.method = 'gcs-fuse': only-image cannot load its model this way\n"
        "  allowed: image\n"
        "  fix: use one of image"
    )
    assert OnlyImage().check_loading("image") is None
    stream = OnlyImage().check_loading("gcs-stream")
    assert stream is not None and stream.fix == "use engine.name vllm, or one of image"


def test_render_inputs_and_client_requests_are_frozen() -> None:
    r = RenderInputs("m", 4096, 2, "f16", 0.9, 24 << 30)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'parallel'"):
        r.parallel = 3  # type: ignore[misc]
    assert dataclasses.replace(r, parallel=3).parallel == 3 and r.parallel == 2
    request = profile("vllm").client_request("m")
    assert request == ClientRequest("/v1/chat/completions", "m")
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'model'"):
        request.model = "other"  # type: ignore[misc]


def test_a_profile_must_define_how_it_renders_and_reads_its_config_back() -> None:
    """An engine author who forgets one of these is stopped when the profile is made, naming the method, not by a
    ``None`` served name or concurrency at deploy time."""
    assert EngineProfile.__abstractmethods__ == frozenset(
        {"render", "served_name_from_config", "parallel_from_config", "memory_from_config"}
    )

    class NoServedName(EngineProfile):
        name: ClassVar[str] = "no-served-name"

        def render(self, r: RenderInputs) -> tuple[list[str], dict[str, str]]:
            return [], {}

        def parallel_from_config(self, args: list[str], env: dict[str, str]) -> int:
            return 1

        def memory_from_config(self, args: list[str], env: dict[str, str]) -> dict[str, float]:
            return {}

    with pytest.raises(
        TypeError, match=r"^Can.t instantiate abstract class NoServedName with abstract method served_name_from_config$"
    ):
        NoServedName()  # type: ignore[abstract]


def test_profile_class_settings_have_real_annotations() -> None:
    hints = typing.get_type_hints(EngineProfile)
    assert hints == {
        "name": ClassVar[str],
        "image_repository": ClassVar[str],
        "dockerfile": ClassVar[str],
        "upstream_cache": ClassVar[str | None],
        "loading_methods": ClassVar[tuple[str, ...]],
        "flag_table": ClassVar[str | None],
        "env_table": ClassVar[str | None],
        "entrypoint_env": ClassVar[frozenset[str]],
        "parallel_cap_note": ClassVar[str],
        "sizing_engine": ClassVar[str],
        "pins": ClassVar[dict[str, EngineImage]],
        "model_is_directory": ClassVar[bool],
        "log_detect_order": ClassVar[int],
    }
    assert typing.get_type_hints(RenderInputs)["served_model_name"] == str | None
    assert typing.get_type_hints(type(profile("vllm")))["flag_table"] == ClassVar[str | None]
    assert isinstance(profile("vllm").sizing, Engine)


class Greedy(OnlyImage):
    """Claims every log, at the default ``log_detect_order``."""

    name: ClassVar[str] = "greedy"

    def recognises_log(self, text: str) -> bool:
        return True


def test_an_added_engine_asks_after_ollama_and_vllm_and_before_the_llama_cpp_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default ``log_detect_order`` (50) sits between vLLM's 20 and llama.cpp's 100, the catch-all: an added
    engine's parser gets a log neither Ollama nor vLLM claims, and is never asked before them."""
    from cloudrun_gpu.engines import PROFILES
    from cloudrun_gpu.engines.logs import detect_log_engine

    assert Greedy.log_detect_order == 50
    assert detect_log_engine("llama_kv_cache: size = 1 MiB") == "llama.cpp"  # before the engine is added
    monkeypatch.setitem(PROFILES, "greedy", Greedy())
    assert detect_log_engine("llama_kv_cache: size = 1 MiB") == "greedy"
    assert detect_log_engine('time=… level=INFO msg="starting llama server" ollama') == "ollama"
    assert detect_log_engine("INFO vLLM API server version 0.10.1") == "vllm"


# --- engines/logs.py: the helpers every profile's log parser shares, and calibrate's refusals ---------------------


def test_sizes_are_read_in_every_unit_an_engine_prints() -> None:
    """vLLM's older "GB" is GiB (it divides by 2**30); llama.cpp prints MiB; units in any case; separators dropped."""
    from cloudrun_gpu.engines.logs import size_bytes

    assert [size_bytes("3", u) for u in ("GiB", "GB", "MiB", "MB", "KiB", "B")] == [
        3 * 2**30,
        3 * 2**30,
        3 * 2**20,
        3 * 2**20,
        3 * 1024,
        3,
    ]
    assert size_bytes("1,536.5", "mib") == 1536 * 2**20 + 2**19
    assert size_bytes("2", "gb") == size_bytes("2", "GIB") == 2 * 2**30
    with pytest.raises(KeyError, match="tb"):
        size_bytes("1", "TB")


def test_the_last_match_is_the_final_state_of_a_log_that_re_profiles() -> None:
    from cloudrun_gpu.engines.logs import last, parse_start_up_log

    m = last(r"size = (\d+)", "size = 1\nsize = 2\nsize = 3\n")
    assert m is not None and m.group(1) == "3"
    assert last(r"size = (\d+)", "nothing") is None
    log = (
        "INFO vLLM API server version 0.10.1\n"
        "INFO GPU KV cache size: 1,000 tokens\n"
        "INFO GPU KV cache size: 2,000 tokens\n"
        "INFO GPU KV cache size: 3,000 tokens\n"
    )
    assert parse_start_up_log(log).kv_tokens == 3000


def test_facts_start_empty_and_claim_no_vllm_mode() -> None:
    """A log that names neither engine mode leaves both flags False (a llama.cpp log is not a vLLM V0 or V1 run)."""
    from cloudrun_gpu.engines.logs import LogFacts, parse_start_up_log

    blank = dataclasses.asdict(LogFacts("e"))
    assert blank.pop("engine") == "e"
    assert blank.pop("v0") is False and blank.pop("v1") is False
    assert blank.pop("notes") == []
    assert blank == dict.fromkeys(blank)  # every other fact: None until a log prints it
    facts = parse_start_up_log("llama_kv_cache: size = 64.00 MiB (2048 cells, 30 layers, 2/2 seqs)")
    assert facts.engine == "llama.cpp" and facts.v0 is False and facts.v1 is False


def test_calibrate_refuses_an_engine_without_a_log_parser_naming_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudrun_gpu.engines import PROFILES
    from cloudrun_gpu.engines.logs import parse_start_up_log
    from cloudrun_gpu.errors import ConfigError

    monkeypatch.setitem(PROFILES, "only-image", OnlyImage())
    with pytest.raises(ConfigError) as err:
        parse_start_up_log("anything", "only-image")
    assert str(err.value) == (
        "--engine = 'only-image': engine only-image has no start-up log parser (its profile defines no parse_log)\n"
        "  allowed: llama.cpp, ollama, vllm\n"  # the registered engines that read logs, in registration order
        "  fix: pass the log of an engine calibrate reads, or add parse_log to the only-image profile"
    )


def test_registering_an_engine_without_a_sizing_record_is_refused_by_name() -> None:
    """An added engine must size by some record in ``sizing.engines.ENGINES``; the author is told which is missing
    and nothing is registered."""
    from cloudrun_gpu.engines import PROFILES, register

    class NoRecord(OnlyImage):
        name: ClassVar[str] = "no-record"
        sizing_engine: ClassVar[str] = "tgi"

    before = dict(PROFILES)
    with pytest.raises(ValueError) as err:
        register(NoRecord())
    assert str(err.value) == "engine 'no-record': no sizing record 'tgi' in sizing.engines.ENGINES"
    assert dict(PROFILES) == before

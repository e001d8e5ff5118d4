"""Mutation-strength tests for sizing/settings.py: every range at its edges, the source grammar and its errors,
the one-model-source rule, the image reference check, and reading the spec from a path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.sizing.settings import (
    EngineName,
    EngineSettings,
    LoadingMethod,
    LoadingSettings,
    ModelSettings,
    ModelSource,
    parse_source,
    source_problems,
)

SHA = "0123456789abcdef0123456789abcdef01234567"


def make(cls: Any, **kw: Any) -> Any:
    return cls(**kw)


def refused(cls: Any, **kw: Any) -> ConfigError:
    with pytest.raises(ConfigErrors) as err:
        cls(**kw)
    assert len(err.value.errors) == 1, err.value.render()
    return err.value.errors[0]


@pytest.mark.parametrize(
    ("field", "low", "high", "lo_word", "hi_word"),
    [
        ("context_length", 256, 1_048_576, "≥ 256", "≤ 1048576"),
        ("parallel", 1, 1000, "≥ 1", "≤ 1000"),
        ("max_parallel", 1, 1000, "≥ 1", "≤ 1000"),
        ("ideal_batch_size", 1, 1000, "≥ 1", "≤ 1000"),
        ("max_num_batched_tokens", 256, 131072, "≥ 256", "≤ 131072"),
    ],
)
def test_engine_int_ranges(field: str, low: int, high: int, lo_word: str, hi_word: str) -> None:
    assert getattr(make(EngineSettings, **{field: low}), field) == low
    assert getattr(make(EngineSettings, **{field: high}), field) == high
    below, above = refused(EngineSettings, **{field: low - 1}), refused(EngineSettings, **{field: high + 1})
    assert (below.field, below.value, below.problem, below.allowed) == (
        f"EngineSettings.{field}",
        low - 1,
        "is out of range",
        lo_word,
    )
    assert (above.value, above.allowed) == (high + 1, hi_word)


def test_memory_fraction_range() -> None:
    assert EngineSettings(memory_fraction=0.98).memory_fraction == 0.98
    assert EngineSettings(memory_fraction=0.5001).memory_fraction == 0.5001
    assert refused(EngineSettings, memory_fraction=0.5).allowed == "> 0.5"
    assert refused(EngineSettings, memory_fraction=0.981).allowed == "≤ 0.98"


def test_throughput_range() -> None:
    assert LoadingSettings(throughput_gib_per_s=0.001).throughput_gib_per_s == 0.001
    assert LoadingSettings(throughput_gib_per_s=100).throughput_gib_per_s == 100
    assert refused(LoadingSettings, throughput_gib_per_s=0.0009).allowed == "≥ 0.001"
    assert refused(LoadingSettings, throughput_gib_per_s=100.01).allowed == "≤ 100.0"


def test_defaults() -> None:
    e = EngineSettings()
    assert (e.name, e.context_length, e.parallel, e.memory_fraction, e.prompt_cache, e.image) == (
        EngineName.LLAMA_CPP,
        None,
        None,
        None,
        False,
        None,
    )
    assert LoadingSettings().method == LoadingMethod.IMAGE
    m = ModelSettings(name="llama-3.1-8b")
    assert (m.file, m.object_prefix, m.files, m.source, m.model_source()) == ("model.gguf", "models", [], None, None)
    assert [x.value for x in EngineName] == ["llama.cpp", "ollama", "vllm"]
    assert [x.value for x in LoadingMethod] == ["image", "gcs-fuse", "gcs-download", "gcs-stream", "internet"]


def test_prompt_cache_only_for_llama_cpp() -> None:
    assert EngineSettings(prompt_cache=True).prompt_cache is True
    e = refused(EngineSettings, name="vllm", prompt_cache=True)
    assert (e.field, e.value, e.problem, e.fix) == (
        "EngineSettings.prompt_cache",
        True,
        "is implemented for llama.cpp's slot cache only",
        "set name: llama.cpp or prompt_cache: false",
    )
    assert EngineSettings(name=EngineName.VLLM, prompt_cache=False).name == "vllm"


def test_image_reference() -> None:
    ok = "europe-west1-docker.pkg.dev/p/r/llama-cpp:b5000@sha256:" + "a" * 64
    assert EngineSettings(image=ok).image == ok
    long_ok = "a" * 1024
    assert EngineSettings(image=long_ok).image == long_ok
    e = refused(EngineSettings, image="a" * 1025)
    assert (e.field, e.problem) == ("EngineSettings.image", "is not a container image reference")
    assert e.fix.startswith("write [registry/]path[:tag][@sha256:digest], e.g. europe-west1-docker.pkg.dev/")
    assert refused(EngineSettings, image="Bad Image").value == "Bad Image"


def test_parse_source() -> None:
    assert parse_source(f"hf://o/r@{SHA}") == ModelSource("hf", "o/r", SHA)
    assert parse_source("hf://o/r") == ModelSource("hf", "o/r", None)
    assert parse_source("hf://o/r@") == ModelSource("hf", "o/r", None)
    assert parse_source("hf://bad repo@x") == ModelSource("hf", "bad repo", "x")
    assert parse_source("gs://b/f//") == ModelSource("gs", "gs://b/f")
    assert parse_source("./m.gguf") == ModelSource("local", "./m.gguf")
    assert ModelSource("local", "x").revision is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelSource("local", "x").kind = "hf"  # type: ignore[misc]


def test_sources_accepted() -> None:
    for src in (f"hf://owner/repo@{SHA}", "gs://bucket/folder", "gs://b.c_d-e", "models/m.gguf"):
        assert source_problems(src, []) == [], src
    assert source_problems(None, []) == []
    assert source_problems("", []) == []
    assert ModelSettings(name="llama-3.1-8b", source=f"hf://o/r@{SHA}").model_source() == ModelSource("hf", "o/r", SHA)


def only(errors: list[ConfigError]) -> ConfigError:
    assert len(errors) == 1, [e.render() for e in errors]
    return errors[0]


def test_hf_source_errors() -> None:
    bad = only(source_problems("hf://no-slash", []))
    assert (bad.field, bad.problem, bad.fix, bad.allowed) == (
        "source",
        "is not a Hugging Face repository reference",
        "write hf://<owner>/<repo>@<40-hex commit>",
        "hf://owner/repo@<commit sha>",
    )
    for rev in ("", "@main", "@" + SHA.upper(), "@" + SHA[:-1]):
        e = only(source_problems(f"hf://o/r{rev}", []))
        assert e.problem.startswith("must pin the repository to a full commit id")
        assert e.fix.endswith(f"e.g. hf://o/r@{'0' * 40}")
        assert e.allowed == "hf://owner/repo@<40 lowercase hex digits>"


def test_gs_and_other_source_errors() -> None:
    for src in ("gs://B", "gs://bucket/f*", "gs://bucket/a?", "gs://bucket/[x]", "gs://bucket/#"):
        e = only(source_problems(src, []))
        assert (e.field, e.value, e.problem) == ("source", src, "is not a Cloud Storage folder")
        assert e.fix == "write gs://<bucket>/<folder> (no wildcards: choose files with model.files)"
    e = only(source_problems("s3://b/k", []))
    assert (e.problem, e.allowed) == ("is not a supported source", "hf://, gs://, a local path")
    for src in ("a$b", "a`b", "a\nb", "   "):
        e = only(source_problems(src, []))
        assert (e.problem, e.fix) == ("has characters that are not allowed", "remove them")
    assert only(source_problems("weights.bin", [])).field == "source"  # pickle refused on the location


def test_file_pattern_errors() -> None:
    e = only(source_problems(None, ["*.gguf"]))
    assert (e.field, e.value, e.problem, e.fix) == (
        "files",
        ["*.gguf"],
        "chooses files but no source is set",
        "set source, or remove files",
    )
    assert source_problems("gs://bucket/f", ["*.gguf", "tokenizer*", "sub/x.json"]) == []
    for i_bad in (" ", "a$b", "/abs", "a/../b", "a\\..\\b"):
        errs = source_problems("gs://bucket/f", ["ok.gguf", i_bad])
        e = only(errs)
        assert (e.field, e.value, e.problem) == ("files.1", i_bad, "is not a usable file pattern")
        assert e.fix.startswith("write a glob relative to the source, e.g. '*Q4_K_M.gguf'")
    assert only(source_problems("gs://bucket/f", ["a.gguf", "x.pt"])).field == "files.1"


def test_exactly_one_model_source() -> None:
    none = refused(ModelSettings)
    assert (none.field, none.value, none.problem, none.fix, none.allowed) == (
        "ModelSettings.name",
        None,
        "exactly one of name, gguf, hf_config must be set",
        "keep one model source",
        "name | gguf | hf_config",
    )
    two = refused(ModelSettings, gguf="a.gguf", hf_config="c.json")
    assert (two.field, two.value) == ("ModelSettings.hf_config", {"gguf": "a.gguf", "hf_config": "c.json"})
    assert ModelSettings(hf_config="config.json").hf_config == "config.json"


def test_file_and_prefix_errors() -> None:
    for f in ("", "  ", "a\x00b"):
        e = refused(ModelSettings, name="x", file=f)
        assert (e.field, e.problem, e.fix) == (
            "ModelSettings.file",
            "is empty",
            "name the file or directory the engine loads",
        )
    assert refused(ModelSettings, name="x", file="m.pt").field == "ModelSettings.file"
    assert ModelSettings(name="x", object_prefix="/a/b/").object_prefix == "/a/b/"
    for p in ("/", "a//b", "a*", "a?", "a[", "a]", "a#", "a\nb"):
        e = refused(ModelSettings, name="x", object_prefix=p)
        assert (e.field, e.problem) == ("ModelSettings.object_prefix", "is not a usable Cloud Storage folder")
        assert e.fix == "use a folder path such as 'models/llama-3.2-3b' (no wildcards, no empty segments)"


HF = {
    "num_hidden_layers": 4,
    "hidden_size": 256,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 4096,
}


def test_spec_from_catalogue_and_relative_paths(tmp_path: Path) -> None:
    assert ModelSettings(name="llama-3.1-8b").spec().name == "llama-3.1-8b"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(HF))
    rel = ModelSettings(hf_config="m/config.json").spec(tmp_path)
    assert (rel.n_layers, rel.hidden_size) == (4, 256)
    absolute = ModelSettings(hf_config=str(tmp_path / "m" / "config.json")).spec(Path("/nonexistent"))
    assert absolute.n_layers == 4
    with pytest.raises(ConfigError) as err:
        ModelSettings(hf_config="m/config.json").spec(None)  # relative to the working directory: not there
    assert err.value.field == "model.hf_config"
    with pytest.raises(ConfigError) as err:
        ModelSettings(gguf="m/config.json").spec(tmp_path)  # a GGUF field is read as GGUF
    assert err.value.field == "model.gguf"
    with pytest.raises(ConfigError) as err:
        ModelSettings(gguf="missing.gguf").spec(tmp_path)
    assert (err.value.field, str(tmp_path) in str(err.value.value)) == ("model.gguf", True)

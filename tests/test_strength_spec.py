"""Mutation-strength tests for sizing/spec.py: every geometry bound at its edges, the exact refusal text,
the per-layer helpers and the sliding-window pattern."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import spec as S
from cloudrun_gpu.sizing.spec import ModelSpec, windows_from_pattern


def base(**kw: Any) -> ModelSpec:
    fields: dict[str, Any] = {
        "name": "m",
        "architecture": "llama",
        "n_layers": 4,
        "hidden_size": 64,
        "n_heads": 8,
        "kv_heads": (2, 2, 2, 2),
        "head_dim_k": 16,
        "head_dim_v": 8,
        "vocab_size": 100,
        "max_context": 4096,
        "n_params": 1000,
        "layer_windows": (None, 512, None, 512),
    }
    fields.update(kw)
    return ModelSpec(**fields)


def test_bounds_constants() -> None:
    assert (S.MAX_LAYERS, S.MAX_HEADS, S.MAX_DIM) == (4096, 65_536, 1_048_576)
    assert (S.MAX_VOCAB, S.MAX_CONTEXT, S.MAX_PARAMS, S.MAX_WEIGHTS_BYTES) == (2**24, 2**30, 10**15, 2**52)


def test_defaults() -> None:
    m = base()
    assert (m.mla_latent_dim, m.weights_bytes, m.weights_quant, m.tied_embeddings, m.source, m.notes) == (
        0,
        None,
        None,
        False,
        "",
        (),
    )
    assert (m.head_dims_k, m.head_dims_v, m.kv_shared_layers) == ((), (), 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.n_layers = 5  # type: ignore[misc]
    typing.get_type_hints(ModelSpec)


INT_FIELDS = [
    # field, lowest accepted, highest accepted, meaning
    ("hidden_size", 1, S.MAX_DIM, "the embedding width of the model"),
    ("n_heads", 1, S.MAX_HEADS, "attention needs at least one query head"),
    ("head_dim_k", 1, S.MAX_DIM, "elements per K head"),
    ("head_dim_v", 1, S.MAX_DIM, "elements per V head"),
    ("vocab_size", 0, S.MAX_VOCAB, "0 when unknown"),
    ("max_context", 0, S.MAX_CONTEXT, "0 when unknown"),
    ("n_params", 1, S.MAX_PARAMS, "a model has parameters"),
    ("weights_bytes", 1, S.MAX_WEIGHTS_BYTES, "None to derive from parameters"),
]


@pytest.mark.parametrize(("name", "low", "high", "meaning"), INT_FIELDS)
def test_int_field_edges_and_text(name: str, low: int, high: int, meaning: str) -> None:
    assert getattr(base(**{name: low}), name) == low
    assert getattr(base(**{name: high}), name) == high
    for bad in (low - 1, high + 1):
        with pytest.raises(ConfigError) as err:
            base(**{name: bad})
        e = err.value
        assert (e.field, e.value, e.problem) == (name, bad, f"is out of range ({meaning})")
        assert e.allowed == f"{low}..{high} ({meaning})"
        assert e.fix == (
            f"build the ModelSpec with {name} = a whole number in {low}..{high}, "
            "as the model's config.json or GGUF header gives it"
        )


@pytest.mark.parametrize("bad", [True, 2.0, "2"])
def test_int_field_type_refused(bad: Any) -> None:
    with pytest.raises(ConfigError) as err:
        base(n_params=bad)
    assert err.value.problem == f"must be a whole number, not {type(bad).__name__}"
    assert err.value.allowed == f"1..{S.MAX_PARAMS} (a model has parameters)"


def test_n_layers_edges() -> None:
    assert base(n_layers=1, kv_heads=(1,), layer_windows=(None,)).n_layers == 1
    with pytest.raises(ConfigError, match="a model has at least one layer"):
        base(n_layers=0, kv_heads=(), layer_windows=())
    with pytest.raises(ConfigError) as err:
        base(n_layers=S.MAX_LAYERS + 1)
    assert err.value.field == "n_layers"


def test_mla_allows_zero_head_dims_and_bounds_the_latent() -> None:
    m = base(mla_latent_dim=576, head_dim_k=0, head_dim_v=0)
    assert m.is_mla and m.kv_elements_per_token(0) == (576, 0)
    assert not base().is_mla
    assert base(mla_latent_dim=1, head_dim_k=0, head_dim_v=0).is_mla  # the smallest latent is still MLA
    for bad in (-1, S.MAX_DIM + 1):
        with pytest.raises(ConfigError) as err:
            base(mla_latent_dim=bad)
        assert err.value.problem == "is out of range (0 unless the model uses MLA)"
    assert base(mla_latent_dim=S.MAX_DIM).mla_latent_dim == S.MAX_DIM
    with pytest.raises(ConfigError) as err:
        base(head_dim_k=0)
    assert err.value.allowed == f"1..{S.MAX_DIM} (elements per K head)"


def test_kv_heads_per_layer() -> None:
    assert base(kv_heads=(0, 0, S.MAX_HEADS, 1)).kv_heads[2] == S.MAX_HEADS
    with pytest.raises(ConfigError) as err:
        base(kv_heads=(2, 2, 2, -1))
    assert (err.value.field, err.value.value) == ("kv_heads", -1)
    with pytest.raises(ConfigError) as err:
        base(kv_heads=(2, 2, 2, S.MAX_HEADS + 1))
    assert err.value.allowed == f"0..{S.MAX_HEADS} (KV heads per layer, 0 for a layer without its own cache)"
    with pytest.raises(ConfigError) as err:
        base(kv_heads=(2, 2, 2))
    e = err.value
    assert (e.field, e.value, e.problem, e.allowed) == (
        "kv_heads",
        "<3 entries>",
        "has 3 entries but the model has n_layers = 4",
        "a tuple of 4 entries",
    )
    with pytest.raises(ConfigError) as err:
        base(kv_heads=[2, 2, 2, 2])
    assert (err.value.problem, err.value.allowed) == (
        "must be a tuple with one entry per layer",
        "a tuple of 4 entries",
    )


def test_layer_windows() -> None:
    assert base(layer_windows=(1, S.MAX_CONTEXT, None, None)).n_full_layers == 2
    for bad in (0, S.MAX_CONTEXT + 1):
        with pytest.raises(ConfigError) as err:
            base(layer_windows=(bad, None, None, None))
        assert err.value.problem == "is out of range (a sliding window in tokens, or None for full attention)"
    with pytest.raises(ConfigError, match="has 5 entries"):
        base(layer_windows=(None,) * 5)


def test_strings_and_flags() -> None:
    for name in ("name", "architecture", "source", "weights_quant"):
        with pytest.raises(ConfigError) as err:
            base(**{name: 3})
        e = err.value
        assert (e.field, e.problem, e.allowed) == (name, "must be a string, not int", "a str")
        assert e.fix == f"build the ModelSpec with {name} = a str, as the model's config.json or GGUF header gives it"
    assert base(weights_quant="Q4_K_M").weights_quant == "Q4_K_M"
    with pytest.raises(ConfigError) as err:
        base(tied_embeddings=1)
    assert (err.value.problem, err.value.allowed) == ("must be True or False", "True or False")
    assert base(tied_embeddings=True).tied_embeddings is True
    for bad in (["a"], ("a", 1)):
        with pytest.raises(ConfigError) as err:
            base(notes=bad)
        assert (err.value.problem, err.value.allowed) == ("must be a tuple of strings", "a tuple of str")
    assert base(notes=("a", "b")).notes == ("a", "b")


def test_per_layer_head_dims() -> None:
    m = base(head_dims_k=(16, 32, 16, 32), head_dims_v=(8, 8, 4, 4))
    assert [m.head_dim_k_at(i) for i in range(4)] == [16, 32, 16, 32]
    assert [m.head_dim_v_at(i) for i in range(4)] == [8, 8, 4, 4]
    assert [m.kv_elements_per_token(i) for i in range(4)] == [(32, 16), (64, 16), (32, 8), (64, 8)]
    plain = base()
    assert (plain.head_dim_k_at(3), plain.head_dim_v_at(3)) == (16, 8)
    with pytest.raises(ConfigError) as err:
        base(head_dims_k=(16, 0, 16, 16))
    assert (err.value.field, err.value.problem) == ("head_dims_k", "is out of range (elements per head on that layer)")
    with pytest.raises(ConfigError) as err:
        base(head_dims_v=(8, 8, 8, S.MAX_DIM + 1))
    assert err.value.field == "head_dims_v"
    with pytest.raises(ConfigError, match="has 3 entries"):
        base(head_dims_v=(8, 8, 8))
    mla = base(mla_latent_dim=4, head_dim_k=0, head_dim_v=0, head_dims_k=(0, 0, 0, 0))
    assert mla.head_dims_k == (0, 0, 0, 0)


def test_kv_shared_layers() -> None:
    m = base(kv_shared_layers=3)
    assert (m.n_kv_layers, m.owns_kv(0), m.owns_kv(1)) == (1, True, False)
    assert m.kv_elements_per_token(1) == (0, 0)
    assert base().kv_elements_per_token(3) == (32, 16)
    two = base(kv_shared_layers=2)
    assert [two.owns_kv(i) for i in range(4)] == [True, True, False, False]
    for bad in (-1, 4):
        with pytest.raises(ConfigError) as err:
            base(kv_shared_layers=bad)
        assert err.value.allowed == (
            "0..3 (trailing layers that reuse an earlier layer's KV; at least one layer must own a cache)"
        )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((6, 512, 3), (512, 512, None, 512, 512, None)),
        ((6, 512, 3, True), (None, 512, 512, None, 512, 512)),
        ((4, 512, 2), (512, None, 512, None)),
        ((4, 512, 2, True), (None, 512, None, 512)),
        ((3, 512, 1), (None, None, None)),
        ((3, 512, 0), (None, None, None)),
        ((3, None, 2), (None, None, None)),
        ((3, 0, 2), (None, None, None)),
    ],
)
def test_windows_from_pattern(args: tuple[Any, ...], expected: tuple[int | None, ...]) -> None:
    assert windows_from_pattern(*args) == expected

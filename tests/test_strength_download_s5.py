"""Mutation-strength tests (issue 23, session 5, blind seed 101) for ``container/download_gcs.py``: which objects of
a model are fetched whole and which in ranged slices, seen as the HTTP requests reaching the real Cloud Storage
emulator (gcp-storage-emulator, PyPI), not as calls inside the library.

A large object fetched whole *and* again in slices still arrives byte for byte, and so does a tokenizer sliced into
ranged reads; only the requests show the doubled transfer or the needless slicing.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from .test_container import BUCKET, CONTAINER, SLICED_ABOVE, SMALL_SLICE, client, upload
from .test_container import gcs as gcs

pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using a Python version:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Please install grpcio-status:ImportWarning"),
]

sys.path.insert(0, str(CONTAINER))
import download_gcs  # noqa: E402

MediaGet = tuple[str, str | None]
"""One download request: the object's name, and its ``Range`` header (None: the whole object)."""


def recording_client(url: str) -> tuple[Any, list[MediaGet]]:
    """A storage client whose HTTP session logs every media GET (``alt=media``: the object's bytes) it sends. With
    ``worker_type="thread"`` the transfer manager's workers share this client (processes would build their own)."""
    c = client(url)
    session = c._http
    send = session.request
    gets: list[MediaGet] = []

    def request(*args: Any, **kw: Any) -> Any:
        method, target = kw.get("method") or args[0], kw.get("url") or args[1]
        parts = urlsplit(target)
        if method == "GET" and "alt=media" in parts.query:
            headers = kw.get("headers") or {}
            name = unquote(parts.path.split(f"/b/{BUCKET}/o/", 1)[1])
            gets.append((name, headers.get("range") or headers.get("Range")))
        return send(*args, **kw)

    session.request = request
    return c, gets


def test_a_large_object_is_fetched_only_in_ranged_slices_and_a_small_one_once_whole(gcs: str, tmp_path: Path) -> None:
    """Each byte crosses the network once: the large object in ``ceil(size / chunk)`` ranged reads and never as a
    whole GET beside them, the small ones in one plain GET each."""
    big = os.urandom(SLICED_ABOVE + 1000)
    tree = {"config.json": b'{"a": 1}', "model.safetensors": big}
    upload(gcs, "once/m", tree)
    c, gets = recording_client(gcs)
    kw: dict[str, Any] = {"sliced_above": SLICED_ABOVE, "chunk_size": SMALL_SLICE, "worker_type": "thread"}
    download_gcs.download(f"gs://{BUCKET}/once/m", tmp_path, client=c, **kw)
    assert (tmp_path / "model.safetensors").read_bytes() == big
    slices = [f"bytes={i}-{min(i + SMALL_SLICE, len(big)) - 1}" for i in range(0, len(big), SMALL_SLICE)]
    assert len(slices) == math.ceil(len(big) / SMALL_SLICE)
    assert sorted(r or "" for n, r in gets if n == "once/m/model.safetensors") == sorted(slices)
    assert [(n, r) for n, r in gets if n == "once/m/config.json"] == [("once/m/config.json", None)]


def test_by_default_a_tokenizer_sized_file_is_fetched_whole(gcs: str, tmp_path: Path) -> None:
    """Without ``DOWNLOAD_SLICED_ABOVE`` (the vLLM image sets none) only objects above 256 MiB, weight shards, are
    sliced: a model's ``tokenizer.json`` of a few MiB takes one GET, not a fan-out of ranged reads (a threshold of
    a few hundred KiB would slice it)."""
    tokenizer = os.urandom(8 * 1024 * 1024)
    upload(gcs, "default/m", {"tokenizer.json": tokenizer})
    c, gets = recording_client(gcs)
    download_gcs.download(f"gs://{BUCKET}/default/m", tmp_path, client=c, worker_type="thread")
    assert (tmp_path / "tokenizer.json").read_bytes() == tokenizer
    assert gets == [("default/m/tokenizer.json", None)]


def test_by_default_an_object_of_256_mib_is_fetched_whole_and_one_byte_more_in_ranged_slices(
    gcs: str, tmp_path: Path
) -> None:
    """The default threshold's two sides (the docstring's "objects above 256 MiB"): a 256 MiB object takes one GET,
    a 256 MiB + 1 one (weight shards are GiBs) the parallel ranged reads, in the transfer manager's 32 MiB slices."""
    at, above = os.urandom(256 * 1024 * 1024), os.urandom(256 * 1024 * 1024 + 1)
    upload(gcs, "shard/m", {"model-00001-of-00002.safetensors": at, "model-00002-of-00002.safetensors": above})
    c, gets = recording_client(gcs)
    download_gcs.download(f"gs://{BUCKET}/shard/m", tmp_path, client=c, worker_type="thread")
    assert (tmp_path / "model-00001-of-00002.safetensors").read_bytes() == at
    assert (tmp_path / "model-00002-of-00002.safetensors").read_bytes() == above
    assert [r for n, r in gets if n.endswith("00001-of-00002.safetensors")] == [None]
    step = 32 * 1024 * 1024
    assert sorted(r or "" for n, r in gets if n.endswith("00002-of-00002.safetensors")) == sorted(
        f"bytes={i}-{min(i + step, len(above)) - 1}" for i in range(0, len(above), step)
    )


def test_an_object_of_exactly_the_threshold_is_fetched_whole(gcs: str, tmp_path: Path) -> None:
    """``DOWNLOAD_SLICED_ABOVE`` bytes is not above the threshold: one whole GET (an object that neither path took
    would be missing from the model)."""
    exact = os.urandom(SLICED_ABOVE)
    upload(gcs, "exact/m", {"weights.bin": exact})
    c, gets = recording_client(gcs)
    kw: dict[str, Any] = {"sliced_above": SLICED_ABOVE, "chunk_size": SMALL_SLICE, "worker_type": "thread"}
    download_gcs.download(f"gs://{BUCKET}/exact/m", tmp_path, client=c, **kw)
    assert (tmp_path / "weights.bin").read_bytes() == exact
    assert gets == [("exact/m/weights.bin", None)]


def test_a_threshold_below_zero_slices_every_object_and_an_empty_one_still_lands(gcs: str, tmp_path: Path) -> None:
    """``DOWNLOAD_SLICED_ABOVE=-1`` sends every object through the ranged reads, an empty one (0 > -1) too: it
    arrives as an empty file, it is not left out."""
    upload(gcs, "neg/m", {"added_tokens.json": b"", "weights.bin": b"w" * 1000})
    kw: dict[str, Any] = {"sliced_above": -1, "chunk_size": SMALL_SLICE, "worker_type": "thread"}
    files = download_gcs.download(f"gs://{BUCKET}/neg/m", tmp_path, client=client(gcs), **kw)
    assert sorted(files) == [tmp_path / "added_tokens.json", tmp_path / "weights.bin"]
    assert (tmp_path / "added_tokens.json").read_bytes() == b"" and (
        tmp_path / "weights.bin"
    ).read_bytes() == b"w" * 1000


@pytest.mark.parametrize("made", [True, False], ids=["made-by-entrypoint", "parents-missing"])
def test_the_command_line_writes_into_any_destination_folder(
    gcs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: bool
) -> None:
    """``download_gcs.py URI DEST``: DEST as ``entrypoint.sh`` leaves it (``mkdir -p "$dest"`` first), or a folder
    whose parents do not exist yet; the model lands there either way."""
    upload(gcs, "dest/m", {"config.json": b"{}"})
    dest = tmp_path / "opt" / "models" / "m"
    if made:
        dest.mkdir(parents=True)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs)
    assert download_gcs.main([f"gs://{BUCKET}/dest/m", str(dest)]) == 0
    assert (dest / "config.json").read_bytes() == b"{}"


def test_an_object_gone_after_the_listing_fails_with_cloud_storages_own_error(gcs: str, tmp_path: Path) -> None:
    """An object deleted between the listing and its download (a model re-uploaded meanwhile): Cloud Storage's 404
    surfaces as itself, a ``NotFound`` with the status and the object's URL (``raise_exception=True``), not a
    ``RuntimeError`` listing the reprs of whatever failed."""
    from google.api_core.exceptions import NotFound

    upload(gcs, "gone/m", {"config.json": b"{}", "tokenizer.json": b"{}"})
    real = client(gcs)

    class Deleting:
        def bucket(self, name: str) -> Any:
            return real.bucket(name)

        def list_blobs(self, bucket: str, prefix: str) -> list[Any]:
            listed = list(real.list_blobs(bucket, prefix=prefix))
            real.bucket(bucket).blob(f"{prefix}tokenizer.json").delete()
            return listed

    with pytest.raises(NotFound) as err:
        download_gcs.download(f"gs://{BUCKET}/gone/m", tmp_path, client=Deleting(), worker_type="thread")
    assert "/o/gone%2Fm%2Ftokenizer.json?alt=media" in str(err.value) and err.value.code == 404


def test_a_name_that_resolves_to_the_model_folder_itself_is_refused_by_the_transfer_manager(
    gcs: str, tmp_path: Path
) -> None:
    """``<prefix>m/..`` resolves to the model folder itself: inside it, so :func:`download_gcs.local_path` lets it
    pass, but the transfer manager refuses a file whose *parent* is outside the folder and answers a ``UserWarning``
    instead of downloading (google-cloud-storage 3.17.1 ``download_many_to_path``). The download stops, naming what
    was not downloaded, instead of starting the engine on a partial model. (The emulator refuses ``..`` in a name, so
    the listing is a stand-in; the bucket is the emulator's.)"""
    real = client(gcs)

    class Listed:
        name, size = "odd/m/sub/..", 5

    class Odd:
        def bucket(self, name: str) -> Any:
            return real.bucket(name)

        def list_blobs(self, bucket: str, prefix: str) -> list[Any]:
            return [Listed()]

    dest = tmp_path / "dest"
    with pytest.warns(UserWarning, match=r"will \*\*NOT\*\* be downloaded"), pytest.raises(RuntimeError) as err:
        download_gcs.download(f"gs://{BUCKET}/odd/m", dest, client=Odd(), worker_type="thread")
    assert str(err.value).startswith("download_gcs: not downloaded: ['The blob sub/.. will **NOT** be downloaded.")

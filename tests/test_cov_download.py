"""container/download_gcs.py against the real Cloud Storage emulator (gcp-storage-emulator, PyPI): the command
line as the image runs it, a model made only of large files, an object whose name escapes the model folder, and an
object replaced while the model downloads. tests/test_container.py has the entrypoint and the mixed tree."""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from .test_container import BUCKET, CONTAINER, SLICED_ABOVE, SMALL_SLICE, client, upload
from .test_container import gcs as gcs

pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using a Python version:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Please install grpcio-status:ImportWarning"),
]

sys.path.insert(0, str(CONTAINER))
import download_gcs  # noqa: E402


@pytest.mark.parametrize(
    ("uri", "split"),
    [
        ("gs://b", ("b", "")),
        ("gs://b/", ("b", "")),
        ("gs://b/*", ("b", "")),
        ("gs://b/models/m", ("b", "models/m/")),
        ("gs://b/models/m/", ("b", "models/m/")),
        ("gs://b/models/m/*", ("b", "models/m/")),
    ],
)
def test_a_uri_names_a_bucket_and_a_folder_prefix(uri: str, split: tuple[str, str]) -> None:
    """The prefix always ends with ``/``, so ``models/m`` never takes ``models/m2/…``."""
    assert download_gcs.split_uri(uri) == split


@pytest.mark.parametrize("uri", ["https://storage.googleapis.com/b/m", "/models/m", "gs:/b/m"])
def test_anything_but_a_gs_uri_is_refused_by_value(uri: str) -> None:
    with pytest.raises(ValueError) as err:
        download_gcs.split_uri(uri)
    assert str(err.value) == f"not a gs:// URI: {uri!r}"


def test_the_command_line_downloads_with_the_slicing_the_image_sets(
    gcs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python download_gcs.py URI DEST`` as entrypoint.sh runs it, with ``DOWNLOAD_SLICED_ABOVE`` and
    ``DOWNLOAD_CHUNK_SIZE`` from the environment; the default client finds the emulator through
    ``STORAGE_EMULATOR_HOST`` as it would find Cloud Storage through the service account."""
    tree = {"config.json": b'{"a": 1}', "weights/model.safetensors": os.urandom(SLICED_ABOVE + 12345)}
    upload(gcs, "cli/m", tree)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs)
    monkeypatch.setenv("DOWNLOAD_SLICED_ABOVE", str(SLICED_ABOVE))
    monkeypatch.setenv("DOWNLOAD_CHUNK_SIZE", str(SMALL_SLICE))
    monkeypatch.setattr(sys, "argv", ["download_gcs.py", f"gs://{BUCKET}/cli/m", str(tmp_path / "models")])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(CONTAINER / "download_gcs.py"), run_name="__main__")
    assert done.value.code == 0
    assert capsys.readouterr().out == f"download_gcs: 2 objects from gs://{BUCKET}/cli/m to {tmp_path / 'models'}\n"
    assert {str(p.relative_to(tmp_path / "models")): p.read_bytes() for p in (tmp_path / "models").rglob("*.*")} == tree


def sliced(gcs: str, prefix: str, tree: dict[str, bytes], dest: Path) -> list[Path]:
    """Upload ``tree`` under ``prefix`` and download it with the test slicing, in threads."""
    upload(gcs, prefix, tree)
    kw: dict[str, Any] = {"sliced_above": SLICED_ABOVE, "chunk_size": SMALL_SLICE, "worker_type": "thread"}
    return download_gcs.download(f"gs://{BUCKET}/{prefix}", dest, client=client(gcs), **kw)


def test_a_model_of_only_large_files_arrives_in_slices(gcs: str, tmp_path: Path) -> None:
    tree = {"part-1.gguf": os.urandom(SLICED_ABOVE + 1), "deep/part-2.gguf": os.urandom(2 * SLICED_ABOVE)}
    files = sliced(gcs, "big/m", tree, tmp_path)
    assert sorted(str(f.relative_to(tmp_path)) for f in files) == sorted(tree)
    assert all((tmp_path / k).read_bytes() == v for k, v in tree.items())


def test_objects_named_with_a_leading_slash_land_inside_the_model_folder(gcs: str, tmp_path: Path) -> None:
    """``<prefix>//name`` is a valid object name whose relative name is absolute. The transfer manager puts it under
    the folder (``transfer_manager._resolve_path``); the sliced path used to write it at the absolute path itself,
    outside the folder, and the size check looked there too (a FileNotFoundError for a small one)."""
    outside = tmp_path / "outside"
    small, large = f"{outside}/small.bin", f"{outside}/large.bin"
    tree = {small: b"fine", large: os.urandom(SLICED_ABOVE + 1)}
    dest = tmp_path / "dest"
    files = sliced(gcs, "lead/m", tree, dest)
    inside = [dest / name.lstrip("/") for name in tree]
    assert sorted(files) == sorted(inside)
    assert [p.read_bytes() for p in inside] == list(tree.values())
    assert not outside.exists(), "nothing written outside the model folder"


@pytest.mark.parametrize("name", ["../escape.bin", "a/../../escape.bin", "/../escape.bin"])
def test_a_name_that_climbs_out_of_the_model_folder_stops_the_download_before_any_byte(
    name: str, tmp_path: Path
) -> None:
    """Cloud Storage accepts ``..`` in object names (the emulator does not, so this is the rule itself): such a name
    is refused before anything is written, for sliced objects too (the transfer manager guards only its own
    small-file path)."""
    with pytest.raises(RuntimeError) as err:
        download_gcs.local_path(tmp_path / "dest", name)
    assert str(err.value) == (
        f"download_gcs: object {name!r} would land outside {tmp_path / 'dest'}: not downloading this model"
    )
    assert download_gcs.local_path(tmp_path / "dest", "a/../b.bin") == tmp_path / "dest" / "a/../b.bin"


def test_an_object_replaced_by_a_shorter_one_during_the_download_fails_it(gcs: str, tmp_path: Path) -> None:
    """The listing says how long each object is; an object overwritten after the listing (a new model uploaded over
    the old one) arrives shorter, and the download refuses it instead of starting on a mixed tree."""
    upload(gcs, "race/m", {"weights.bin": os.urandom(5000)})
    real = client(gcs)

    class Racing:
        def bucket(self, name: str) -> Any:
            return real.bucket(name)

        def list_blobs(self, bucket: str, prefix: str) -> list[Any]:
            listed = list(real.list_blobs(bucket, prefix=prefix))
            real.bucket(bucket).blob(f"{prefix}weights.bin").upload_from_string(b"new, shorter")
            return listed

    dest = tmp_path / "dest"
    with pytest.raises(RuntimeError) as err:
        download_gcs.download(f"gs://{BUCKET}/race/m", dest, client=Racing(), worker_type="thread")
    assert str(err.value) == f"download_gcs: {dest / 'weights.bin'} has 12 bytes, object has 5000"


def test_an_empty_object_is_a_file_of_its_own_size(gcs: str, tmp_path: Path) -> None:
    """Model trees carry empty files (an empty ``added_tokens.json``, a marker): zero bytes is their whole size, not
    a short download."""
    tree = {"added_tokens.json": b"", "weights.bin": os.urandom(SLICED_ABOVE + 1)}
    files = sliced(gcs, "empty/m", tree, tmp_path)
    assert sorted(files) == sorted(tmp_path / name for name in tree)
    assert (tmp_path / "added_tokens.json").read_bytes() == b""


def test_slices_default_to_the_transfer_managers_own_chunk_size() -> None:
    """``CHUNK_SIZE`` is documented as the transfer manager's default: read it from the installed library."""
    import inspect

    from google.cloud.storage import transfer_manager

    default = inspect.signature(transfer_manager.download_chunks_concurrently).parameters["chunk_size"].default
    assert download_gcs.CHUNK_SIZE == default == 32 * 1024 * 1024

"""Parallel download of a model tree from Cloud Storage (the seed's transfer-manager method, L2).

Used by images that ship Python but not the gcloud CLI (vLLM). Every object under
``gs://bucket/<prefix>/`` lands at ``<dest>/<name relative to the prefix>``: the tree arrives byte for
byte, nested folders included. Small objects are fetched by parallel workers; objects larger than
``sliced_above`` in parallel ranged slices (each slice a ranged GET, the whole file checked against the
object's CRC32C).

``transfer_manager.download_many_to_path`` requests ``blob_name_prefix + blob_name`` for each name
(google-cloud-storage ``transfer_manager.py``: ``full_blob_name = blob_name_prefix + blob_name``), so the
names passed here are relative to the prefix — passing full names *and* the prefix asked for the prefix
twice and got 404 (issue 10, item 9).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

SLICED_ABOVE = 256 * 1024 * 1024
"""Objects above this size are downloaded in parallel slices."""
CHUNK_SIZE = 32 * 1024 * 1024
"""Slice size (the transfer manager's default)."""
WORKERS = 16


def split_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b/*`` or ``gs://bucket/a/b/`` → (``bucket``, ``a/b/``); the prefix ends with ``/``
    (or is empty) so ``models/m`` never matches ``models/m2/...``."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    prefix = prefix.removesuffix("*").strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def local_path(dest: Path, name: str) -> Path:
    """Where the object named ``name`` (relative to the prefix) lands under ``dest``: the transfer manager's own rule
    (google-cloud-storage ``transfer_manager._resolve_path``: a leading ``/`` is dropped, ``dest / name``), used for
    the sliced downloads and the size check too, and never outside ``dest``. Object names may hold ``//`` and
    ``..``; before, a sliced object named ``<prefix>//etc/x`` was written to ``/etc/x`` and a small one's size was
    checked at the wrong path (tests/test_cov_download.py)."""
    rel = Path(name)
    path = dest / rel.relative_to(rel.anchor)
    if not path.resolve().is_relative_to(dest.resolve()):
        raise RuntimeError(f"download_gcs: object {name!r} would land outside {dest}: not downloading this model")
    return path


def download(
    uri: str,
    dest: str | Path,
    *,
    client: Any = None,
    sliced_above: int = SLICED_ABOVE,
    chunk_size: int = CHUNK_SIZE,
    workers: int = WORKERS,
    worker_type: str | None = None,
) -> list[Path]:
    """Download every object under ``uri`` into ``dest``; returns the files written."""
    from google.cloud import storage
    from google.cloud.storage import transfer_manager

    bucket_name, prefix = split_uri(uri)
    client = client or storage.Client()
    bucket = client.bucket(bucket_name)
    blobs = [b for b in client.list_blobs(bucket_name, prefix=prefix) if not b.name.endswith("/")]
    if not blobs:
        raise FileNotFoundError(f"no objects under {uri}")
    dest = Path(dest)
    written = [local_path(dest, b.name.removeprefix(prefix)) for b in blobs]  # every name checked before any byte
    dest.mkdir(parents=True, exist_ok=True)
    kind = worker_type or transfer_manager.PROCESS
    small = [b.name.removeprefix(prefix) for b in blobs if (b.size or 0) <= sliced_above]
    if small:
        results = transfer_manager.download_many_to_path(
            bucket,
            small,
            destination_directory=str(dest),
            blob_name_prefix=prefix,
            max_workers=workers,
            worker_type=kind,
            raise_exception=True,
        )
        skipped = [str(r) for r in results if isinstance(r, Exception | Warning)]
        if skipped:  # path traversal or similar: refuse a partial model
            raise RuntimeError(f"download_gcs: not downloaded: {skipped}")
    for blob, target in zip(blobs, written, strict=True):
        if (blob.size or 0) > sliced_above:
            target.parent.mkdir(parents=True, exist_ok=True)
            transfer_manager.download_chunks_concurrently(
                blob, str(target), chunk_size=chunk_size, max_workers=workers, worker_type=kind
            )
    for blob, path in zip(blobs, written, strict=True):  # a short file must not pass as a model
        if path.stat().st_size != (blob.size or 0):
            raise RuntimeError(f"download_gcs: {path} has {path.stat().st_size} bytes, object has {blob.size}")
    return written


def main(argv: list[str]) -> int:
    """``download_gcs.py URI DEST``; ``DOWNLOAD_SLICED_ABOVE`` / ``DOWNLOAD_CHUNK_SIZE`` (bytes) override the
    slicing threshold and slice size."""
    uri, dest = argv[0], argv[1]
    files = download(
        uri,
        dest,
        sliced_above=int(os.environ.get("DOWNLOAD_SLICED_ABOVE", SLICED_ABOVE)),
        chunk_size=int(os.environ.get("DOWNLOAD_CHUNK_SIZE", CHUNK_SIZE)),
    )
    print(f"download_gcs: {len(files)} objects from {uri} to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

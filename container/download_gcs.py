"""Parallel download of a model folder from Cloud Storage (the seed's transfer-manager method, L2).

Used by images that ship Python but not the gcloud CLI (vLLM). ``gs://bucket/prefix/*`` → ``dest``.
Large files are fetched in parallel slices; small ones in parallel workers.
"""

from __future__ import annotations

import sys
from pathlib import Path

SLICED_ABOVE = 256 * 1024 * 1024


def main(uri: str, dest: str) -> int:
    from google.cloud import storage
    from google.cloud.storage import transfer_manager

    bucket_name, _, prefix = uri.removeprefix("gs://").partition("/")
    prefix = prefix.rstrip("*").rstrip("/")
    bucket = storage.Client().bucket(bucket_name)
    blobs = [b for b in bucket.list_blobs(prefix=prefix) if not b.name.endswith("/")]
    small = [b.name for b in blobs if (b.size or 0) <= SLICED_ABOVE]
    transfer_manager.download_many_to_path(
        bucket, small, destination_directory=dest, blob_name_prefix=f"{prefix}/", max_workers=16, raise_exception=True
    )
    for blob in blobs:
        if (blob.size or 0) > SLICED_ABOVE:
            target = Path(dest) / blob.name.removeprefix(f"{prefix}/")
            target.parent.mkdir(parents=True, exist_ok=True)
            transfer_manager.download_chunks_concurrently(blob, str(target), max_workers=16)
    print(f"download_gcs: {len(blobs)} objects from {uri} to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

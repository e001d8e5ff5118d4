"""Session 4 strength tests for loading.py: every delivery's notes, the gcsfuse option reasons, and the errors.

The seed-71 sample of loading.py found the gcs-fuse delivery's note, two of the gcsfuse options' reasons and the
unknown-method error's text unpinned (the other methods' notes were already asserted word for word in
test_strength_storage.py). ``ModelDelivery`` and ``GCS_FUSE_MOUNT_OPTIONS`` are the library's public answer to
"what does this loading method add, and why these gcsfuse flags" (docs/startup.md points readers at the table),
so they are restated here; a deliberate change updates this file in the same commit.
"""

from __future__ import annotations

import pytest
from cloudrun_gpu.loading import GCS_FUSE_MOUNT_OPTIONS, MMAP_BY_METHOD, model_delivery, uses_mmap


def test_every_method_notes_what_it_adds_word_for_word() -> None:
    notes = {
        m: model_delivery(m, mount_path="/m", bucket="b", in_memory_gib=7).notes
        for m in ("image", "gcs-fuse", "gcs-stream", "gcs-download", "internet")
    }
    assert notes == {
        "image": ("model baked into the image: nothing mounted",),
        "gcs-fuse": ("read-only Cloud Storage FUSE volume; FUSE reads are not parallel (L2)",),
        "gcs-stream": (
            "vLLM streams the safetensors from Cloud Storage to the GPU (Run:ai Model Streamer): no volume",
        ),
        "gcs-download": ("parallel download into a 7 GiB in-memory volume (counts against instance memory)",),
        "internet": ("downloads from the internet at every start: the seed advises your own bucket instead (L2, L5)",),
    }


def test_gcs_stream_mounts_nothing_and_passes_the_bucket_by_env() -> None:
    d = model_delivery("gcs-stream", mount_path="/ignored", bucket="bkt", in_memory_gib=7)
    assert (d.method, d.volumes, d.mounts, d.env, d.needs_nat) == ("gcs-stream", [], [], {"MODEL_BUCKET": "bkt"}, False)


def test_every_gcsfuse_option_keeps_its_reason() -> None:
    """Each flag's reason opens with what it does and states the number it sets (word for word at the start)."""
    opening = {
        "implicit-dirs": "show objects under prefixes that have no directory placeholder object",
        "only-dir={prefix}": "mount only the model's folder",
        "metadata-cache-ttl-secs=-1": "never expire cached metadata",
        "stat-cache-max-size-mb=-1": "no cap on the stat cache",
        "sequential-read-size-mb=1024": "read up to 1 GiB per GCS request (default 200 MiB)",
        "log-severity=warning": "keep gcsfuse's per-read logs out of Cloud Logging",
    }
    assert list(GCS_FUSE_MOUNT_OPTIONS) == list(opening)
    for flag, words in opening.items():
        assert GCS_FUSE_MOUNT_OPTIONS[flag].startswith(words), flag


def test_mmap_reasons_cite_their_evidence() -> None:
    """Each reason names the measurement or source behind its choice (docs/startup.md holds the details)."""
    reasons = {m: c.reason for m, c in MMAP_BY_METHOD.items()}
    assert reasons["image"].startswith(
        "a file on the container's own disk, every layer on the GPU: llama.cpp PR #14396"
    )
    assert "14.3 s without mmap vs 33.7 s with it" in reasons["image"]
    assert reasons["gcs-fuse"].startswith("measured through a FUSE mount (docs/startup.md): ")
    assert "mmap was ready in 0.98 s vs 2.71 s" in reasons["gcs-fuse"]
    assert reasons["gcs-download"].startswith("the file already sits in an in-memory volume (tmpfs): ")
    assert "105 MiB file-backed vs 125 MiB anonymous RSS" in reasons["gcs-download"]
    assert reasons["internet"] == "downloaded into the same in-memory volume as gcs-download: the same reasons"


@pytest.mark.parametrize("method", ["bogus", ""])
def test_an_unknown_method_is_named_in_the_error(method: str) -> None:
    with pytest.raises(ValueError) as err:
        model_delivery(method, mount_path="/m", bucket="b")
    assert str(err.value) == f"unknown loading method {method!r}"


def test_a_method_without_an_mmap_rule_is_named_in_the_error() -> None:
    with pytest.raises(ValueError) as err:
        uses_mmap("gcs-stream")
    assert str(err.value) == "no mmap rule for loading method 'gcs-stream' (llama.cpp and Ollama methods only)"


@pytest.mark.parametrize("method", ["gcs-download", "internet"])
def test_both_download_methods_mount_their_in_memory_volume_where_the_engine_reads(method: str) -> None:
    """A download method without the mount would write into the container's own filesystem, not the sized
    in-memory volume (the seed-81 sample dropped internet's mounts and no test noticed)."""
    d = model_delivery(method, mount_path="/models-mem", bucket="b", in_memory_gib=3, hub_url="https://hf.co/x")
    assert d.volumes == [{"name": "model", "empty_dir": {"medium": "MEMORY", "size_limit": "3Gi"}}]
    assert d.mounts == [{"name": "model", "mount_path": "/models-mem"}]
    assert d.env["MODEL_DIR"] == "/models-mem"

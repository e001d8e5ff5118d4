"""Mutation-strength tests for stack/cli.py's text output (issue 23, fresh sample seed 24: the memory bar and its
legend, and the input lookup the plan's chain check uses, were unpinned)."""

from __future__ import annotations

from stack.cli import BAR_WIDTH, _dig, memory_bar

GIB = 1024**3


def test_the_memory_bar_draws_each_part_in_proportion_and_the_legend_in_gib() -> None:
    sizing = {
        "vram_bytes": 24 * GIB,
        "budget_bytes": 22 * GIB + GIB // 2,  # 1.5 GiB reserved: a fraction, so `//` would show 1.00
        "weights_bytes": 6 * GIB,
        "runtime_overhead_bytes": 1 * GIB,
        "kv_cache_bytes": 4 * GIB,
        "max_parallel_sequences": 8,
        "kv_cache_bytes_per_sequence": GIB // 2,
    }
    bar, legend = memory_bar(sizing).split("\n")
    # 60 cells over 24 GiB: 2.5 cells per GiB → weights 15, engine 2 (2.5 rounds to even), KV 10, reserved 4
    assert bar == "[" + "W" * 15 + "o" * 2 + "K" * 10 + "." * 29 + "#" * 4 + "]"
    assert len(bar) == BAR_WIDTH + 2
    assert legend == (
        "  W weights 6.00 GiB | o engine 1.00 GiB | K KV 4.00 GiB (8 × 0.500) | . free | # reserved 1.50 GiB"
        " of 24.00 GiB"
    )


def test_a_part_that_is_tiny_still_shows_and_an_empty_one_does_not() -> None:
    sizing = {
        "vram_bytes": 100 * GIB,
        "budget_bytes": 95 * GIB,
        "weights_bytes": GIB // 100,  # rounds to 0 cells: still drawn as one
        "runtime_overhead_bytes": 0,  # absent: no cell
        "kv_cache_bytes": 50 * GIB,
        "max_parallel_sequences": 1,
        "kv_cache_bytes_per_sequence": 50 * GIB,
    }
    bar = memory_bar(sizing).split("\n")[0]
    assert bar == "[" + "W" + "K" * 30 + "." * 26 + "#" * 3 + "]"


def test_dig_follows_dotted_paths_through_dicts_and_lists() -> None:
    inputs = {"template": {"containers": [{"image": "i"}, {"image": "j"}]}, "name": "n"}
    assert _dig(inputs, "template.containers.1.image") == "j"
    assert _dig(inputs, "name") == "n"
    assert _dig(inputs, "template.containers.2.image") is None
    assert _dig(inputs, "template.missing") is None

"""Issue 23, session 4 on ``stack/loadtest.py``, second sample (seed 81): the workload's description and a fixed
output length."""

from __future__ import annotations

import argparse

from stack.loadtest import Shape, _workload, add_arguments


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["http://127.0.0.1:1", *argv])


def test_a_shape_describes_itself_as_the_report_prints_it() -> None:
    """The line the report starts with: both normal distributions, the seed, and whether EOS is ignored."""
    assert Shape(512, 128, 256, 64, seed=7, ignore_eos=True).describe() == (
        "prompt ~512±128 tokens, output 256±64 tokens (normal, seed 7, ignore_eos)"
    )
    assert Shape(100, 0, 10, 0, seed=1, ignore_eos=False).describe() == (
        "prompt ~100±0 tokens, output 10±0 tokens (normal, seed 1)"
    )


def test_max_tokens_fixes_every_requests_output_length() -> None:
    """``--max-tokens N`` with a real-shape prompt: every request asks for exactly N tokens (no spread), and the
    description says so."""
    _, body, described = _workload(_args("--max-tokens", "64"))
    assert body is not None
    assert {body(i)["max_tokens"] for i in range(50)} == {64}
    assert "output 64±0 tokens" in described

"""Issue 23, session 4 on ``stack/loadtest.py``: what the seed-71 mutation samples showed no listed test read —
the ``--help`` texts and defaults, ``--json``'s layout, a guidellm report whose strategy lists its streams, the
level's inter-token latency, a failed request's latency, and the clip of the drawn lengths.

The stand-in server is tests/test_loadtest_driver.py's (OpenAI-style server-sent events on 127.0.0.1)."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.llamacpp import free_port
from stack.cli import main as cli_main
from stack.loadtest import Shape, add_arguments, levels_from_guidellm, run_level, stream_chat
from tests.stub_http import serving
from tests.test_loadtest_driver import _body, _Chat

DATA = Path(__file__).parent / "data"


def help_and_defaults(add: Callable[[argparse.ArgumentParser], None]) -> dict[str, tuple[Any, Any]]:
    """Each option a command's ``add_arguments`` declares (by its long name, a positional by its name) → its default
    and its ``--help`` text: what a user reads and gets when leaving it out."""
    parser = argparse.ArgumentParser()
    add(parser)
    return {
        (a.option_strings[-1] if a.option_strings else a.dest): (a.default, a.help)
        for a in parser._actions
        if a.dest != "help"
    }


def test_the_loadtest_options_with_their_defaults_and_help() -> None:
    """What ``python -m stack loadtest --help`` tells a user, and what each option is when left out."""
    assert help_and_defaults(add_arguments) == {
        "url": (None, "base URL of an OpenAI-compatible server, e.g. https://llm-….run.app (or --from-guidellm)"),
        "--concurrency": ("1,2,4,8", "comma-separated levels"),
        "--requests": (16, "requests per level (bounded)"),
        "--max-seconds": (120, "stop starting requests after this per level"),
        "--timeout": (120, "per-request timeout in seconds"),
        "--prompt": (None, "one fixed prompt for every request (the old workload; default: real shapes)"),
        "--max-tokens": (None, "fixed output length (overrides --output-tokens; 32 with --prompt)"),
        "--prompt-tokens": ("256:64", "prompt length MEAN[:STDEV] in tokens (normal)"),
        "--output-tokens": ("128:32", "output length MEAN[:STDEV] in tokens (normal)"),
        "--seed": (42, "seed of the length and prompt draws"),
        "--no-ignore-eos": (False, "don't ask the server to ignore end-of-sequence"),
        "--plot": (None, "write throughput and p95 TTFT against concurrency here (.png or .svg)"),
        "--from-guidellm": (None, "read a guidellm benchmarks.json instead of driving the load here"),
        "--model": ("model", None),
        "--ttft-slo": (2.0, "p95 time-to-first-token target in seconds"),
        "--header": ([], "extra header 'Name: value' (e.g. an ID token)"),
        "--write-stack": (None, "path of a Pulumi.<stack>.yaml to store the recommendation in"),
        "--json": (False, None),
    }


def test_json_output_is_indented_for_a_reader(capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` prints one document, indented two spaces (one level or field per line): a one-line dump holds the
    same data but is unreadable in a terminal."""
    args = ["loadtest", "--from-guidellm", str(DATA / "guidellm-sweep.json"), "--ttft-slo", "60", "--json"]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert out == json.dumps(json.loads(out), indent=2) + "\n"


def _report(tmp_path: Path, streams: Any) -> Path:
    """The first benchmark of the recorded guidellm 0.8.1 sweep, with its strategy's ``streams`` replaced."""
    doc = json.loads((DATA / "guidellm-sweep.json").read_text())
    bench = doc["benchmarks"][0]
    bench["config"]["strategy"] = {"type_": "concurrent", "streams": streams}
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps({"benchmarks": [bench]}))
    return path


@pytest.mark.parametrize(("streams", "level"), [(4, 4), ([4], 4), ([2, 8], 2)])
def test_a_strategy_listing_its_streams_reads_as_the_first(tmp_path: Path, streams: Any, level: int) -> None:
    """guidellm's concurrent profile takes ``streams`` as one count or a list (``ConcurrentProfile.streams:
    int | list[int]``, guidellm/benchmark/profile.py); a benchmark whose strategy carries the list form is read
    as its first count, the level it ran at, not refused and not another entry."""
    [lv] = levels_from_guidellm(_report(tmp_path, streams))
    assert lv.concurrency == level


@pytest.fixture
def server() -> Iterator[str]:
    _Chat.seen = []
    with serving(_Chat) as base:
        yield base


def test_a_level_reports_the_inter_token_latency_of_its_streams(server: str) -> None:
    """Each answer streams three content chunks, so every request has two gaps: the level's ITL percentiles are
    numbers (milliseconds, p50 ≤ p95), not the NaN of a level whose answers came in one chunk."""
    lv = run_level(server, 2, requests=4, max_seconds=600, body=_body("hello"), headers={}, timeout_s=30)
    assert lv.errors == 0
    assert not math.isnan(lv.itl_p50_ms) and not math.isnan(lv.itl_p95_ms)
    assert 0 <= lv.itl_p50_ms <= lv.itl_p95_ms


def test_a_levels_rates_are_its_counts_over_its_wall_time(server: str) -> None:
    """requests/s and tokens/s are the successful requests and their tokens divided by the level's wall time.
    Both rates and the wall time are printed rounded (3 and 2 decimals, wall 3), so the check allows exactly
    that rounding: the rate lies between the count over the longest and over the shortest wall time that rounds
    to the printed one."""
    lv = run_level(server, 2, requests=4, max_seconds=600, body=_body("hello"), headers={}, timeout_s=30)
    assert lv.errors == 0 and lv.requests == 4 and lv.wall_s > 0.001
    slow, fast = lv.wall_s + 0.0005, lv.wall_s - 0.0005
    assert 4 / slow - 0.0005 <= lv.requests_per_s <= 4 / fast + 0.0005
    assert 4 * 3 / slow - 0.005 <= lv.tokens_per_s <= 4 * 3 / fast + 0.005  # three content chunks per answer


def test_a_failed_requests_latency_is_the_time_it_took() -> None:
    """A request that fails (here: nothing listens on the port) still reports how long it took, measured from its
    own start: never negative and never more than the call's own wall time."""
    before = time.perf_counter()
    r = stream_chat(f"http://127.0.0.1:{free_port()}", _body("x"), {}, 30)
    took = time.perf_counter() - before
    assert not r.ok and r.error
    assert 0 <= r.latency_s <= took


def test_drawn_lengths_are_clipped_at_three_standard_deviations_above_the_mean() -> None:
    """Lengths are drawn from a normal distribution and clipped to [1, mean + 3 × stdev] (Shape's docstring), so
    the tail cannot overrun the context the server was sized for while the distribution keeps its mean and
    spread: with mean 100 and stdev 40, every length is at most 220 and the draws centre on 100."""
    shape = Shape(100, 40, 100, 40, seed=7)
    prompts, outputs = zip(*(shape.lengths(i) for i in range(400)), strict=True)
    for drawn in (prompts, outputs):
        assert min(drawn) >= 1 and max(drawn) <= 100 + 3 * 40
        assert max(drawn) > 100 + 40  # the upper tail is kept, up to the clip
        assert 90 < statistics.fmean(drawn) < 110

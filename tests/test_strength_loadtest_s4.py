"""Issue 23, session 4 on ``stack/loadtest.py``: what the seed-71 mutation sample showed no listed test read —
the ``--help`` texts and defaults, ``--json``'s layout, and a guidellm report whose strategy lists its streams."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from stack.cli import main as cli_main
from stack.loadtest import add_arguments, levels_from_guidellm

DATA = Path(__file__).parent / "data"


def test_the_loadtest_options_with_their_defaults_and_help() -> None:
    """What ``python -m stack loadtest --help`` tells a user, and what each option is when left out."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = {
        (a.option_strings[-1] if a.option_strings else a.dest): (a.default, a.help)
        for a in parser._actions
        if a.dest != "help"
    }
    assert options == {
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

"""The load test on real shapes (#24): length distributions, guidellm's report, the plot (fast, no server).

The real-server run is tests/test_engine_llamacpp.py::test_loadtest_against_the_real_server (slow)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from stack.cli import main as cli_main
from stack.loadtest import WORDS, LevelResult, Shape, levels_from_guidellm, parse_shape, plot_levels, recommend

DATA = Path(__file__).parent / "data"


def test_shape_draws_per_request_lengths_seeded_and_clipped() -> None:
    shape = Shape(256, 64, 128, 32, seed=7)
    lengths = [shape.lengths(i) for i in range(400)]
    assert lengths == [Shape(256, 64, 128, 32, seed=7).lengths(i) for i in range(400)]  # same seed, same requests
    assert lengths != [Shape(256, 64, 128, 32, seed=8).lengths(i) for i in range(400)]
    prompts, outputs = zip(*lengths, strict=True)
    assert 240 < statistics.fmean(prompts) < 272 and 50 < statistics.stdev(prompts) < 78
    assert 120 < statistics.fmean(outputs) < 136
    assert min(prompts) >= 1 and max(prompts) <= 256 + 3 * 64 and max(outputs) <= 128 + 3 * 32
    assert len(set(lengths)) > 100  # not one fixed request: the bug the issue names
    assert Shape(100, 0, 10, 0).lengths(3) == (100, 10)


def test_each_request_body_is_distinct_and_asks_for_the_drawn_length() -> None:
    shape = Shape(64, 16, 16, 4)
    bodies = [shape.body(i, "m") for i in range(20)]
    assert len({b["messages"][0]["content"] for b in bodies}) == 20  # no shared prefix to hit the cache
    for i, b in enumerate(bodies):
        prompt_len, output_len = shape.lengths(i)
        words = b["messages"][0]["content"].removeprefix("Continue this text: ").split()
        assert len(words) == max(1, prompt_len - 8) and set(words) <= set(WORDS)
        assert b["max_tokens"] == output_len and b["stream"] and b["ignore_eos"] is True
        assert b["stream_options"] == {"include_usage": True}
    assert "ignore_eos" not in Shape(64, 0, 16, 0, ignore_eos=False).body(0, "m")


@pytest.mark.parametrize("text", ["", "0", "abc", "10:-1", "1:2:3", "-5"])
def test_bad_shapes_are_refused_naming_the_flag(text: str) -> None:
    with pytest.raises(ValueError, match="--prompt-tokens"):
        parse_shape(text, "--prompt-tokens")
    assert parse_shape("128", "x") == (128, 0) and parse_shape("128:32", "x") == (128, 32)


def test_cli_refuses_a_bad_shape_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["loadtest", "http://127.0.0.1:9", "--output-tokens", "lots"]) == 2
    err = capsys.readouterr().err
    assert "--output-tokens 'lots'" in err and "Traceback" not in err
    assert cli_main(["loadtest"]) == 2
    assert "--from-guidellm" in capsys.readouterr().err


def test_reads_a_real_guidellm_report() -> None:
    """tests/data/guidellm-sweep.json: guidellm 0.8.1's benchmarks.json from the sweep in docs/engine-results.md,
    trimmed to the keys the reader uses (scripts in the doc)."""
    levels = levels_from_guidellm(DATA / "guidellm-sweep.json")
    assert [lv.concurrency for lv in levels] == [1, 2, 4, 8]
    for lv in levels:
        assert lv.requests >= 1 and lv.errors == 0 and lv.tokens_per_s > 0
        assert 0 < lv.ttft_p50_s <= lv.ttft_p95_s and lv.itl_p50_ms > 0
        assert lv.prompt_tokens_mean > lv.output_tokens_mean > 0
    pick, why = recommend(levels, 60.0)
    assert pick in (1, 2, 4, 8) and "tok/s" in why


def test_a_report_without_levels_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(ValueError, match="concurrent"):
        levels_from_guidellm(bad)


def _lv(c: int, tps: float, p95: float) -> LevelResult:
    return LevelResult(c, 8, 0, 10.0, 0.5, tps, p95 / 2, p95, 5.0, 6.0, 100.0, 150.0, 160.0, 32.0)


def test_plot_marks_the_recommended_level(tmp_path: Path) -> None:
    levels = [_lv(1, 10, 0.2), _lv(2, 19, 0.3), _lv(4, 30, 0.5), _lv(8, 32, 1.9)]
    pick, _ = recommend(levels, 2.0)
    svg = plot_levels(levels, pick, tmp_path / "curve.svg", "title", 2.0).read_text()
    assert f"recommended: {pick}" in svg and "output tokens/s" in svg and "p95 time to first token" in svg
    png = plot_levels(levels, pick, tmp_path / "curve.png", "title", 2.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_from_guidellm_feeds_the_rule_the_plot_and_write_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parent.parent
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text((root / "Pulumi.dev.yaml").read_text())
    plot = tmp_path / "lt.svg"
    args = ["loadtest", "--from-guidellm", str(DATA / "guidellm-sweep.json"), "--ttft-slo", "60", "--json"]
    assert cli_main([*args, "--plot", str(plot), "--write-stack", str(stack)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [lv["concurrency"] for lv in out["levels"]] == [1, 2, 4, 8]
    assert out["workload"].startswith("guidellm report")
    assert plot.is_file() and f"recommended: {out['recommended_concurrency']}" in plot.read_text()
    from stack.config import load_stack

    assert load_stack("dev", tmp_path).concurrency == out["recommended_concurrency"]

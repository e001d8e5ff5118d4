"""Issue 23, session 5 on ``stack/loadtest.py``: what the survivors of seeds 81 and 91 showed no test read — the
figure's SLO line, the millisecond rounding of the reported times, a guidellm report without an error count, the
stack file's key order after ``--write-stack``, the printed recommendation, and a plot of a saved report."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import FrozenInstanceError, asdict
from pathlib import Path
from typing import Any

import matplotlib
import pytest
import yaml

from harness.llamacpp import free_port
from stack.cli import main as cli_main
from stack.loadtest import (
    LevelResult,
    Shape,
    levels_from_guidellm,
    plot_levels,
    recommend,
    run_level,
    stream_chat,
    write_back,
)
from tests.conftest import ROOT
from tests.stub_http import serving
from tests.test_loadtest_driver import _body, _Chat

DATA = ROOT / "tests" / "data"


def _lv(c: int, tps: float, p95: float) -> LevelResult:
    return LevelResult(c, 8, 0, 10.0, 0.5, tps, p95 / 2, p95, 5.0, 6.0, 100.0, 150.0, 160.0, 32.0)


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each figure ``plot_levels`` draws, kept when it closes it (the saved file is drawn from the same objects)."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn: list[Any] = []
    close = plt.close

    def keep(fig: Any = None) -> None:
        drawn.append(fig)
        close(fig)

    monkeypatch.setattr(plt, "close", keep)
    return drawn


def test_the_slo_is_a_thin_faint_red_line_under_the_ttft_curve(tmp_path: Path, figures: list[Any]) -> None:
    """The p95 TTFT target is drawn on the TTFT axis as a thin (1 pt), faint (alpha 0.3) red line at the SLO, so the
    curve that crosses it stays the thing the eye follows; the grid is as faint."""
    levels = [_lv(1, 10, 0.2), _lv(2, 19, 0.3), _lv(4, 30, 0.5), _lv(8, 32, 1.9)]
    plot_levels(levels, 4, tmp_path / "curve.svg", "title", 1.5)
    [fig] = figures
    ax, ax2 = fig.axes
    curve, slo = ax2.lines
    assert list(curve.get_ydata()) == [0.2, 0.3, 0.5, 1.9]
    assert list(slo.get_ydata()) == [1.5, 1.5]
    assert (slo.get_alpha(), slo.get_linewidth(), matplotlib.colors.to_hex(slo.get_color())) == (0.3, 1, "#d62728")
    assert matplotlib.colors.to_hex(curve.get_color()) == "#d62728" and curve.get_alpha() is None
    for line in ax.xaxis.get_gridlines() + ax.yaxis.get_gridlines():
        assert line.get_visible() and line.get_alpha() == 0.3


def test_a_saved_json_reports_recommendation_is_marked_when_it_is_plotted_again(
    tmp_path: Path, figures: list[Any]
) -> None:
    """``plot_levels`` takes the recommended level by its number: the levels and ``recommended_concurrency`` of a
    saved ``--json`` report, read back (every number a fresh object, also above CPython's small-int cache), put
    the star on that level's throughput."""
    levels = [_lv(256, 900, 0.4), _lv(512, 1700, 0.9), _lv(1000, 1750, 2.5)]
    pick, _ = recommend(levels, 2.0)
    saved = json.loads(json.dumps({"levels": [asdict(lv) for lv in levels], "recommended_concurrency": pick}))
    again = [LevelResult(**lv) for lv in saved["levels"]]
    assert saved["recommended_concurrency"] == 512 and saved["recommended_concurrency"] is not again[1].concurrency
    plot_levels(again, saved["recommended_concurrency"], tmp_path / "again.svg", "title", 2.0)
    [fig] = figures
    [star] = [line for line in fig.axes[0].lines if line.get_marker() == "*"]
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([512], [1700])


@pytest.fixture
def chat_server() -> Iterator[str]:
    _Chat.seen = []
    with serving(_Chat) as base:
        yield base


STEP = 0.0123456
"""The fake clock's step: a time of one or four steps differs when rounded to 2, 3 or 4 decimals."""


def _stepping_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``time.perf_counter`` reading ``100 + n × STEP`` at its n-th call: every time the driver measures is a whole
    number of steps, whatever the machine's load (no timed assert)."""
    readings = iter(range(1_000_000))
    monkeypatch.setattr(time, "perf_counter", lambda: 100 + next(readings) * STEP)


def test_the_reported_times_are_the_requests_rounded_to_the_millisecond(
    chat_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One request at concurrency 1: the level's TTFT and latency percentiles, as ``--json`` prints them, are that
    request's own times rounded to the millisecond (3 decimals) and its inter-token latency to 0.01 ms."""
    _stepping_clock(monkeypatch)
    alone = stream_chat(chat_server, _body("hello"), {}, 30)  # the same request, measured on its own
    assert alone.ok and alone.tokens == 3
    ttft, latency, itl_ms = round(alone.ttft_s, 3), round(alone.latency_s, 3), round(alone.itl_s * 1000, 2)
    for value, digits in ((alone.ttft_s, 3), (alone.latency_s, 3), (alone.itl_s * 1000, 2)):  # the test can tell
        assert len({round(value, digits - 1), round(value, digits), round(value, digits + 1)}) == 3

    args = ["loadtest", chat_server, "--concurrency", "1", "--requests", "1", "--prompt", "hello", "--json"]
    assert cli_main(args) == 0
    [level] = json.loads(capsys.readouterr().out)["levels"]
    assert (level["requests"], level["errors"]) == (1, 0)
    assert (level["ttft_p50_s"], level["ttft_p95_s"]) == (ttft, ttft)
    assert (level["latency_p50_s"], level["latency_p95_s"]) == (latency, latency)
    assert (level["itl_p50_ms"], level["itl_p95_ms"]) == (itl_ms, itl_ms)


def test_a_guidellm_report_without_an_error_count_counts_no_errors(tmp_path: Path) -> None:
    """A benchmark whose ``request_totals`` name only its successful requests (a trimmed or older report) had no
    errors: its level counts them all and stays eligible for the recommendation."""
    doc = json.loads((DATA / "guidellm-sweep.json").read_text())
    for bench in doc["benchmarks"]:
        bench["metrics"]["request_totals"] = {"successful": bench["metrics"]["request_totals"]["successful"]}
    report = tmp_path / "benchmarks.json"
    report.write_text(json.dumps(doc))
    levels = levels_from_guidellm(report)
    assert [(lv.requests, lv.errors) for lv in levels] == [
        (b["metrics"]["request_totals"]["successful"], 0) for b in doc["benchmarks"]
    ]
    assert "keeping the lowest" not in recommend(levels, 60.0)[1]


def _keys(node: Any, path: str = "") -> list[str]:
    """Every mapping key of a YAML document, depth first, in the order the file lists them."""
    if not isinstance(node, dict):
        return []
    return [k for key, value in node.items() for k in (f"{path}/{key}", *_keys(value, f"{path}/{key}"))]


def test_write_stack_keeps_the_stack_files_order(tmp_path: Path) -> None:
    """``--write-stack`` rewrites the user's ``Pulumi.<stack>.yaml``: its settings stay in the order they were written
    (region, environment, gpu, model, … and inside each section), only the recommendation added or changed, so the
    diff the user reviews is the recommendation, not a reshuffled file."""
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text((ROOT / "Pulumi.dev.yaml").read_text())
    before = _keys(yaml.safe_load(stack.read_text()))
    assert before != sorted(before)  # the dev stack is not in alphabetical order
    write_back(stack, 12)
    after = _keys(yaml.safe_load(stack.read_text()))
    assert [k for k in after if k in before] == before
    assert stack.read_text().splitlines()[:3] == [
        "config:",
        "  gcp:region: europe-west1",
        "  cloudrun-gpu:environment: dev",
    ]


def test_the_recommendation_is_printed_with_its_reason_and_the_command_to_apply_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Below the table, after a blank line: the recommended concurrency and why, then the ``pulumi config set``
    command that applies it, word for word."""
    report = DATA / "guidellm-sweep.json"
    pick, why = recommend(levels_from_guidellm(report), 60.0)
    assert cli_main(["loadtest", "--from-guidellm", str(report), "--ttft-slo", "60"]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        f"\n\nrecommended max_instance_request_concurrency: {pick} ({why})\n"
        f"  pulumi config set --path 'cloudrun-gpu:scaling.max_concurrency' {pick}\n"
    )


# Seed 101's survivors (blind run of 2026-12-07 with the tests above).


def test_the_figure_is_7_by_4_2_inches_at_110_dpi(tmp_path: Path, figures: list[Any]) -> None:
    """The saved PNG is 770 × 462 pixels (7 × 4.2 inches at 110 dpi): wide enough for the log-2 concurrency axis
    and the wrapped title."""
    levels = [_lv(1, 10, 0.2), _lv(2, 19, 0.3), _lv(4, 30, 0.5)]
    png = plot_levels(levels, 2, tmp_path / "curve.png", "title", 2.0).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (770, 462)
    [fig] = figures
    assert (tuple(fig.get_size_inches()), fig.dpi) == ((7, 4.2), 110)


def test_the_recommended_label_sits_below_left_of_its_star(tmp_path: Path, figures: list[Any]) -> None:
    """ "recommended: N" points at the star on the throughput curve and is written 40 points to its left and 22
    below, under the curve, so it does not cover the curve's higher levels to the right."""
    levels = [_lv(1, 10, 0.2), _lv(2, 19, 0.3), _lv(4, 30, 0.5), _lv(8, 32, 1.9)]
    plot_levels(levels, 4, tmp_path / "curve.svg", "title", 2.0)
    [fig] = figures
    [label] = fig.axes[0].texts
    assert (label.get_text(), label.xy, label.xyann, label.anncoords) == (
        "recommended: 4",
        (4, 30),
        (-40, -22),
        "offset points",
    )
    assert label.get_fontsize() == 9


def test_a_guidellm_levels_wall_time_is_its_benchmarks_duration(tmp_path: Path) -> None:
    """The wall time of a level read from guidellm is the benchmark's ``duration`` (seconds, 3 decimals); a benchmark
    that does not give one has no known wall time, 0.0, not a made-up second."""
    doc = json.loads((DATA / "guidellm-sweep.json").read_text())
    levels = levels_from_guidellm(DATA / "guidellm-sweep.json")
    assert [lv.wall_s for lv in levels] == [round(b["duration"], 3) for b in doc["benchmarks"]]
    assert all(lv.wall_s > 1 for lv in levels)
    del doc["benchmarks"][0]["duration"]
    report = tmp_path / "benchmarks.json"
    report.write_text(json.dumps(doc))
    assert levels_from_guidellm(report)[0].wall_s == 0.0


class _Counted:
    """``time.perf_counter`` as a counter from ``origin`` by ``step``: it knows how many readings were taken."""

    def __init__(self, origin: float, step: float) -> None:
        self.origin, self.step, self.readings = origin, step, 0

    def __call__(self) -> float:
        self.readings += 1
        return self.origin + (self.readings - 1) * self.step


def test_a_levels_wall_time_runs_from_its_start_on_a_clock_with_a_recent_origin(
    chat_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``perf_counter``'s origin is unspecified (the Python docs: only differences between readings are valid): on
    a clock that read 1.0 when the level started, the wall time is still its last reading minus its first, and the
    rates are the counts over it."""
    clock = _Counted(1.0, 1.0)
    monkeypatch.setattr(time, "perf_counter", clock)
    lv = run_level(chat_server, 1, requests=2, max_seconds=1e9, body=_body("hello"), headers={}, timeout_s=30)
    assert (lv.requests, lv.errors) == (2, 0)
    assert lv.wall_s == clock.readings - 1 > 2  # the first reading is the level's start, the last its end
    assert (lv.requests_per_s, lv.tokens_per_s) == (round(2 / lv.wall_s, 3), round(2 * 3 / lv.wall_s, 2))


def test_a_level_of_more_than_256_requests_sends_exactly_that_many(
    chat_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--requests 300``: the server gets 300 requests, then the level ends (on a clock that moves 10 ms a reading,
    so the 60 s ``--max-seconds`` never ends it first)."""
    monkeypatch.setattr(time, "perf_counter", _Counted(100.0, 0.01))
    lv = run_level(chat_server, 4, requests=300, max_seconds=60, body=_body("hello"), headers={}, timeout_s=30)
    assert (lv.requests, lv.errors, len(_Chat.seen)) == (300, 0, 300)


def test_a_workload_shape_is_a_fixed_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """A :class:`Shape` is shared by every worker thread of a level and every level of a sweep
    (scripts/engine_report.py keeps one as a module constant): it cannot be changed once made, and equal shapes are
    one value (hashable, equal hashes), so a sweep can key its results by shape."""
    shape = Shape(128, 32, 32, 8, seed=42)
    with pytest.raises(FrozenInstanceError):
        shape.seed = 7  # type: ignore[misc]
    assert {shape: "sweep"}[Shape(128, 32, 32, 8)] == "sweep"


# Seed 111's survivors.

HEADER = " conc   req  err   req/s    tok/s  TTFT p50  TTFT p95 ITL p50 ms ITL p95 ms  lat p50  lat p95  in tok out tok"
NAMES = [
    "conc",
    "req",
    "err",
    "req/s",
    "tok/s",
    "TTFT p50",
    "TTFT p95",
    "ITL p50 ms",
    "ITL p95 ms",
    "lat p50",
    "lat p95",
    "in tok",
    "out tok",
]
"""The 13 column names, as the header spells them."""


def test_the_table_has_its_header_and_every_value_under_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    """The report's table: the header word for word, and each level's 13 values right-aligned under their names."""
    assert cli_main(["loadtest", "--from-guidellm", str(DATA / "guidellm-sweep.json"), "--ttft-slo", "60"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == HEADER
    ends, at = [], 0
    for name in NAMES:
        at = HEADER.index(name, at) + len(name)
        ends.append(at)
    rows = lines[2:6]
    assert [row.split()[0] for row in rows] == ["1", "2", "4", "8"]
    for row in rows:  # each value ends where its name does
        assert [i + 1 for i, c in enumerate(row) if c != " " and row[i + 1 : i + 2] in ("", " ")] == ends


def test_each_level_shows_its_progress_on_stderr(chat_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    """While a level runs, each answered request prints a dot on stderr (an ``x`` for a failed one) after the
    level's name, then the level's summary on the same line."""
    args = ["loadtest", chat_server, "--concurrency", "1", "--requests", "2", "--prompt", "hello"]
    assert cli_main(args) == 0
    err = capsys.readouterr().err.splitlines()
    [level] = [line for line in err if line.startswith("concurrency")]
    assert level.startswith("concurrency    1: .. 2 req, 0 err, ")


def test_a_level_with_no_measurable_wall_time_reports_zero_rates(
    chat_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a clock too coarse to see the level pass (it reads the same before and after), the level's rates are 0.0,
    not a division by zero and not a negative number a reader would take for a measurement."""
    monkeypatch.setattr(time, "perf_counter", lambda: 5.0)
    lv = run_level(chat_server, 1, requests=1, max_seconds=60, body=_body("hello"), headers={}, timeout_s=30)
    assert (lv.requests, lv.errors, lv.wall_s) == (1, 0, 0.0)
    assert (lv.requests_per_s, lv.tokens_per_s) == (0.0, 0.0)


def test_an_svg_plot_carries_no_date(tmp_path: Path) -> None:
    """The SVG is written without matplotlib's ``<dc:date>`` (``metadata={"Date": None}``), so plotting the same
    numbers again gives the same file, and a committed plot only changes with its data."""
    levels = [_lv(1, 10, 0.2), _lv(2, 19, 0.3), _lv(4, 30, 0.5)]
    svg = plot_levels(levels, 2, tmp_path / "curve.svg", "title", 2.0).read_text()
    assert "<dc:date>" not in svg


# Seed 121's survivors.


def test_a_guidellm_benchmark_without_a_success_count_had_none(tmp_path: Path) -> None:
    """A benchmark whose ``request_totals`` name only errored requests had no successful one: its level counts the
    errors alone, and with no healthy level the recommendation keeps the lowest."""
    doc = json.loads((DATA / "guidellm-sweep.json").read_text())
    for bench in doc["benchmarks"]:
        bench["metrics"]["request_totals"] = {"errored": 3}
    report = tmp_path / "benchmarks.json"
    report.write_text(json.dumps(doc))
    levels = levels_from_guidellm(report)
    assert [(lv.requests, lv.errors) for lv in levels] == [(3, 3)] * 4
    assert recommend(levels, 60.0) == (1, "no level met p95 TTFT ≤ 60.0s without errors; keeping the lowest")


def test_every_real_shape_request_is_greedy() -> None:
    """Each real-shape request asks for ``temperature`` 0 (greedy decoding), so a re-run with the same seed asks the
    server for the same tokens, and the body is otherwise the documented one (OpenAI chat completions)."""
    shape = Shape(64, 16, 16, 4, seed=3)
    for i in range(5):
        body = shape.body(i, "m")
        assert body["temperature"] == 0 and isinstance(body["temperature"], int)
        assert set(body) == {"model", "stream", "stream_options", "max_tokens", "temperature", "messages", "ignore_eos"}


def test_a_failed_requests_latency_runs_from_its_start_on_a_clock_with_a_recent_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request refused at once (nothing listens) on a clock that read 1.0 at its start and moves 1 s a reading
    took one reading's time, 1.0 s: the difference of the two readings, whatever the clock's origin."""
    clock = _Counted(1.0, 1.0)
    monkeypatch.setattr(time, "perf_counter", clock)
    r = stream_chat(f"http://127.0.0.1:{free_port()}", _body("x"), {}, 30)
    assert not r.ok and r.error
    assert (clock.readings, r.latency_s) == (2, 1.0)


def test_a_plot_is_written_where_asked_making_the_folders(tmp_path: Path) -> None:
    """``--plot out/loadtest/dev/curve.png``: the folders that do not exist yet are made."""
    path = tmp_path / "out" / "loadtest" / "dev" / "curve.png"
    assert plot_levels([_lv(1, 10, 0.2), _lv(2, 19, 0.3)], 2, path, "title", 2.0) == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


NINE = " ".join(["a" * 9] * 9)
"""Nine 9-letter words: 89 characters."""


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        (f"{NINE} b and the rest", f"{NINE}\nb and the rest"),  # "… b" would make a first line of 91
        ("u" * 90 + " and the rest", "u" * 90 + "\nand the rest"),  # a 90-character word fits its line
    ],
)
def test_the_title_is_wrapped_at_90_characters_in_8_point(
    tmp_path: Path, figures: list[Any], title: str, shown: str
) -> None:
    """The title (the URL and the workload, often long) is wrapped into lines of at most 90 characters, in 8 pt."""
    plot_levels([_lv(1, 10, 0.2), _lv(2, 19, 0.3)], 2, tmp_path / "curve.svg", title, 2.0)
    [fig] = figures
    assert (fig.axes[0].get_title(), fig.axes[0].title.get_fontsize()) == (shown, 8)


def test_the_recommended_star_is_gold_with_a_black_edge(tmp_path: Path, figures: list[Any]) -> None:
    """The recommended level is a large gold star with a black edge (visible on the blue throughput line), above
    the curves."""
    plot_levels([_lv(1, 10, 0.2), _lv(2, 19, 0.3)], 2, tmp_path / "curve.svg", "title", 2.0)
    [fig] = figures
    [star] = [line for line in fig.axes[0].lines if line.get_marker() == "*"]
    style = (star.get_markersize(), star.get_color(), star.get_markeredgecolor(), star.get_zorder())
    assert style == (18, "gold", "black", 5)

"""Issue 23, session 5 on ``stack/loadtest.py``, seed 151's survivors: a refused request's times, guidellm's
millisecond metrics read as seconds, a guidellm level of concurrency 0 refused, and ``--max-seconds`` taken as a
number."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stack.cli import main as cli_main
from stack.loadtest import levels_from_guidellm, stream_chat
from tests.test_loadtest_driver import _body, _Chat
from tests.test_strength_loadtest_s4 import DATA, _report
from tests.test_strength_loadtest_s5 import _Counted, chat_server

__all__ = ["chat_server"]  # a fixture, used by name


def test_a_request_the_server_refuses_reports_no_first_token_and_the_time_it_took(
    chat_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server answers 503: the request failed with "HTTP 503", saw no token (TTFT 0), and took the time between
    its two clock readings (1.0 s on a clock that read 1.0 at its start: the difference, whatever the origin)."""
    clock = _Counted(1.0, 1.0)
    monkeypatch.setattr(time, "perf_counter", clock)
    r = stream_chat(chat_server, _body("fail now"), {}, 30)
    assert (r.ok, r.error, r.tokens, r.ttft_s) == (False, "HTTP 503", 0, 0)
    assert (clock.readings, r.latency_s) == (2, 1.0)


def test_guidellm_times_in_milliseconds_are_reported_in_seconds() -> None:
    """guidellm reports time to first token in milliseconds (``time_to_first_token_ms``); the level shows seconds,
    the recorded sweep's median and p95 divided by 1000 (to the millisecond)."""
    doc = json.loads((DATA / "guidellm-sweep.json").read_text())
    ttft = doc["benchmarks"][0]["metrics"]["time_to_first_token_ms"]["successful"]
    first = levels_from_guidellm(DATA / "guidellm-sweep.json")
    by_level = {lv.concurrency: lv for lv in first}
    strategy = doc["benchmarks"][0]["config"]["strategy"]
    streams = strategy["streams"][0] if isinstance(strategy["streams"], list) else strategy["streams"]
    lv = by_level[streams]
    assert lv.ttft_p50_s == round(ttft["median"] / 1000, 3)
    assert lv.ttft_p95_s == round(ttft["percentiles"]["p95"] / 1000, 3)
    assert 0 < lv.ttft_p50_s < ttft["median"]


def test_a_guidellm_level_of_concurrency_zero_is_refused(tmp_path: Path) -> None:
    """A benchmark whose strategy names no streams (0) ran at no concurrency level this tool can recommend: the
    report is refused, saying how to run guidellm, rather than read as a level 0."""
    with pytest.raises(ValueError, match="no concurrency levels found; run guidellm with --profile kind=concurrent"):
        levels_from_guidellm(_report(tmp_path, 0))


def test_max_seconds_is_a_number_of_seconds(chat_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--max-seconds 30`` is 30 s, compared with the clock: both requests of the level are sent and answered."""
    args = ["loadtest", chat_server, "--concurrency", "1", "--requests", "2", "--prompt", "hello", "--json"]
    assert cli_main([*args, "--max-seconds", "30"]) == 0
    [level] = json.loads(capsys.readouterr().out)["levels"]
    assert (level["requests"], level["errors"]) == (2, 0)
    assert len(_Chat.seen) == 2

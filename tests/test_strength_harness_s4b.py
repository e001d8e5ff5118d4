"""harness/llamacpp.py, session 4 (issue 23), second sample (seed 81): the readiness probe's own wait."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from harness import llamacpp as h


def test_a_readiness_get_waits_two_seconds_for_an_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each readiness GET gives a busy llama-server (loading, or answering a slot save) up to 2 s before it counts
    as "nothing answers yet": the value ``wait_ready`` and the tests rely on when they call it without one."""
    seen: list[Any] = []

    def urlopen(url: str, timeout: float) -> Any:
        seen.append((url, timeout))
        raise OSError("connection refused")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert h.http_status("http://127.0.0.1:1/health") is None
    assert seen == [("http://127.0.0.1:1/health", 2.0)]

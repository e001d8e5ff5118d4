"""Mutation-strength tests (issue 23, session 4) for what makes two requests the same, ``semcache/keys.py``: the
JSON depth limit to the level, the "never cached" parameters when they are present but empty, which turn is
the question, and what counts as temperature 0 (the only requests the cache serves without an opt-in).

Bodies are built with ``json.loads`` where it matters: the app parses them, so their strings are never the
module's own literal objects.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.keys import CHAT, COMPLETIONS, NEVER_CACHED, NotCacheable, json_depth, key_request


def nested(depth: int, kind: str) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value} if kind == "dict" else [value]
    return value


@pytest.mark.parametrize("kind", ["dict", "list"])
@pytest.mark.parametrize("limit", [1, 2, 5, 32])
def test_json_depth_allows_exactly_the_limit(kind: str, limit: int) -> None:
    assert json_depth(nested(limit, kind), limit)
    assert not json_depth(nested(limit + 1, kind), limit)
    assert json_depth(nested(limit - 1, kind), limit) and json_depth("scalar", 0)


def test_json_depth_counts_the_deepest_branch_of_mixed_nesting() -> None:
    body = {"a": [1, {"b": [2, 3]}], "c": "x", "d": {"e": {}}}  # depth 4 through a → {b} → [2, 3]
    assert json_depth(body, 4) and not json_depth(body, 3)
    assert json_depth({"a": [], "b": {}}, 2) and not json_depth({"a": [], "b": {}}, 1)


def chat(*turns: tuple[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "temperature": 0, "messages": [{"role": r, "content": c} for r, c in turns], **extra}


@pytest.mark.parametrize("name", NEVER_CACHED)
@pytest.mark.parametrize("empty", [None, False, []])
def test_a_never_cached_parameter_left_empty_is_still_cacheable(name: str, empty: Any) -> None:
    """Clients send ``"tools": []`` or ``"logprobs": false`` by default: that asks for nothing unusual."""
    keyed = key_request(CHAT, chat(("user", "Hello?"), **{name: empty}))
    assert keyed.text == "Hello?"


@pytest.mark.parametrize(
    ("name", "value"),
    [("tools", [{"type": "function", "function": {"name": "f"}}]), ("tool_choice", "auto"), ("logprobs", True),
     ("top_logprobs", 0), ("audio", {}), ("modalities", ["text", "audio"]), ("prediction", "")],
)  # fmt: skip
def test_a_never_cached_parameter_with_any_other_value_is_refused(name: str, value: Any) -> None:
    with pytest.raises(NotCacheable) as err:
        key_request(CHAT, chat(("user", "Hello?"), **{name: value}))
    assert str(err.value) == f"{name} requested"


def test_the_question_is_the_last_user_turn_and_the_earlier_turns_are_context() -> None:
    three = key_request(CHAT, chat(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Why?")))
    assert three.text == "Why?"
    other_context = key_request(
        CHAT, chat(("system", "Be brief."), ("user", "Ho"), ("assistant", "Hello"), ("user", "Why?"))
    )
    assert other_context.exact != three.exact and other_context.scope != three.scope
    alone = key_request(CHAT, chat(("user", "Why?")))
    assert alone.exact != three.exact and alone.scope != three.scope
    assert alone.text == three.text
    first_only = key_request(CHAT, chat(("system", "Be brief."), ("user", "Why?")))
    assert first_only.exact != three.exact
    # the assistant's last answer is context too: "Why?" after "Hello" is not "Why?" after "Goodbye"
    hello = key_request(CHAT, chat(("user", "Hi"), ("assistant", "Hello"), ("user", "Why?")))
    goodbye = key_request(CHAT, chat(("user", "Hi"), ("assistant", "Goodbye"), ("user", "Why?")))
    assert hello.exact != goodbye.exact and hello.scope != goodbye.scope


def test_parsed_text_parts_are_text() -> None:
    body = json.loads(
        '{"model": "m", "temperature": 0, "messages": [{"role": "user", "content": '
        '[{"type": "text", "text": "What is "}, {"type": "text", "text": "2 + 2?"}]}]}'
    )
    assert key_request(CHAT, body).text == "What is 2 + 2?"


@pytest.mark.parametrize("content", [["just a string"], [{"type": "image_url"}], [{"text": "no type"}], 42, None])
def test_content_that_is_not_text_parts_is_refused(content: Any) -> None:
    with pytest.raises(NotCacheable) as err:
        key_request(CHAT, chat(("user", content)))
    assert str(err.value) == "non-text message content"


@pytest.mark.parametrize(
    ("temperature", "zero"),
    [(0, True), (0.0, True), (-0.0, True), (None, False), (0.7, False), (1, False), (-1, False), ("0", False)],
)
def test_only_a_numeric_zero_temperature_is_temperature_zero(temperature: Any, zero: bool) -> None:
    body = chat(("user", "Hello?"))
    body["temperature"] = temperature
    assert key_request(CHAT, body).temperature_zero is zero
    assert key_request(COMPLETIONS, {"prompt": "Hi", "temperature": temperature}).temperature_zero is zero
    assert key_request(CHAT, {"messages": body["messages"]}).temperature_zero is False, "absent: the server's default"


def test_stream_and_usage_flags() -> None:
    plain = key_request(CHAT, chat(("user", "Hi")))
    streamed = key_request(CHAT, chat(("user", "Hi"), stream=True, stream_options={"include_usage": True}))
    assert (plain.stream, plain.include_usage) == (False, False)
    assert (streamed.stream, streamed.include_usage) == (True, True)
    assert streamed.exact == plain.exact, "delivery options are not part of the question"
    assert key_request(CHAT, chat(("user", "Hi"), stream_options=["include_usage"])).include_usage is False


def test_non_ascii_parameters_key_as_written() -> None:
    """Two requests that differ only in a non-ASCII parameter are different requests; the same one is the same."""
    a = key_request(CHAT, chat(("user", "Hi"), stop=["ü"]))
    assert a.exact == key_request(CHAT, json.loads(json.dumps(chat(("user", "Hi"), stop=["ü"])))).exact
    assert a.exact != key_request(CHAT, chat(("user", "Hi"), stop=["u"])).exact

"""What makes two requests "the same": normalisation, scope, and what may be cached at all.

- The **exact key** hashes the endpoint, the query string, every non-text parameter and every message with
  its whitespace collapsed: a hit returns the answer to a request that differs only in spacing, key order
  or the ``stream`` flag.
- The **scope** is everything that must match *exactly* before a semantic hit is allowed: the endpoint,
  query, non-text parameters (model, max_tokens, temperature, stop …), every message but the last user turn
  (system prompt and earlier turns) and the **structural guard** of the last turn (numbers, dates,
  identifiers, proper nouns, negations, order/direction/format words: ``semcache.guard``). Only the last
  turn is compared by embedding, inside one scope, and only when the embedder sees all of it.
- Every hash input is a JSON array (length-delimited by construction): no two different inputs join to one
  string.
- The tenant is the verified caller (``semcache.identity``); nothing about the caller is stored.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from semcache.guard import content_words, structural_guard

CHAT = "chat"
COMPLETIONS = "completions"
ENDPOINTS = {"/v1/chat/completions": CHAT, "/v1/completions": COMPLETIONS}
FORMAT_ONLY = frozenset({"stream", "stream_options", "user"})
"""Parameters that change how the answer is delivered or attributed, not what it says."""
NEVER_CACHED = ("tools", "functions", "tool_choice", "function_call", "parallel_tool_calls", "logprobs",
                "top_logprobs", "audio", "modalities", "prediction")  # fmt: skip
"""Parameters whose presence makes an answer unfit to replay: tool and function calling (the answer drives
actions), log probabilities (a replay would need the same token-level data), audio output."""
_SPACE = re.compile(r"\s+")


def _h(*parts: Any) -> str:
    """SHA-256 of the parts as one JSON array: unambiguous whatever the parts contain."""
    return hashlib.sha256(json.dumps(parts, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()[:32]


def normalise_text(text: str) -> str:
    """Whitespace collapsed and trimmed; case and punctuation kept (``US`` is not ``us``)."""
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class Keyed:
    """A cacheable request, reduced to what the cache compares."""

    endpoint: str
    exact: str
    """Hash of the whole normalised request (minus format-only parameters)."""
    scope: str
    """Hash of what must match exactly for a semantic hit."""
    text: str
    """The last user turn (chat) or the prompt (completions): what gets embedded."""
    words: tuple[str, ...]
    """The text's content words, hashed, in order (``semcache.guard.same_order``)."""
    stream: bool
    include_usage: bool
    temperature_zero: bool


class NotCacheable(ValueError):
    """The request cannot be cached; the message is the reason (logged and sent as ``x-cache-reason``)."""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise NotCacheable("non-text message content")


def key_request(endpoint: str, body: Any, query: str = "") -> Keyed:
    """Reduce an OpenAI-compatible request body (and the URL's query string) to its cache keys, or raise
    :class:`NotCacheable`."""
    if not isinstance(body, dict):
        raise NotCacheable("body is not a JSON object")
    for name in NEVER_CACHED:
        value = body.get(name)
        if value is not None and value is not False and value != []:
            raise NotCacheable(f"{name} requested")
    for name in ("n", "best_of"):
        if body.get(name, 1) not in (1, None):
            raise NotCacheable(f"{name} > 1" if name == "n" else f"{name} is not 1")
    params = {k: v for k, v in body.items() if k not in FORMAT_ONLY and k not in ("messages", "prompt")}
    if endpoint == CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise NotCacheable("no messages")
        for m in messages:
            extra = {k: v for k, v in m.items() if k not in ("role", "content")}
            if extra or m.get("role") in ("tool", "function"):
                raise NotCacheable("messages carry tool calls or names")
        turns = [(str(m.get("role", "")), normalise_text(_content_text(m.get("content", "")))) for m in messages]
        if turns[-1][0] != "user":
            raise NotCacheable("last message is not a user turn")
        context, text = turns[:-1], turns[-1][1]
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise NotCacheable("prompt is not a single string")
        context, text = [], normalise_text(prompt)
    canon = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    temperature = body.get("temperature")
    stream_options = body.get("stream_options")
    return Keyed(
        endpoint=endpoint,
        exact=_h("exact", endpoint, query, canon, context, text),
        scope=_h("scope", endpoint, query, canon, context, structural_guard(text)),
        text=text,
        words=tuple(content_words(text)),
        stream=bool(body.get("stream", False)),
        include_usage=isinstance(stream_options, dict) and bool(stream_options.get("include_usage")),
        temperature_zero=isinstance(temperature, int | float) and float(temperature) == 0.0,
    )


def json_depth(value: Any, limit: int) -> bool:
    """Whether ``value`` nests at most ``limit`` levels (iterative: a deep body cannot exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            if d > limit:
                return False
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return True

"""What makes two requests "the same": normalisation, scope, the tenant hash and reuse safety.

- The **exact key** hashes the endpoint, every non-text parameter and every message with its
  whitespace collapsed: a hit returns the answer to a request that differs only in spacing, key
  order or the ``stream`` flag.
- The **scope** is everything that must match *exactly* before a semantic hit is allowed: the
  endpoint, the non-text parameters (model, max_tokens, temperature, stop …), every message but the
  last user turn (system prompt and earlier turns) and the **literal guard** of the last turn (its
  numbers and negation words). Only the last turn is compared by embedding, inside one scope.
- The **tenant** is a hash of the caller's identity; nothing about the caller is stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

CHAT = "chat"
COMPLETIONS = "completions"
ENDPOINTS = {"/v1/chat/completions": CHAT, "/v1/completions": COMPLETIONS}
FORMAT_ONLY = frozenset({"stream", "stream_options", "user"})
"""Parameters that change how the answer is delivered or attributed, not what it says."""
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATION = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|without|cannot)\b|n't\b", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def _h(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def normalise_text(text: str) -> str:
    """Whitespace collapsed and trimmed; case and punctuation kept (``US`` is not ``us``)."""
    return _SPACE.sub(" ", text).strip()


def literal_guard(text: str) -> str:
    """The numbers and negation words of ``text``, in order: two questions that differ in a number
    ("2 + 2" vs "2 + 3") or a negation ("is" vs "is not") embed close together but must never share
    an answer, so they never share a scope."""
    numbers = _NUMBER.findall(text)
    negations = [m.lower().replace("n't", "not") for m in _NEGATION.findall(text)]
    return json.dumps([numbers, negations], separators=(",", ":"))


def tenant_of(value: str | None) -> str | None:
    """A stable hash of the caller's identity (None when the request names no caller).

    For ``Bearer <JWT>`` the token's ``iss`` + ``sub`` are used, so one caller keeps one tenant across
    hourly token refreshes. The token is not verified here: Cloud Run's IAM invoker check already
    verified it before the request reached the container (the component never makes the cache public
    unless asked). Any other value (an API key header) is hashed whole."""
    if not value:
        return None
    ident = value.strip()
    scheme, _, token = ident.partition(" ")
    if scheme.lower() == "bearer" and token.count(".") == 2:
        try:
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            if isinstance(claims, dict) and claims.get("sub"):
                ident = f"jwt\x1f{claims.get('iss', '')}\x1f{claims['sub']}"
        except (ValueError, UnicodeDecodeError):
            pass
    return _h("tenant", ident)


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


def key_request(endpoint: str, body: Any) -> Keyed:
    """Reduce an OpenAI-compatible request body to its cache keys, or raise :class:`NotCacheable`."""
    if not isinstance(body, dict):
        raise NotCacheable("body is not a JSON object")
    if body.get("n", 1) not in (1, None):
        raise NotCacheable("n > 1")
    params = {k: v for k, v in body.items() if k not in FORMAT_ONLY and k not in ("messages", "prompt")}
    if endpoint == CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise NotCacheable("no messages")
        turns = [(str(m.get("role", "")), normalise_text(_content_text(m.get("content", "")))) for m in messages]
        for m in messages:
            extra = {k: v for k, v in m.items() if k not in ("role", "content")}
            if extra:
                raise NotCacheable("messages carry tool calls or names")
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
    ctx = json.dumps(context, separators=(",", ":"), ensure_ascii=False)
    temperature = body.get("temperature")
    stream_options = body.get("stream_options")
    return Keyed(
        endpoint=endpoint,
        exact=_h("exact", endpoint, canon, ctx, text),
        scope=_h("scope", endpoint, canon, ctx, literal_guard(text)),
        text=text,
        stream=bool(body.get("stream", False)),
        include_usage=isinstance(stream_options, dict) and bool(stream_options.get("include_usage")),
        temperature_zero=isinstance(temperature, int | float) and float(temperature) == 0.0,
    )

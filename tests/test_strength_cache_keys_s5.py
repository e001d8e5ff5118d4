"""Mutation-strength tests (issue 23, session 5, seed 101's survivors) for ``semcache/keys.py``: the keys a request
gets are the same in every release (the store outlives a deploy), and only a ``user`` turn is ever the question.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.keys import CHAT, COMPLETIONS, NotCacheable, key_request


def test_a_requests_keys_are_the_same_in_every_release() -> None:
    """The entries in the store outlive the revision that wrote them (their TTL is an hour; Memorystore keeps them
    across a deploy), so a new revision must derive the very same keys for the same request, or every deploy empties
    the cache. The values are what this release writes: 32 hex digits (128 bits of SHA-256) each. A change here is
    a deliberate cache flush, to be said in the release notes."""
    chat = key_request(
        CHAT,
        {
            "model": "m", "temperature": 0, "max_tokens": 32,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "What is the capital of France?"}],
        },
    )  # fmt: skip
    assert (chat.exact, chat.scope) == ("3ed0e8e89302cf7e2931fc6a7fecbc80", "ea3267fafceed5fc432f3004e1d59391")
    completion = key_request(
        COMPLETIONS, {"model": "m", "temperature": 0, "prompt": "Once upon a time"}, "api-version=1"
    )
    assert (completion.exact, completion.scope) == (
        "bc0396d2892051dd27c8991ef42d4355",
        "39f9292913304aa677e50314b76130cd",
    )
    # Characters outside ASCII, in a parameter and in the question, are hashed as written (UTF-8), not as JSON
    # `\uXXXX` escapes: a release that switched (`ensure_ascii`) would change these keys and flush every entry whose
    # request is not plain ASCII.
    spanish = key_request(
        CHAT,
        {"model": "m", "temperature": 0, "stop": ["。"],
         "messages": [{"role": "user", "content": "¿Cuál es la capital de Francia?"}]},
    )  # fmt: skip
    assert (spanish.exact, spanish.scope) == ("3017516955883f030e176acab85c729a", "17076b0f54a04099d64f2c399fbf7323")


@pytest.mark.parametrize("role", ["assistant", "system", "developer", "", "User", "usr", "users", "visitor"])
def test_only_a_user_turn_is_the_question(role: str) -> None:
    """A conversation that ends with anything but a ``user`` turn (an assistant prefill, a misspelt or unknown role)
    is not a question the cache can key: it goes to the model with the reason in ``x-cache-reason``. Roles that sort
    after "user" ("usr", "users", "visitor") are refused as surely as the ones before it."""
    body: dict[str, Any] = {
        "model": "m",
        "temperature": 0,
        "messages": [{"role": "user", "content": "Hi"}, {"role": role, "content": "What now?"}],
    }
    with pytest.raises(NotCacheable) as err:
        key_request(CHAT, body)
    assert str(err.value) == "last message is not a user turn"
    body["messages"][-1]["role"] = "user"
    assert key_request(CHAT, body).text == "What now?"

"""Mutation-strength tests (issue 23, session 5, seed 101's survivors) for the structural guard,
``semcache/guard.py``: the second stage compares words across their inflections, and code as written.
"""

from __future__ import annotations

import sys

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.guard import content_words, same_order


def test_a_swap_is_seen_through_plurals_and_code_keeps_its_spelling() -> None:
    """ "Convert users to admins" and "Convert admin to user" embed close together but ask opposite things: the
    words are compared by stem (users → user), so the swap is seen and the semantic hit refused; the same words in
    the same order, in another number, still pass. Code-shaped tokens are not stemmed: ``getUsers`` is not
    ``getUser``."""
    swapped = same_order(content_words("Convert users to admins"), content_words("Convert admin to user"))
    assert swapped is False
    assert same_order(content_words("Convert users to admins"), content_words("Convert user to admin")) is True
    assert content_words("Call getUsers") != content_words("Call getUser")

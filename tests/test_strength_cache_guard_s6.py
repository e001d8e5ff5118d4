"""Mutation-strength tests (issue 23, session 6, seed 171's survivors) for the structural guard,
``semcache/guard.py``, through what a caller and an operator see: the answer the real cache gives over HTTP to a
near-miss of a cached question (``x-cache: miss`` and the model's own answer, not the cached one), and the keys a
request gets, which outlive a deploy.

Each near-miss pair below embeds above the shipped threshold (checked with the real model first), so the cache
would answer it from the stored entry if the guard let it through: the miss is the guard's doing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pytest

from .conftest import ROOT
from .test_cache import THRESHOLD, caller, chat, content
from .test_cache import embedder as embedder  # the real model, the real store, the counting upstream
from .test_cache import store as store
from .test_cache import stub as stub
from .test_cache_support import Embedder, StoreServer, StubUpstream, run_cache

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.guard import markers, numbers
from semcache.keys import CHAT, key_request


@pytest.fixture
def cache(stub: tuple[StubUpstream, str], store: StoreServer, embedder: Embedder) -> Iterator[str]:
    with run_cache(stub[1], store.port, embedder, threshold=THRESHOLD) as base:
        yield base


def similarity(embedder: Embedder, a: str, b: str) -> float:
    va, vb = embedder.embed(a), embedder.embed(b)
    return float(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb)))


def assert_near_miss(cache: str, stub: tuple[StubUpstream, str], embedder: Embedder, stored: str, asked: str) -> None:
    """``asked`` embeds as close to ``stored`` as a paraphrase, yet asks something else: after ``stored`` is cached,
    ``asked`` goes to the model and gets its own answer."""
    assert similarity(embedder, stored, asked) >= THRESHOLD, "not a near-miss: the embedding alone tells them apart"
    upstream, _ = stub
    who = caller()
    first = chat(cache, stored, who)
    assert first.headers["x-cache"] == "miss"
    calls = len(upstream.calls)
    near = chat(cache, asked, who)
    assert near.headers["x-cache"] == "miss", f"{asked!r} was answered with the cached answer to {stored!r}"
    assert content(near) == f"answer #{calls + 1} to: {asked}" and len(upstream.calls) == calls + 1


def assert_paraphrase_hits(
    cache: str, stub: tuple[StubUpstream, str], embedder: Embedder, stored: str, asked: str
) -> None:
    """``asked`` says the same as ``stored`` in other words: it is answered from the cache."""
    upstream, _ = stub
    who = caller()
    first = chat(cache, stored, who)
    calls = len(upstream.calls)
    para = chat(cache, asked, who)
    assert para.headers["x-cache"] == "hit", f"{asked!r} is {stored!r} reworded, yet missed"
    assert para.headers["x-cache-match"] == "semantic"
    assert content(para) == content(first) and len(upstream.calls) == calls


# --- seed 171, l.297: a prefix negates only a word of four letters or more --------------------------------------


def test_a_word_that_only_starts_like_a_negation_is_not_one(
    cache: str, stub: tuple[StubUpstream, str], embedder: Embedder
) -> None:
    """ "debug" starts with "de" but is not the negation of "bug": "How can I debug a segfault …?" and "How can I find
    the bug behind a segfault …?" ask the same and share the answer. Only a prefix followed by four letters or more
    reads as a negated word (unsafe / safe, invalid / valid); a shorter rest (de-bug, in-put, im-age) is a word of
    its own, and reading it as a negation would turn a paraphrase into a miss."""
    assert_paraphrase_hits(
        cache,
        stub,
        embedder,
        "How can I debug a segfault in my C program?",
        "How can I find the bug behind a segfault in my C program?",
    )


# --- seed 181, l.316: a question that names a word and its negation is not its own negation ----------------------


def test_a_question_naming_both_a_word_and_its_negation_still_hits_its_paraphrase(
    cache: str, stub: tuple[StubUpstream, str], embedder: Embedder
) -> None:
    """The negation check refuses a candidate whose prompt uses "unsafe" where the other uses "safe"; a question that
    asks about both ("safe vs unsafe", "valid and … invalid") is compared with a rewording of itself that asks about
    both too, and gets the cached answer."""
    assert_paraphrase_hits(cache, stub, embedder, "Explain safe vs unsafe Rust", "Explain safe versus unsafe Rust")
    assert_paraphrase_hits(
        cache,
        stub,
        embedder,
        "Which of these email addresses are valid and which are invalid?",
        "Which of these email addresses are valid, and which invalid?",
    )


# --- seed 171, l.190: a digit ordinal is a position, as its word is (a bug the survivor showed) -----------------


def test_a_digit_ordinal_is_a_position_not_a_count(
    cache: str, stub: tuple[StubUpstream, str], embedder: Embedder
) -> None:
    """ "List the 5th largest city in France" asks for one city, "List the 5 largest cities in France" for five; they
    embed at 0.97. Before session 6 the guard read "5th" as the number 5, put both in one scope, and the cache
    answered the first with the second's cached answer. "5th" is the position #5, as "fifth" is."""
    assert_near_miss(
        cache, stub, embedder, "List the 5 largest cities in France", "List the 5th largest city in France"
    )
    assert_near_miss(cache, stub, embedder, "Give me 10 prime numbers", "Give me the 10th prime number")


def test_a_digit_ordinal_and_its_word_are_the_same_question(
    cache: str, stub: tuple[StubUpstream, str], embedder: Embedder
) -> None:
    """ "the 5th largest city" and "the fifth largest city" are one question, and the cache answers the second from
    the first."""
    assert_paraphrase_hits(
        cache, stub, embedder, "List the 5th largest city in France", "List the fifth largest city in France"
    )
    assert_paraphrase_hits(cache, stub, embedder, "Give me the 10th prime number", "Give me the tenth prime number")


@pytest.mark.parametrize(
    ("text", "want"),
    [("the 1st", ["#1"]), ("the 22nd", ["#22"]), ("the 3rd", ["#3"]), ("the 4th", ["#4"]), ("the 1,000th", ["#1000"]),
     ("1st or 1", ["#1", "1"]), ("5 or fifth", ["5", "#5"])],
)  # fmt: skip
def test_every_ordinal_suffix_reads_as_a_position(text: str, want: list[str]) -> None:
    assert numbers(text) == want


# --- seed 171, l.206: a range's bound after its hyphen is a number ----------------------------------------------


def test_each_bound_of_a_range_is_a_number(cache: str, stub: tuple[StubUpstream, str], embedder: Embedder) -> None:
    """ "Is it safe to take 2-3 ibuprofen a day?" and "… 2-6 ibuprofen a day?" embed at 0.98; the second bound is
    the answer-changing literal. It is read with its sign (``-3``, as a signed number is: no code token or word
    carries it), so the two ranges are in different scopes."""
    assert_near_miss(
        cache, stub, embedder, "Is it safe to take 2-3 ibuprofen a day?", "Is it safe to take 2-6 ibuprofen a day?"
    )
    assert numbers("2-3 or +4 and -5") == ["2", "-3", "4", "-5"]


# --- seed 171, l.246: a plural day is that day ---------------------------------------------------------------


def test_a_plural_day_is_that_day(cache: str, stub: tuple[StubUpstream, str], embedder: Embedder) -> None:
    """ "Are banks open on weekends?" and "Are banks open on weekdays?" embed at 0.94 and have opposite answers: a
    plural day ("weekends", "mondays", written in lower case so no proper noun tells them apart) is that day, part of
    the question's scope."""
    assert_near_miss(cache, stub, embedder, "Are banks open on weekends?", "Are banks open on weekdays?")
    assert_near_miss(cache, stub, embedder, "do trains run later on fridays?", "do trains run later on saturdays?")


# --- seed 171, l.40: a month is its calendar number, in every release -------------------------------------------

MONTHS = {
    "January": 1, "Jan": 1, "February": 2, "Feb": 2, "March": 3, "Mar": 3, "April": 4, "Apr": 4, "May": 5,
    "June": 6, "Jun": 6, "July": 7, "Jul": 7, "August": 8, "Aug": 8, "September": 9, "Sep": 9, "Sept": 9,
    "October": 10, "Oct": 10, "November": 11, "Nov": 11, "December": 12, "Dec": 12,
}  # fmt: skip
"""Month names and abbreviations and their calendar numbers (written here, not read from the module)."""


def test_a_question_naming_a_month_keeps_its_keys_across_a_deploy() -> None:
    """A month is part of a question's semantic scope, and the scope key is what a cached entry is found by after
    the revision that wrote it is replaced (entries live an hour; Memorystore keeps them across a deploy). The key a
    question naming a month gets is the one this release writes; a change is a deliberate cache flush."""

    def scope(month: str) -> str:
        question = {"role": "user", "content": f"Any holidays in {month} 5?"}
        return key_request(CHAT, {"model": "m", "temperature": 0, "messages": [question]}).scope

    assert {month: scope(month) for month in ("January", "June", "December")} == {
        "January": "03544bea81a8b323b276a276476c164d",
        "June": "919ab016f48bdb5fb5b40df3314d05fa",
        "December": "08d06b1096aee6c0c985ca71bb2e5f72",
    }


@pytest.mark.parametrize(("name", "number"), MONTHS.items())
def test_a_month_is_read_as_its_calendar_number(name: str, number: int) -> None:
    """What the scope key hashes for a month is its calendar number (and the same for its abbreviation): the
    pinned keys above stay valid exactly while these do."""
    assert markers(f"Any holidays in {name} 5?") == [f"month:{number}"]


# --- seed 181, l.238: a capitalised class word or stop word is not a proper noun ----------------------------------


def test_a_capitalised_class_word_is_still_that_word(
    cache: str, stub: tuple[StubUpstream, str], embedder: Embedder
) -> None:
    """ "Sort these numbers in Descending order" is "… in descending order" with a capital for emphasis: the word is
    read as its contrast class, not as a name, so the cached answer is given."""
    assert_paraphrase_hits(
        cache, stub, embedder, "Sort these numbers in Descending order", "Sort these numbers in descending order"
    )
    assert_paraphrase_hits(
        cache,
        stub,
        embedder,
        "Write a Formal email asking for a day off, Please",
        "Write a formal email asking for a day off, please",
    )

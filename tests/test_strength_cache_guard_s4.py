"""Mutation-strength tests (issue 23, session 4) for the structural guard, ``semcache/guard.py``: the word tables
are the guard, so each entry is pinned by what it must do to a prompt.

- A number spelled out is the same question as its digits ("three apples" and "3 apples" share a scope), and
  two different numbers never are: every number word against its value, one more and one less.
- Each ordinal is its own position ("the ninth" is not "the tenth"), each contrast class puts its words in
  another scope than a neutral word, and the plural of a named unit is that unit.
"""

from __future__ import annotations

import sys

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.guard import content_words, markers, numbers, same_order, structural_guard

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
    "trillion": "1000000000000", "dozen": "12", "couple": "2", "pair": "2", "single": "1", "twice": "2",
    "thrice": "3", "once": "1", "half": "0.5", "quarter": "0.25", "double": "2", "triple": "3",
}  # fmt: skip
"""English number words and the digits that say the same (written here, not read from the module)."""

ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
    "tenth": 10, "eleventh": 11, "twelfth": 12, "twentieth": 20, "hundredth": 100, "last": -1, "penultimate": -2,
}  # fmt: skip

CLASS_WORDS = {
    "order:asc": "ascending", "order:desc": "descending", "dir:from": "from", "dir:into": "into",
    "dir:between": "between", "dir:vs": "versus", "incl:except": "except", "incl:including": "including",
    "incl:only": "only", "quant:all": "every", "quant:some": "several", "io:out": "outside", "cmp:more": "larger",
    "cmp:less": "smaller", "pos:first": "beginning", "pos:last": "end", "side:left": "left", "side:right": "right",
    "act:add": "insert", "act:remove": "delete", "tone:formal": "formal", "tone:casual": "casual",
    "tone:funny": "funny", "tone:happy": "cheerful", "tone:sad": "sad", "tone:angry": "angry",
    "tone:sarcastic": "sarcastic", "tone:simple": "simple", "tone:expert": "technical", "len:short": "brief",
    "len:long": "lengthy", "fmt:json": "json", "fmt:yaml": "yaml", "fmt:xml": "xml", "fmt:csv": "csv",
    "fmt:table": "table", "fmt:list": "bullet", "fmt:markdown": "markdown", "fmt:html": "html", "fmt:code": "snippet",
    "fmt:prose": "paragraph", "fmt:poem": "haiku", "fmt:letter": "email", "fmt:diagram": "diagram",
    "fmt:steps": "tutorial", "fmt:example": "example", "fmt:compare": "comparison", "fmt:explain": "why",
    "fmt:define": "definition", "fmt:translate": "translate", "fmt:who": "who", "fmt:when": "when",
    "fmt:where": "where",
}  # fmt: skip
"""One word of every contrast class, and the class it must be read as."""


@pytest.mark.parametrize(("word", "digits"), NUMBER_WORDS.items())
def test_a_number_word_is_its_digits_and_no_other_number(word: str, digits: str) -> None:
    assert numbers(f"Add {word} apples") == [digits]
    assert structural_guard(f"add {word} apples") == structural_guard(f"add {digits} apples")
    value = float(digits)
    for other in {value + 1, value - 1, value * 10} - {value}:
        other_digits = repr(int(other)) if other == int(other) else repr(other)
        assert structural_guard(f"add {word} apples") != structural_guard(f"add {other_digits} apples")


@pytest.mark.parametrize(("word", "position"), ORDINALS.items())
def test_each_ordinal_is_its_own_position(word: str, position: int) -> None:
    assert numbers(f"Show the {word} row") == [f"#{position}"]
    others = [w for w in ORDINALS if w != word]
    assert all(structural_guard(f"show the {word} row") != structural_guard(f"show the {o} row") for o in others)


def test_hyphenated_number_words_add_up() -> None:
    assert numbers("twenty-five and ninety-nine, but twenty five") == ["25", "99", "20", "5"]


@pytest.mark.parametrize(("cls", "word"), CLASS_WORDS.items())
def test_every_contrast_class_keeps_its_words_apart_from_a_neutral_one(cls: str, word: str) -> None:
    assert markers(f"write {word} please") == [cls]
    assert structural_guard(f"write {word} please") != structural_guard("write blue please")


def test_every_contrast_class_is_pinned_here() -> None:
    from semcache.guard import _CLASSES

    assert set(CLASS_WORDS) == set(_CLASSES), "a new class needs its word above"


@pytest.mark.parametrize(("text", "want"), [("dogs", ["named:dog"]), ("inches", ["named:inches"]),
                                              ("celsius", ["named:celsius"]), ("kilograms", ["named:kilogram"]),
                                              ("values", ["named:value"]), ("wolves", [])])  # fmt: skip
def test_a_named_unit_and_its_plural_are_the_unit(text: str, want: list[str]) -> None:
    """The plural of a named word is that word ("dogs" is "dog"); "inches" is listed itself ("inche" is not)."""
    assert markers(f"how many {text}") == want


def test_two_letter_words_count_and_one_letter_words_do_not() -> None:
    """Content words: "ox" and "yak" are words the order check compares, "x" is not."""
    assert len(content_words("ox")) == 1 and content_words("x") == []
    assert not same_order(content_words("ox eats yak grass"), content_words("yak eats ox grass"))
    assert same_order(content_words("an ox eats"), content_words("the ox eats"))


def test_the_order_check_compares_only_shared_words() -> None:
    a, b = content_words("convert celsius to fahrenheit quickly"), content_words("convert fahrenheit to celsius")
    assert not same_order(a, b)
    assert same_order(
        content_words("convert celsius to fahrenheit"), content_words("please convert celsius, then fahrenheit now")
    )
    assert not same_order(content_words("is it safe"), content_words("is it unsafe"))
    assert not same_order(content_words("is it unsafe"), content_words("is it safe"))
    # a word with a negating prefix is matched by itself: the same question, reworded around it, is compatible
    assert same_order(content_words("is this thread unsafe"), content_words("tell me: is this thread unsafe?"))
    assert not same_order(content_words("unsafe thread, or safe"), content_words("safe thread, or unsafe"))

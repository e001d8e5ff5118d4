"""Issue 23, session 6 on ``stack/loadtest.py``: seed 161's survivor (the real-shape prompt's minimum of one word)
and the survivors of fresh seeds drawn after it, each pinned where an operator sees it (the request body sent to the
server, the report, the plot)."""

from __future__ import annotations

import pytest

from stack.loadtest import WORDS, Shape

PREFIX = "Continue this text: "


def _prompt_words(shape: Shape, i: int) -> list[str]:
    content = shape.body(i, "m")["messages"][0]["content"]
    assert isinstance(content, str) and content.startswith(PREFIX)
    return content.removeprefix(PREFIX).split()


@pytest.mark.parametrize(("prompt_tokens", "words"), [(1, 1), (2, 1), (8, 1), (9, 1), (10, 2), (11, 3), (64, 56)])
def test_a_short_real_shape_prompt_still_sends_one_word_and_longer_ones_leave_eight_tokens_for_the_template(
    prompt_tokens: int, words: int
) -> None:
    """A ``--prompt-tokens`` shape of N tokens (no spread) sends N − 8 one-token words after "Continue this text: "
    (the instruction and the chat template take the other eight), and never fewer than one: a 1- to 9-token shape
    is the shortest prompt the driver can send, one word — not two, and not an empty text to continue."""
    shape = Shape(prompt_tokens, 0, 16, 0)
    for i in range(3):
        sent = _prompt_words(shape, i)
        assert len(sent) == words and set(sent) <= set(WORDS)


def test_a_spread_shape_whose_draw_is_clipped_to_one_token_sends_one_word() -> None:
    """A 2 ± 5-token shape draws lengths clipped to [1, 17]; every request whose draw is at most 9 tokens sends one
    word, the rest N − 8."""
    shape = Shape(2, 5, 4, 0, seed=11)
    drawn = [shape.lengths(i)[0] for i in range(40)]
    assert min(drawn) == 1 and any(n > 9 for n in drawn)
    for i, n in enumerate(drawn):
        assert len(_prompt_words(shape, i)) == (1 if n <= 9 else n - 8), (i, n)

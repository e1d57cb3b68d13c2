"""contract.vocab.rank_order, the one implementation of the ranking rule, against the rule written out."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from s2s_aws.contract import vocab


def _by_the_words_of_the_rule(counts: dict, num_words: int, min_count: int) -> list:
    """Count >= min_count, specials left out, by count descending, ties by the word descending, first num_words."""
    words = [w for w, c in counts.items() if c >= min_count and w not in vocab.SPECIALS]
    return sorted(words, key=lambda w: (-counts[w], [-ord(ch) for ch in w] + [1]))[:num_words]


WORDS = st.sampled_from(["a", "b", "ab", "ba", "é", "の", "\U0001f600", "<unk>", "<s>", "z", "zz"]) | st.text(max_size=4)


@settings(max_examples=300, deadline=None)
@given(counts=st.dictionaries(WORDS, st.integers(1, 5), max_size=30), num_words=st.integers(0, 12),
       min_count=st.integers(1, 4))
def test_build_vocab_follows_the_rule(counts, num_words, min_count):
    v = vocab.build_vocab(counts, num_words, min_count)
    expected = _by_the_words_of_the_rule(counts, num_words, min_count)
    assert list(v) == list(vocab.SPECIALS) + expected
    assert list(v.values()) == list(range(len(v)))
    as_bytes = vocab.build_vocab_bytes({w.encode(): c for w, c in counts.items()}, num_words, min_count)
    assert as_bytes == v and list(as_bytes) == list(v)


def test_rank_order_on_arrays():
    counts = np.array([3, 1, 3, 2, 5, 2])
    descending = np.array([5, 4, 3, 2, 1, 0])  # the words' descending order
    assert vocab.rank_order(counts, descending, 10, 1).tolist() == [4, 2, 0, 5, 3, 1]
    assert vocab.rank_order(counts, descending, 3, 1).tolist() == [4, 2, 0]
    assert vocab.rank_order(counts, descending, 10, 3).tolist() == [4, 2, 0]
    assert vocab.rank_order(counts, descending[2:], 10, 1).tolist() == [2, 0, 3, 1]  # words 5, 4 left out
    assert vocab.rank_order(counts, descending[:0], 10, 1).tolist() == []

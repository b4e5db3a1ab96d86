r"""Vectorized n-gram counting: every order's table from one ``np.unique`` over packed keys."""

from __future__ import annotations

__all__ = ["NGramCounts", "count_ngrams"]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .vocabulary import Vocabulary


@dataclass
class NGramCounts:
    r"""The n-grams of a corpus, order by order, stored as a trie in flat arrays.

    Entry ``e`` of order :math:`n` is the n-gram whose first :math:`n - 1` words are entry
    ``contexts[n-1][e]`` of order :math:`n - 1` and whose last word is ``words[n-1][e]``. Its key
    is ``contexts * len(vocabulary) + words``; entries are sorted by key, so all continuations of a
    context are contiguous and a look-up is a binary search. Order 1 is dense: entry ``w`` is word
    ``w`` (count 0 for words that never occur), so every vocabulary word has a unigram.

    Sentences are written ``<s> w_1 ... w_m </s>``: an n-gram never crosses a sentence boundary,
    and the n-grams that start with ``<s>`` are the shorter histories of a sentence's first words
    (one ``<s>``, as in ARPA files and KenLM).

    Attributes (lists indexed by ``order - 1``):
        keys: Sorted ``int64`` keys, shape ``(E_n,)``.
        contexts: Entry of order :math:`n-1` with the first :math:`n-1` words (0 at order 1).
        words: Last word of each entry.
        counts: Number of occurrences in the corpus (``int64``).
        suffixes: Entry of order :math:`n-1` with the last :math:`n-1` words (-1 at order 1).
        first_words: First word of each entry.

    Example:
        >>> sentences = [["a", "b", "a"], ["b", "a"], ["a", "a", "b"]]
        >>> counts = count_ngrams(sentences, 2, Vocabulary.build(sentences))
        >>> counts.num_sentences, counts.num_tokens, counts.num_entries(2)
        (3, 11, 7)
        >>> counts.ngram_tokens(2)[:2].tolist()  # (<s> a), (<s> b): word ids of each bigram
        [[1, 3], [1, 4]]
    """

    vocabulary: Vocabulary
    order: int
    keys: list[np.ndarray]
    contexts: list[np.ndarray]
    words: list[np.ndarray]
    counts: list[np.ndarray]
    suffixes: list[np.ndarray]
    first_words: list[np.ndarray]
    num_sentences: int
    num_tokens: int

    def num_entries(self, order: int) -> int:
        return len(self.keys[order - 1])

    def continuation_counts(self, order: int) -> np.ndarray:
        r""":math:`N_{1+}(\bullet\, g)` for every entry :math:`g` of ``order`` < the maximum: the
        number of distinct words seen just before :math:`g` (Kneser & Ney 1995)."""
        if not 1 <= order < self.order:
            raise ValueError(f"continuation counts need an order below {self.order}, got {order}")
        return np.bincount(self.suffixes[order], minlength=self.num_entries(order)).astype(
            np.int64
        )

    def ngram_tokens(self, order: int) -> np.ndarray:
        """Word ids of every entry of ``order``, shape ``(E_n, n)``."""
        columns = [self.words[order - 1]]
        entries = self.contexts[order - 1]
        for lower in range(order - 1, 0, -1):
            columns.append(self.words[lower - 1][entries])
            entries = self.contexts[lower - 1][entries]
        return np.stack(columns[::-1], axis=1)


def count_ngrams(
    sentences: Iterable[Sequence[str]], order: int, vocabulary: Vocabulary
) -> NGramCounts:
    r"""Counts every n-gram of orders :math:`1..` ``order`` in tokenized sentences.

    One pass per order: the key of the n-gram ending at position :math:`t` is the id of the
    (n-1)-gram ending at :math:`t - 1` times the vocabulary size plus the word at :math:`t`, so
    keys stay small for any order, and ``np.unique`` over all positions gives the table, its counts
    and every position's entry (reused by the next order). Memory and time are
    :math:`O(\text{order} \cdot T \log T)` for :math:`T` tokens.

    Raises:
        ValueError: ``order < 1`` or an empty corpus.
        UnknownTokenError: A token is out of a vocabulary that has no ``<unk>``.

    Example:
        >>> sentences = [["a", "b", "a"], ["b", "a"], ["a", "a", "b"]]
        >>> counts = count_ngrams(sentences, 2, Vocabulary.build(sentences))
        >>> counts.counts[0].tolist()  # unigrams <unk>, <s>, </s>, a, b
        [0, 3, 3, 5, 3]
    """
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"the order must be an integer of at least 1, got {order!r}")
    flat, offsets = vocabulary.encode_corpus(sentences)
    return count_encoded(flat, offsets, order, vocabulary)


def count_encoded(
    flat: np.ndarray, offsets: np.ndarray, order: int, vocabulary: Vocabulary
) -> NGramCounts:
    """:func:`count_ngrams` on a corpus already encoded by :meth:`Vocabulary.encode_corpus`."""
    num_sentences = len(offsets) - 1
    if num_sentences == 0:
        raise ValueError("cannot count n-grams of an empty corpus")
    size = len(vocabulary)
    lengths = np.diff(offsets)
    # depth[t]: how many tokens of its sentence precede position t (0 at the <s>).
    depth = np.arange(len(flat)) - np.repeat(offsets[:-1], lengths)

    keys = [np.arange(size, dtype=np.int64)]
    contexts = [np.zeros(size, dtype=np.int64)]
    words = [keys[0].copy()]
    counts = [np.bincount(flat, minlength=size).astype(np.int64)]
    suffixes = [np.full(size, -1, dtype=np.int64)]
    first_words = [keys[0].copy()]
    entry_at = flat.copy()  # entry of the current order ending at each position
    for n in range(2, order + 1):
        positions = np.flatnonzero(depth >= n - 1)
        packed = entry_at[positions - 1] * size + flat[positions]
        unique, first, inverse, count = np.unique(
            packed, return_index=True, return_inverse=True, return_counts=True
        )
        suffixes.append(entry_at[positions[first]])
        next_entry_at = np.full(len(flat), -1, dtype=np.int64)
        next_entry_at[positions] = inverse
        entry_at = next_entry_at
        keys.append(unique)
        contexts.append(unique // size)
        words.append(unique % size)
        counts.append(count.astype(np.int64))
        first_words.append(first_words[-1][contexts[-1]])
    return NGramCounts(
        vocabulary=vocabulary,
        order=order,
        keys=keys,
        contexts=contexts,
        words=words,
        counts=counts,
        suffixes=suffixes,
        first_words=first_words,
        num_sentences=num_sentences,
        num_tokens=int(len(flat) - num_sentences),
    )

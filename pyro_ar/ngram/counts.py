r"""Vectorized n-gram counting: every order's table from one ``np.unique`` over packed keys."""

from __future__ import annotations

__all__ = [
    "NGramCounts",
    "check_order",
    "check_training_special_tokens",
    "count_encoded",
    "count_in_shards",
    "count_ngrams",
    "merge_counts",
]

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

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

    ``first_occurrence`` holds, for each vocabulary word, the position of its first occurrence in
    the encoded corpus (``<s> w_1 .. </s>`` sentence after sentence), or ``-1`` if it never
    occurs: KenLM numbers words in that order (see ``discount_statistics`` in
    :func:`~pyro_ar.ngram.smoothing.modified_kneser_ney`).

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
    first_occurrence: np.ndarray | None = None

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


def check_order(order: object) -> int:
    """``order`` if it is an integer of at least 1 (``True`` is not an order), else
    ``ValueError``.

    Example:
        >>> check_order(3)
        3
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"the order must be an integer of at least 1, got {order!r}")
    return int(order)


def check_training_special_tokens(special_tokens: str) -> None:
    """``ValueError`` for ``special_tokens="allow"``, a mode for scoring: training text takes
    ``"error"``, ``"skip"`` or ``"unknown"`` (the others are checked by the encoder).

    Example:
        >>> check_training_special_tokens("skip")
    """
    if special_tokens == "allow":
        raise ValueError(
            "special_tokens='allow' is for scoring; training text takes 'error', "
            "'skip' or 'unknown'"
        )


def count_ngrams(
    sentences: Iterable[Sequence[str]],
    order: int,
    vocabulary: Vocabulary,
    special_tokens: str = "error",
) -> NGramCounts:
    r"""Counts every n-gram of orders :math:`1..` ``order`` in tokenized sentences.

    One pass per order: the key of the n-gram ending at position :math:`t` is the id of the
    (n-1)-gram ending at :math:`t - 1` times the vocabulary size plus the word at :math:`t`, so
    keys stay small for any order, and ``np.unique`` over all positions gives the table, its counts
    and every position's entry (reused by the next order). Memory and time are
    :math:`O(\text{order} \cdot T \log T)` for :math:`T` tokens.

    Arguments:
        special_tokens: ``<s>``, ``</s>`` and ``<unk>`` found in the text are an error
            (``"error"``, as ``lmplz``), dropped (``"skip"``, ``lmplz --skip_symbols``), or,
            for ``<unk>`` only, counted as the unknown word (``"unknown"``); see
            :meth:`~pyro_ar.ngram.vocabulary.Vocabulary.encode_corpus`.

    Raises:
        ValueError: ``order`` is not an integer of at least 1, or an empty corpus.
        SpecialTokenError: ``<s>``, ``</s>`` or ``<unk>`` inside a sentence.
        UnknownTokenError: A token is out of a vocabulary that has no ``<unk>``.

    Example:
        >>> sentences = [["a", "b", "a"], ["b", "a"], ["a", "a", "b"]]
        >>> counts = count_ngrams(sentences, 2, Vocabulary.build(sentences))
        >>> counts.counts[0].tolist()  # unigrams <unk>, <s>, </s>, a, b
        [0, 3, 3, 5, 3]
    """
    order = check_order(order)
    check_training_special_tokens(special_tokens)
    flat, offsets = vocabulary.encode_corpus(sentences, special_tokens=special_tokens)
    return count_encoded(flat, offsets, order, vocabulary)


def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(values, return_index=True, return_inverse=True, return_counts=True)`` with an
    unstable sort (about 3x as fast): the index is of *some* occurrence, not the first."""
    # torch's CPU sort is about 1.6x NumPy's argsort on int64 keys, and gives the values too
    ordered, order = (t.numpy() for t in torch.sort(torch.from_numpy(values)))
    starts = np.empty(len(values), dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    counts = np.diff(np.append(first, len(values)))
    return ordered[first], order[first], inverse, counts


def _first_occurrences(flat: np.ndarray, size: int) -> np.ndarray:
    """The first position of every word id in ``flat`` (-1 for the absent ones)."""
    # a stable sort of 16-bit keys is a radix sort: 10x faster than sorting int64
    keys = flat.astype(np.uint16) if size <= 1 << 16 else flat
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    first_occurrence = np.full(size, -1, dtype=np.int64)
    first_occurrence[ordered[starts].astype(np.int64)] = order[starts]
    return first_occurrence


def count_encoded(
    flat: np.ndarray, offsets: np.ndarray, order: int, vocabulary: Vocabulary
) -> NGramCounts:
    """:func:`count_ngrams` on a corpus already encoded by :meth:`Vocabulary.encode_corpus`
    (or :meth:`Vocabulary.build_and_encode`): ``flat`` ids and sentence ``offsets``.

    Example:
        >>> vocabulary, flat, offsets = Vocabulary.build_and_encode([["a", "b", "a"]])
        >>> count_encoded(flat, offsets, 2, vocabulary).num_entries(2)  # <s> a, a b, b a, a </s>
        4
    """
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
    first_occurrence = _first_occurrences(flat, size)
    entry_at = flat.copy()  # entry of the current order ending at each position
    for n in range(2, order + 1):
        positions = np.flatnonzero(depth >= n - 1)
        packed = entry_at[positions - 1] * size + flat[positions]
        unique, some, inverse, count = _unique(packed)
        # every occurrence of an n-gram has the same suffix: any one gives it
        suffixes.append(entry_at[positions[some]])
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
        first_occurrence=first_occurrence,
    )


def _trie_from_tokens(
    vocabulary: Vocabulary, tokens: list[np.ndarray], counts: list[np.ndarray]
) -> tuple[list[np.ndarray], ...]:
    """Keys, contexts, words, counts, suffixes and first words of the trie that stores the
    n-grams ``tokens[n-1]`` (``(E_n, n)`` word ids, unique per order) with their counts."""
    size = len(vocabulary)
    keys, contexts, words, sorted_counts, suffixes, first_words = [], [], [], [], [], []
    for n, (grams, values) in enumerate(zip(tokens, counts, strict=True), start=1):
        if n == 1:
            entry = np.arange(size, dtype=np.int64)
            dense = np.zeros(size, dtype=np.int64)
            np.add.at(dense, grams[:, 0], values)
            keys.append(entry)
            contexts.append(np.zeros(size, dtype=np.int64))
            words.append(entry.copy())
            sorted_counts.append(dense)
            suffixes.append(np.full(size, -1, dtype=np.int64))
            first_words.append(entry.copy())
            continue
        context = _find_entries(keys, size, grams[:, :-1])
        suffix = _find_entries(keys, size, grams[:, 1:])
        key = context * size + grams[:, -1]
        order_of_keys = np.argsort(key, kind="stable")
        keys.append(key[order_of_keys])
        contexts.append(context[order_of_keys])
        words.append(grams[order_of_keys, -1])
        sorted_counts.append(values[order_of_keys])
        suffixes.append(suffix[order_of_keys])
        first_words.append(grams[order_of_keys, 0])
    return keys, contexts, words, sorted_counts, suffixes, first_words


def _find_entries(keys: list[np.ndarray], size: int, grams: np.ndarray) -> np.ndarray:
    """Entries of the ``(E, k)`` n-grams ``grams`` in the first ``k`` orders of a trie."""
    entry = grams[:, 0].copy()
    for k in range(1, grams.shape[1]):
        query = entry * size + grams[:, k]
        position = np.searchsorted(keys[k], query)
        entry = position  # every prefix of a counted n-gram is counted
    return entry


def merge_counts(*tables: NGramCounts) -> NGramCounts:
    r"""The counts of the concatenation of the corpora counted in ``tables``: every n-gram's
    count is the sum of its counts, sentences and tokens add up.

    With :func:`count_in_shards` this counts a corpus larger than memory shard by shard; the
    memory is bounded by the number of distinct n-grams, not by the text. All tables must share
    one vocabulary and one order.

    Example:
        >>> sentences = [["a", "b", "a"], ["b", "a"], ["a", "a", "b"]]
        >>> vocabulary = Vocabulary.build(sentences)
        >>> whole = count_ngrams(sentences, 2, vocabulary)
        >>> parts = merge_counts(count_ngrams(sentences[:1], 2, vocabulary),
        ...                      count_ngrams(sentences[1:], 2, vocabulary))
        >>> all((a == b).all() for a, b in zip(whole.counts, parts.counts))
        True
    """
    if not tables:
        raise ValueError("merge_counts needs at least one table")
    first = tables[0]
    for table in tables[1:]:
        if table.vocabulary != first.vocabulary:
            raise ValueError("cannot merge counts over different vocabularies")
        if table.order != first.order:
            raise ValueError(f"cannot merge counts of orders {first.order} and {table.order}")
    if len(tables) == 1:
        return first
    size = len(first.vocabulary)
    tokens, counts = [], []
    for n in range(1, first.order + 1):
        grams = np.concatenate([table.ngram_tokens(n) for table in tables])
        values = np.concatenate([table.counts[n - 1] for table in tables])
        if n > 1:
            # one key per distinct n-gram: the n word ids in base V (exact below 2**63)
            if size**n < 2**63:
                packed = np.zeros(len(grams), dtype=np.int64)
                for column in range(n):
                    packed = packed * size + grams[:, column]
                unique, inverse = np.unique(packed, return_inverse=True)
                grams = grams[np.unique(inverse, return_index=True)[1]]
            else:
                grams, inverse = np.unique(grams, axis=0, return_inverse=True)
            values = np.bincount(inverse.reshape(-1), weights=values).astype(np.int64)
        tokens.append(grams)
        counts.append(values)
    keys, contexts, words, merged, suffixes, first_words = _trie_from_tokens(
        first.vocabulary, tokens, counts
    )
    first_occurrence = None
    if all(table.first_occurrence is not None for table in tables):
        first_occurrence = np.full(size, -1, dtype=np.int64)
        offset = 0  # the tables' corpora are concatenated in order
        for table in tables:
            seen = (first_occurrence < 0) & (table.first_occurrence >= 0)
            first_occurrence[seen] = table.first_occurrence[seen] + offset
            offset += table.num_tokens + table.num_sentences
    return NGramCounts(
        vocabulary=first.vocabulary,
        order=first.order,
        keys=keys,
        contexts=contexts,
        words=words,
        counts=merged,
        suffixes=suffixes,
        first_words=first_words,
        num_sentences=sum(table.num_sentences for table in tables),
        num_tokens=sum(table.num_tokens for table in tables),
        first_occurrence=first_occurrence,
    )


def count_in_shards(
    sentences: Iterable[Sequence[str]],
    order: int,
    vocabulary: Vocabulary,
    shard_size: int = 200_000,
    special_tokens: str = "error",
) -> NGramCounts:
    r""":func:`count_ngrams` for a corpus read lazily (a generator, a file object): counts
    ``shard_size`` sentences at a time and merges the tables as it goes (pairwise, like a binary
    counter, so each n-gram is merged :math:`O(\log S)` times over :math:`S` shards). The text is
    never held in memory; the result equals :func:`count_ngrams` on the whole corpus.

    The vocabulary must be known first (e.g. from a first streaming pass with
    :meth:`Vocabulary.build`, which only keeps word counts). For a file, pass a generator of
    its lines' tokens, ``(line.split() for line in open(path, encoding="utf-8"))``.

    Example:
        >>> sentences = [["a", "b", "a"], ["b", "a"], ["a", "a", "b"]]
        >>> vocabulary = Vocabulary.build(sentences)
        >>> lazily = count_in_shards(iter(sentences), 3, vocabulary, shard_size=1)
        >>> lazily.counts[2].tolist() == count_ngrams(sentences, 3, vocabulary).counts[2].tolist()
        True
    """
    order = check_order(order)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}")
    iterator = iter(sentences)
    stack: list[tuple[int, NGramCounts]] = []  # (number of shards merged, table)
    while True:
        shard = [list(s) for s in itertools.islice(iterator, shard_size)]
        if not shard:
            break
        table, weight = count_ngrams(shard, order, vocabulary, special_tokens), 1
        while stack and stack[-1][0] == weight:
            table, weight = merge_counts(stack.pop()[1], table), 2 * weight
        stack.append((weight, table))
    if not stack:
        raise ValueError("cannot count n-grams of an empty corpus")
    return merge_counts(*(table for _, table in stack))

r"""A smoothed count-based n-gram language model in backoff form, queried in batches on any
device."""

from __future__ import annotations

__all__ = ["NGramModel", "NGramTable", "NGramTableError"]

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..ops.backoff_scores import (
    BackoffTables,
    backoff_log_probs,
    backoff_log_probs_reference,
    find_entries,
)
from ..ops.provenance import attach_provenance, split_provenance
from .counts import (
    NGramCounts,
    check_order,
    check_training_special_tokens,
    count_encoded,
    count_ngrams,
)
from .smoothing import Interpolation, prune, smooth
from .vocabulary import Vocabulary, garbage_collection_paused, token_lists


class NGramTableError(ValueError):
    """The tables of an n-gram model are inconsistent; ``line`` is the source line of the
    offending entry when the tables came from a file.

    Example:
        >>> error = NGramTableError("the keys of order 2 must be sorted", line=12)
        >>> isinstance(error, ValueError), error.line
        (True, 12)
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class NGramTable:
    """The n-grams of one order as words: ``ids`` ``(E, n)`` token ids, their natural-log
    probabilities and backoff weights ``(E,)``, in any order, and optionally the source line of
    each entry (for error messages).

    Example:
        >>> from pyro_ar.ngram import NGramModel, Vocabulary
        >>> vocabulary = Vocabulary(["a"])  # <unk> <s> </s> a
        >>> log_probs = torch.tensor([0.25, 0.0, 0.25, 0.5]).log()  # <s> is never predicted
        >>> table = NGramTable(torch.arange(4).unsqueeze(1), log_probs, torch.zeros(4))
        >>> model = NGramModel.from_tables(vocabulary, [table])
        >>> model.next_log_probs(torch.tensor([[1]])).exp()
        tensor([[0.2500, 0.0000, 0.2500, 0.5000]], dtype=torch.float64)
    """

    ids: Tensor
    log_probs: Tensor
    log_backoffs: Tensor
    lines: Sequence[int] | None = None


def _check_tables(vocabulary, keys, log_probs, log_backoffs) -> None:
    """The invariants every query relies on (``NGramTableError`` otherwise)."""
    if not (len(keys) == len(log_probs) == len(log_backoffs)) or len(keys) == 0:
        raise NGramTableError("keys, log_probs and log_backoffs need one tensor per order")
    size = len(vocabulary)
    if len(keys[0]) != size or not torch.equal(keys[0].cpu(), torch.arange(size)):
        raise NGramTableError("the unigram table must have one entry per vocabulary word")
    for n, (key, prob, backoff) in enumerate(zip(keys, log_probs, log_backoffs, strict=True), 1):
        if key.dim() != 1 or key.dtype != torch.long:
            raise NGramTableError(f"the keys of order {n} must be a 1-D int64 tensor")
        if not (len(key) == len(prob) == len(backoff)):
            raise NGramTableError(f"order {n}: keys, probabilities and backoffs differ in length")
        if len(key) > 1 and not bool((key[1:] > key[:-1]).all()):
            raise NGramTableError(f"the keys of order {n} must be sorted and unique")
        if bool(torch.isnan(prob).any()) or bool((prob > 1e-9).any()):
            raise NGramTableError(f"order {n}: log-probabilities must be <= 0 and not NaN")
        if bool(torch.isnan(backoff).any()) or bool(torch.isposinf(backoff).any()):
            raise NGramTableError(f"order {n}: log backoff weights must be finite or -inf")


class NGramModel:
    r"""An order-:math:`N` n-gram model :math:`p(w_t \mid w_{t-N+1} \dots w_{t-1})` stored in the
    backoff form of ARPA files:

    .. math:: p(w \mid h) = \begin{cases} P(h\,w) & \text{if } h\,w \text{ is stored}, \\
              B(h)\, p(w \mid h') & \text{otherwise,} \end{cases}

    where :math:`h'` drops the first word of :math:`h`, :math:`B(h) = 1` for a context that is
    not stored, and the recursion ends at the unigrams, which cover the whole vocabulary. An
    interpolated estimate :math:`p_n = \alpha_n + \gamma_n p_{n-1}` (see
    :mod:`pyro_ar.ngram.smoothing`) has exactly this form with
    :math:`P(h\,w) = \alpha_n(h, w) + \gamma_n(h) p_{n-1}(w \mid h')` and :math:`B(h) =
    \gamma_{n+1}(h)`; so do models read from ARPA files.

    Tables are sorted ``int64`` keys (``entry of the first n-1 words * V + last word``) with
    ``float64`` natural-log :math:`P` and :math:`B` per entry; a query is one ``searchsorted`` per
    order for a whole batch, on the tables' device. All log-probabilities are natural logs (ARPA
    and KenLM use base 10; :mod:`pyro_ar.ngram.arpa` converts).

    Build one with :meth:`fit` (or :meth:`from_counts`, or :func:`~pyro_ar.ngram.arpa.read_arpa`).

    Arguments:
        vocabulary: Token ids.
        keys, log_probs, log_backoffs: Per order (index ``order - 1``); order 1 is dense
            (``keys[0] == arange(len(vocabulary))``).
        description: How the model was estimated (shown by ``repr``).

    Raises:
        NGramTableError: (a ``ValueError``) the tables are inconsistent: unsorted or duplicate
            keys, lengths that differ, probabilities above one or NaN.

    Example:
        >>> sentences = [["a", "b", "a"], ["b", "a"], ["a", "a", "b"]]
        >>> model = NGramModel.fit(sentences, order=2, smoothing="witten_bell")
        >>> ids, lengths = model.vocabulary.encode_batch([["a", "b"]])  # a b </s>
        >>> next_word = model.next_log_probs(ids[:, :1]).exp()  # p(. | a)
        >>> model.sequence_log_probs(ids).shape, next_word.sum().item()
        (torch.Size([1, 3]), 1.0)
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        keys: Sequence[Tensor],
        log_probs: Sequence[Tensor],
        log_backoffs: Sequence[Tensor],
        description: str = "",
        discounts: Sequence[tuple[float, ...]] = (),
    ):
        _check_tables(vocabulary, keys, log_probs, log_backoffs)
        self.vocabulary = vocabulary
        self.keys = list(keys)
        self.log_probs = list(log_probs)
        self.log_backoffs = list(log_backoffs)
        self.description = description
        self.discounts = list(discounts)
        # the flat tables of the compiled scorer, built on first use (the tables never change)
        self._compiled_tables: BackoffTables | None = None
        self._begin_resets: bool | None = None

    # ----------------------------------------------------------------------------- building
    @classmethod
    def fit(
        cls,
        sentences: Sequence[Sequence[str]] | Sequence[str],
        order: int = 3,
        smoothing: str = "modified_kneser_ney",
        vocabulary: Vocabulary | None = None,
        min_count: int = 1,
        prune: Sequence[int] | None = None,
        limit_vocabulary: Iterable[str] | None = None,
        special_tokens: str = "error",
        **options,
    ) -> NGramModel:
        r"""Counts the n-grams of tokenized sentences and smooths them.

        With the defaults this is KenLM's ``lmplz -o order`` (modified Kneser-Ney, interpolated
        unigrams): the same n-grams, discounts and probabilities (to ``lmplz``'s float32
        precision), given the same sentences (see ``read_sentences(kenlm_compatible=True)``).

        Arguments:
            sentences: Lists of tokens (strings are split on whitespace).
            order: :math:`N \ge 1`.
            smoothing: A method of :data:`~pyro_ar.ngram.smoothing.SMOOTHING_METHODS`:
                ``maximum_likelihood``, ``additive`` (option ``k``), ``witten_bell``,
                ``absolute_discounting`` / ``kneser_ney`` (option ``discount``),
                ``modified_kneser_ney`` (options ``discounts``, ``discount_fallback``,
                ``interpolate_unigrams``).
            vocabulary: Default: built from the sentences with ``min_count`` and ``<unk>``.
            prune: Count thresholds per order, ``lmplz --prune`` style (``[0, 1, 1]`` drops the
                bigrams and trigrams seen once); see :func:`~pyro_ar.ngram.smoothing.prune`.
            limit_vocabulary: Keep only n-grams made of these words (``lmplz
                --limit_vocab_file``); the other words leave the vocabulary and read as
                ``<unk>``.
            special_tokens: ``<s>``, ``</s>`` or ``<unk>`` in the text raise
                :class:`~pyro_ar.ngram.vocabulary.SpecialTokenError` (``"error"``, as
                ``lmplz``); ``"skip"`` drops them (``lmplz --skip_symbols``); ``"unknown"``
                counts a literal ``<unk>`` as the unknown word (Penn Treebank text).

        Example:
            >>> corpus = [["a", "b", "c"], ["a", "b"], ["b", "c", "a"], ["c", "a", "b"]] * 3
            >>> full = NGramModel.fit(corpus, order=2, smoothing="witten_bell")
            >>> pruned = NGramModel.fit(corpus, order=2, smoothing="witten_bell", prune=[0, 3])
            >>> full.num_entries(2), pruned.num_entries(2)  # bigrams seen more than 3 times
            (9, 5)
        """
        order = check_order(order)
        with garbage_collection_paused():
            sentences = token_lists(sentences)
            if len(sentences) == 0:
                raise ValueError("cannot fit an n-gram model to an empty corpus")
            if vocabulary is None:
                check_training_special_tokens(special_tokens)
                vocabulary, flat, offsets = Vocabulary.build_and_encode(
                    sentences, min_count, special_tokens
                )
                counts = count_encoded(flat, offsets, order, vocabulary)
            else:
                counts = count_ngrams(sentences, order, vocabulary, special_tokens)
        weights = smooth(counts, smoothing, **options)
        if prune is None and limit_vocabulary is None:
            return cls.from_interpolation(counts, weights)
        return cls.from_pruned(counts, weights, prune, limit_vocabulary)

    @classmethod
    def from_tables(
        cls, vocabulary: Vocabulary, tables: Sequence[NGramTable], description: str = ""
    ) -> NGramModel:
        """Builds the model from its n-grams given as words, order by order (as an ARPA file
        lists them): computes the keys, sorts each order and checks that no n-gram is listed
        twice and that the first :math:`n - 1` words of each are stored at the order below.

        Raises:
            NGramTableError: naming the n-gram (and its line, when ``lines`` are given).
        """
        size = len(vocabulary)
        if len(tables) == 0:
            raise NGramTableError("from_tables needs at least the unigram table")
        unigrams = tables[0]
        order_of_words = unigrams.ids.reshape(-1)
        if len(order_of_words) != size or not torch.equal(
            order_of_words.sort().values, torch.arange(size)
        ):
            raise NGramTableError("the unigrams must list every vocabulary word once")
        keys = [torch.arange(size)]
        log_probs = [
            torch.empty(size, dtype=torch.float64).index_copy_(
                0, order_of_words, unigrams.log_probs.to(torch.float64)
            )
        ]
        log_backoffs = [
            torch.zeros(size, dtype=torch.float64).index_copy_(
                0, order_of_words, unigrams.log_backoffs.to(torch.float64)
            )
        ]
        for n, table in enumerate(tables[1:], start=2):
            ids = table.ids.reshape(-1, n)
            context = ids[:, 0]
            for k in range(2, n):
                context = cls._lookup_in(keys[k - 1], size, context, ids[:, k - 1])
            missing = torch.nonzero(context < 0).flatten()
            if len(missing):
                index = int(missing[0])
                words = " ".join(vocabulary.itos[i] for i in ids[index].tolist())
                raise NGramTableError(
                    f"the {n}-gram {words!r} has no entry for its first {n - 1} words at order "
                    f"{n - 1}",
                    None if table.lines is None else table.lines[index],
                )
            order_keys, sort = torch.sort(context * size + ids[:, -1])
            repeated = torch.nonzero(order_keys[1:] == order_keys[:-1]).flatten()
            if len(repeated):
                index = int(sort[repeated[0] + 1])
                words = " ".join(vocabulary.itos[i] for i in ids[index].tolist())
                raise NGramTableError(
                    f"duplicate {n}-grams: {words!r} is listed twice",
                    None if table.lines is None else table.lines[index],
                )
            keys.append(order_keys)
            # any floating dtype in, float64 inside (as every other constructor stores)
            log_probs.append(table.log_probs[sort].to(torch.float64))
            log_backoffs.append(table.log_backoffs[sort].to(torch.float64))
        return cls(vocabulary, keys, log_probs, log_backoffs, description)

    @staticmethod
    def _lookup_in(keys: Tensor, size: int, context: Tensor, words: Tensor) -> Tensor:
        """Entries of ``(context entry, word)`` in sorted ``keys``, ``-1`` where missing."""
        result = torch.full_like(words, -1)
        valid = torch.nonzero(context >= 0, as_tuple=True)
        result[valid] = find_entries(keys, context[valid] * size + words[valid])
        return result

    @classmethod
    def from_counts(cls, counts: NGramCounts, smoothing: str, **options) -> NGramModel:
        """Smooths counts with the method called ``smoothing``."""
        return cls.from_interpolation(counts, smooth(counts, smoothing, **options))

    @classmethod
    def from_interpolation(cls, counts: NGramCounts, weights: Interpolation) -> NGramModel:
        r"""Backoff form of interpolation weights: :math:`P_1(w) = \alpha_1(w) + \gamma_1
        p_0(w)`, :math:`P_n(h\,w) = \alpha_n(h, w) + \gamma_n(h) P_{n-1}(h'\,w)`,
        :math:`B_n(h) = \gamma_{n+1}(h)`, with :math:`p_0` uniform over the predicted symbols
        unless ``weights.base`` says otherwise."""
        log_probs, log_backoffs = cls._backoff_tables(counts, weights)
        keys = [torch.from_numpy(k.copy()) for k in counts.keys]
        return cls(
            counts.vocabulary, keys, log_probs, log_backoffs, weights.method, weights.discounts
        )

    @staticmethod
    def _backoff_tables(
        counts: NGramCounts, weights: Interpolation
    ) -> tuple[list[Tensor], list[Tensor]]:
        vocabulary = counts.vocabulary
        if weights.base is None:
            base = np.full(len(vocabulary), 1.0 / vocabulary.num_predictable)
        else:
            base = np.asarray(weights.base, dtype=np.float64)
        probs = weights.alphas[0] + weights.gammas[0][0] * base
        probs[vocabulary.begin_id] = 0.0
        tables = [probs]
        for n in range(2, counts.order + 1):
            lower = tables[-1][counts.suffixes[n - 1]]
            context_weight = weights.gammas[n - 1][counts.contexts[n - 1]]
            tables.append(weights.alphas[n - 1] + context_weight * lower)
        with np.errstate(divide="ignore"):
            log_probs = [torch.from_numpy(np.log(p)) for p in tables]
            log_backoffs = [
                torch.from_numpy(np.log(weights.gammas[n])) for n in range(1, counts.order)
            ]
        log_backoffs.append(torch.zeros(counts.num_entries(counts.order), dtype=torch.float64))
        return log_probs, log_backoffs

    @classmethod
    def from_pruned(
        cls,
        counts: NGramCounts,
        weights: Interpolation,
        thresholds: Sequence[int] | None = None,
        limit_vocabulary: Iterable[str] | None = None,
    ) -> NGramModel:
        """The model of :func:`~pyro_ar.ngram.smoothing.prune`'s weights, holding only the kept
        n-grams; words removed from the vocabulary leave it (they read as ``<unk>``).

        Example:
            >>> from pyro_ar.ngram import Vocabulary, count_ngrams, smooth
            >>> corpus = [["a", "b"], ["a", "b"], ["a", "c"]]
            >>> counts = count_ngrams(corpus, 2, Vocabulary.build(corpus))
            >>> model = NGramModel.from_pruned(counts, smooth(counts, "witten_bell"),
            ...                                limit_vocabulary=["a", "b"])
            >>> after_begin = model.next_log_probs(torch.tensor([[1]])).exp()[0]
            >>> model.vocabulary.itos, round(after_begin.sum().item(), 6)  # c is gone
            (['<unk>', '<s>', '</s>', 'a', 'b'], 1.0)
        """
        vocabulary = counts.vocabulary
        pruned, kept = prune(counts, weights, thresholds, limit_vocabulary)
        log_probs, log_backoffs = cls._backoff_tables(counts, pruned)
        if not kept[0].all() and vocabulary.unknown_id is None:
            raise ValueError(
                "pruning removes words from a vocabulary without an unknown token; build the "
                "vocabulary with unknown_token='<unk>'"
            )
        new_vocabulary = Vocabulary(
            [w for w, keep in zip(vocabulary.itos, kept[0].tolist(), strict=True) if keep],
            vocabulary.unknown_token,
            vocabulary.begin_token,
            vocabulary.end_token,
        )
        new_id = torch.full((len(vocabulary),), -1, dtype=torch.long)
        kept_ids = torch.from_numpy(np.flatnonzero(kept[0]))
        new_id[kept_ids] = torch.tensor(
            [new_vocabulary.stoi[vocabulary.itos[i]] for i in kept_ids.tolist()]
        )
        tables = []
        for n in range(1, counts.order + 1):
            keep = torch.from_numpy(kept[n - 1])
            ids = new_id[torch.from_numpy(counts.ngram_tokens(n))[keep]]
            tables.append(NGramTable(ids, log_probs[n - 1][keep], log_backoffs[n - 1][keep]))
        description = f"{pruned.method} (pruned: thresholds {thresholds}"
        description += ", limited vocabulary)" if limit_vocabulary is not None else ")"
        model = cls.from_tables(new_vocabulary, tables, description)
        model.discounts = list(weights.discounts)
        return model

    # ------------------------------------------------------------------------------ basics
    @property
    def order(self) -> int:
        return len(self.keys)

    @property
    def device(self) -> torch.device:
        return self.keys[0].device

    def num_entries(self, order: int) -> int:
        return len(self.keys[order - 1])

    def to(self, device: torch.device | str) -> NGramModel:
        """A copy with every table on ``device``."""
        return NGramModel(
            self.vocabulary,
            [k.to(device) for k in self.keys],
            [p.to(device) for p in self.log_probs],
            [b.to(device) for b in self.log_backoffs],
            self.description,
            self.discounts,
        )

    def __repr__(self) -> str:
        sizes = ", ".join(str(self.num_entries(n)) for n in range(1, self.order + 1))
        return (
            f"NGramModel(order={self.order}, vocabulary={len(self.vocabulary)}, "
            f"smoothing={self.description!r}, entries=[{sizes}])"
        )

    # ------------------------------------------------------------------------------ queries
    def check_ids(self, ids: Tensor, name: str = "ids") -> None:
        """Raises a clear error unless ``ids`` is an integer tensor of valid ids."""
        if ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor of token ids, got {ids.dtype}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= len(self.vocabulary)):
            bad = ids[(ids < 0) | (ids >= len(self.vocabulary))][0].item()
            raise ValueError(
                f"{name} contains id {bad}, out of range for a vocabulary of "
                f"{len(self.vocabulary)}"
            )

    def lookup(self, order: int, context_entries: Tensor, words: Tensor) -> Tensor:
        """Entries of order ``order`` for (context entry of order ``order - 1``, word) pairs, or
        ``-1`` where the n-gram is not stored (or the context entry is ``-1``)."""
        if order == 1:
            return words
        result = torch.full_like(words, -1)
        # Only n-grams whose context is stored can be stored; high orders match few positions.
        valid = torch.nonzero(context_entries >= 0, as_tuple=True)
        result[valid] = self._find(order, context_entries[valid], words[valid])
        return result

    def _find(self, order: int, context_entries: Tensor, words: Tensor) -> Tensor:
        """:meth:`lookup` for 1-D queries whose context entries are all stored."""
        query = context_entries * len(self.vocabulary) + words
        return find_entries(self.keys[order - 1], query)

    def entries(self, ids: Tensor) -> list[Tensor]:
        r"""For every position :math:`t` of ``ids (..., T)`` and order :math:`k`, the entry of
        the k-gram ending at :math:`t` (``-1`` if it is not stored or runs off the row).

        A k-gram that would cross a sentence boundary contains ``<s>`` after its first word and
        is never stored, so a row may hold several sentences back to back."""
        found = [ids]
        for k in range(2, self.order + 1):
            current = torch.full_like(ids, -1)
            current[..., 1:] = self.lookup(k, found[-1][..., :-1], ids[..., 1:])
            found.append(current)
        return found

    def stream_log_probs(self, ids: Tensor) -> Tensor:
        r"""Natural-log :math:`\log p(x_t \mid x_{<t})` at every position of rows ``(..., T)``
        that start with ``<s>`` (the value at a ``<s>`` is meaningless: ``-inf``).

        Per position: the longest stored n-gram ending there gives :math:`\log P`, plus the log
        backoff weights of the stored contexts longer than it; one pass per order."""
        self.check_ids(ids)
        flat = ids.reshape(-1)
        segments = None
        if flat.device.type == "cpu" and self._begin_resets_context():
            # each <s> starts afresh: the pieces between them are independent (and faster)
            starts = torch.nonzero(flat[1:] == self.vocabulary.begin_id).squeeze(1) + 1
            segments = np.concatenate([[0], starts.numpy()])
        return self._flat_log_probs(flat, segments).reshape(ids.shape)

    def _begin_resets_context(self) -> bool:
        """Whether no context crosses a ``<s>`` in a stream: ``<s>`` has probability 0 and no
        stored n-gram ends with it (true of every fitted model and ARPA file read here)."""
        if self._begin_resets is None:
            begin = self.vocabulary.begin_id
            size = len(self.vocabulary)
            self._begin_resets = bool(self.log_probs[0][begin] == -torch.inf) and not any(
                bool((keys % size == begin).any()) for keys in self.keys[1:]
            )
        return self._begin_resets

    def _compiled_path(self) -> bool:
        """Whether the compiled scorer may run: tables on the CPU that need no gradient, and
        not under ``torch.compile``."""
        return (
            self.device.type == "cpu"
            and not torch.compiler.is_compiling()
            and not any(t.requires_grad for t in self.log_probs + self.log_backoffs)
        )

    def _tables(self) -> BackoffTables:
        if self._compiled_tables is None:
            self._compiled_tables = BackoffTables.build(
                self.keys, self.log_probs, self.log_backoffs, len(self.vocabulary)
            )
        return self._compiled_tables

    def _flat_log_probs(self, flat: Tensor, segments: np.ndarray | None = None) -> Tensor:
        """:meth:`stream_log_probs` of a 1-D stream: the compiled kernel on the CPU (in
        parallel over ``segments``, independent pieces such as sentences), the torch reference
        elsewhere and under ``torch.compile``."""
        if flat.device.type == "cpu" and self._compiled_path():
            # the kernel sees plain ids; their provenance (Pyro's dependency tracking) is
            # carried over to the scores
            (plain,), provenance = split_provenance(flat)
            scores = backoff_log_probs(plain, self._tables(), self.order, segments)
            return attach_provenance(scores, provenance)
        return backoff_log_probs_reference(
            flat, self.keys, self.log_probs, self.log_backoffs, len(self.vocabulary)
        )

    def sequence_log_probs(self, ids: Tensor, prefix: Tensor | None = None) -> Tensor:
        r"""Per-token :math:`\log p(x_t \mid \texttt{<s>}, \text{prefix}, x_{<t})` of
        ``ids (..., L)``, shape ``(..., L)``; ``prefix (..., P)`` broadcasts against ``ids``."""
        if prefix is None:
            prefix = ids.new_zeros(ids.shape[:-1] + (0,))
        batch = torch.broadcast_shapes(ids.shape[:-1], prefix.shape[:-1])
        ids = ids.expand(batch + ids.shape[-1:])
        prefix = prefix.expand(batch + prefix.shape[-1:])
        begin = ids.new_full(batch + (1,), self.vocabulary.begin_id)
        stream = torch.cat([begin, prefix, ids], dim=-1)
        return self.stream_log_probs(stream)[..., 1 + prefix.shape[-1] :]

    def next_log_probs(self, history: Tensor) -> Tensor:
        r"""The full conditional :math:`\log p(\cdot \mid \text{history})` over the vocabulary,
        shape ``(..., V)`` (``-inf`` at ``<s>``), for histories ``(..., T)`` that start with
        ``<s>``. Sums to one (in probability) for every history, by construction of the
        backoff weights."""
        self.check_ids(history, "history")
        batch_shape = history.shape[:-1]
        history = history.reshape(-1, history.shape[-1])
        found = self.entries(history)
        contexts = [f[:, -1] for f in found[: self.order - 1]]
        return self.dense_log_probs(contexts, history.shape[0]).reshape(batch_shape + (-1,))

    def dense_log_probs(self, contexts: Sequence[Tensor], rows: int) -> Tensor:
        r"""Full conditionals ``(rows, V)`` from the entries of the last 1, 2, ..., N-1 words of
        each history (``contexts[k-1]``, shape ``(rows,)``, ``-1`` where not stored).

        Starts from the unigrams and, order by order, adds the log backoff weight of the stored
        context and overwrites the words stored after it (a contiguous key range)."""
        size = len(self.vocabulary)
        scores = self.log_probs[0].expand(rows, size).clone()
        for k in range(2, self.order + 1):
            context = contexts[k - 2]
            has_context = context >= 0
            safe = context.clamp(min=0)
            backoff = torch.where(has_context, self.log_backoffs[k - 2][safe], 0.0)
            scores += backoff.unsqueeze(-1)
            keys = self.keys[k - 1]
            start = torch.searchsorted(keys, safe * size)
            end = torch.searchsorted(keys, (safe + 1) * size)
            lengths = torch.where(has_context, end - start, 0)
            total = int(lengths.sum())
            if total == 0:
                continue
            row = torch.repeat_interleave(torch.arange(rows, device=keys.device), lengths)
            offsets = torch.cumsum(lengths, 0) - lengths
            entry = start[row] + torch.arange(total, device=keys.device) - offsets[row]
            scores[row, keys[entry] % size] = self.log_probs[k - 1][entry]
        return scores

    # ------------------------------------------------------------------------- corpus level
    def score(self, sentences: Sequence[Sequence[str]] | Sequence[str]) -> Tensor:
        """Natural-log probability of each sentence, ``</s>`` included, shape ``(N,)``.
        Strings are split on whitespace; unknown words map to ``<unk>``."""
        scores, offsets = self._stream_scores(sentences)
        # the <s> that opens each sentence is not predicted: it scores 0 in the sums
        scores[offsets[:-1]] = 0.0
        if scores.device.type == "cpu":
            return torch.from_numpy(np.add.reduceat(scores.numpy(), offsets[:-1]))
        sentence_index = torch.repeat_interleave(
            torch.arange(len(offsets) - 1, device=scores.device),
            torch.from_numpy(np.diff(offsets)).to(scores.device),
        )
        totals = torch.zeros(len(offsets) - 1, dtype=scores.dtype, device=scores.device)
        return totals.index_add_(0, sentence_index, scores)

    def token_scores(self, sentences: Sequence[Sequence[str]] | Sequence[str]) -> list[Tensor]:
        """Natural-log probability of every token of every sentence (``</s>`` last)."""
        token_scores, offsets = self._corpus_scores(sentences)
        return list(torch.split(token_scores, offsets.diff().tolist()))

    def perplexity(self, sentences: Sequence[Sequence[str]] | Sequence[str]) -> float:
        r""":math:`\exp(-\frac{1}{T} \sum \log p)` over the :math:`T` predicted tokens (words and
        one ``</s>`` per sentence: the standard protocol)."""
        token_scores, _ = self._corpus_scores(sentences)
        return math.exp(-float(token_scores.sum()) / len(token_scores))

    def _stream_scores(self, sentences) -> tuple[Tensor, np.ndarray]:
        """Scores of the encoded corpus (``<s>`` positions included) and its sentence offsets."""
        sentences = token_lists(sentences)
        if len(sentences) == 0:
            raise ValueError("no sentences to score")
        with garbage_collection_paused():  # a large live corpus makes collections slow
            flat, offsets = self.vocabulary.encode_corpus(sentences)
        ids = torch.from_numpy(flat).to(self.device)
        return self._flat_log_probs(ids, segments=offsets[:-1]), offsets  # sentence by sentence

    def _corpus_scores(self, sentences) -> tuple[Tensor, Tensor]:
        """Scores of the predicted tokens (every ``<s>`` dropped) and the sentence offsets in
        them."""
        scores, offsets = self._stream_scores(sentences)
        predicted = np.ones(len(scores), dtype=bool)
        predicted[offsets[:-1]] = False
        lengths = torch.from_numpy(np.diff(offsets) - 1)
        offsets_out = torch.cat([lengths.new_zeros(1), torch.cumsum(lengths, 0)])
        return scores[torch.from_numpy(predicted).to(scores.device)], offsets_out

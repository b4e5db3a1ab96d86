r"""Smoothing: from counts to interpolation weights of every order.

Every method here is an *interpolated* estimate (Chen & Goodman 1998, section 2.8)

.. math:: p_n(w \mid h) = \alpha_n(h, w) + \gamma_n(h)\, p_{n-1}(w \mid h'),
          \qquad p_0(w) = 1 / V,

where :math:`h'` is :math:`h` without its first word, :math:`\alpha_n(h, w) = 0` for unseen
:math:`(h, w)`, :math:`\gamma_n(h) = 1` for a context :math:`h` never seen at order :math:`n`,
and :math:`V` is the number of predicted symbols (the vocabulary without ``<s>``). For every
seen context :math:`\sum_w \alpha_n(h, w) + \gamma_n(h) = 1`, so each :math:`p_n(\cdot \mid h)`
sums to one. :class:`~pyro_ar.ngram.model.NGramModel` turns the weights into the equivalent
backoff form of ARPA files.

References:
    S. F. Chen, J. Goodman. *An empirical study of smoothing techniques for language modeling*.
    Technical report TR-10-98, Harvard University, 1998.

    R. Kneser, H. Ney. *Improved backing-off for m-gram language modeling*. ICASSP 1995.

    I. H. Witten, T. C. Bell. *The zero-frequency problem*. IEEE Trans. Inf. Theory, 1991.

    H. Ney, U. Essen, R. Kneser. *On structuring probabilistic dependences in stochastic
    language modelling*. Computer Speech and Language, 1994.
"""

from __future__ import annotations

__all__ = [
    "SMOOTHING_METHODS",
    "DiscountError",
    "Interpolation",
    "absolute_discounting",
    "additive",
    "estimate_discounts",
    "kneser_ney",
    "maximum_likelihood",
    "lmplz_raw_count_entries",
    "modified_kneser_ney",
    "prune",
    "smooth",
    "unigram_base",
    "witten_bell",
]

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .counts import NGramCounts

logger = logging.getLogger(__name__)

#: KenLM's ``--discount_fallback`` values for modified Kneser-Ney (D1, D2, D3+).
KENLM_DISCOUNT_FALLBACK = (0.5, 1.0, 1.5)


class DiscountError(ValueError):
    """The count-of-counts of some order do not allow estimating a discount.

    Example:
        >>> sentences = [["a", "b", "a"], ["b", "a"], ["a", "a", "b"]]
        >>> from pyro_ar.ngram import Vocabulary, count_ngrams
        >>> counts = count_ngrams(sentences, 2, Vocabulary.build(sentences))
        >>> try:  # too few singletons to estimate modified Kneser-Ney discounts
        ...     smooth(counts, "modified_kneser_ney")
        ... except DiscountError:
        ...     print("pass discount_fallback= or discounts=")
        pass discount_fallback= or discounts=
    """


@dataclass
class Interpolation:
    r"""Interpolation weights of every order (lists indexed by ``order - 1``).

    Attributes:
        alphas: :math:`\alpha_n` per entry of order :math:`n` (``float64``).
        gammas: :math:`\gamma_n` per *context*: per entry of order :math:`n - 1`; at order 1 an
            array of one element (the empty context).
        discounts: The discounts used, per order (empty for methods without discounts).
        method: The method's name.
        base: :math:`p_0` over the vocabulary (``<s>`` has 0): ``None`` for the uniform
            distribution over the :math:`V` predicted symbols; a point mass on ``<unk>`` for
            ``interpolate_unigrams=False`` (SRILM's and ``lmplz --interpolate_unigrams 0``'s
            unigrams, in which ``<unk>`` receives all the interpolation mass).

    Example:
        >>> sentences = [["a", "b", "a"], ["b", "a"], ["a", "a", "b"]]
        >>> from pyro_ar.ngram import Vocabulary, count_ngrams
        >>> counts = count_ngrams(sentences, 2, Vocabulary.build(sentences))
        >>> interpolation = smooth(counts, "witten_bell")
        >>> interpolation.method, [alpha.shape for alpha in interpolation.alphas]
        ('witten_bell', [(5,), (7,)])
    """

    alphas: list[np.ndarray]
    gammas: list[np.ndarray]
    method: str
    discounts: list[tuple[float, ...]] = field(default_factory=list)
    base: np.ndarray | None = None


def _predicted_counts(counts: NGramCounts, order: int, values: np.ndarray) -> np.ndarray:
    """``values`` with ``<s>`` zeroed at order 1: ``<s>`` is a context, never predicted."""
    if order == 1:
        values = values.astype(np.float64).copy()
        values[counts.vocabulary.begin_id] = 0
    return values.astype(np.float64)


def _num_contexts(counts: NGramCounts, order: int) -> int:
    return 1 if order == 1 else counts.num_entries(order - 1)


def _per_context(counts: NGramCounts, order: int, values: np.ndarray) -> np.ndarray:
    return np.bincount(
        counts.contexts[order - 1], weights=values, minlength=_num_contexts(counts, order)
    )


def _kneser_ney_counts(counts: NGramCounts, order: int) -> np.ndarray:
    """Raw counts at the highest order and for n-grams that start with ``<s>`` (nothing can
    precede them); continuation counts below."""
    raw = counts.counts[order - 1]
    if order == counts.order:
        return raw
    continuation = counts.continuation_counts(order)
    starts_sentence = counts.first_words[order - 1] == counts.vocabulary.begin_id
    return np.where(starts_sentence, raw, continuation)


def _interpolate(
    counts: NGramCounts, order: int, values: np.ndarray, discounted: np.ndarray, mass: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\alpha = \text{discounted} / c(h)` and :math:`\gamma = \text{mass}(h) / c(h)`,
    with :math:`\gamma = 1` for contexts without counts."""
    total = _per_context(counts, order, values)
    seen = total > 0
    safe = np.where(seen, total, 1.0)
    alphas = discounted / safe[counts.contexts[order - 1]]
    gammas = np.where(seen, mass / safe, 1.0)
    return alphas, gammas


def maximum_likelihood(counts: NGramCounts) -> Interpolation:
    r"""Relative frequencies :math:`p(w \mid h) = c(h, w) / c(h)`; a context never seen backs off
    to the next shorter one (:math:`\gamma = 1`), a seen context gives unseen words probability 0
    (so perplexity can be infinite: this is the unsmoothed baseline).

    Example:
        >>> from pyro_ar.ngram import NGramModel
        >>> corpus = [["a", "b"], ["a"], ["b", "b"]]  # 8 predicted tokens with </s>
        >>> model = NGramModel.fit(corpus, order=1, smoothing="maximum_likelihood")
        >>> # after <s>: <unk>, <s>, </s>, a, b with 0, 0, 3/8, 3/8, 2/8
        >>> model.next_log_probs(torch.tensor([[1]])).exp()
        tensor([[0.0000, 0.0000, 0.3750, 0.3750, 0.2500]], dtype=torch.float64)
    """
    alphas, gammas = [], []
    for n in range(1, counts.order + 1):
        values = _predicted_counts(counts, n, counts.counts[n - 1])
        alpha, gamma = _interpolate(counts, n, values, values, np.zeros(_num_contexts(counts, n)))
        alphas.append(alpha)
        gammas.append(gamma)
    return Interpolation(alphas, gammas, "maximum_likelihood")


def additive(counts: NGramCounts, k: float = 1.0) -> Interpolation:
    r"""Add-:math:`k` (Lidstone; Laplace for :math:`k = 1`) at the highest order only:
    :math:`p(w \mid h) = (c(h, w) + k) / (c(h) + kV)`, i.e. :math:`\alpha = c / (c(h) + kV)`,
    :math:`\gamma = kV / (c(h) + kV)` over the uniform distribution; lower orders are not used
    (:math:`\alpha = 0, \gamma = 1`).

    Example:
        >>> from pyro_ar.ngram import Vocabulary, count_ngrams
        >>> counts = count_ngrams([["a", "b"], ["a"]], 1, Vocabulary.build([["a", "b"]]))
        >>> laplace = additive(counts, k=1.0)  # c(h) = 5 tokens, V = 4 predicted symbols
        >>> laplace.alphas[0].round(4).tolist(), laplace.gammas[0].round(4).tolist()  # c/9, 4/9
        ([0.0, 0.0, 0.2222, 0.2222, 0.1111], [0.4444])
    """
    if not k > 0:
        raise ValueError(f"add-k smoothing needs k > 0, got {k}")
    size = counts.vocabulary.num_predictable
    alphas, gammas = [], []
    for n in range(1, counts.order + 1):
        if n < counts.order:
            alphas.append(np.zeros(counts.num_entries(n)))
            gammas.append(np.ones(_num_contexts(counts, n)))
            continue
        values = _predicted_counts(counts, n, counts.counts[n - 1])
        total = _per_context(counts, n, values)
        alphas.append(values / (total + k * size)[counts.contexts[n - 1]])
        gammas.append(k * size / (total + k * size))
    return Interpolation(alphas, gammas, f"additive(k={k})")


def witten_bell(counts: NGramCounts) -> Interpolation:
    r"""Interpolated Witten-Bell: :math:`p(w \mid h) = \frac{c(h, w) + N_{1+}(h\,\bullet)\,
    p_{n-1}(w \mid h')}{c(h) + N_{1+}(h\,\bullet)}`, at every order down to the uniform
    distribution (Witten & Bell 1991; Chen & Goodman 1998, eq. 16).

    Example:
        >>> from pyro_ar.ngram import NGramModel
        >>> model = NGramModel.fit([["a", "b", "a"], ["b", "a"]], order=2, smoothing="witten_bell")
        >>> after_a = model.next_log_probs(model.vocabulary.encode(["a"])[None]).exp()[0]
        >>> predicted = after_a[[0, 2, 3, 4]]  # every symbol but <s>, which is never predicted
        >>> bool((predicted > 0).all()), round(after_a.sum().item(), 6)
        (True, 1.0)
    """
    alphas, gammas = [], []
    for n in range(1, counts.order + 1):
        values = _predicted_counts(counts, n, counts.counts[n - 1])
        types = _per_context(counts, n, (values > 0).astype(np.float64))
        total = _per_context(counts, n, values)
        seen = total > 0
        denominator = np.where(seen, total + types, 1.0)
        alpha = values / denominator[counts.contexts[n - 1]]
        gamma = np.where(seen, types / denominator, 1.0)
        alphas.append(alpha)
        gammas.append(gamma)
    return Interpolation(alphas, gammas, "witten_bell")


def _count_of_counts(values: np.ndarray, largest: int) -> np.ndarray:
    """:math:`n_1, ..., n_{largest}`: how many entries occur exactly 1, 2, ... times."""
    integral = values.astype(np.int64)
    return np.bincount(integral[(integral > 0) & (integral <= largest)], minlength=largest + 1)[1:]


def _single_discount(values: np.ndarray, order: int) -> float:
    r"""Ney et al.'s estimate :math:`D = n_1 / (n_1 + 2 n_2)`."""
    n1, n2 = _count_of_counts(values, 2)
    if n1 == 0:
        raise DiscountError(
            f"cannot estimate the discount of order {order}: no n-gram of that order occurs "
            "exactly once; pass discount= explicitly"
        )
    return float(n1 / (n1 + 2 * n2))


def _three_discounts(
    values: np.ndarray, order: int, fallback: Sequence[float] | None
) -> tuple[float, float, float]:
    r"""Chen & Goodman's :math:`D_k = k - (k + 1) Y n_{k+1} / n_k`, :math:`Y = n_1 / (n_1 +
    2 n_2)`, for :math:`k = 1, 2, 3`, under KenLM ``lmplz``'s rules: :math:`n_1, n_2, n_3 > 0`
    (:math:`n_4 = 0` is allowed and gives :math:`D_{3+} = 3`) and :math:`0 \le D_k \le k`.
    Where they fail, the whole order takes ``fallback`` (as ``lmplz --discount_fallback``)."""
    return estimate_discounts(_count_of_counts(values, 4), order, fallback)


def estimate_discounts(
    count_of_counts: Sequence[int], order: int, fallback: Sequence[float] | None = None
) -> tuple[float, float, float]:
    r"""Modified Kneser-Ney discounts :math:`(D_1, D_2, D_{3+})` of one order from its
    count-of-counts :math:`n_1..n_4`, by KenLM ``lmplz``'s rules: :math:`D_k = k - (k + 1) Y
    n_{k+1} / n_k` with :math:`Y = n_1 / (n_1 + 2 n_2)` (Chen & Goodman 1998, eq. 26), which
    needs :math:`n_1, n_2, n_3 > 0` (:math:`n_4 = 0` is fine and gives :math:`D_{3+} = 3`) and
    must give :math:`0 \le D_k \le k`. Otherwise ``fallback`` replaces the whole order (with a
    logged warning), or :class:`DiscountError` names the first failing discount.

    Example:
        >>> estimate_discounts([10, 4, 2, 0], order=3)  # n4 = 0: D3+ = 3
        (0.5555555555555556, 1.1666666666666665, 3.0)
    """
    n = np.asarray(count_of_counts, dtype=np.float64)
    if n.shape != (4,) or (n < 0).any():
        raise ValueError(f"expected the count-of-counts n1..n4, got {list(count_of_counts)}")
    problem = None
    if np.any(n[:3] == 0):
        k = int(np.flatnonzero(n[:3] == 0)[0]) + 1
        problem = (
            f"no {order}-gram has adjusted count {k} (count-of-counts n1..n4 = "
            f"{n.astype(int).tolist()}), so D{k} cannot be estimated"
        )
    else:
        y = n[0] / (n[0] + 2 * n[1])
        discounts = tuple(float(k - (k + 1) * y * n[k] / n[k - 1]) for k in (1, 2, 3))
        outside = [k for d, k in zip(discounts, (1, 2, 3), strict=True) if not 0 <= d <= k]
        if outside:
            k = outside[0]
            problem = f"the estimate D{k} = {discounts[k - 1]:.6g} is outside [0, {k}]"
    if problem is None:
        return discounts
    if fallback is None:
        raise DiscountError(
            f"cannot estimate modified Kneser-Ney discounts of order {order}: {problem} "
            "(corpus too small?); pass discount_fallback=(0.5, 1.0, 1.5) as KenLM's "
            "--discount_fallback does, or discounts= explicitly"
        )
    logger.warning("order %d: %s; using the fallback discounts %s", order, problem, fallback)
    return tuple(float(d) for d in fallback)  # type: ignore[return-value]


def _per_order(value, order: int, highest: int):
    """A per-order option: one value for all orders, or a sequence of ``highest`` values."""
    if value is None or np.isscalar(value):
        return value
    value = list(value)
    if len(value) != highest:
        raise ValueError(f"expected one value per order (1..{highest}), got {len(value)}")
    return value[order - 1]


def absolute_discounting(
    counts: NGramCounts, discount: float | Sequence[float] | None = None
) -> Interpolation:
    r"""Interpolated absolute discounting (Ney et al. 1994):
    :math:`\alpha = \max(c(h, w) - D, 0) / c(h)`,
    :math:`\gamma = D\, N_{1+}(h\,\bullet) / c(h)`, with raw counts at every order.
    ``discount``: one :math:`D` for all orders, one per order, or ``None`` for
    :math:`D = n_1 / (n_1 + 2 n_2)` per order.

    Example:
        >>> from pyro_ar.ngram import Vocabulary, count_ngrams
        >>> corpus = [["a", "b", "a"], ["b", "a"], ["a", "a", "b", "c"], ["b", "d"]]
        >>> counts = count_ngrams(corpus, 2, Vocabulary.build(corpus))
        >>> absolute_discounting(counts).discounts  # n1 / (n1 + 2 n2): 2 / 2 and 5 / 15
        [(1.0,), (0.3333333333333333,)]
    """
    return _discounted(counts, discount, kneser_ney_counts=False, name="absolute_discounting")


def kneser_ney(
    counts: NGramCounts, discount: float | Sequence[float] | None = None
) -> Interpolation:
    r"""Interpolated Kneser-Ney: absolute discounting in which every order but the highest
    counts *continuations* :math:`N_{1+}(\bullet\, h\, w)` (how many distinct words precede
    :math:`h\,w`) instead of occurrences, except for n-grams that start with ``<s>``; the
    unigrams are interpolated with the uniform distribution (Kneser & Ney 1995; Chen & Goodman
    1998, eq. 17; KenLM). ``discount`` as in :func:`absolute_discounting`.

    Example:
        >>> from pyro_ar.ngram import NGramModel, Vocabulary
        >>> corpus = [["san", "francisco"]] * 4 + [["the", "cat"], ["the", "dog"], ["a", "cat"],
        ...                                        ["a", "dog"]]
        >>> def next_word(method):  # p(francisco | cat), p(dog | cat): both back off
        ...     model = NGramModel.fit(corpus, order=2, smoothing=method, discount=0.75)
        ...     p = model.next_log_probs(model.vocabulary.encode(["cat"])[None]).exp()[0]
        ...     words = [model.vocabulary.lookup(word) for word in ("francisco", "dog")]
        ...     return [round(value, 3) for value in p[words].tolist()]
        >>> next_word("absolute_discounting"), next_word("kneser_ney")  # frequent vs versatile
        ([0.061, 0.03], [0.031, 0.065])
    """
    return _discounted(counts, discount, kneser_ney_counts=True, name="kneser_ney")


def _discounted(counts, discount, kneser_ney_counts: bool, name: str) -> Interpolation:
    alphas, gammas, used = [], [], []
    for n in range(1, counts.order + 1):
        raw = _kneser_ney_counts(counts, n) if kneser_ney_counts else counts.counts[n - 1]
        values = _predicted_counts(counts, n, raw)
        d = _per_order(discount, n, counts.order)
        d = _single_discount(values, n) if d is None else float(d)
        if not 0 < d <= 1:  # NaN fails too
            raise ValueError(
                f"the discount of order {n} must lie in (0, 1], got {d}"
                + (
                    ": a discount of 0 leaves no probability for unseen words (use "
                    "smoothing='maximum_likelihood' for the undiscounted estimate)"
                    if d == 0
                    else ""
                )
            )
        types = _per_context(counts, n, (values > 0).astype(np.float64))
        alpha, gamma = _interpolate(counts, n, values, np.maximum(values - d, 0.0), d * types)
        alphas.append(alpha)
        gammas.append(gamma)
        used.append((d,))
    return Interpolation(alphas, gammas, name, used)


def modified_kneser_ney(
    counts: NGramCounts,
    discounts: Sequence[Sequence[float]] | None = None,
    discount_fallback: Sequence[float] | None = None,
    interpolate_unigrams: bool = True,
    discount_statistics: str = "lmplz",
) -> Interpolation:
    r"""Interpolated modified Kneser-Ney (Chen & Goodman 1998, eq. 19): Kneser-Ney counts with
    three discounts per order, :math:`D(c) = D_1, D_2, D_{3+}` for :math:`c = 1, 2, \ge 3`,
    :math:`\gamma(h) = (D_1 N_1(h\,\bullet) + D_2 N_2(h\,\bullet) + D_{3+} N_{3+}(h\,\bullet))
    / c(h)`, and :math:`D_k = k - (k+1) Y n_{k+1} / n_k` estimated from each order's
    count-of-counts (of the Kneser-Ney counts), as in KenLM's ``lmplz``.

    Arguments:
        discounts: ``(D1, D2, D3+)`` per order, overriding the estimates.
        discount_fallback: Used for an order whose estimates are impossible under ``lmplz``'s
            rules (:math:`n_1`, :math:`n_2` or :math:`n_3` zero, or an estimate outside
            :math:`[0, k]`; typical of tiny corpora); ``None`` raises :class:`DiscountError`
            instead.
        interpolate_unigrams: ``True`` (KenLM's default): the unigrams are interpolated with
            the uniform distribution, :math:`p_1(w) = \alpha_1(w) + \gamma_1 / V`. ``False``
            (SRILM, ``lmplz --interpolate_unigrams 0``): :math:`p_1(w) = \alpha_1(w)` and
            ``<unk>`` gets all of :math:`\gamma_1`.
        discount_statistics: Which count-of-counts :math:`n_k` estimate the discounts.
            ``"lmplz"`` (default): exactly KenLM's ``lmplz``, which, below the highest order,
            counts one n-gram per order with its raw count instead of its Kneser-Ney count (the
            suffix of the last highest-order n-gram in its sort order, an artefact of its
            streaming pass); this matters only on tiny corpora, where it can decide whether a
            discount is estimable. ``"exact"``: every n-gram with its Kneser-Ney count, as
            Chen & Goodman define them.

    Example:
        >>> from pyro_ar.ngram import Vocabulary, count_ngrams
        >>> counts = count_ngrams([["a", "b", "a"], ["b", "a"]], 2, Vocabulary.build([["a", "b"]]))
        >>> fixed = modified_kneser_ney(counts, discounts=[(0.5, 1.0, 1.5)] * 2)  # too few counts
        >>> fixed.discounts, len(fixed.alphas)  # to estimate D1, D2, D3+ from (see DiscountError)
        ([(0.5, 1.0, 1.5), (0.5, 1.0, 1.5)], 2)
    """
    if discounts is not None and len(discounts) != counts.order:
        raise ValueError(f"expected (D1, D2, D3+) for each of the {counts.order} orders")
    if discount_statistics not in ("lmplz", "exact"):
        raise ValueError(
            f"discount_statistics must be 'lmplz' or 'exact', got {discount_statistics!r}"
        )
    raw_count_entries = lmplz_raw_count_entries(counts) if discount_statistics == "lmplz" else {}
    alphas, gammas, used = [], [], []
    for n in range(1, counts.order + 1):
        values = _predicted_counts(counts, n, _kneser_ney_counts(counts, n))
        if discounts is not None:
            d = tuple(float(x) for x in discounts[n - 1])
            if len(d) != 3 or not all(0 <= x <= k for x, k in zip(d, (1, 2, 3), strict=True)):
                raise ValueError(f"discounts of order {n} must be (D1, D2, D3+) with 0 <= Dk <= k")
        else:
            statistics = values
            if n in raw_count_entries:
                statistics = values.copy()
                statistics[raw_count_entries[n]] = counts.counts[n - 1][raw_count_entries[n]]
            d = _three_discounts(statistics, n, discount_fallback)
        per_entry = np.select([values == 1, values == 2, values >= 3], list(d), default=0.0)
        mass = _per_context(counts, n, per_entry)
        alpha, gamma = _interpolate(counts, n, values, values - per_entry, mass)
        alphas.append(alpha)
        gammas.append(gamma)
        used.append(d)
    return Interpolation(
        alphas, gammas, "modified_kneser_ney", used, unigram_base(counts, interpolate_unigrams)
    )


def lmplz_raw_count_entries(counts: NGramCounts) -> dict[int, int]:
    r"""The entry, per order below the highest, that KenLM's ``lmplz`` enters into its
    count-of-counts with its raw count instead of its Kneser-Ney count.

    ``lmplz`` numbers words by first occurrence (``<unk>``, ``<s>``, ``</s>``, then the corpus
    order), pads each sentence with :math:`N - 1` ``<s>`` and streams the highest-order n-grams
    in *suffix order* (last word first). When the stream ends, the n-grams still open, the
    suffixes of the last one, are flushed with their raw counts. N-grams that start with ``<s>``
    have equal raw and Kneser-Ney counts and are left out.

    Example:
        >>> from pyro_ar.ngram import Vocabulary, count_ngrams
        >>> corpus = [["a", "b"], ["b", "c"]]
        >>> counts = count_ngrams(corpus, 2, Vocabulary.build(corpus))
        >>> counts.vocabulary.itos[lmplz_raw_count_entries(counts)[1]]  # c: last to appear
        'c'
    """
    if counts.order == 1 or counts.first_occurrence is None:
        return {}
    vocabulary = counts.vocabulary
    specials = [vocabulary.begin_id, vocabulary.end_id]
    if vocabulary.unknown_id is not None:
        specials = [vocabulary.unknown_id] + specials
    # KenLM ids: specials 0, 1, 2, then by first occurrence (words never seen last)
    never = counts.first_occurrence < 0
    rank = np.where(never, np.iinfo(np.int64).max, counts.first_occurrence).astype(np.float64)
    rank[specials] = -np.arange(len(specials), 0, -1)
    kenlm_id = np.empty(len(vocabulary), dtype=np.int64)
    kenlm_id[np.argsort(rank, kind="stable")] = np.arange(len(vocabulary))
    begin = vocabulary.begin_id
    # Candidates: the highest-order entries, and the shorter entries that start with <s> (the
    # padded n-grams). The last in suffix order has the largest last word, then the largest
    # word before it, and so on: filter column by column instead of sorting.
    best_key, best = None, None
    for n in range(2, counts.order + 1):
        if n == counts.order:
            entries = np.arange(counts.num_entries(n))
        else:
            entries = np.flatnonzero(counts.first_words[n - 1] == begin)
        if len(entries) == 0:
            continue
        key = []
        current, level = entries, n
        while len(key) < counts.order:
            if level == 0:  # padding
                key.append(int(kenlm_id[begin]))
                continue
            word_ids = kenlm_id[counts.words[level - 1][current]]
            top = word_ids.max()
            keep = word_ids == top
            entries, current = entries[keep], current[keep]
            key.append(int(top))
            current = counts.contexts[level - 1][current]
            level -= 1
        if best_key is None or tuple(key) > best_key:
            best_key, best = tuple(key), (n, int(entries[0]))
    n, entry = best
    result = {}
    for lower in range(n - 1, 0, -1):
        entry = int(counts.suffixes[lower][entry])
        if counts.first_words[lower - 1][entry] != begin:
            result[lower] = entry
    return result


def unigram_base(counts: NGramCounts, interpolate_unigrams: bool) -> np.ndarray | None:
    """:attr:`Interpolation.base` for ``interpolate_unigrams``: ``None`` (uniform) or a point
    mass on ``<unk>``.

    Example:
        >>> from pyro_ar.ngram import Vocabulary, count_ngrams
        >>> counts = count_ngrams([["a", "b"]], 1, Vocabulary.build([["a", "b"]]))
        >>> unigram_base(counts, interpolate_unigrams=False).tolist()  # <unk> <s> </s> a b
        [1.0, 0.0, 0.0, 0.0, 0.0]
    """
    if interpolate_unigrams:
        return None
    unknown = counts.vocabulary.unknown_id
    if unknown is None:
        raise ValueError(
            "interpolate_unigrams=False gives the interpolation mass to <unk>, but the "
            "vocabulary has no unknown token"
        )
    base = np.zeros(len(counts.vocabulary))
    base[unknown] = 1.0
    return base


#: Smoothing methods by name (``NGramModel.fit(..., smoothing=name, **options)``).
SMOOTHING_METHODS: dict[str, Callable[..., Interpolation]] = {
    "maximum_likelihood": maximum_likelihood,
    "additive": additive,
    "witten_bell": witten_bell,
    "absolute_discounting": absolute_discounting,
    "kneser_ney": kneser_ney,
    "modified_kneser_ney": modified_kneser_ney,
}


def smooth(counts: NGramCounts, method: str, **options) -> Interpolation:
    """Runs the smoothing method called ``method`` (a key of :data:`SMOOTHING_METHODS`).

    Example:
        >>> sentences = [["a", "b", "a"], ["b", "a"], ["a", "a", "b"]]
        >>> from pyro_ar.ngram import Vocabulary, count_ngrams
        >>> counts = count_ngrams(sentences, 2, Vocabulary.build(sentences))
        >>> smooth(counts, "absolute_discounting", discount=0.5).discounts
        [(0.5,), (0.5,)]
    """
    if method not in SMOOTHING_METHODS:
        raise ValueError(
            f"unknown smoothing {method!r}; choose one of {', '.join(SMOOTHING_METHODS)}"
        )
    return SMOOTHING_METHODS[method](counts, **options)


def prune(
    counts: NGramCounts,
    weights: Interpolation,
    thresholds: Sequence[int] | None = None,
    limit_vocabulary: Iterable[str] | None = None,
) -> tuple[Interpolation, list[np.ndarray]]:
    r"""Count pruning and vocabulary limiting as KenLM's ``lmplz --prune`` and
    ``--limit_vocab_file`` do them.

    An n-gram of order :math:`n` is removed when its raw count is at most ``thresholds[n-1]``,
    or when it contains a word outside ``limit_vocabulary``; ``<unk>``, ``<s>`` and ``</s>`` are
    never removed. A removed n-gram's weight :math:`\alpha_n(h, w)` moves to its context's
    :math:`\gamma_n(h)`, so :math:`p_n(w \mid h)` backs off to :math:`p_{n-1}(w \mid h')` and
    every conditional still sums to one; discounts are those of the unpruned counts (as in
    ``lmplz``). Words removed from the vocabulary leave it: :math:`p_0` becomes uniform over the
    kept words, so the unigrams still sum to one. Thresholds must not decrease with the order
    (so the prefix and suffix of every kept n-gram are kept); the last one applies to the orders
    above it, as in ``lmplz``.

    Arguments:
        thresholds: One per order from 1 (``[0, 1, 1]`` = ``--prune 0 1 1``), or ``None``.
        limit_vocabulary: The words allowed in the model, or ``None``.

    Returns:
        The pruned weights and, per order, which entries are kept (a boolean mask).

    Example:
        >>> from pyro_ar.ngram import Vocabulary, count_ngrams
        >>> corpus = [["a", "b"], ["a", "b"], ["a", "c"]]
        >>> counts = count_ngrams(corpus, 2, Vocabulary.build(corpus))
        >>> weights, kept = prune(counts, witten_bell(counts), thresholds=[0, 1])
        >>> int(kept[1].sum()), counts.num_entries(2)  # the bigrams seen once are gone
        (3, 5)
    """
    order = counts.order
    vocabulary = counts.vocabulary
    specials = [vocabulary.begin_id, vocabulary.end_id]
    if vocabulary.unknown_id is not None:
        specials.append(vocabulary.unknown_id)
    removed_word = np.zeros(len(vocabulary), dtype=bool)
    if limit_vocabulary is not None:
        allowed = set(limit_vocabulary)
        removed_word = np.array([word not in allowed for word in vocabulary.itos])
    if thresholds is not None:
        thresholds = [int(t) for t in thresholds]
        if not thresholds or len(thresholds) > order or any(t < 0 for t in thresholds):
            raise ValueError(
                f"pruning thresholds must be 1 to {order} non-negative counts, got {thresholds}"
            )
        if any(b < a for a, b in zip(thresholds, thresholds[1:], strict=False)):
            raise ValueError(
                f"pruning thresholds must not decrease with the order (got {thresholds}): "
                "otherwise the prefix of a kept n-gram could be removed"
            )
        thresholds = thresholds + [thresholds[-1]] * (order - len(thresholds))
        if thresholds[0] > 0:
            removed_word |= counts.counts[0] <= thresholds[0]
    removed_word[specials] = False
    kept, alphas, gammas = [], [], []
    contains_removed = removed_word
    for n in range(1, order + 1):
        if n > 1:
            contains_removed = (
                contains_removed[counts.contexts[n - 1]] | removed_word[counts.words[n - 1]]
            )
        keep = ~contains_removed
        if thresholds is not None and n > 1:
            keep &= counts.counts[n - 1] > thresholds[n - 1]
        alpha = np.where(keep, weights.alphas[n - 1], 0.0)
        moved = np.bincount(
            counts.contexts[n - 1],
            weights=np.where(keep, 0.0, weights.alphas[n - 1]),
            minlength=len(weights.gammas[n - 1]),
        )
        kept.append(keep)
        alphas.append(alpha)
        gammas.append(weights.gammas[n - 1] + moved)
    base = weights.base
    if base is None and not kept[0].all():
        # the removed words leave the vocabulary: p_0 is uniform over the kept ones (lmplz)
        base = kept[0] & (np.arange(len(vocabulary)) != vocabulary.begin_id)
        base = base / base.sum()
    return Interpolation(alphas, gammas, weights.method, weights.discounts, base), kept

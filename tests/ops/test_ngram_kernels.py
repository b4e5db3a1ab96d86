"""The n-gram kernels against their references on random inputs, also compiled with Numba's
bounds checks: the ARPA line formatter (byte for byte) and the backoff scorer (exactly equal
scores, on random models that need not be suffix-closed, streams with ``<s>`` anywhere, and
independent segments)."""

from __future__ import annotations

import functools
import itertools

import numba
import numpy as np
import pytest
import torch

from pyro_ar.ngram import NGramModel, NGramTable, Vocabulary
from pyro_ar.ops import arpa_lines, backoff_scores
from pyro_ar.ops.arpa_lines import format_arpa_lines, format_arpa_lines_reference
from pyro_ar.ops.backoff_scores import (
    BackoffTables,
    backoff_log_probs,
    backoff_log_probs_reference,
    hash_table,
)


@functools.cache
def bounds_checked(kernel):
    """``kernel`` compiled anew with Numba's bounds checks (once per test session)."""
    return numba.njit(boundscheck=True)(kernel.py_func)


WORD_PIECES = ["a", "é", "\u00a0", "\u3000", "x\x0cy", "語", "zz", "q\u2028"]


def _random_values(rng: np.random.Generator, count: int, decimals: int) -> np.ndarray:
    kind = rng.integers(0, 6, size=count)
    values = -rng.exponential(2.0, size=count)
    values[kind == 1] = -99.0
    values[kind == 2] = 0.0
    values[kind == 3] = (
        rng.uniform(-1, 1, size=count)[kind == 3]
        * 10.0 ** -rng.integers(1, 14, size=count)[kind == 3]
    )
    # half-way between two printed values: the rounding rule decides
    halfway = (rng.integers(-(10**6), 10**6, size=count) + 0.5) * 10.0**-decimals
    values[kind == 4] = halfway[kind == 4]
    values[kind == 5] = rng.uniform(-30, 30, size=count)[kind == 5]
    return values


@pytest.mark.parametrize("seed", range(30))
def test_arpa_lines_equal_the_reference_byte_for_byte(seed):
    rng = np.random.default_rng(seed)
    words = [
        "".join(rng.choice(WORD_PIECES, size=rng.integers(1, 4)))
        for _ in range(rng.integers(1, 12))
    ]
    words = list(dict.fromkeys(words))
    count, order = int(rng.integers(0, 60)), int(rng.integers(1, 6))
    decimals = int(rng.integers(1, 13))
    tokens = rng.integers(0, len(words), size=(count, order))
    probs = _random_values(rng, count, decimals)
    backoffs = _random_values(rng, count, decimals) if seed % 3 else None
    expected = format_arpa_lines_reference(tokens, probs, backoffs, words, decimals)
    assert format_arpa_lines(tokens, probs, backoffs, words, decimals).tobytes() == expected
    # and the loop compiled with bounds checks agrees (no read or write out of range)
    checked = bounds_checked(arpa_lines._format_lines)
    encoded = [w.encode() for w in words]
    word_lengths = np.array([len(w) for w in encoded], dtype=np.int64)
    lines = checked(
        np.ascontiguousarray(tokens, dtype=np.int64),
        probs,
        np.zeros(count) if backoffs is None else backoffs,
        backoffs is not None,
        np.frombuffer(b"".join(encoded), dtype=np.uint8),
        np.cumsum(word_lengths) - word_lengths,
        word_lengths,
        decimals,
    )
    assert lines.tobytes() == expected


def test_arpa_lines_reject_bad_input():
    tokens = np.array([[0, 1]])
    with pytest.raises(ValueError, match="finite"):
        format_arpa_lines(tokens, np.array([np.nan]), None, ["a", "b"])
    with pytest.raises(ValueError, match="word ids"):
        format_arpa_lines(np.array([[0, 2]]), np.array([-1.0]), None, ["a", "b"])
    with pytest.raises(ValueError, match=r"\(E, n\)"):
        format_arpa_lines(tokens, np.array([-1.0, -2.0]), None, ["a", "b"])
    with pytest.raises(ValueError, match="decimals"):
        format_arpa_lines(tokens, np.array([-1.0]), None, ["a", "b"], decimals=0)


def _random_model(rng: np.random.Generator) -> NGramModel:
    """Random tables: every prefix stored (as from_tables requires) but not every suffix,
    finite or infinite backoffs, sometimes n-grams that end with <s> and a finite p(<s>)."""
    vocabulary = Vocabulary([f"w{i}" for i in range(int(rng.integers(1, 8)))])
    size = len(vocabulary)
    order = int(rng.integers(1, 5))
    weird = rng.random() < 0.3
    tables = []
    grams = [(w,) for w in range(size)]
    for n in range(1, order + 1):
        if n > 1:
            candidates = [g + (w,) for g in grams for w in range(size)]
            keep = rng.random(len(candidates)) < rng.uniform(0.1, 0.7)
            grams = [g for g, k in zip(candidates, keep, strict=True) if k]
            if not weird:
                grams = [g for g in grams if vocabulary.begin_id not in g[1:]]
        log_probs = torch.from_numpy(-rng.exponential(1.5, size=len(grams)))
        if n == 1 and not weird:
            log_probs[vocabulary.begin_id] = -torch.inf
        log_backoffs = torch.from_numpy(rng.normal(-0.3, 0.5, size=len(grams)))
        log_backoffs[torch.from_numpy(rng.random(len(grams)) < 0.1)] = -torch.inf
        ids = torch.tensor(grams, dtype=torch.long).reshape(-1, n)
        tables.append(NGramTable(ids, log_probs, log_backoffs))
        if not grams:
            break
    return NGramModel.from_tables(vocabulary, tables)


@pytest.mark.parametrize("seed", range(40))
def test_backoff_scores_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    model = _random_model(rng)
    size = len(model.vocabulary)
    stream = torch.from_numpy(rng.integers(0, size, size=int(rng.integers(1, 300))))
    reference = backoff_log_probs_reference(
        stream, model.keys, model.log_probs, model.log_backoffs, size
    )
    tables = BackoffTables.build(model.keys, model.log_probs, model.log_backoffs, size)
    assert torch.equal(backoff_log_probs(stream, tables, model.order), reference)
    # segments: each piece scored as a stream of its own
    cuts = np.unique(np.concatenate([[0], rng.integers(1, len(stream) + 1, size=5)]))
    cuts = cuts[cuts < len(stream)]
    pieces = np.append(cuts, len(stream))
    expected = torch.cat(
        [
            backoff_log_probs_reference(
                stream[a:b], model.keys, model.log_probs, model.log_backoffs, size
            )
            for a, b in itertools.pairwise(pieces)
        ]
    )
    assert torch.equal(backoff_log_probs(stream, tables, model.order, cuts), expected)
    # the model's own entry point: the same values, whichever path it takes
    assert torch.equal(model.stream_log_probs(stream[None])[0], reference)
    # compiled with bounds checks: the same values, nothing read out of range
    checked = bounds_checked(backoff_scores._stream_scores)
    starts = np.append(cuts, len(stream)).astype(np.int64)
    lanes = np.linspace(0, len(cuts), min(len(cuts), 8) + 1).astype(np.int64)
    values = checked(
        stream.numpy(),
        starts,
        lanes,
        tables.unigram_log_probs,
        tables.unigram_log_backoffs,
        tables.tables,
        tables.table_offsets,
        tables.table_bits,
        size,
        model.order,
        np.empty(len(stream)),
    )
    assert torch.equal(torch.from_numpy(values), expected)


@pytest.mark.parametrize("count", [0, 1, 5, 1000])
def test_hash_table_finds_every_key_at_its_entry(count):
    keys = np.unique(np.random.default_rng(count).integers(0, 2**40, size=count))
    table, bits = hash_table(keys, -np.arange(len(keys), dtype=float), np.zeros(len(keys)))
    assert len(table) == 4 << bits and (2 << bits) > 2 * len(keys) - 1
    stored = table[1::4] >= 0
    assert stored.sum() == len(keys)
    np.testing.assert_array_equal(keys[table[1::4][stored]], table[0::4][stored])
    np.testing.assert_array_equal(table.view(np.float64)[2::4][stored], -table[1::4][stored])


def test_segments_must_increase():
    model = _random_model(np.random.default_rng(3))
    size = len(model.vocabulary)
    tables = BackoffTables.build(model.keys, model.log_probs, model.log_backoffs, size)
    stream = torch.zeros(6, dtype=torch.long)
    for bad in ([1, 3], [0, 3, 3], [0, 9]):
        with pytest.raises(ValueError, match="segments"):
            backoff_log_probs(stream, tables, model.order, np.array(bad))
    assert len(backoff_log_probs(stream[:0], tables, model.order)) == 0


def test_long_streams_scored_by_two_threads_equal_the_reference():
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(30)]
    corpus = [list(rng.choice(words, size=rng.integers(0, 15))) for _ in range(400)]
    model = NGramModel.fit(corpus, order=4, smoothing="kneser_ney", discount=0.7)
    test = [list(rng.choice(words + ["zebra"], size=rng.integers(0, 15))) for _ in range(6000)]
    flat, offsets = model.vocabulary.encode_corpus(test)
    stream = torch.from_numpy(flat)
    assert len(stream) >= backoff_scores.THREADS_ABOVE and len(offsets) > 2 * backoff_scores.LANES
    size = len(model.vocabulary)
    reference = backoff_log_probs_reference(
        stream, model.keys, model.log_probs, model.log_backoffs, size
    )
    tables = BackoffTables.build(model.keys, model.log_probs, model.log_backoffs, size)
    # a fitted model never continues a context across <s>: pieces are independent
    for threads in (None, 1, 2):
        scores = backoff_log_probs(stream, tables, model.order, offsets[:-1], threads)
        assert torch.equal(scores, reference)
    with pytest.raises(ValueError, match="threads"):
        backoff_log_probs(stream, tables, model.order, offsets[:-1], 3)
    assert torch.equal(model.stream_log_probs(stream[None])[0], reference)
    sentence_scores = model.score(test)
    expected = torch.stack(
        [reference[a + 1 : b].sum() for a, b in itertools.pairwise(offsets.tolist())]
    )
    torch.testing.assert_close(sentence_scores, expected, rtol=1e-12, atol=1e-12)

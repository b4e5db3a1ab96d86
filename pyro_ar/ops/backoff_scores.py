r"""Scoring a token stream under a backoff n-gram model (the ARPA semantics).

For the tables of an order-:math:`N` model (per order :math:`k`: sorted ``int64`` keys
``context_entry * V + word``, natural-log probabilities :math:`\log P_k` and backoffs
:math:`\log B_k`), the score of position :math:`t` of a stream :math:`x` is

.. math:: \log p(x_t \mid x_{<t}) = \log P_m(x_{t-m+1..t}) + \sum_{k=m}^{N-1}
          \log B_k(x_{t-k..t-1})

where :math:`m` is the longest order at which the n-gram ending at :math:`t` is stored and the
sum runs over the stored contexts longer than the match. Order :math:`k` is only looked up where
the :math:`(k-1)`-gram ending at :math:`t - 1` is stored (its entry is the key's context), so a
stream may hold many sentences back to back: n-grams across a ``<s>`` are never stored.

:func:`backoff_log_probs_reference` runs one vectorized ``searchsorted`` pass per order in torch
(any device); :func:`backoff_log_probs` is one loop compiled by Numba over the positions (CPU),
which finds an n-gram in a hash table of its order (:func:`hash_table`; about one cache miss per
look-up, as KenLM's probing tables). The two agree exactly (tested on random models and streams).
"""

from __future__ import annotations

__all__ = [
    "LANES",
    "SORT_QUERIES_ABOVE",
    "THREADS_ABOVE",
    "BackoffTables",
    "backoff_log_probs",
    "backoff_log_probs_reference",
    "find_entries",
    "hash_table",
    "thread_pool",
]

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from torch import Tensor

#: Batches of look-ups larger than this are sorted first (they then walk the table in order,
#: about twice as fast).
SORT_QUERIES_ABOVE = 8192


def find_entries(keys: Tensor, query: Tensor) -> Tensor:
    """Positions of ``query`` keys in the sorted ``keys``, ``-1`` where absent.

    Example:
        >>> find_entries(torch.tensor([2, 5, 9]), torch.tensor([5, 4, 9])).tolist()
        [1, -1, 2]
    """
    if len(keys) == 0:
        return torch.full_like(query, -1)
    if len(query) > SORT_QUERIES_ABOVE:
        query, order_of_query = torch.sort(query)
        position = torch.searchsorted(keys, query).clamp_(max=len(keys) - 1)
        found = torch.where(keys[position] == query, position, -1)
        return torch.empty_like(found).index_put_((order_of_query,), found)
    position = torch.searchsorted(keys, query).clamp_(max=len(keys) - 1)
    return torch.where(keys[position] == query, position, -1)


def backoff_log_probs_reference(
    flat: Tensor,
    keys: Sequence[Tensor],
    log_probs: Sequence[Tensor],
    log_backoffs: Sequence[Tensor],
    vocabulary_size: int,
) -> Tensor:
    """The score of every position of the 1-D id stream ``flat`` (the formula above), one
    ``searchsorted`` pass per order, on the tables' device. A stream position that is ``<s>``
    scores ``-inf`` (``<s>`` is never predicted).

    Example:
        >>> keys = [torch.arange(3), torch.tensor([1 * 3 + 2])]  # words 0, 1, 2; bigram (1, 2)
        >>> log_probs = [torch.tensor([-1.0, -2.0, -3.0]), torch.tensor([-0.5])]
        >>> log_backoffs = [torch.tensor([0.0, -0.25, 0.0]), torch.zeros(1)]
        >>> backoff_log_probs_reference(torch.tensor([1, 2, 0]), keys, log_probs, log_backoffs, 3)
        tensor([-2.0000, -0.5000, -1.0000])
    """
    # A trailing sentinel (never a stored continuation) gives every position a successor.
    sentinel = flat.new_full((1,), 0)
    stream = torch.cat([flat, sentinel])
    scores = log_probs[0][stream]
    position = torch.arange(1, len(stream), device=stream.device)
    context = stream[:-1]
    for k in range(2, len(keys) + 1):
        if len(position) == 0:
            break
        entry = find_entries(keys[k - 1], context * vocabulary_size + stream[position])
        entry[position == len(stream) - 1] = -1  # the sentinel matches nothing
        found = entry >= 0
        backed_off = scores[position] + log_backoffs[k - 2][context]
        scores[position] = torch.where(found, log_probs[k - 1][entry.clamp(min=0)], backed_off)
        hit = torch.nonzero(found).squeeze(1)
        position, context = position[hit] + 1, entry[hit]
    return scores[:-1]


@numba.njit(cache=True)
def _slot(key, bits):
    # Fibonacci hashing: the top bits of key * 2^64 / golden ratio
    product = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64(product >> np.uint64(64 - bits))


@numba.njit(cache=True)
def _fill_hash_table(keys, log_probs, log_backoffs, bits):
    size = np.int64(1) << bits
    table = np.full(4 * size, -1, dtype=np.int64)
    values = table.view(np.float64)
    mask = size - 1
    for entry in range(len(keys)):
        slot = _slot(keys[entry], bits)
        while table[4 * slot + 1] >= 0:
            slot = (slot + 1) & mask
        table[4 * slot] = keys[entry]
        table[4 * slot + 1] = entry
        values[4 * slot + 2] = log_probs[entry]
        values[4 * slot + 3] = log_backoffs[entry]
    return table


def hash_table(
    keys: np.ndarray, log_probs: np.ndarray, log_backoffs: np.ndarray
) -> tuple[np.ndarray, int]:
    """An open-addressing table (linear probing, load at most 1/2) of one order's n-grams:
    ``(table, bits)``, ``2**bits`` slots of four 8-byte words, ``key, entry, log P, log B`` (the
    last two are float64 bits; entry ``-1``: empty), so one cache line holds all a look-up needs.

    Example:
        >>> table, bits = hash_table(np.array([3, 10, 42]), np.zeros(3), np.zeros(3))
        >>> bits, sorted(int(e) for e in table[1::4] if e >= 0)
        (3, [0, 1, 2])
    """
    bits = max(1, int(2 * max(len(keys), 1) - 1).bit_length())
    return (
        _fill_hash_table(
            np.ascontiguousarray(keys, dtype=np.int64),
            np.ascontiguousarray(log_probs, dtype=np.float64),
            np.ascontiguousarray(log_backoffs, dtype=np.float64),
            bits,
        ),
        bits,
    )


@dataclass
class BackoffTables:
    """The tables of :func:`backoff_log_probs`: the dense unigram log-probabilities and
    backoffs, and for orders 2 and up one :func:`hash_table` each (concatenated, order ``k``
    from ``table_offsets[k - 1]`` with ``table_bits[k - 1]``).

    Example:
        >>> keys = [torch.arange(3), torch.tensor([5])]
        >>> tables = BackoffTables.build(keys, [torch.zeros(3), torch.zeros(1)],
        ...                              [torch.zeros(3), torch.zeros(1)], 3)
        >>> tables.table_offsets.tolist(), tables.table_bits.tolist()
        ([0, 0, 8], [0, 1])
    """

    unigram_log_probs: np.ndarray
    unigram_log_backoffs: np.ndarray
    tables: np.ndarray
    table_offsets: np.ndarray
    table_bits: np.ndarray
    vocabulary_size: int

    @classmethod
    def build(
        cls,
        keys: Sequence[Tensor],
        log_probs: Sequence[Tensor],
        log_backoffs: Sequence[Tensor],
        vocabulary_size: int,
    ) -> BackoffTables:
        def numpy(tensor: Tensor) -> np.ndarray:
            return tensor.detach().cpu().numpy()

        tables, bits = [np.zeros(0, dtype=np.int64)], [0]  # order 1 is dense: no table
        for k in range(2, len(keys) + 1):
            table, order_bits = hash_table(
                numpy(keys[k - 1]), numpy(log_probs[k - 1]), numpy(log_backoffs[k - 1])
            )
            tables.append(table)
            bits.append(order_bits)
        return cls(
            unigram_log_probs=numpy(log_probs[0]).astype(np.float64),
            unigram_log_backoffs=numpy(log_backoffs[0]).astype(np.float64),
            tables=np.concatenate(tables),
            table_offsets=np.cumsum([0] + [len(t) for t in tables]).astype(np.int64),
            table_bits=np.array(bits, dtype=np.int64),
            vocabulary_size=vocabulary_size,
        )


@intrinsic
def _prefetch(typing_context, array, index):
    """LLVM's ``prefetch`` of ``array[index]`` (a hint: it never faults, even out of range)."""
    signature = types.void(array, index)

    def codegen(context, builder, signature, arguments):
        structure = context.make_array(signature.args[0])(context, builder, arguments[0])
        pointer = cgutils.get_item_pointer(
            context, builder, signature.args[0], structure, [arguments[1]]
        )
        byte_pointer = ir.IntType(8).as_pointer()
        integer = ir.IntType(32)
        function = builder.module.declare_intrinsic(
            "llvm.prefetch",
            fnty=ir.FunctionType(ir.VoidType(), [byte_pointer, integer, integer, integer]),
        )
        # read access, high temporal locality, data cache
        builder.call(
            function, [builder.bitcast(pointer, byte_pointer), integer(0), integer(3), integer(1)]
        )
        return context.get_dummy_value()

    return signature, codegen


#: Independent pieces of a stream advanced together by the compiled loop: after each position
#: the loop prefetches the slots of the next one, and serves the other lanes while they arrive
#: (8 lanes: 1.75x faster than one on the Penn Treebank 5-gram).
LANES = 8
#: Streams at least this long are scored by two threads when there are two processors.
THREADS_ABOVE = 1 << 15


@functools.cache
def thread_pool() -> ThreadPoolExecutor:
    """The process's pool of two threads for the compiled scorer (starting threads per call
    costs more than scoring a short corpus). The loop releases the GIL, so work submitted here
    runs beside Python code, e.g. the encoding of the next sentences.

    Example:
        >>> thread_pool().submit(sum, [1, 2]).result()
        3
    """
    return ThreadPoolExecutor(2, thread_name_prefix="pyro_ar-ngram")


def _cores() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


@numba.njit(cache=True, nogil=True)
def _stream_scores(
    flat,
    starts,
    lanes,
    unigram_probs,
    unigram_backoffs,
    table,
    table_offsets,
    table_bits,
    size,
    order,
    scores,
):
    values = table.view(np.float64)
    count = len(lanes) - 1
    # per lane: the segment it is in, its position, the previous word and the slots of the
    # k-grams ending at the previous position (-1 if not stored)
    segment = lanes[:-1].copy()
    position = np.empty(count, dtype=np.int64)
    for lane in range(count):
        position[lane] = starts[segment[lane]]
    previous_word = np.full(count, -1, dtype=np.int64)
    previous = np.full((count, order + 1), -1, dtype=np.int64)
    current = np.full(order + 1, -1, dtype=np.int64)
    active = count
    while active > 0:
        active = 0
        for lane in range(count):
            if segment[lane] >= lanes[lane + 1]:
                continue
            active += 1
            t = position[lane]
            word = flat[t]
            score = unigram_probs[word]
            for k in range(order + 1):
                current[k] = -1
            if t > starts[segment[lane]]:
                for k in range(2, order + 1):
                    if k == 2:
                        context = previous_word[lane]
                        context_backoff = unigram_backoffs[context]
                    else:
                        context_slot = previous[lane, k - 1]
                        if context_slot < 0:  # not a stored context (a longer one may be)
                            continue
                        context = table[context_slot + 1]
                        context_backoff = values[context_slot + 3]
                    key = context * size + word
                    bits = table_bits[k - 1]
                    base = table_offsets[k - 1]
                    mask = (np.int64(1) << bits) - 1
                    slot = _slot(key, bits)
                    found = -1
                    while True:
                        where = base + 4 * slot
                        if table[where + 1] < 0:
                            break
                        if table[where] == key:
                            found = where
                            break
                        slot = (slot + 1) & mask
                    if found >= 0:
                        score = values[found + 2]
                    else:
                        score += context_backoff
                    current[k] = found
            scores[t] = score
            for k in range(order + 1):
                previous[lane, k] = current[k]
            previous_word[lane] = word
            position[lane] = t + 1
            if t + 1 >= starts[segment[lane] + 1]:  # next segment: its context starts afresh
                segment[lane] += 1
                if segment[lane] < lanes[lane + 1]:
                    position[lane] = starts[segment[lane]]
            else:
                # the next position's look-ups are known now: fetch their slots while the other
                # lanes work, so the misses overlap
                following = flat[t + 1]
                for k in range(2, order + 1):
                    if k == 2:
                        context = word
                    else:
                        context_slot = current[k - 1]
                        if context_slot < 0:
                            continue
                        context = table[context_slot + 1]
                    bits = table_bits[k - 1]
                    _prefetch(
                        table, table_offsets[k - 1] + 4 * _slot(context * size + following, bits)
                    )
    return scores


def backoff_log_probs(
    flat: Tensor,
    tables: BackoffTables,
    order: int,
    segments: np.ndarray | None = None,
    threads: int | None = None,
) -> Tensor:
    """:func:`backoff_log_probs_reference` on the CPU by one compiled loop: the same values.

    ``segments`` (sorted start positions, the first 0) cuts the stream into independent pieces,
    e.g. sentences: each is scored as if it were a stream of its own (no context crosses a
    start), and :data:`LANES` of them advance together (their look-ups overlap). ``threads``:
    1 or 2 (default: 2 for streams of :data:`THREADS_ABOVE` positions or more on a machine with
    two processors); pass 1 from inside :func:`thread_pool`.

    Example:
        >>> keys = [torch.arange(3), torch.tensor([1 * 3 + 2])]
        >>> log_probs = [torch.tensor([-1.0, -2.0, -3.0]), torch.tensor([-0.5])]
        >>> log_backoffs = [torch.tensor([0.0, -0.25, 0.0]), torch.zeros(1)]
        >>> tables = BackoffTables.build(keys, log_probs, log_backoffs, 3)
        >>> backoff_log_probs(torch.tensor([1, 2, 0]), tables, order=2)
        tensor([-2.0000, -0.5000, -1.0000], dtype=torch.float64)
    """
    if flat.device.type != "cpu":
        raise ValueError("backoff_log_probs runs on the CPU; use the reference on other devices")
    ids = flat.detach().numpy().astype(np.int64, copy=False)
    if len(ids) == 0:
        return torch.zeros(0, dtype=torch.float64)
    if segments is None:
        starts = np.array([0, len(ids)], dtype=np.int64)
    else:
        starts = np.append(np.asarray(segments, dtype=np.int64), len(ids))
        if len(starts) < 2 or starts[0] != 0 or (np.diff(starts) <= 0).any():
            raise ValueError(
                "segments must be increasing start positions inside the stream, the first 0"
            )
    count = len(starts) - 1
    scores = np.empty(len(ids), dtype=np.float64)
    # long streams of many segments: two threads (the loop releases the GIL), each with its lanes
    if threads is None:
        long = len(ids) >= THREADS_ABOVE and count >= 2 * LANES
        threads = 2 if long and _cores() > 1 else 1
    if threads not in (1, 2):
        raise ValueError(f"threads must be 1 or 2, got {threads}")
    threads = min(threads, count)
    bounds = np.linspace(0, count, threads + 1).astype(np.int64)

    def run(part: int) -> None:
        first, last = bounds[part], bounds[part + 1]
        lanes = np.linspace(first, last, min(last - first, LANES) + 1).astype(np.int64)
        _stream_scores(
            ids,
            starts,
            lanes,
            tables.unigram_log_probs,
            tables.unigram_log_backoffs,
            tables.tables,
            tables.table_offsets,
            tables.table_bits,
            tables.vocabulary_size,
            order,
            scores,
        )

    if threads == 1:
        run(0)
    else:
        list(thread_pool().map(run, range(threads)))
    return torch.from_numpy(scores)

r"""Compiled (Numba) loops behind :class:`~pyro_ar.ops.BernoulliSampler`.

The byte rule of the sampler (see :mod:`pyro_ar.ops.bernoulli_sampler`) written as three loops
that LLVM vectorizes, so that a Bernoulli layer costs one pass over the probabilities instead of
the half-dozen passes of a NumPy or PyTorch formulation:

1. :func:`fill_random_words`: 64-bit random words from SplitMix64 in its counter form,
   :math:`w_k = \mathrm{mix}(s + (k + 1)\gamma)`, eight random bytes per word;
2. :func:`compare_bytes`: :math:`x_i = [B_i < L_i]` with :math:`L_i = \min(\lfloor 256 p_i
   \rfloor, 255)`, and a tie flag :math:`[B_i = L_i]`;
3. :func:`settle_ties`: for the flagged draws (one in 256), :math:`x_i = [U_i < 256 p_i - L_i]`
   with a 53-bit uniform :math:`U_i` from a second SplitMix64 stream.

Capping the level at 255 keeps it in a byte and stays exact: for :math:`p = 1`, the tie at
:math:`B = 255` has :math:`256 p - L = 1 > U`.

Every loop checks its indices against the lengths of the arrays it writes (a draw never writes
past ``out``, whatever the scratch arrays hold); the loops are compiled without Numba's own
bounds checks for speed, and :func:`bounds_checked_kernels` compiles the same loops with them, so
that tests catch any out-of-bounds access as an ``IndexError`` instead of memory corruption.

This module imports Numba; :mod:`pyro_ar.ops.bernoulli_sampler` imports it only when a sampler
with the compiled backend is made.

References:
    | Fast Splittable Pseudorandom Number Generators (Steele, Lea and Flood, OOPSLA 2014),
    | https://doi.org/10.1145/2714064.2660195
"""

from __future__ import annotations

__all__ = [
    "GOLDEN_GAMMA",
    "BernoulliKernels",
    "bounds_checked_kernels",
    "compare_bytes",
    "fill_random_words",
    "settle_ties",
]

from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np

#: SplitMix64's increment: the odd integer closest to 2^64 / golden ratio.
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_UNIT_53 = 1.0 / 9007199254740992.0  # 2^-53


def _for_each_float(signature: str) -> list[str]:
    """Numba signatures for float32 and float64 probabilities (``{dtype}`` in ``signature``)."""
    return [signature.format(dtype=dtype) for dtype in ("float32", "float64")]


@numba.njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    """SplitMix64's output function (Stafford's "Mix13" variant of MurmurHash3's finalizer)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _fill_random_words(words: np.ndarray, state: np.uint64) -> np.uint64:
    """Writes ``words[k] = mix(state + (k + 1) * gamma)`` (uint64, shape ``(K,)``) and returns
    the state after the last word, ``state + K * gamma``, to continue the stream from."""
    for k in range(words.shape[0]):
        words[k] = _mix(state + np.uint64(k + 1) * GOLDEN_GAMMA)
    return state + np.uint64(words.shape[0]) * GOLDEN_GAMMA


def _compare_bytes(
    probs: np.ndarray, random_bytes: np.ndarray, out: np.ndarray, ties: np.ndarray, scale
) -> None:
    """``out[i] = [B_i < L_i]`` and ``ties[i] = [B_i = L_i]`` for ``L_i = min(floor(p_i scale),
    255)`` and ``i < N``, then ``ties[i] = 0`` for ``N <= i < len(ties)``. ``probs`` and
    ``out``: shape ``(N,)``, one float dtype; ``random_bytes`` (at least ``N`` long) and
    ``ties``: uint8; ``scale``: 256 in the probabilities' dtype (so that the product stays in
    that dtype, where it is exact)."""
    count = min(probs.shape[0], out.shape[0], random_bytes.shape[0], ties.shape[0])
    for i in range(count):
        byte = np.int32(random_bytes[i])
        level = min(np.int32(probs[i] * scale), np.int32(255))
        out[i] = byte < level
        ties[i] = byte == level
    # the padding up to whole tie words must never hold a flag from an earlier, larger draw
    for i in range(count, ties.shape[0]):
        ties[i] = 0


def _settle_ties(
    probs: np.ndarray,
    random_bytes: np.ndarray,
    out: np.ndarray,
    tie_words: np.ndarray,
    state: np.uint64,
) -> np.uint64:
    """Redraws ``out[i] = [U_i < 256 p_i - B_i]`` where the tie flags, read eight at a time as
    ``tie_words`` (uint64), are set and ``i < len(out)``; returns the advanced state of the
    uniforms' stream."""
    count = min(probs.shape[0], out.shape[0], random_bytes.shape[0])
    for k in range(tie_words.shape[0]):
        word = tie_words[k]
        if word != 0:
            for j in range(8):
                i = 8 * k + j
                if i < count and (word >> np.uint64(8 * j)) & np.uint64(1):
                    state += GOLDEN_GAMMA
                    uniform = np.float64(_mix(state) >> np.uint64(11)) * _UNIT_53
                    out[i] = uniform < np.float64(probs[i]) * 256.0 - np.float64(random_bytes[i])
    return state


class BernoulliKernels(NamedTuple):
    """The three compiled loops of the byte rule (see the module docstring).

    Example:
        >>> from pyro_ar.ops import BernoulliSampler
        >>> _ = torch.manual_seed(0)
        >>> sampler = BernoulliSampler()  # runs these loops (or a reference backend)
        >>> draws = sampler(torch.full((100000,), 0.25))
        >>> round(draws.mean().item(), 2)
        0.25
    """

    fill_random_words: Callable[..., np.uint64]
    compare_bytes: Callable[..., None]
    settle_ties: Callable[..., np.uint64]


def _compile(boundscheck: bool, cache: bool) -> BernoulliKernels:
    # Explicit signatures: the states stay uint64 whatever integer type the caller passes (an
    # int64 state would silently turn the arithmetic into float64), and both dtypes compile at
    # once.
    options = {"cache": cache, "boundscheck": boundscheck}
    return BernoulliKernels(
        numba.njit("uint64(uint64[::1], uint64)", **options)(_fill_random_words),
        numba.njit(
            _for_each_float("void({dtype}[::1], uint8[::1], {dtype}[::1], uint8[::1], {dtype})"),
            **options,
        )(_compare_bytes),
        numba.njit(
            _for_each_float("uint64({dtype}[::1], uint8[::1], {dtype}[::1], uint64[::1], uint64)"),
            **options,
        )(_settle_ties),
    )


#: The loops as the sampler runs them: Numba's bounds checks off (the loops bound their indices
#: themselves), compiled once and cached on disk.
KERNELS = _compile(boundscheck=False, cache=True)
fill_random_words, compare_bytes, settle_ties = KERNELS

_bounds_checked: BernoulliKernels | None = None


def bounds_checked_kernels() -> BernoulliKernels:
    """The same loops compiled with Numba's bounds checking, so that an out-of-bounds read or
    write raises ``IndexError`` (compiled on first use, not cached on disk: Numba's cache does
    not key on the bounds-check flag).

    Example:
        >>> from pyro_ar.ops import BernoulliSampler
        >>> draws = BernoulliSampler(boundscheck=True)(torch.full((1000,), 0.5))
        >>> draws.shape, bool(((draws == 0) | (draws == 1)).all())
        (torch.Size([1000]), True)
    """
    global _bounds_checked
    if _bounds_checked is None:
        _bounds_checked = _compile(boundscheck=True, cache=False)
    return _bounds_checked

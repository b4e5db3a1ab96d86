r"""Exact Bernoulli draws from eight random bits per draw on CPU.

A Gibbs sweep of an RBM draws a Bernoulli variable for every unit of every chain. The usual
draw, :math:`x = [u < p]` with a float32 uniform :math:`u`, spends 32 random bits per draw, and
PyTorch makes them on one thread with a Mersenne Twister: on CPU that costs as much as the
sweep's matrix products. But one random byte already decides the draw 255 times in 256:

.. math::

    B \sim \mathcal{U}\{0, \dots, 255\}, \quad L = \lfloor 256 p \rfloor, \qquad
    x = \begin{cases} 1 & B < L \\ 0 & B > L \\ [U < 256 p - L] & B = L,\ U \sim \mathcal{U}(0, 1),
    \end{cases}

so :math:`P(x = 1) = L / 256 + (256 p - L) / 256 = p` exactly, and the rare ties (probability
1/256) are settled by a full-precision uniform. Two implementations of the rule:

- ``"compiled"`` (the default where Numba imports): three vectorized loops compiled by Numba
  (:mod:`pyro_ar.ops.bernoulli_kernels`), one pass over the probabilities, with SplitMix64
  random words; about four times faster than the NumPy formulation.
- ``"numpy"``: raw 64-bit outputs of NumPy's PCG64 compared with the levels in a few vectorized
  NumPy passes.

References:
    | PCG: A Family of Simple Fast Space-Efficient Statistically Good Algorithms for Random
    | Number Generation (O'Neill, 2014), https://www.pcg-random.org/paper.html
    | Fast Splittable Pseudorandom Number Generators (Steele, Lea and Flood, OOPSLA 2014),
    | https://doi.org/10.1145/2714064.2660195
"""

from __future__ import annotations

__all__ = ["BernoulliSampler"]

import logging
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .provenance import attach_provenance, split_provenance

logger = logging.getLogger(__name__)

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
Backend = Literal["auto", "compiled", "numpy", "torch"]


def _compiled_kernels(boundscheck: bool = False):
    """The compiled loops (:class:`~pyro_ar.ops.bernoulli_kernels.BernoulliKernels`), or
    ``None`` where Numba is missing or fails to import."""
    try:
        from . import bernoulli_kernels
    except Exception as error:  # ImportError, or a Numba that rejects this NumPy
        logger.info("Numba unavailable (%s): BernoulliSampler uses its NumPy backend", error)
        return None
    return bernoulli_kernels.bounds_checked_kernels() if boundscheck else bernoulli_kernels.KERNELS


class BernoulliSampler:
    r"""Draws :math:`x_i \sim \mathrm{Bernoulli}(p_i)` for probabilities :math:`p_i \in [0, 1]`.

    On CPU (float32 or float64) it settles each draw with one random byte and a full-precision
    uniform in the 1/256 of cases where the byte ties (see the module docstring): exact, and
    several times faster than ``torch.rand_like(p) < p``. Its random streams are seeded from
    PyTorch's global generator when the sampler is made, so ``torch.manual_seed`` makes a run
    reproducible. On other devices and dtypes it is ``torch.rand_like(p) < p``.

    Make one sampler per loop (a Gibbs chain, an AIS run) and call it at every step.

    Args:
        backend: ``"compiled"`` (Numba loops), ``"numpy"``, ``"torch"``
            (``torch.rand_like(p) < p`` everywhere), or ``"auto"``: compiled where Numba
            imports, else NumPy. The backends draw different (equally exact) streams.
        boundscheck: Run the compiled loops with Numba's bounds checking (slower: for tests
            and debugging; an out-of-bounds access raises ``IndexError``).

    Example:
        >>> sampler = BernoulliSampler()
        >>> draws = sampler(torch.full((1000, 784), 0.3))  # float32 zeros and ones
    """

    def __init__(self, backend: Backend = "auto", boundscheck: bool = False) -> None:
        if backend not in ("auto", "compiled", "numpy", "torch"):
            raise ValueError(
                f"backend must be 'auto', 'compiled', 'numpy' or 'torch', got {backend!r}"
            )
        self._kernels = None
        if backend in ("auto", "compiled"):
            self._kernels = _compiled_kernels(boundscheck)
            if self._kernels is None and backend == "compiled":
                raise ImportError("BernoulliSampler(backend='compiled') needs Numba")
        self.backend = (
            "compiled" if self._kernels is not None else "numpy" if backend == "auto" else backend
        )
        seeds = torch.randint(0, 2**62, (2,)).tolist()
        self.generator = np.random.Generator(np.random.PCG64(seeds[0]))
        # states of the compiled backend's two SplitMix64 streams (bytes, tie uniforms)
        self._word_state = np.uint64(seeds[0])
        self._tie_state = np.uint64(seeds[1])
        # scratch arrays of the last shapes drawn (a loop draws the same shapes every step)
        self._scratch: dict[tuple, tuple] = {}

    def _scratch_for(self, key: tuple, make) -> tuple:
        if key not in self._scratch:
            if len(self._scratch) >= 4:
                self._scratch.clear()
            self._scratch[key] = make()
        return self._scratch[key]

    def __call__(self, probs: Tensor, out: Tensor | None = None) -> Tensor:
        """Zeros and ones in ``probs``' dtype, device and shape (written into ``out``, a
        contiguous tensor of that shape and dtype that does not overlap ``probs``, if given:
        loops that reuse their buffers spare the allocator). The draws carry the Pyro
        provenance of ``probs`` (see :mod:`pyro_ar.ops.provenance`)."""
        (probs, out), provenance = split_provenance(probs, out)
        return attach_provenance(self._draw(probs, out), provenance)

    def _draw(self, probs: Tensor, out: Tensor | None) -> Tensor:
        if out is not None:
            if out.shape != probs.shape or out.dtype != probs.dtype:
                raise ValueError(
                    f"out must have probs' shape {tuple(probs.shape)} and dtype {probs.dtype}, "
                    f"got {tuple(out.shape)} and {out.dtype}"
                )
            if not out.is_contiguous():
                raise ValueError("out must be contiguous")
            if _overlap(out, probs):
                raise ValueError(
                    "out must not be probs itself or overlap it: the ties read probs after out"
                )
        if (
            self.backend == "torch"
            or probs.device.type != "cpu"
            or probs.dtype not in _NUMPY_DTYPES
        ):
            draws = (torch.rand_like(probs) < probs).to(probs.dtype)
            return draws if out is None else out.copy_(draws)
        probs = probs.detach()
        if probs.numel() == 0:
            return torch.empty(probs.shape, dtype=probs.dtype) if out is None else out
        if self.backend == "compiled":
            return self._draw_compiled(probs, out)
        return self._draw_numpy(probs, out)

    def _draw_compiled(self, probs: Tensor, out: Tensor | None) -> Tensor:
        kernels = self._kernels
        count = probs.numel()
        num_words = (count + 7) // 8
        # the tie flags are padded to whole words (compare_bytes zeroes the padding)
        words, ties = self._scratch_for(
            ("compiled", count),
            lambda: (np.empty(num_words, np.uint64), np.zeros(8 * num_words, np.uint8)),
        )
        if out is None:
            out = torch.empty(probs.shape, dtype=probs.dtype)
        flat_probs = probs.contiguous().view(-1).numpy()
        flat_out = out.view(-1).numpy()
        # Numba returns uint64 as a Python int; passed back as one it would be typed int64
        self._word_state = np.uint64(kernels.fill_random_words(words, self._word_state))
        random_bytes = words.view(np.uint8)
        scale = _NUMPY_DTYPES[probs.dtype](256)
        kernels.compare_bytes(flat_probs, random_bytes, flat_out, ties, scale)
        self._tie_state = np.uint64(
            kernels.settle_ties(
                flat_probs, random_bytes, flat_out, ties.view(np.uint64), self._tie_state
            )
        )
        return out

    def _draw_numpy(self, probs: Tensor, out: Tensor | None) -> Tensor:
        count = probs.numel()
        level, ties = self._scratch_for(
            ("numpy", tuple(probs.shape), probs.dtype),
            lambda: (
                torch.empty(probs.shape, dtype=probs.dtype),
                torch.empty(probs.shape, dtype=torch.bool),
            ),
        )
        raw = self.generator.bit_generator.random_raw((count + 7) // 8)
        random_bytes = torch.from_numpy(raw.view(np.uint8)[:count]).view(probs.shape)
        draws = random_bytes.to(probs.dtype) if out is None else out.copy_(random_bytes)
        # L = floor(256 p) (the product is exact); p = 1 gives L = 256, above every byte.
        # NumPy's float comparison is several times faster than torch's into a bool tensor.
        torch.mul(probs, 256, out=level).floor_()
        np.equal(draws.numpy(), level.numpy(), out=ties.numpy())
        index = torch.from_numpy(np.flatnonzero(ties.numpy()))
        draws.lt_(level)  # in place: B < L as 1.0 / 0.0
        if len(index):
            remainder = probs.reshape(-1)[index] * 256 - level.view(-1)[index]
            uniform = self.generator.random(len(index), dtype=_NUMPY_DTYPES[probs.dtype])
            draws.view(-1)[index] = (torch.from_numpy(uniform) < remainder).to(draws.dtype)
        return draws


def _overlap(first: Tensor, second: Tensor) -> bool:
    """Whether the memory spans of two CPU tensors on the same storage intersect."""
    if first.numel() == 0 or second.numel() == 0:
        return False
    if first.untyped_storage().data_ptr() != second.untyped_storage().data_ptr():
        return False

    def span(tensor: Tensor) -> tuple[int, int]:
        extent = sum(
            (size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride(), strict=True)
        )
        start = tensor.data_ptr()
        return start, start + (extent + 1) * tensor.element_size()

    (first_start, first_end), (second_start, second_end) = span(first), span(second)
    return first_start < second_end and second_start < first_end

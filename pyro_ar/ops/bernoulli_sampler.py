r"""Fast Bernoulli draws for sampling loops: :math:`x = [u < p]`, :math:`u \sim U(0, 1)`.

On CPU, PyTorch draws uniforms from one Mersenne-Twister generator on one thread, and in a
block-Gibbs sweep of an RBM that costs as much as the matrix products. :class:`BernoulliSampler`
splits the draws over several independently seeded PCG64 streams (NumPy's default bit
generator, about 1.5x faster than PyTorch's CPU generator, and it releases the GIL) filled from
a thread pool, then compares in place, so the uniforms' buffer becomes the 0/1 result without
another allocation. On other devices, and for dtypes other than float32 and float64, it uses
``torch.rand_like``.

References:
    | PCG: A Family of Simple Fast Space-Efficient Statistically Good Algorithms for Random
    | Number Generation (O'Neill, 2014), https://www.pcg-random.org/paper.html
"""

from __future__ import annotations

__all__ = ["BernoulliSampler"]

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

#: Below this many draws one generator is faster than handing work to threads.
PARALLEL_THRESHOLD = 1 << 16

_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def _thread_pool() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _pool_lock:
        # a forked child inherits the pool object but not its threads: make a new one
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(
                max_workers=max(1, torch.get_num_threads()), thread_name_prefix="pyro_ar_rng"
            )
            _pool_pid = os.getpid()
        return _pool


class BernoulliSampler:
    r"""Draws :math:`x_i \sim \mathrm{Bernoulli}(p_i)` as :math:`x_i = [u_i < p_i]`.

    On CPU, the uniforms of a large draw come from ``num_streams`` PCG64 generators, one block
    each, filled in parallel; their seeds are drawn from PyTorch's global generator when the
    sampler is made, so ``torch.manual_seed`` makes a run reproducible (for a given
    ``num_streams``, whatever the number of cores). Elsewhere it is ``torch.rand_like(p) < p``.

    A sampler is not meant to be shared by threads that draw at the same time.

    Arguments:
        num_streams: Generators (and row blocks) used on CPU.

    Example:
        >>> sampler = BernoulliSampler()
        >>> draws = sampler(torch.full((1000, 784), 0.3))  # float32 zeros and ones
    """

    def __init__(self, num_streams: int = 4) -> None:
        if num_streams < 1:
            raise ValueError(f"num_streams must be at least 1, got {num_streams}")
        seeds = torch.randint(0, 2**62, (num_streams,)).tolist()
        self.generators = [np.random.Generator(np.random.PCG64(seed)) for seed in seeds]

    def uniform_(self, out: Tensor) -> Tensor:
        """Fills ``out`` (a contiguous float32 or float64 CPU tensor) with :math:`U(0, 1)`
        draws in place."""
        array = out.detach().numpy().reshape(-1)
        if out.numel() < PARALLEL_THRESHOLD or len(self.generators) == 1:
            self.generators[0].random(out=array, dtype=array.dtype)
            return out
        blocks = np.array_split(array, len(self.generators))
        futures = [
            _thread_pool().submit(generator.random, out=block, dtype=array.dtype)
            for block, generator in zip(blocks, self.generators, strict=True)
        ]
        for future in futures:
            future.result()
        return out

    def __call__(self, probs: Tensor) -> Tensor:
        """Zeros and ones in ``probs``' dtype, device and shape."""
        if probs.device.type != "cpu" or probs.dtype not in (torch.float32, torch.float64):
            return (torch.rand_like(probs) < probs).to(probs.dtype)
        uniforms = torch.empty(probs.shape, dtype=probs.dtype)
        return self.uniform_(uniforms).lt_(probs)

r"""Orderings of the dimensions of autoregressive models."""

from __future__ import annotations

__all__ = ["random_ordering"]

import torch
from torch import Tensor


def random_ordering(num_dims: int, seed: int = 0) -> Tensor:
    """A uniformly random permutation of ``range(num_dims)``, reproducible from ``seed``.

    Example:
        >>> torch.equal(random_ordering(5, seed=1), random_ordering(5, seed=1))
        True
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_dims, generator=generator)

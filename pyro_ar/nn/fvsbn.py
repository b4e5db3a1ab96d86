r"""The module that holds an FVSBN's parameters and returns the distribution."""

from __future__ import annotations

__all__ = ["FVSBNModule"]

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..distributions.fvsbn import FVSBN
from .context import check_context
from .initialization import marginal_logits
from .module import AutoregressiveModule


class FVSBNModule(AutoregressiveModule, name="fvsbn"):
    r"""Holds the parameters of an :class:`~pyro_ar.distributions.FVSBN` and returns it.

    .. math:: p(x_d = 1 \mid x_{<d}, z) = \sigma\big(b_d + [A z]_d + \textstyle\sum_{j<d}
       W_{dj} x_j\big)

    where the context term :math:`A z` is present when ``context_features > 0`` (a conditional
    FVSBN, e.g. a decoder :math:`p(x \mid z)`).

    Arguments:
        num_dims: :math:`D`.
        ordering: A permutation of ``range(D)``; natural order by default.
        context_features: Size of the context vector :math:`z` (0 for none).
        data: Optional binary training data ``(N, D)``: the biases start at the logits of its
            smoothed marginals (Frey 1998 starts from the independent model too).
        seed: Accepted for the uniform module contract; the weights start at zero.

    References:
        | Graphical Models for Machine Learning and Digital Communication (Frey, 1998)

    Example:
        >>> module = FVSBNModule(64)
        >>> module().log_prob(torch.zeros(64)).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_dims: int,
        ordering: Tensor | Sequence[int] | None = None,
        context_features: int = 0,
        data: Tensor | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(num_dims, ordering, context_features)
        self.weight = nn.Parameter(torch.zeros(num_dims, num_dims))
        bias = torch.zeros(num_dims) if data is None else marginal_logits(data, num_dims).float()
        self.bias = nn.Parameter(bias)
        self.context_to_bias = nn.Linear(context_features, num_dims) if context_features else None
        if self.context_to_bias is not None:
            nn.init.zeros_(self.context_to_bias.bias)

    def forward(self, context: Tensor | None = None) -> FVSBN:
        """The distribution, with batch shape ``context.shape[:-1]`` when a context is given."""
        bias = self.bias
        if check_context("FVSBNModule", context, self.context_features) is not None:
            bias = bias + self.context_to_bias(context)
        return FVSBN(self.weight, bias, ordering=self.ordering)

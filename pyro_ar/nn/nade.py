r"""The module that holds a NADE's parameters and returns the distribution."""

from __future__ import annotations

__all__ = ["NADEModule"]

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..distributions.nade import NADE
from .context import check_context
from .initialization import marginal_logits
from .module import AutoregressiveModule, single_layer_size


class NADEModule(AutoregressiveModule, name="nade"):
    r"""Holds the parameters of a :class:`~pyro_ar.distributions.NADE` and returns it.

    .. math::
        h_d = \sigma\big(b + B z + W_{:, <d}\, x_{<d}\big), \qquad
        p(x_d = 1 \mid x_{<d}, z) = \sigma\big(c_d + [A z]_d + V_d \cdot h_d\big)

    where the context terms :math:`Bz` and :math:`Az` are present when ``context_features > 0``
    (a conditional NADE, e.g. a decoder :math:`p(x \mid z)`); they make the hidden and output
    biases batched, which keeps NADE's fast path.

    Initialization: :math:`W \sim U(\pm 1/\sqrt{D})`, :math:`V \sim U(\pm 1/\sqrt{H})`,
    :math:`b = 0`, and :math:`c` at the logits of the data marginals when ``data`` is given.

    Arguments:
        num_dims: :math:`D`.
        hidden_features: :math:`H` (or a list of one layer size).
        ordering: A permutation of ``range(D)``; natural order by default.
        context_features: Size of the context vector :math:`z` (0 for none).
        data: Optional binary training data ``(N, D)`` for the output-bias initialization.
        seed: Optional seed for the weight initialization.

    References:
        | The Neural Autoregressive Distribution Estimator (Larochelle & Murray, 2011)
        | https://proceedings.mlr.press/v15/larochelle11a.html

    Example:
        >>> module = NADEModule(64, hidden_features=32)
        >>> module().sample((2,)).shape
        torch.Size([2, 64])
    """

    def __init__(
        self,
        num_dims: int,
        hidden_features: int | Sequence[int] = 500,
        ordering: Tensor | Sequence[int] | None = None,
        context_features: int = 0,
        data: Tensor | None = None,
        seed: int | None = None,
    ) -> None:
        hidden_features = single_layer_size("NADEModule", hidden_features)
        super().__init__(num_dims, ordering, context_features)
        self.hidden_features = hidden_features

        def uniform(*shape: int, bound: float) -> Tensor:
            return (torch.rand(*shape) * 2 - 1) * bound

        with self.seeded(seed):
            self.input_weight = nn.Parameter(
                uniform(hidden_features, num_dims, bound=1 / math.sqrt(num_dims))
            )
            self.output_weight = nn.Parameter(
                uniform(num_dims, hidden_features, bound=1 / math.sqrt(hidden_features))
            )
        self.hidden_bias = nn.Parameter(torch.zeros(hidden_features))
        output_bias = (
            torch.zeros(num_dims) if data is None else marginal_logits(data, num_dims).float()
        )
        self.output_bias = nn.Parameter(output_bias)
        if context_features:
            with self.seeded(None if seed is None else seed + 1):
                self.context_to_hidden = nn.Linear(context_features, hidden_features)
                self.context_to_output = nn.Linear(context_features, num_dims)
            nn.init.zeros_(self.context_to_hidden.bias)
            nn.init.zeros_(self.context_to_output.bias)
        else:
            self.context_to_hidden = self.context_to_output = None

    def forward(self, context: Tensor | None = None) -> NADE:
        """The distribution, with batch shape ``context.shape[:-1]`` when a context is given."""
        hidden_bias, output_bias = self.hidden_bias, self.output_bias
        if check_context("NADEModule", context, self.context_features) is not None:
            hidden_bias = hidden_bias + self.context_to_hidden(context)
            output_bias = output_bias + self.context_to_output(context)
        return NADE(
            self.input_weight, hidden_bias, self.output_weight, output_bias, ordering=self.ordering
        )

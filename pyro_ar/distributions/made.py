r"""MADE distributions: masked autoencoders as autoregressive densities."""

from __future__ import annotations

__all__ = ["BernoulliMADE"]

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .autoregressive import BinaryAutoregressive

if TYPE_CHECKING:
    from ..nn.masked import MaskedAutoencoder


class BernoulliMADE(BinaryAutoregressive):
    r"""MADE over binary vectors: :math:`p(x_d = 1 \mid x_{<d}) = \sigma(\ell_d(x))`, where
    :math:`\ell = f(x)` is a :class:`~pyro_ar.nn.MaskedAutoencoder` with one output per
    dimension, so :meth:`log_prob` is one network pass.

    Sampling is incremental: the first hidden layer's pre-activation is a running sum over the
    inputs drawn so far, and each step evaluates the upper layers and one output row only,
    instead of a full network pass per dimension.

    Arguments:
        network: A :class:`~pyro_ar.nn.MaskedAutoencoder` with ``outputs_per_dim == 1``; its
            ordering is the distribution's.
        context: Optional context, shape ``batch_shape + (context_features,)``; it sets the
            batch shape.
        validate_args: Whether to validate values.

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509
    """

    arg_constraints = {}  # the parameters live in the network (an nn.Module)

    def __init__(
        self,
        network: MaskedAutoencoder,
        context: Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if network.outputs_per_dim != 1:
            raise ValueError(
                f"BernoulliMADE needs one output per dimension, the network has "
                f"{network.outputs_per_dim}"
            )
        if network.context_features and context is None:
            raise ValueError("this MADE network is conditional: pass a context")
        self.network = network
        self.context = context
        parameter = next(network.parameters())
        self._parameter_dtype = parameter.dtype
        batch_shape = context.shape[:-1] if context is not None else torch.Size()
        super().__init__(
            network.num_dims,
            batch_shape,
            network.ordering.to(parameter.device),
            parameter.device,
            validate_args,
        )

    def expand(self, batch_shape: torch.Size, _instance: BernoulliMADE | None = None):
        new = self._get_checked_instance(BernoulliMADE, _instance)
        batch_shape = torch.Size(batch_shape)
        new.network, new._parameter_dtype = self.network, self._parameter_dtype
        new.context = (
            None
            if self.context is None
            else self.context.expand(batch_shape + self.context.shape[-1:])
        )
        self._copy_base_into(new, batch_shape)
        return new

    @property
    def _dtype(self) -> torch.dtype:
        return self._parameter_dtype

    def _logits(self, value: Tensor) -> Tensor:
        context = self.context
        if context is not None:
            shape = torch.broadcast_shapes(value.shape[:-1], context.shape[:-1])
            value = value.expand(shape + value.shape[-1:])
            context = context.expand(shape + context.shape[-1:])
        return self.network(value, context)[..., 0]

    def _ordered_logits(self, ordered_value: Tensor) -> Tensor:
        return self._to_ordering(self._logits(self._from_ordering(ordered_value)))

    def _sampling_start(self, shape: torch.Size) -> dict:
        context = self.context
        if context is not None:
            context = context.expand(shape + context.shape[-1:])
        return {
            "x": torch.zeros(shape + self.event_shape, dtype=self._dtype, device=self._device),
            "first_layer": self.network.first_layer_start(shape, context),
            "weights": self.network.masked_weights(),
            "order": self.ordering.tolist(),
        }

    def _sampling_logit(self, state: dict, step: int) -> Tensor:
        dim = state["order"][step]
        return self.network.output_for(state["first_layer"], state["x"], dim, state["weights"])[
            ..., 0
        ]

    def _sampling_advance(self, state: dict, step: int, value: Tensor) -> None:
        dim = state["order"][step]
        state["x"][..., dim] = value
        state["first_layer"].add_(value.unsqueeze(-1) * state["weights"]["input_columns"][dim])

r"""MADE distributions: masked autoencoders as autoregressive densities."""

from __future__ import annotations

__all__ = ["BernoulliMADE", "MADEEnsemble"]

import math
from typing import TYPE_CHECKING

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from .autoregressive import BinaryAutoregressive
from .validation import check_binary_values, check_value_shape

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
        mask_index: The network's mask set to use (default: its selected one). The
            distribution evaluates that set without changing the network's selection.
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
        mask_index: int | None = None,
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
        self.mask_index = network.current_mask if mask_index is None else int(mask_index)
        if not 0 <= self.mask_index < network.num_masks:
            raise ValueError(
                f"mask_index must lie in [0, {network.num_masks}), got {self.mask_index}"
            )
        parameter = next(network.parameters())
        self._parameter_dtype = parameter.dtype
        batch_shape = context.shape[:-1] if context is not None else torch.Size()
        super().__init__(
            network.num_dims,
            batch_shape,
            network.orderings[self.mask_index].to(parameter.device),
            parameter.device,
            validate_args,
        )

    def expand(self, batch_shape: torch.Size, _instance: BernoulliMADE | None = None):
        new = self._get_checked_instance(BernoulliMADE, _instance)
        batch_shape = torch.Size(batch_shape)
        new.network, new._parameter_dtype = self.network, self._parameter_dtype
        new.mask_index = self.mask_index
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
        return self.network(value, context, mask_index=self.mask_index)[..., 0]

    def _ordered_logits(self, ordered_value: Tensor) -> Tensor:
        return self._to_ordering(self._logits(self._from_ordering(ordered_value)))

    def _sampling_start(self, shape: torch.Size) -> dict:
        context = self.context
        if context is not None:
            context = context.expand(shape + context.shape[-1:])
        return {
            "x": torch.zeros(shape + self.event_shape, dtype=self._dtype, device=self._device),
            "first_layer": self.network.first_layer_start(shape, context),
            "weights": self.network.masked_weights(self.mask_index),
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


class MADEEnsemble(TorchDistribution):
    r"""The ensemble of a MADE network's mask sets: the uniform mixture

    .. math:: p(x) = \frac{1}{M} \sum_{m=1}^{M} p_m(x), \qquad
       \log p(x) = \operatorname{logsumexp}_m \log p_m(x) - \log M,

    where :math:`p_m` is the :class:`BernoulliMADE` of mask set :math:`m`. This is a normalized
    density; averaging the *logits* over masks (as some code does) is not.

    :meth:`log_prob` costs :math:`M` network passes; :meth:`sample` draws a mask set per sample
    and runs that set's incremental sampler on the samples that chose it.

    Arguments:
        network: A :class:`~pyro_ar.nn.MaskedAutoencoder` with one output per dimension.
        context: Optional context, shape ``batch_shape + (context_features,)``.
        validate_args: Whether to validate values.

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509
    """

    arg_constraints = {}
    support = constraints.independent(constraints.boolean, 1)
    has_enumerate_support = False

    def __init__(
        self,
        network: MaskedAutoencoder,
        context: Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        self.network = network
        self.context = context
        self.components = [
            BernoulliMADE(network, context, index, validate_args=False)
            for index in range(network.num_masks)
        ]
        batch_shape = context.shape[:-1] if context is not None else torch.Size()
        super().__init__(batch_shape, torch.Size([network.num_dims]), validate_args)

    def expand(self, batch_shape: torch.Size, _instance: MADEEnsemble | None = None):
        batch_shape = torch.Size(batch_shape)
        context = self.context
        if context is not None:
            context = context.expand(batch_shape + context.shape[-1:])
        new = self._get_checked_instance(MADEEnsemble, _instance)
        new.network, new.context = self.network, context
        new.components = [component.expand(batch_shape) for component in self.components]
        super(MADEEnsemble, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _validate_sample(self, value: Tensor) -> None:
        check_value_shape(self, value, "binary")
        check_binary_values(type(self).__name__, value)

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density of the mixture, shape ``broadcast(value.shape[:-1], batch_shape)``."""
        if self._validate_args:
            self._validate_sample(value)
        per_mask = torch.stack([component.log_prob(value) for component in self.components])
        return per_mask.logsumexp(0) - math.log(len(self.components))

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """Draws a mask set uniformly per sample, then a sample from that set's model.

        Returns:
            Shape ``sample_shape + batch_shape + (D,)``.
        """
        shape = torch.Size(sample_shape) + self.batch_shape
        first = self.components[0]
        out = torch.empty(shape + self.event_shape, dtype=first._dtype, device=first._device)
        choice = torch.randint(len(self.components), shape, device=first._device)
        context = self.context
        if context is not None:
            context = context.expand(shape + context.shape[-1:])
        with torch.no_grad():
            for index, component in enumerate(self.components):
                chosen = choice == index
                count = int(chosen.sum())
                if count == 0:
                    continue
                if context is None:
                    out[chosen] = component.sample((count,))
                else:
                    out[chosen] = BernoulliMADE(self.network, context[chosen], index).sample()
        return out

r"""The module that holds a Bernoulli MADE's network and returns the distribution."""

from __future__ import annotations

__all__ = ["MADEModule"]

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..distributions.made import BernoulliMADE, MADEEnsemble
from .initialization import marginal_logits
from .masked import MaskedAutoencoder


class MADEModule(nn.Module):
    r"""Holds a :class:`~pyro_ar.nn.MaskedAutoencoder` and returns a
    :class:`~pyro_ar.distributions.BernoulliMADE` when called (with a context, if the network
    has one), so ``pyro.module`` registers it and the trainer and checkpoints work.

    With ``num_masks > 1``: in training mode each call moves to the next mask set and returns
    its model (connectivity-agnostic training, one mask set per step); in evaluation mode a
    call returns the :class:`~pyro_ar.distributions.MADEEnsemble` of all mask sets.

    Arguments:
        num_dims: :math:`D`.
        hidden_features: Sizes of the hidden layers.
        ordering: A permutation of ``range(D)``, ``"random"``, or ``None`` (natural).
        random_hidden_degrees: Draw hidden degrees at random (seeded).
        direct_connections: Add masked input-to-output connections.
        context_features: Size of the context (0 for none).
        num_masks: Number of mask sets.
        order_agnostic: Give every mask set after the first its own random ordering.
        data: Optional binary data ``(N, D)``: output biases start at its marginal logits.
        seed: Seed of the random ordering, degrees and weights.

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509
    """

    def __init__(
        self,
        num_dims: int,
        hidden_features: Sequence[int] = (500,),
        ordering: Tensor | Sequence[int] | str | None = None,
        random_hidden_degrees: bool = False,
        direct_connections: bool = False,
        context_features: int = 0,
        num_masks: int = 1,
        order_agnostic: bool = False,
        data: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.network = MaskedAutoencoder(
                num_dims,
                hidden_features,
                ordering=ordering,
                random_hidden_degrees=random_hidden_degrees,
                direct_connections=direct_connections,
                context_features=context_features,
                num_masks=num_masks,
                order_agnostic=order_agnostic,
                seed=seed,
            )
        if data is not None:
            with torch.no_grad():
                self.network.output.bias.copy_(marginal_logits(data, num_dims))
        self._config = {
            "num_dims": num_dims,
            "hidden_features": list(hidden_features),
            "random_hidden_degrees": random_hidden_degrees,
            "direct_connections": direct_connections,
            "context_features": context_features,
            "num_masks": num_masks,
            "order_agnostic": order_agnostic,
            "seed": seed,
        }

    @property
    def num_dims(self) -> int:
        return self.network.num_dims

    @property
    def ordering(self) -> Tensor:
        """The ordering of the first mask set."""
        return self.network.orderings[0]

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this module (used by checkpoints)."""
        return {**self._config, "ordering": self.network.orderings[0].tolist()}

    def forward(self, context: Tensor | None = None) -> BernoulliMADE | MADEEnsemble:
        """The distribution; its batch shape is ``context.shape[:-1]`` when a context is given."""
        if self.network.num_masks == 1:
            return BernoulliMADE(self.network, context)
        if self.training:
            self.network.next_mask()
            return BernoulliMADE(self.network, context)
        return MADEEnsemble(self.network, context)

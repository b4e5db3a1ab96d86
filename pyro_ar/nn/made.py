r"""The module that holds a Bernoulli MADE's network and returns the distribution."""

from __future__ import annotations

__all__ = ["MADEModule"]

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..distributions.made import BernoulliMADE
from .initialization import marginal_logits
from .masked import MaskedAutoencoder


class MADEModule(nn.Module):
    r"""Holds a :class:`~pyro_ar.nn.MaskedAutoencoder` and returns a
    :class:`~pyro_ar.distributions.BernoulliMADE` when called (with a context, if the network
    has one), so ``pyro.module`` registers it and the trainer and checkpoints work.

    Arguments:
        num_dims: :math:`D`.
        hidden_features: Sizes of the hidden layers.
        ordering: A permutation of ``range(D)``, ``"random"``, or ``None`` (natural).
        random_hidden_degrees: Draw hidden degrees at random (seeded).
        direct_connections: Add masked input-to-output connections.
        context_features: Size of the context (0 for none).
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
            "seed": seed,
        }

    @property
    def num_dims(self) -> int:
        return self.network.num_dims

    @property
    def ordering(self) -> Tensor:
        """The network's ordering of the dimensions."""
        return self.network.ordering

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this module (used by checkpoints)."""
        return {**self._config, "ordering": self.network.ordering.tolist()}

    def forward(self, context: Tensor | None = None) -> BernoulliMADE:
        """The distribution; its batch shape is ``context.shape[:-1]`` when a context is given."""
        return BernoulliMADE(self.network, context)

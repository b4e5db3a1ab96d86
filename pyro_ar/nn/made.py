r"""The module that holds a Bernoulli MADE's network and returns the distribution."""

from __future__ import annotations

__all__ = ["MADEModule"]

from collections.abc import Sequence

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor

from ..distributions.made import (
    BernoulliMADE,
    CategoricalMADE,
    GaussianMADE,
    MADEEnsemble,
    MixtureOfGaussiansMADE,
)
from .initialization import marginal_logits
from .masked import MaskedAutoencoder
from .module import DensityModule, layer_sizes

#: The distribution class behind each ``likelihood`` name.
LIKELIHOODS = {
    "bernoulli": BernoulliMADE,
    "categorical": CategoricalMADE,
    "gaussian": GaussianMADE,
    "mixture": MixtureOfGaussiansMADE,
}


class MADEModule(DensityModule, name="made"):
    r"""Holds a :class:`~pyro_ar.nn.MaskedAutoencoder` and returns a MADE distribution when
    called (with a context, if the network has one), so ``pyro.module`` registers it and the
    trainer and checkpoints work.

    ``likelihood`` picks the distribution: ``"bernoulli"``
    (:class:`~pyro_ar.distributions.BernoulliMADE`), ``"categorical"``
    (:class:`~pyro_ar.distributions.CategoricalMADE`, ``num_categories`` values per
    dimension), ``"gaussian"`` (:class:`~pyro_ar.distributions.GaussianMADE`) or
    ``"mixture"`` (:class:`~pyro_ar.distributions.MixtureOfGaussiansMADE`,
    ``num_components`` per conditional).

    With ``num_masks > 1``: in training mode a call returns the model of the current mask set,
    and :meth:`after_optimizer_step` moves to the next one (connectivity-agnostic training, one
    mask set per step: :func:`~pyro_ar.infer.fit_maximum_likelihood` calls it after every step;
    with your own SVI loop, call it after each ``svi.step``); in evaluation mode a call returns
    the :class:`~pyro_ar.distributions.MADEEnsemble` of all mask sets. With ``fresh_masks``
    every update draws a new mask set, and evaluation averages ``evaluation_masks`` drawn ones.
    Calling the module never
    changes its state, so scoring it (e.g. :func:`~pyro_ar.infer.mean_nll`, which evaluates
    in evaluation mode) gives the same figure every time.

    Arguments:
        num_dims: :math:`D`.
        hidden_features: Sizes of the hidden layers (an integer for one layer).
        likelihood: ``"bernoulli"``, ``"categorical"``, ``"gaussian"`` or ``"mixture"``.
        num_categories: :math:`K` for ``"categorical"``.
        num_components: Mixture components for ``"mixture"``.
        ordering: Passed to :class:`~pyro_ar.nn.MaskedAutoencoder`, as are the next five.
        random_hidden_degrees: See :class:`~pyro_ar.nn.MaskedAutoencoder`.
        direct_connections: See :class:`~pyro_ar.nn.MaskedAutoencoder`.
        context_features: See :class:`~pyro_ar.nn.MaskedAutoencoder`.
        num_masks: See :class:`~pyro_ar.nn.MaskedAutoencoder`.
        order_agnostic: See :class:`~pyro_ar.nn.MaskedAutoencoder`.
        fresh_masks: Order- and connectivity-agnostic training as the MADE paper runs it: a
            new mask set (random hidden degrees; a new ordering too with ``order_agnostic``)
            drawn from the seeded generator after every update, and evaluation as the
            log-mean-exp over ``evaluation_masks`` mask sets drawn from ``evaluation_seed``
            (:meth:`evaluation_network`; it costs ``evaluation_masks`` network passes).
        evaluation_masks: The number of masks evaluation averages over with ``fresh_masks``.
        evaluation_seed: The seed of those masks.
        data: Optional binary data ``(N, D)``: with ``"bernoulli"``, output biases start at its
            marginal logits.
        seed: Seed of the random ordering, degrees and weights.

    References:
        Germain, Gregor, Murray, Larochelle. *MADE: Masked Autoencoder for Distribution
        Estimation*. ICML 2015. https://arxiv.org/abs/1502.03509

    Example:
        >>> module = MADEModule(6, 16, num_masks=2)
        >>> module().sample((3,)).shape
        torch.Size([3, 6])
    """

    def __init__(
        self,
        num_dims: int,
        hidden_features: int | Sequence[int] = (500,),
        likelihood: str = "bernoulli",
        num_categories: int = 256,
        num_components: int = 5,
        ordering: Tensor | Sequence[int] | str | None = None,
        random_hidden_degrees: bool = False,
        direct_connections: bool = False,
        context_features: int = 0,
        num_masks: int = 1,
        order_agnostic: bool = False,
        fresh_masks: bool = False,
        evaluation_masks: int = 32,
        evaluation_seed: int = 0,
        data: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if fresh_masks and num_masks != 1:
            raise ValueError(
                "fresh_masks draws a new mask set at every update into one slot: use "
                f"num_masks=1 (got {num_masks}) and evaluation_masks for the test-time average"
            )
        if evaluation_masks < 1:
            raise ValueError(f"evaluation_masks must be positive, got {evaluation_masks}")
        self.fresh_masks = fresh_masks
        self.evaluation_masks = evaluation_masks
        self.evaluation_seed = evaluation_seed
        hidden_features = layer_sizes("MADEModule", hidden_features)
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}"
            )
        self.likelihood = likelihood
        outputs_per_dim = {
            "bernoulli": 1,
            "categorical": num_categories,
            "gaussian": 2,
            "mixture": 3 * num_components,
        }[likelihood]
        with self.seeded(seed):
            self.network = MaskedAutoencoder(
                num_dims,
                hidden_features,
                outputs_per_dim=outputs_per_dim,
                ordering=ordering,
                random_hidden_degrees=random_hidden_degrees,
                direct_connections=direct_connections,
                context_features=context_features,
                num_masks=num_masks,
                order_agnostic=order_agnostic,
                seed=seed,
            )
        if data is not None and likelihood == "bernoulli":
            with torch.no_grad():
                self.network.output.bias.copy_(marginal_logits(data, num_dims))

    @property
    def num_dims(self) -> int:
        return self.network.num_dims

    @property
    def ordering(self) -> Tensor:
        """The ordering of the first mask set."""
        return self.network.orderings[0]

    def forward(self, context: Tensor | None = None) -> TorchDistribution:
        """The distribution; its batch shape is ``context.shape[:-1]`` when a context is given.

        One mask set: its MADE distribution. Several: in training mode the current mask set's
        distribution, in evaluation mode their :class:`~pyro_ar.distributions.MADEEnsemble`.
        """
        component = LIKELIHOODS[self.likelihood]
        if self.fresh_masks and not self.training:
            return MADEEnsemble(self.evaluation_network(), context, component)
        if self.network.num_masks == 1 or self.training:
            return component(self.network, context)
        return MADEEnsemble(self.network, context, component)

    def evaluation_network(self) -> MaskedAutoencoder:
        """With ``fresh_masks``: the network (same weights) with the ``evaluation_masks`` mask
        sets drawn from ``evaluation_seed`` that evaluation averages over; the same sets at
        every call."""
        return self.network.with_drawn_masks(self.evaluation_masks, self.evaluation_seed)

    def after_optimizer_step(self) -> None:
        """In training mode: draws a fresh mask set (``fresh_masks``) or moves to the next of
        the fixed sets (``num_masks > 1``); does nothing otherwise. Training loops call it
        after every optimizer step."""
        if not self.training:
            return
        if self.fresh_masks:
            self.network.draw_fresh_mask()
        elif self.network.num_masks > 1:
            self.network.next_mask()

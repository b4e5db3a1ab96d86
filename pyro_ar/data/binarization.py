r"""Turning grey-level images into binary vectors."""

from __future__ import annotations

__all__ = ["DynamicBinarization", "binarize_stochastic", "binarize_threshold"]

import torch
from torch import Tensor


def binarize_stochastic(intensities: Tensor, seed: int = 0) -> Tensor:
    r"""Draws each pixel independently, :math:`x \sim \text{Bernoulli}(v)`, with a fixed seed.

    This is the protocol of Salakhutdinov & Murray (2008) behind the standard binarized-MNIST
    figures (FVSBN 97.45, NADE 88.86 nats).

    Arguments:
        intensities: Values :math:`v \in [0, 1]`, any shape.
        seed: Seed of the generator that draws the pixels (the result is reproducible).

    Returns:
        ``float32`` zeros and ones, same shape.

    References:
        | On the Quantitative Analysis of Deep Belief Networks (Salakhutdinov & Murray, 2008)
        | https://doi.org/10.1145/1390156.1390266

    Example:
        >>> intensities = torch.full((10000, 1), 0.3)
        >>> binary = binarize_stochastic(intensities, seed=0)
        >>> again = binarize_stochastic(intensities, seed=0)
        >>> torch.equal(binary, again), round(binary.mean().item(), 2)
        (True, 0.3)
    """
    _check_unit_interval(intensities)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    uniform = torch.rand(intensities.shape, generator=generator)
    return (uniform < intensities.cpu().float()).float()


def binarize_threshold(intensities: Tensor, threshold: float = 0.5) -> Tensor:
    r"""Deterministic binarization, :math:`x = [v > \text{threshold}]`.

    Arguments:
        intensities: Values :math:`v \in [0, 1]`, any shape.
        threshold: The cut-off in :math:`[0, 1)`.

    Returns:
        ``float32`` zeros and ones, same shape.

    Example:
        >>> binarize_threshold(torch.tensor([[0.2, 0.5, 0.7]]))
        tensor([[0., 0., 1.]])
    """
    _check_unit_interval(intensities)
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    return (intensities > threshold).float()


class DynamicBinarization:
    r"""A fresh stochastic binarization of the same grey-level images for every epoch,
    :math:`x^{(e)} \sim \text{Bernoulli}(v)`: data augmentation for binary-image models, which
    otherwise memorize the one binarization they are trained on. Validation and test sets keep
    their fixed binarization, so figures stay comparable with fixed-binarization results.

    Pass it as the training set of :func:`~pyro_ar.infer.fit_maximum_likelihood`, which calls it
    with the epoch number (1, 2, ...).

    Arguments:
        intensities: Grey levels :math:`v \in [0, 1]`, shape ``(N, D)``.
        seed: Seed of the draws; epoch :math:`e` is reproducible on its own.

    References:
        | Importance Weighted Autoencoders (Burda, Grosse & Salakhutdinov, 2016), appendix on
        | dynamically binarized MNIST; https://arxiv.org/abs/1509.00519

    Example:
        >>> epochs = DynamicBinarization(torch.full((100, 4), 0.5), seed=0)
        >>> torch.equal(epochs(1), epochs(1)), torch.equal(epochs(1), epochs(2))  # per epoch
        (True, False)
    """

    def __init__(self, intensities: Tensor, seed: int = 0) -> None:
        _check_unit_interval(intensities)
        if intensities.dim() != 2:
            raise ValueError(f"intensities must have shape (N, D), got {tuple(intensities.shape)}")
        self.intensities = intensities.float()
        self.seed = seed

    def __len__(self) -> int:
        return len(self.intensities)

    def __call__(self, epoch: int) -> Tensor:
        """The binarization of epoch ``epoch``, ``float32`` zeros and ones of shape ``(N, D)``."""
        generator = torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + epoch)
        uniform = torch.rand(self.intensities.shape, generator=generator)
        return (uniform < self.intensities.cpu()).float()


def _check_unit_interval(intensities: Tensor) -> None:
    if torch.isnan(intensities).any() or (intensities < 0).any() or (intensities > 1).any():
        raise ValueError("intensities must lie in [0, 1] (divide grey levels by their maximum)")

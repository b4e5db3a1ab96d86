r"""The fully-visible sigmoid belief network (FVSBN)."""

from __future__ import annotations

__all__ = ["FVSBN"]

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import constraints

from .autoregressive import BinaryAutoregressive, shared_across_batch
from .validation import broadcast_batch_shapes, check_floating_parameters


class FVSBN(BinaryAutoregressive):
    r"""Fully-visible sigmoid belief network: a logistic regression per dimension on the
    dimensions before it.

    .. math:: p(x_d = 1 \mid x_{<d}) = \sigma\Big(b_d + \sum_{j < d} W_{dj} x_j\Big)

    where :math:`<` is the model's ordering. Only the strictly lower-triangular part of
    ``weight`` *in the ordering* is used (with the natural order, ``weight.tril(-1)``): the rest
    is ignored, so an unconstrained matrix can be optimized directly. ``weight[d, j]`` always
    refers to dimensions ``d`` and ``j``, whatever the ordering.

    :meth:`log_prob` is one matrix product, :math:`O(D^2)` per example; sampling keeps the
    running logits of all later dimensions and costs :math:`O(D^2)` per sample.

    Arguments:
        weight: Shape ``batch_shape + (D, D)``.
        bias: Shape ``batch_shape + (D,)``.
        ordering: A permutation of ``range(D)``: ``ordering[k]`` is generated at step ``k``.
        validate_args: Whether to validate parameters and values.

    References:
        | Graphical Models for Machine Learning and Digital Communication (Frey, 1998)
        | Learning Deep Sigmoid Belief Networks with Data Augmentation (Gan et al., 2015)
        | https://proceedings.mlr.press/v38/gan15.html

    Example:
        >>> d = FVSBN(torch.randn(5, 5), torch.zeros(5))
        >>> x = d.sample((3,))
        >>> d.log_prob(x).shape
        torch.Size([3])
    """

    arg_constraints = {
        "weight": constraints.independent(constraints.real, 2),
        "bias": constraints.independent(constraints.real, 1),
    }
    expand_shares = ("weight", "bias")

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor,
        ordering: Tensor | Sequence[int] | None = None,
        validate_args: bool | None = None,
    ) -> None:
        check_floating_parameters("FVSBN", weight=weight, bias=bias)
        if bias.dim() < 1:
            raise ValueError(f"FVSBN: bias must have shape (..., D), got {tuple(bias.shape)}")
        num_dims = bias.shape[-1]
        if weight.dim() < 2 or weight.shape[-2:] != (num_dims, num_dims):
            raise ValueError(
                f"FVSBN: weight must have shape (..., {num_dims}, {num_dims}) to match bias of "
                f"shape {tuple(bias.shape)}, got {tuple(weight.shape)}"
            )
        if weight.dtype != bias.dtype or weight.device != bias.device:
            raise ValueError("FVSBN: weight and bias must share dtype and device")
        batch_shape = broadcast_batch_shapes(
            "FVSBN", weight=weight.shape[:-2], bias=bias.shape[:-1]
        )
        # Parameters are stored as given and broadcast lazily, so that expanding to a plate's
        # batch shape keeps a single shared matrix (one GEMM instead of a batched product).
        self.weight = weight
        self.bias = bias
        super().__init__(num_dims, batch_shape, ordering, weight.device, validate_args)

    @property
    def _dtype(self) -> torch.dtype:
        return self.bias.dtype

    def _ordered_parameters(self) -> tuple[Tensor, Tensor]:
        """The strictly lower-triangular weight and the bias, permuted into the ordering."""
        weight, bias = self.weight, self.bias
        if not self._natural_order:
            weight = weight[..., self.ordering, :][..., :, self.ordering]
            bias = bias[..., self.ordering]
        return weight.tril(-1), bias

    def _ordered_logits(self, ordered_value: Tensor) -> Tensor:
        weight, bias = self._ordered_parameters()
        shared = shared_across_batch(weight, 2)
        if shared is not None:
            return ordered_value @ shared.T + bias
        return (ordered_value.unsqueeze(-2) @ weight.transpose(-1, -2)).squeeze(-2) + bias

    def _sampling_start(self, shape: torch.Size) -> dict[str, Tensor]:
        weight, bias = self._ordered_parameters()
        # Running logits of every dimension: column k of the weight is added once x_k is known.
        logits = bias.expand(shape + self.event_shape).clone()
        return {"logits": logits, "columns": weight.transpose(-1, -2)}

    def _sampling_logit(self, state: dict[str, Tensor], step: int) -> Tensor:
        return state["logits"][..., step]

    def _sampling_advance(self, state: dict[str, Tensor], step: int, value: Tensor) -> None:
        state["logits"].add_(value.unsqueeze(-1) * state["columns"][..., step, :])

r"""Masked layers and the masked autoencoder of MADE.

A MADE network is a multilayer perceptron whose weights are multiplied by binary masks so that
output :math:`d` depends only on inputs that come before :math:`d` in an ordering. Each unit gets
a *degree*: inputs :math:`m(d) = \text{rank}(d) + 1 \in \{1..D\}`, hidden units
:math:`m(k) \in \{1..D-1\}`; a hidden connection :math:`j \to k` is kept iff
:math:`m(k) \ge m(j)`, an output connection :math:`k \to d` iff :math:`m(d) > m(k)`, and a
direct input-to-output connection :math:`j \to d` iff :math:`m(d) > m(j)`.

References:
    | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
    | https://arxiv.org/abs/1502.03509
"""

from __future__ import annotations

__all__ = ["MaskedAutoencoder", "MaskedLinear", "made_degrees"]

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributions.autoregressive import check_ordering
from .context import check_context


class MaskedLinear(nn.Linear):
    r"""A linear layer :math:`y = (W \odot M) x + b` with a fixed binary mask :math:`M`.

    The mask is a buffer applied in :meth:`forward`; the weights themselves are never
    overwritten, so changing the mask (mask ensembles) loses nothing, and masked weights get
    exactly zero gradient.

    Arguments:
        in_features: Input size.
        out_features: Output size.
        mask: Boolean or 0/1 tensor of shape ``(out_features, in_features)``.
        bias: Whether to add a bias.
    """

    def __init__(self, in_features: int, out_features: int, mask: Tensor, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.empty(out_features, in_features))
        self.set_mask(mask)

    def set_mask(self, mask: Tensor) -> None:
        """Replaces the mask (same shape); the weights are untouched."""
        if tuple(mask.shape) != (self.out_features, self.in_features):
            raise ValueError(
                f"mask must have shape ({self.out_features}, {self.in_features}), "
                f"got {tuple(mask.shape)}"
            )
        self.mask.copy_(mask.to(self.mask.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_degrees(
    num_dims: int,
    hidden_features: Sequence[int],
    ordering: Tensor,
    random_hidden: bool = False,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    r"""Degrees of the input and hidden units.

    Arguments:
        num_dims: :math:`D`.
        hidden_features: Sizes of the hidden layers.
        ordering: Permutation of ``range(D)``; input ``d`` gets degree ``rank(d) + 1``.
        random_hidden: Draw hidden degrees uniformly from ``[min degree of the previous layer,
            D - 1]`` (Germain et al.) instead of spreading them evenly over ``1..D-1``.
        generator: Random generator for ``random_hidden``.

    Returns:
        ``[input degrees (D,), hidden layer 1 degrees, ...]``.
    """
    degrees = [torch.argsort(ordering) + 1]
    top = max(num_dims - 1, 1)
    for size in hidden_features:
        if random_hidden:
            low = min(int(degrees[-1].min()), top)
            layer = torch.randint(low, top + 1, (size,), generator=generator)
        else:
            layer = torch.arange(size) % top + 1
        degrees.append(layer)
    return degrees


class MaskedAutoencoder(nn.Module):
    r"""The MADE network: an MLP whose masks make output :math:`d` a function of the inputs
    before :math:`d` in the ordering (and of an optional context).

    Output shape ``(..., D, P)``: ``P = outputs_per_dim`` parameters per dimension (1 logit,
    ``K`` category logits, a mean and a log-scale, mixture parameters...).

    Arguments:
        num_dims: :math:`D`.
        hidden_features: Sizes of the hidden layers (at least one).
        outputs_per_dim: :math:`P`.
        ordering: Permutation of ``range(D)``, or ``"random"`` (seeded); natural by default.
        random_hidden_degrees: Draw hidden degrees at random (seeded) rather than evenly.
        direct_connections: Add masked input-to-output connections.
        context_features: Size of a context vector fed (unmasked) to the first hidden layer.
        activation: Hidden nonlinearity.
        seed: Seed of the random ordering and degrees.

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509
    """

    def __init__(
        self,
        num_dims: int,
        hidden_features: Sequence[int] = (500,),
        outputs_per_dim: int = 1,
        ordering: Tensor | Sequence[int] | str | None = None,
        random_hidden_degrees: bool = False,
        direct_connections: bool = False,
        context_features: int = 0,
        activation: type[nn.Module] = nn.ReLU,
        seed: int = 0,
    ) -> None:
        super().__init__()
        hidden_features = list(hidden_features)
        if num_dims < 1 or outputs_per_dim < 1 or not hidden_features:
            raise ValueError(
                "MaskedAutoencoder needs num_dims >= 1, outputs_per_dim >= 1 and at least one "
                "hidden layer"
            )
        if min(hidden_features) < 1:
            raise ValueError(f"hidden layer sizes must be positive, got {hidden_features}")
        self.num_dims = num_dims
        self.outputs_per_dim = outputs_per_dim
        self.context_features = context_features
        self.random_hidden_degrees = random_hidden_degrees
        generator = torch.Generator().manual_seed(seed)
        if isinstance(ordering, str):
            if ordering != "random":
                raise ValueError(f"ordering must be a permutation or 'random', got {ordering!r}")
            ordering = torch.randperm(num_dims, generator=generator)
        self.register_buffer("ordering", check_ordering(ordering, num_dims, "cpu"))
        self.generator = generator
        sizes = [num_dims, *hidden_features]
        self.hidden = nn.ModuleList(
            MaskedLinear(sizes[i], sizes[i + 1], torch.ones(sizes[i + 1], sizes[i]))
            for i in range(len(hidden_features))
        )
        total_out = num_dims * outputs_per_dim
        self.output = MaskedLinear(sizes[-1], total_out, torch.ones(total_out, sizes[-1]))
        self.direct = (
            MaskedLinear(num_dims, total_out, torch.ones(total_out, num_dims), bias=False)
            if direct_connections
            else None
        )
        self.context = nn.Linear(context_features, sizes[1]) if context_features else None
        self.activation = activation()
        self.update_masks(self.ordering)

    def update_masks(self, ordering: Tensor | None = None) -> None:
        """Recomputes every mask from ``ordering`` (default: the current one) and new hidden
        degrees (drawn from the module's generator if ``random_hidden_degrees``)."""
        if ordering is not None:
            self.ordering.copy_(check_ordering(ordering, self.num_dims, "cpu"))
        hidden_sizes = [layer.out_features for layer in self.hidden]
        degrees = made_degrees(
            self.num_dims, hidden_sizes, self.ordering, self.random_hidden_degrees, self.generator
        )
        for layer, previous, current in zip(self.hidden, degrees[:-1], degrees[1:], strict=True):
            layer.set_mask(current[:, None] >= previous[None, :])
        output_degrees = degrees[0].repeat_interleave(self.outputs_per_dim)
        self.output.set_mask(output_degrees[:, None] > degrees[-1][None, :])
        if self.direct is not None:
            self.direct.set_mask(output_degrees[:, None] > degrees[0][None, :])

    def masked_weights(self) -> dict[str, Tensor | None]:
        """The masked weight matrices, computed once (for the incremental sampler)."""
        return {
            "input_columns": (self.hidden[0].weight * self.hidden[0].mask).T,  # (D, H1)
            "output": self.output.weight * self.output.mask,
            "direct": None if self.direct is None else self.direct.weight * self.direct.mask,
        }

    def first_layer_start(self, shape: torch.Size, context: Tensor | None = None) -> Tensor:
        """The first hidden layer's pre-activation at :math:`x = 0` (bias plus context term),
        shape ``shape + (H1,)``: the start of the incremental sampler's running sum."""
        start = self.hidden[0].bias
        if check_context("MaskedAutoencoder", context, self.context_features) is not None:
            start = start + self.context(context)
        return start.expand(torch.Size(shape) + start.shape[-1:]).clone()

    def output_for(
        self, first_layer: Tensor, x: Tensor, dim: int, weights: dict[str, Tensor | None]
    ) -> Tensor:
        r"""The ``P`` outputs of dimension ``dim`` from the first layer's pre-activation.

        Incremental sampling keeps that pre-activation as a running sum over the inputs drawn so
        far, so each step costs the upper layers and one output row, not a full pass.

        Returns:
            Shape ``first_layer.shape[:-1] + (P,)``.
        """
        hidden = self.activation(first_layer)
        for layer in self.hidden[1:]:
            hidden = self.activation(layer(hidden))
        rows = slice(dim * self.outputs_per_dim, (dim + 1) * self.outputs_per_dim)
        out = F.linear(hidden, weights["output"][rows], self.output.bias[rows])
        if weights["direct"] is not None:
            out = out + F.linear(x, weights["direct"][rows])
        return out

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Parameters of every conditional, shape ``broadcast(x, context).shape[:-1] + (D, P)``.

        Arguments:
            x: Inputs, shape ``(..., D)``.
            context: Shape ``(..., context_features)`` when the network has a context.
        """
        hidden = self.hidden[0](x)
        if check_context("MaskedAutoencoder", context, self.context_features) is not None:
            hidden = hidden + self.context(context)
        hidden = self.activation(hidden)
        for layer in self.hidden[1:]:
            hidden = self.activation(layer(hidden))
        out = self.output(hidden)
        if self.direct is not None:
            out = out + self.direct(x)
        return out.unflatten(-1, (self.num_dims, self.outputs_per_dim))

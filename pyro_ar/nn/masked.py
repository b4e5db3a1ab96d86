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

import copy

__all__ = ["IncrementalPass", "MaskedAutoencoder", "MaskedLinear", "made_degrees"]

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributions.autoregressive import check_ordering
from ..ops.masked_linear import Block, BlockPlanner, ScratchPool, masked_linear
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
        block_products: ``"auto"``, ``"always"`` or ``"never"``: when the products skip the
            all-zero rectangles of the mask (:class:`~pyro_ar.ops.BlockPlanner`).

    Example:
        >>> layer = MaskedLinear(3, 2, torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))
        >>> layer(torch.ones(3)).sum().backward()
        >>> layer.weight.grad  # masked weights get exactly zero gradient
        tensor([[1., 0., 0.],
                [1., 1., 0.]])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        mask: Tensor,
        bias: bool = True,
        block_products: str = "auto",
    ):
        super().__init__(in_features, out_features, bias)
        #: Reused scratch tensors for the masked weight (see :func:`~pyro_ar.ops.masked_linear`).
        self.scratch_pool = ScratchPool()
        #: Which masks get block-skipping products (:class:`~pyro_ar.ops.BlockPlanner`).
        self.planner = BlockPlanner(block_products)
        self.register_buffer("mask", torch.empty(out_features, in_features))
        self.set_mask(mask)

    def set_mask(self, mask: Tensor) -> None:
        """Replaces the mask (same shape); the weights are untouched."""
        if tuple(mask.shape) != (self.out_features, self.in_features):
            raise ValueError(
                f"mask must have shape ({self.out_features}, {self.in_features}), "
                f"got {tuple(mask.shape)}"
            )
        plan = self.plan_for(mask)  # cached for a mask set that comes back (mask ensembles)
        self.mask.copy_(mask.to(self.mask.dtype))
        self.planner.remember(self.mask, plan)  # the copy has that plan too

    def plan_for(self, mask: Tensor) -> list[Block] | None:
        """The :func:`~pyro_ar.ops.block_plan` that :meth:`forward` uses for ``mask``, or
        ``None`` where blocks would not pay (see :class:`~pyro_ar.ops.BlockPlanner`)."""
        return self.planner.plan_for(mask, keep=self.mask)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        r""":math:`x (W \odot M)^\top + b`, with ``mask`` in place of the layer's own mask if
        given (a mask ensemble evaluates any mask set without selecting it)."""
        mask = self.mask if mask is None else mask
        return masked_linear(
            x, self.weight, mask, self.bias, self.scratch_pool, self.plan_for(mask)
        )


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
            D - 1]`` (Germain et al.) instead of spreading them evenly over ``1..D-1`` (each degree
            ``size // (D - 1)`` or one more times, in ascending order, when a layer has at least
            ``D - 1`` units).
        generator: Random generator for ``random_hidden``.

    Returns:
        ``[input degrees (D,), hidden layer 1 degrees, ...]``.

    Example:
        >>> [d.tolist() for d in made_degrees(4, [3], torch.arange(4))]
        [[1, 2, 3, 4], [1, 2, 3]]
    """
    degrees = [torch.argsort(ordering) + 1]
    top = max(num_dims - 1, 1)
    for size in hidden_features:
        if random_hidden:
            low = min(int(degrees[-1].min()), top)
            layer = torch.randint(low, top + 1, (size,), generator=generator)
        elif size >= top:
            # sorted, so that the masks are staircases (see block_plan)
            layer = (torch.arange(size) % top + 1).sort().values
        else:
            # spread evenly over 1..D-1, both ends included: cycling would stop at degree
            # `size`, and inputs ranked after it would reach no hidden unit at all
            layer = torch.linspace(1, top, size).round().long()
        degrees.append(layer)
    return degrees


class MaskedAutoencoder(nn.Module):
    r"""The MADE network: an MLP whose masks make output :math:`d` a function of the inputs
    before :math:`d` in the ordering (and of an optional context).

    Output shape ``(..., D, P)``: ``P = outputs_per_dim`` parameters per dimension (1 logit,
    ``K`` category logits, a mean and a log-scale, mixture parameters...).

    With ``num_masks > 1`` the network holds several mask sets (connectivity-agnostic training:
    each set draws its own hidden degrees; with ``order_agnostic`` each also draws its own
    ordering). :meth:`select_mask` / :meth:`next_mask` choose the set used by a plain call, and
    ``forward(..., mask_index=m)`` evaluates any set without changing that choice. Only the
    degrees are stored; masks are computed from them when first needed.

    Arguments:
        num_dims: :math:`D`.
        hidden_features: Sizes of the hidden layers (at least one).
        outputs_per_dim: :math:`P`.
        ordering: Permutation of ``range(D)``, or ``"random"`` (seeded); natural by default.
            It is the ordering of mask set 0.
        random_hidden_degrees: Draw hidden degrees at random (seeded) rather than evenly
            (always the case for mask sets after the first).
        direct_connections: Add masked input-to-output connections.
        context_features: Size of a context vector fed (unmasked) to the first hidden layer.
        activation: Hidden nonlinearity.
        num_masks: Number of mask sets.
        order_agnostic: Give every mask set after the first its own random ordering.
        seed: Seed of the random orderings and degrees.
        block_products: ``"auto"``, ``"always"`` or ``"never"``: when the layers' products skip
            the all-zero rectangles of their masks (:class:`~pyro_ar.ops.BlockPlanner`; the
            numbers are the same either way).

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509

    Example:
        >>> network = MaskedAutoencoder(4, [16], ordering=[2, 0, 3, 1])
        >>> x = torch.rand(4)
        >>> jacobian = torch.autograd.functional.jacobian(lambda v: network(v)[..., 0], x)
        >>> bool((jacobian[2] == 0).all())  # output 2 is first in the ordering: it sees no input
        True
        >>> network(torch.rand(5, 4)).shape  # (..., D, outputs_per_dim)
        torch.Size([5, 4, 1])
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
        num_masks: int = 1,
        order_agnostic: bool = False,
        seed: int = 0,
        block_products: str = "auto",
    ) -> None:
        super().__init__()
        hidden_features = list(hidden_features)
        if num_dims < 1 or outputs_per_dim < 1 or not hidden_features or num_masks < 1:
            raise ValueError(
                "MaskedAutoencoder needs num_dims >= 1, outputs_per_dim >= 1, num_masks >= 1 "
                "and at least one hidden layer"
            )
        if min(hidden_features) < 1:
            raise ValueError(f"hidden layer sizes must be positive, got {hidden_features}")
        self.num_dims = num_dims
        self.outputs_per_dim = outputs_per_dim
        self.context_features = context_features
        self.random_hidden_degrees = random_hidden_degrees
        self.num_masks = num_masks
        self.order_agnostic = order_agnostic
        self.generator = torch.Generator().manual_seed(seed)
        if isinstance(ordering, str):
            if ordering != "random":
                raise ValueError(f"ordering must be a permutation or 'random', got {ordering!r}")
            ordering = torch.randperm(num_dims, generator=self.generator)
        ordering = check_ordering(ordering, num_dims, "cpu")
        sizes = [num_dims, *hidden_features]
        self.hidden = nn.ModuleList(
            MaskedLinear(
                sizes[i],
                sizes[i + 1],
                torch.ones(sizes[i + 1], sizes[i]),
                block_products=block_products,
            )
            for i in range(len(hidden_features))
        )
        total_out = num_dims * outputs_per_dim
        self.output = MaskedLinear(
            sizes[-1], total_out, torch.ones(total_out, sizes[-1]), block_products=block_products
        )
        self.direct = (
            MaskedLinear(
                num_dims,
                total_out,
                torch.ones(total_out, num_dims),
                bias=False,
                block_products=block_products,
            )
            if direct_connections
            else None
        )
        self.context = nn.Linear(context_features, sizes[1]) if context_features else None
        self.activation = activation()
        self.register_buffer("orderings", ordering.repeat(num_masks, 1))
        for index, size in enumerate(hidden_features):
            self.register_buffer(f"hidden_degrees_{index}", torch.zeros(num_masks, size).long())
        self._mask_cache: dict = {}
        self.current_mask = 0
        self.register_load_state_dict_post_hook(MaskedAutoencoder._refresh_after_load)
        for index in range(num_masks):
            self._draw_mask_set(index, ordering if index == 0 else None)
        self.select_mask(0)

    @staticmethod
    def _refresh_after_load(module: MaskedAutoencoder, incompatible_keys) -> None:
        # loaded degrees may differ from the ones the cached masks were computed from
        module._mask_cache.clear()
        module.select_mask(module.current_mask)

    @property
    def ordering(self) -> Tensor:
        """The ordering of the current mask set."""
        return self.orderings[self.current_mask]

    def _draw_mask_set(
        self, index: int, ordering: Tensor | None, random_hidden: bool = False
    ) -> None:
        if ordering is None:
            ordering = self.orderings[0].cpu()
            if self.order_agnostic:
                ordering = torch.randperm(self.num_dims, generator=self.generator)
        hidden_sizes = [layer.out_features for layer in self.hidden]
        random_hidden = random_hidden or self.random_hidden_degrees or index > 0
        degrees = made_degrees(
            self.num_dims, hidden_sizes, ordering, random_hidden, self.generator
        )
        self.orderings[index].copy_(ordering)
        for layer_index, layer_degrees in enumerate(degrees[1:]):
            getattr(self, f"hidden_degrees_{layer_index}")[index].copy_(layer_degrees)
        self._mask_cache.clear()

    def masks(self, index: int) -> list[Tensor | None]:
        """The masks of mask set ``index``: hidden layers, output, direct (or ``None``), as
        0/1 tensors in the weights' dtype (a boolean mask would be converted at every pass)."""
        dtype = self.output.weight.dtype
        key = (index, self.orderings.device, dtype)
        if key not in self._mask_cache:
            degrees = [torch.argsort(self.orderings[index]) + 1]
            degrees += [
                getattr(self, f"hidden_degrees_{i}")[index] for i in range(len(self.hidden))
            ]
            masks: list[Tensor | None] = [
                current[:, None] >= previous[None, :]
                for previous, current in zip(degrees[:-1], degrees[1:], strict=True)
            ]
            output_degrees = degrees[0].repeat_interleave(self.outputs_per_dim)
            masks.append(output_degrees[:, None] > degrees[-1][None, :])
            masks.append(
                output_degrees[:, None] > degrees[0][None, :] if self.direct is not None else None
            )
            self._mask_cache[key] = [None if mask is None else mask.to(dtype) for mask in masks]
        return self._mask_cache[key]

    def _layers(self) -> list[MaskedLinear | None]:
        return [*self.hidden, self.output, self.direct]

    def select_mask(self, index: int) -> None:
        """Makes mask set ``index`` the one a plain call uses (copied into the layers' mask
        buffers; call it between optimization steps, not inside a computation graph)."""
        if not 0 <= index < self.num_masks:
            raise ValueError(f"mask index must lie in [0, {self.num_masks}), got {index}")
        self.current_mask = index
        for layer, mask in zip(self._layers(), self.masks(index), strict=True):
            if layer is not None:
                layer.set_mask(mask)

    def next_mask(self) -> None:
        """Cycles to the next mask set (connectivity-agnostic training)."""
        self.select_mask((self.current_mask + 1) % self.num_masks)

    def update_masks(self, ordering: Tensor | None = None) -> None:
        """Redraws the current mask set: a new ordering (if given) and new hidden degrees (drawn
        from the module's generator if they are random)."""
        if ordering is not None:
            ordering = check_ordering(ordering, self.num_dims, "cpu")
        else:
            ordering = self.ordering.cpu()
        self._draw_mask_set(self.current_mask, ordering)
        self.select_mask(self.current_mask)

    def draw_fresh_mask(self) -> None:
        """Redraws the current mask set from the network's seeded generator: random hidden
        degrees (new connectivity) and, with ``order_agnostic``, a new random ordering (the
        MADE paper's order- and connectivity-agnostic training draws one per update)."""
        self._draw_mask_set(self.current_mask, None, random_hidden=True)
        self.select_mask(self.current_mask)

    def with_drawn_masks(self, num_masks: int, seed: int = 0) -> MaskedAutoencoder:
        """A network that shares this one's weights (the same layer modules) but holds
        ``num_masks`` mask sets drawn afresh from ``seed`` as :meth:`draw_fresh_mask` draws
        them: what a MADE trained with fresh masks is evaluated with
        (``MADEEnsemble(network.with_drawn_masks(K))``: the log-mean-exp over ``K`` masks).
        The original network's masks and selection are untouched.

        Example:
            >>> network = MaskedAutoencoder(4, [16], order_agnostic=True)
            >>> drawn = network.with_drawn_masks(3, seed=1)
            >>> drawn.num_masks, drawn.hidden[0].weight is network.hidden[0].weight
            (3, True)
        """
        if num_masks < 1:
            raise ValueError(f"num_masks must be positive, got {num_masks}")
        clone = copy.copy(self)
        # own buffer dicts (the shallow copy shares them); the layer modules stay shared
        clone._buffers = dict(self._buffers)
        clone._mask_cache = {}
        clone.generator = torch.Generator().manual_seed(seed)
        clone.num_masks = num_masks
        clone.current_mask = 0
        device = self.orderings.device
        clone._buffers["orderings"] = self.orderings[:1].repeat(num_masks, 1)
        for index, layer in enumerate(self.hidden):
            clone._buffers[f"hidden_degrees_{index}"] = torch.zeros(
                num_masks, layer.out_features, dtype=torch.long, device=device
            )
        for index in range(num_masks):
            # ordering None: the base ordering, or a fresh one with order_agnostic
            clone._draw_mask_set(index, None, random_hidden=True)
        return clone

    def _selected_masks(self, mask_index: int | None) -> list[Tensor | None]:
        if mask_index is None:
            return [None] * (len(self.hidden) + 2)
        if not 0 <= mask_index < self.num_masks:
            raise ValueError(f"mask index must lie in [0, {self.num_masks}), got {mask_index}")
        return self.masks(mask_index)

    def incremental(
        self,
        shape: torch.Size,
        context: Tensor | None = None,
        mask_index: int | None = None,
        differentiable: bool = False,
    ) -> IncrementalPass:
        """An :class:`IncrementalPass` of ``shape`` parallel rows: the outputs of one dimension
        at a time, as the dimensions are filled in the mask set's ordering."""
        return IncrementalPass(self, torch.Size(shape), context, mask_index, differentiable)

    def forward(
        self, x: Tensor, context: Tensor | None = None, mask_index: int | None = None
    ) -> Tensor:
        """Parameters of every conditional, shape ``broadcast(x, context).shape[:-1] + (D, P)``.

        Arguments:
            x: Inputs, shape ``(..., D)``.
            context: Shape ``(..., context_features)`` when the network has a context.
            mask_index: Evaluate with this mask set (default: the selected one).
        """
        masks = self._selected_masks(mask_index)
        hidden = self.hidden[0](x, masks[0])
        if check_context("MaskedAutoencoder", context, self.context_features) is not None:
            hidden = hidden + self.context(context)
        hidden = self.activation(hidden)
        for layer, mask in zip(self.hidden[1:], masks[1:-2], strict=True):
            hidden = self.activation(layer(hidden, mask))
        out = self.output(hidden, masks[-2])
        if self.direct is not None:
            out = out + self.direct(x, masks[-1])
        return out.unflatten(-1, (self.num_dims, self.outputs_per_dim))


class IncrementalPass:
    r"""The outputs of a :class:`MaskedAutoencoder` one dimension at a time, as dimensions are
    filled in (ancestral sampling, the transform of a Gaussian MADE).

    The first hidden layer's pre-activation is a running sum over the inputs filled so far,
    :math:`a = b + c(z) + \sum_{j \text{ filled}} (W \odot M)_{:, j} x_j`, so each step costs
    the upper layers and one output row instead of a full network pass. Masked weights are
    multiplied once, when the pass starts.

    Arguments:
        network: The network.
        shape: The batch of parallel rows.
        context: ``shape + (context_features,)`` when the network has a context.
        mask_index: The mask set (default: the selected one).
        differentiable: Build every step out of place, so that gradients reach the network,
            the context and the filled values (for ``rsample``); in place otherwise.

    Example:
        >>> network = MaskedAutoencoder(3, [8], outputs_per_dim=2)
        >>> state = network.incremental(torch.Size([5]))
        >>> for dim in network.ordering.tolist():
        ...     mean, log_scale = state.outputs(dim).unbind(-1)
        ...     state.advance(dim, mean)
        >>> state.inputs.shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        network: MaskedAutoencoder,
        shape: torch.Size,
        context: Tensor | None,
        mask_index: int | None,
        differentiable: bool,
    ) -> None:
        self.network, self.differentiable = network, differentiable
        masks = network._selected_masks(mask_index)

        def masked(layer: MaskedLinear, mask: Tensor | None) -> Tensor:
            return layer.weight * (layer.mask if mask is None else mask)

        self._input_columns = masked(network.hidden[0], masks[0]).T  # (D, H1)
        self._hidden = [
            masked(layer, mask)
            for layer, mask in zip(network.hidden[1:], masks[1:-2], strict=True)
        ]
        self._output = masked(network.output, masks[-2])
        self._direct = None if network.direct is None else masked(network.direct, masks[-1])
        start = network.hidden[0].bias
        if check_context("MaskedAutoencoder", context, network.context_features) is not None:
            start = start + network.context(context)
        self.first_layer = start.expand(shape + start.shape[-1:])
        if not differentiable:
            self.first_layer = self.first_layer.clone()
        options = {"dtype": self._output.dtype, "device": self._output.device}
        #: The inputs filled so far (zeros elsewhere), shape ``shape + (D,)``.
        self.inputs = torch.zeros(shape + (network.num_dims,), **options)
        self._eye = torch.eye(network.num_dims, **options) if differentiable else None

    def outputs(self, dim: int) -> Tensor:
        """The ``P`` outputs of dimension ``dim`` given the inputs filled so far, shape
        ``shape + (P,)``."""
        network = self.network
        hidden = network.activation(self.first_layer)
        for layer, weight in zip(network.hidden[1:], self._hidden, strict=True):
            hidden = network.activation(F.linear(hidden, weight, layer.bias))
        rows = slice(dim * network.outputs_per_dim, (dim + 1) * network.outputs_per_dim)
        out = F.linear(hidden, self._output[rows], network.output.bias[rows])
        if self._direct is not None:
            out = out + F.linear(self.inputs, self._direct[rows])
        return out

    def advance(self, dim: int, value: Tensor) -> None:
        """Fills input ``dim`` with ``value`` (shape ``shape``, what the network sees)."""
        column = self._input_columns[dim]
        if self.differentiable:
            self.first_layer = self.first_layer + value.unsqueeze(-1) * column
            if self._direct is not None:
                self.inputs = self.inputs + value.unsqueeze(-1) * self._eye[dim]
            return
        self.first_layer.add_(value.unsqueeze(-1) * column)
        self.inputs[..., dim] = value

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

__all__ = [
    "MaskedAutoencoder",
    "MaskedLinear",
    "block_plan",
    "made_degrees",
    "masked_linear",
    "masked_linear_reference",
    "plan_area",
]

import weakref
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..distributions.autoregressive import check_ordering
from ..ops.provenance import attach_provenance, split_provenance
from .context import check_context

#: Masked-weight scratch tensors kept per weight (a weight-sized allocation at every forward pass
#: costs page faults comparable to the mask product itself).
_POOL_SIZE = 4


def _take(pool: list[Tensor], weight: Tensor) -> Tensor:
    while pool:
        scratch = pool.pop()
        if scratch.shape == weight.shape and scratch.dtype == weight.dtype:
            if scratch.device == weight.device:
                return scratch
    return torch.empty_like(weight, memory_format=torch.contiguous_format)


def _give_back(pool: list[Tensor], scratch: Tensor) -> None:
    if len(pool) < _POOL_SIZE:
        pool.append(scratch)


class _ScratchLease:
    """Returns a scratch tensor to its pool when the graph node that holds this lease is freed
    (so never while a retained graph can still use it)."""

    def __init__(self, pool: list[Tensor], scratch: Tensor) -> None:
        weakref.finalize(self, _give_back, pool, scratch)


class _MaskedLinearFunction(torch.autograd.Function):
    r""":math:`y = x (W \odot M)^\top + b`, whose weight gradient :math:`(g^\top x) \odot M` is
    masked in place, and whose masked weight lives in a scratch tensor from ``pool`` that goes
    back to the pool when the graph is freed."""

    @staticmethod
    def forward(ctx, x, weight, mask, bias, pool):
        masked = torch.mul(weight, mask, out=_take(pool, weight))
        ctx.save_for_backward(x, masked, mask)
        ctx.has_bias, ctx.lease = bias is not None, _ScratchLease(pool, masked)
        return F.linear(x, masked, bias)

    @staticmethod
    @once_differentiable  # a second derivative would miss the mask's path: say so
    def backward(ctx, grad):
        x, masked, mask = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = grad @ masked
        flat_grad = grad.reshape(-1, grad.shape[-1])
        if ctx.needs_input_grad[1]:
            grad_weight = (flat_grad.T @ x.reshape(-1, x.shape[-1])).mul_(mask)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_bias = flat_grad.sum(0)
        return grad_x, grad_weight, None, grad_bias, None


#: Row blocks of the block-skipping path, the smallest weight (in entries) it is tried for, and
#: the largest share of the weight its blocks may cover for it to pay.
NUM_ROW_BLOCKS = 4
BLOCKED_MIN_ENTRIES = 65536
BLOCKED_MAX_AREA = 0.8

#: ``(first row, end row, first column, end column)`` of one block of a :func:`block_plan`.
Block = tuple[int, int, int, int]


def block_plan(mask: Tensor, num_blocks: int = NUM_ROW_BLOCKS) -> list[Block]:
    r"""Splits the rows of ``mask`` into ``num_blocks`` contiguous chunks and gives each the
    column range :math:`[c_0, c_1)` outside which its rows are all zero.

    With inputs and units in degree order (the natural ordering and MADE's deterministic hidden
    degrees), a MADE mask is a staircase, and the chunks cover little more than its live half:
    :func:`masked_linear` then multiplies only inside the blocks. Chunks without a live entry
    get the empty range ``(0, 0)``.

    Arguments:
        mask: Shape ``(out_features, in_features)``; nonzero entries are live.
        num_blocks: Number of row chunks (fewer if there are fewer rows).

    Returns:
        ``[(r0, r1, c0, c1), ...]`` covering the rows in order.
    """
    rows, columns = mask.shape
    live = (mask != 0).cpu()
    has_live = live.any(1)
    first = torch.where(has_live, live.int().argmax(1), columns)
    last = torch.where(has_live, columns - 1 - live.flip(1).int().argmax(1), -1)
    edges = torch.linspace(0, rows, min(num_blocks, rows) + 1).round().long().tolist()
    plan = []
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        if end > start:
            low, high = int(first[start:end].min()), int(last[start:end].max()) + 1
            plan.append((start, end, low, high) if high > low else (start, end, 0, 0))
    return plan


def plan_area(plan: list[Block], shape: tuple[int, int]) -> float:
    """The share of a ``shape`` weight that the blocks of ``plan`` cover."""
    covered = sum((end - start) * (high - low) for start, end, low, high in plan)
    return covered / max(shape[0] * shape[1], 1)


def _blocked_forward(
    x: Tensor,
    weight: Tensor,
    mask: Tensor,
    bias: Tensor | None,
    plan: list[Block],
    masked: Tensor,
) -> Tensor:
    """``x (W * M)^T + b`` block by block; writes the blocks of ``W * M`` into ``masked``."""
    out = x.new_empty((x.shape[0], weight.shape[0]))
    for start, end, low, high in plan:
        columns = out[:, start:end]
        if high == low:  # rows with no live input: the bias alone
            if bias is None:
                columns.zero_()
            else:
                columns.copy_(bias[start:end].expand_as(columns))
            continue
        block = torch.mul(
            weight[start:end, low:high], mask[start:end, low:high], out=masked[start:end, low:high]
        )
        if bias is None:
            torch.mm(x[:, low:high], block.T, out=columns)
        else:
            torch.addmm(bias[start:end], x[:, low:high], block.T, out=columns)
    return out


class _BlockedMaskedLinearFunction(torch.autograd.Function):
    r""":math:`y = x (W \odot M)^\top + b` for 2-d ``x``, multiplying only inside the blocks of a
    :func:`block_plan` of :math:`M` (exact: outside them the mask is zero)."""

    @staticmethod
    def forward(ctx, x, weight, mask, bias, pool, plan):
        masked = _take(pool, weight)
        out = _blocked_forward(x, weight, mask, bias, plan, masked)
        ctx.save_for_backward(x, masked, mask)
        ctx.plan, ctx.has_bias = plan, bias is not None
        ctx.lease = _ScratchLease(pool, masked)
        return out

    @staticmethod
    @once_differentiable  # a second derivative would miss the mask's path: say so
    def backward(ctx, grad):
        x, masked, mask = ctx.saved_tensors
        grad_x = x.new_zeros(x.shape) if ctx.needs_input_grad[0] else None
        # one contiguous fill: zeroing the strips beside each block costs more than it saves
        grad_weight = torch.zeros_like(masked) if ctx.needs_input_grad[1] else None
        for start, end, low, high in ctx.plan:
            if high == low:
                continue
            rows = grad[:, start:end]
            if grad_weight is not None:
                block = grad_weight[start:end, low:high]
                torch.mm(rows.T, x[:, low:high], out=block).mul_(mask[start:end, low:high])
            if grad_x is not None:
                grad_x[:, low:high].addmm_(rows, masked[start:end, low:high])
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        return grad_x, grad_weight, None, grad_bias, None, None


def masked_linear(
    x: Tensor,
    weight: Tensor,
    mask: Tensor,
    bias: Tensor | None = None,
    pool: list[Tensor] | None = None,
    plan: list[Block] | None = None,
) -> Tensor:
    r"""The masked affine map :math:`y = x (W \odot M)^\top + b` of MADE.

    Masked weights get exactly zero gradient, and the weights themselves are never modified.
    Pyro's provenance passes through (:mod:`pyro_ar.ops.provenance`), and under
    :func:`torch.compile` the plain :func:`masked_linear_reference` runs instead. Given a
    :func:`block_plan` of the mask, the products (forward and backward) skip the
    all-zero rectangles outside its blocks: with the default four blocks, 37.5% of the work of
    a 784-500-784 MADE with the natural ordering.

    Arguments:
        x: Inputs, shape ``(..., in_features)``.
        weight: :math:`W`, shape ``(out_features, in_features)``.
        mask: :math:`M`, same shape, 0/1 in the weight's dtype (no gradient).
        bias: :math:`b`, shape ``(out_features,)``, or ``None``.
        pool: Scratch tensors for :math:`W \odot M` reused across calls (a layer keeps one);
            ``None`` allocates each time.
        plan: Blocks of the mask outside which it is zero (:func:`block_plan`), or ``None``
            for one dense product.

    Returns:
        Shape ``(..., out_features)``.
    """
    if torch.compiler.is_compiling():
        # torch.compile traces plain products; the scratch pool's aliasing is not traceable
        return masked_linear_reference(x, weight, mask, bias)
    (x, weight, mask, bias), provenance = split_provenance(x, weight, mask, bias)
    out = _masked_linear(x, weight, mask, bias, [] if pool is None else pool, plan)
    return attach_provenance(out, provenance)


def masked_linear_reference(
    x: Tensor, weight: Tensor, mask: Tensor, bias: Tensor | None = None
) -> Tensor:
    r"""The plain-PyTorch reference of :func:`masked_linear`, :math:`x (W \odot M)^\top + b`
    with autograd's own product rule (the path taken under :func:`torch.compile`)."""
    return F.linear(x, weight * mask, bias)


def _masked_linear(
    x: Tensor,
    weight: Tensor,
    mask: Tensor,
    bias: Tensor | None,
    pool: list[Tensor],
    plan: list[Block] | None,
) -> Tensor:
    tensors = (x, weight) if bias is None else (x, weight, bias)
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    if plan is not None:
        flat = x.reshape(-1, x.shape[-1])
        if needs_grad:
            out = _BlockedMaskedLinearFunction.apply(flat, weight, mask, bias, pool, plan)
        else:
            masked = _take(pool, weight)
            out = _blocked_forward(flat, weight, mask, bias, plan, masked)
            _give_back(pool, masked)
        return out.reshape(*x.shape[:-1], weight.shape[0])
    if needs_grad:
        return _MaskedLinearFunction.apply(x, weight, mask, bias, pool)
    masked = torch.mul(weight, mask, out=_take(pool, weight))
    out = F.linear(x, masked, bias)
    _give_back(pool, masked)
    return out


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
        #: Reused scratch tensors for the masked weight (see :func:`masked_linear`).
        self.scratch_pool: list[Tensor] = []
        # block plans per mask tensor: id -> (mask, its version when planned, plan or None)
        self._plans: dict[int, tuple[Tensor, int, list[Block] | None]] = {}
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
        self._plans[id(self.mask)] = (self.mask, self.mask._version, plan)

    def plan_for(self, mask: Tensor) -> list[Block] | None:
        """The :func:`block_plan` that :meth:`forward` uses for ``mask``, or ``None`` where
        blocks would not pay (small layers, or masks without all-zero rectangles, as with
        random orderings); computed once per mask tensor and version."""
        if mask.numel() < BLOCKED_MIN_ENTRIES:
            return None
        cached = self._plans.get(id(mask))
        if cached is not None and cached[0] is mask and cached[1] == mask._version:
            return cached[2]
        plan = block_plan(mask)
        if plan_area(plan, tuple(mask.shape)) > BLOCKED_MAX_AREA:
            plan = None
        if len(self._plans) >= 64:  # forget other masks' plans, keep the layer's own
            own = self._plans.get(id(self.mask))
            self._plans = {} if own is None else {id(self.mask): own}
        self._plans[id(mask)] = (mask, mask._version, plan)
        return plan

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
        num_masks: int = 1,
        order_agnostic: bool = False,
        seed: int = 0,
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

    def _draw_mask_set(self, index: int, ordering: Tensor | None) -> None:
        if ordering is None:
            ordering = self.orderings[0].cpu()
            if self.order_agnostic:
                ordering = torch.randperm(self.num_dims, generator=self.generator)
        hidden_sizes = [layer.out_features for layer in self.hidden]
        random_hidden = self.random_hidden_degrees or index > 0
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

    def _masked(self, layer: MaskedLinear, mask: Tensor | None) -> Tensor:
        return layer.weight * (layer.mask if mask is None else mask)

    def masked_weights(self, mask_index: int | None = None) -> dict[str, Tensor | None]:
        """The masked weight matrices, computed once (for the incremental sampler)."""
        masks = self._selected_masks(mask_index)
        return {
            "input_columns": self._masked(self.hidden[0], masks[0]).T,  # (D, H1)
            "output": self._masked(self.output, masks[-2]),
            "direct": None if self.direct is None else self._masked(self.direct, masks[-1]),
            "hidden": [
                self._masked(layer, mask)
                for layer, mask in zip(self.hidden[1:], masks[1:-2], strict=True)
            ],
        }

    def _selected_masks(self, mask_index: int | None) -> list[Tensor | None]:
        if mask_index is None:
            return [None] * (len(self.hidden) + 2)
        if not 0 <= mask_index < self.num_masks:
            raise ValueError(f"mask index must lie in [0, {self.num_masks}), got {mask_index}")
        return self.masks(mask_index)

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
        for layer, weight in zip(self.hidden[1:], weights["hidden"], strict=True):
            hidden = self.activation(F.linear(hidden, weight, layer.bias))
        rows = slice(dim * self.outputs_per_dim, (dim + 1) * self.outputs_per_dim)
        out = F.linear(hidden, weights["output"][rows], self.output.bias[rows])
        if weights["direct"] is not None:
            out = out + F.linear(x, weights["direct"][rows])
        return out

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

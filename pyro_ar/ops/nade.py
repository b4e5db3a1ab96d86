r"""Memory-lean kernels for NADE's conditional logits, with their references.

NADE's hidden pre-activations share a running sum,

.. math:: a_1 = b, \qquad a_{d+1} = a_d + W_{:, d}\, x_d, \qquad
   \ell_d = c_d + V_d \cdot \sigma(a_d),

so all :math:`D` logits cost :math:`O(DH)`. Written naively the pass materializes a
``(batch, D, H)`` tensor and becomes memory-bound. Here the dimensions are processed in chunks of
:math:`C`: inside a chunk the prefix sums are one matrix product with a strictly lower-triangular
mask, so each chunk touches a ``(C, batch, H)`` block that stays in cache, and the backward pass
recomputes that block instead of storing it.

References:
    | The Neural Autoregressive Distribution Estimator (Larochelle & Murray, 2011)
    | https://proceedings.mlr.press/v15/larochelle11a.html
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "nade_hidden_logits",
    "nade_hidden_logits_reference",
]

import torch
from torch import Tensor

from .provenance import attach_provenance, split_provenance

#: Dimensions per chunk: the within-chunk prefix sums cost :math:`C` times more multiply-adds
#: than the running sum, but run as one matrix product; 16 to 32 balances the two on CPUs.
DEFAULT_CHUNK_SIZE = 16


def _prefix_inputs(x_chunk: Tensor, lower: Tensor) -> Tensor:
    """``x_chunk`` (N, C) to ``(C, N, C)`` with entry ``[k, n, j] = x[n, j] * [j < k]``."""
    size = x_chunk.shape[-1]
    return lower[:size, :size].unsqueeze(1) * x_chunk.unsqueeze(0)


def _chunk_hidden(prefix: Tensor, running: Tensor, weight_rows: Tensor, buffer: Tensor) -> Tensor:
    """Sigmoid hidden units of one chunk, written into ``buffer`` (C, N, H).

    Large temporaries are reused rather than reallocated: on CPUs a fresh multi-megabyte tensor
    per chunk costs page faults that outweigh the arithmetic.
    """
    size, batch = prefix.shape[0], prefix.shape[1]
    hidden = buffer[:size]
    torch.matmul(
        prefix.reshape(size * batch, size),
        weight_rows,
        out=hidden.view(size * batch, weight_rows.shape[1]),
    )
    return hidden.add_(running).sigmoid_()


def _forward_pass(
    x: Tensor, weight: Tensor, bias: Tensor, output_weight: Tensor, chunk: int, keep: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Logits (D, N), the weight as rows (D, H), and the running sums at chunk starts if kept."""
    batch, num_dims = x.shape
    hidden_size = weight.shape[0]
    weight_rows = weight.T.contiguous()  # (D, H): row d is the column W[:, d]
    lower = torch.ones(chunk, chunk, dtype=x.dtype, device=x.device).tril(-1)
    buffer = x.new_empty(min(chunk, num_dims), batch, hidden_size)
    out = x.new_empty(num_dims, batch)
    running = bias.expand(batch, hidden_size).contiguous()
    starts = []
    for start in range(0, num_dims, chunk):
        stop = min(start + chunk, num_dims)
        if keep:
            starts.append(running)
        hidden = _chunk_hidden(
            _prefix_inputs(x[:, start:stop], lower), running, weight_rows[start:stop], buffer
        )
        out[start:stop] = hidden.mul_(output_weight[start:stop].unsqueeze(1)).sum(-1)
        running = torch.addmm(running, x[:, start:stop], weight_rows[start:stop])
    return out, weight_rows, torch.stack(starts) if keep else None


class _ChunkedNADE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, output_weight: Tensor, chunk: int):
        out, weight_rows, starts = _forward_pass(x, weight, bias, output_weight, chunk, True)
        ctx.chunk = chunk
        ctx.bias_shape = bias.shape
        ctx.save_for_backward(x, weight_rows, output_weight, starts)
        return out.T

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight_rows, output_weight, starts = ctx.saved_tensors
        chunk = ctx.chunk
        batch, num_dims = x.shape
        hidden_size = weight_rows.shape[1]
        grad_out = grad_out.T.contiguous()  # (D, N)
        lower = torch.ones(chunk, chunk, dtype=x.dtype, device=x.device).tril(-1)
        buffer = x.new_empty(min(chunk, num_dims), batch, hidden_size)
        grad_buffer = torch.empty_like(buffer)
        grad_weight_rows = torch.empty_like(weight_rows)
        grad_output_weight = torch.empty_like(output_weight)
        # Sum of d(loss)/d(a_k) over all k after the current chunk: every such a_k contains
        # W[:, j] x_j for the j in this chunk.
        later = x.new_zeros(batch, hidden_size)
        chunk_starts = list(range(0, num_dims, chunk))
        for index in reversed(range(len(chunk_starts))):
            start = chunk_starts[index]
            stop = min(start + chunk, num_dims)
            size = stop - start
            x_chunk = x[:, start:stop]
            prefix = _prefix_inputs(x_chunk, lower)
            hidden = _chunk_hidden(prefix, starts[index], weight_rows[start:stop], buffer)
            g = grad_out[start:stop]  # (C, N)
            grad_output_weight[start:stop] = torch.bmm(g.unsqueeze(1), hidden).squeeze(1)
            # d(loss)/d(a) = g * V * h * (1 - h), built in place in one (C, N, H) buffer
            grad_pre = torch.sub(1.0, hidden, out=grad_buffer[:size]).mul_(hidden)
            grad_pre.mul_(output_weight[start:stop].unsqueeze(1)).mul_(g.unsqueeze(-1))
            grad_weight_rows[start:stop] = torch.addmm(
                x_chunk.T @ later,
                prefix.reshape(size * batch, size).T,
                grad_pre.reshape(size * batch, hidden_size),
            )
            later += grad_pre.sum(0)
        grad_bias = later
        if ctx.bias_shape != grad_bias.shape:
            grad_bias = grad_bias.sum(0, keepdim=True).reshape(ctx.bias_shape)
        return None, grad_weight_rows.T, grad_bias, grad_output_weight, None


def nade_hidden_logits(
    x: Tensor,
    input_weight: Tensor,
    hidden_bias: Tensor,
    output_weight: Tensor,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tensor:
    r"""The logits :math:`V_d \cdot \sigma(a_d)` of all dimensions, without the output bias.

    With weights shared by every row (``input_weight`` and ``output_weight`` 2-d) it runs the
    chunked running sum over the rows flattened into one batch: :math:`O(DH)` memory traffic
    per example and no stored activations (the backward pass recomputes them). With batched
    weights, where gradients must also reach ``x``, and under :func:`torch.compile`, the same
    chunks run as plain, broadcasting PyTorch left to autograd (same numbers; it stores the
    ``(..., C, H)`` activations of every chunk). Pyro's provenance passes through
    (:mod:`pyro_ar.ops.provenance`).

    Arguments:
        x: Inputs in the model's ordering, shape ``(..., D)``.
        input_weight: :math:`W`, shape ``(..., H, D)``, columns in the ordering.
        hidden_bias: :math:`b`, shape ``(..., H)``.
        output_weight: :math:`V`, shape ``(..., D, H)``, rows in the ordering.
        chunk_size: Dimensions per chunk (a speed knob only).

    Returns:
        Shape: the broadcast of the batch dimensions, ``+ (D,)``.

    Example:
        >>> x = torch.randint(0, 2, (4, 5)).float()
        >>> weight, bias, output = torch.randn(3, 5), torch.randn(3), torch.randn(5, 3)
        >>> fast = nade_hidden_logits(x, weight, bias, output, chunk_size=2)
        >>> torch.allclose(fast, nade_hidden_logits_reference(x, weight, bias, output), atol=1e-6)
        True
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    shared = input_weight.dim() == 2 and output_weight.dim() == 2
    if not shared or x.requires_grad or torch.compiler.is_compiling():
        return _broadcast_pass(x, input_weight, hidden_bias, output_weight, int(chunk_size))
    tensors, provenance = split_provenance(x, input_weight, hidden_bias, output_weight)
    x, input_weight, hidden_bias, output_weight = tensors
    rows = torch.broadcast_shapes(x.shape[:-1], hidden_bias.shape[:-1])
    flat = x.expand(rows + x.shape[-1:]).reshape(-1, x.shape[-1])
    hidden = hidden_bias.shape[-1]
    if hidden_bias.dim() == 1:  # shared by every row: the kernel broadcasts it
        bias = hidden_bias.unsqueeze(0)
    else:
        bias = hidden_bias.expand(rows + (hidden,)).reshape(flat.shape[0], hidden)
    parameters = (input_weight, bias, output_weight)
    if torch.is_grad_enabled() and any(p.requires_grad for p in parameters):
        out = _ChunkedNADE.apply(flat, input_weight, bias, output_weight, int(chunk_size))
    else:
        out = _forward_pass(flat, input_weight, bias, output_weight, int(chunk_size), False)[0].T
    return attach_provenance(out.reshape(rows + x.shape[-1:]), provenance)


def _broadcast_pass(x, input_weight, hidden_bias, output_weight, chunk_size: int) -> Tensor:
    """:func:`nade_hidden_logits` as chunks of plain, broadcasting PyTorch; the prefix sums of
    a chunk are one masked matrix product."""
    num_dims = x.shape[-1]
    running = hidden_bias
    pieces = []
    for start in range(0, num_dims, chunk_size):
        stop = min(start + chunk_size, num_dims)
        x_chunk = x[..., start:stop]
        size = stop - start
        lower = torch.ones(size, size, dtype=x.dtype, device=x.device).tril(-1)
        weight_chunk = input_weight[..., start:stop].transpose(-1, -2)  # (..., C, H)
        # prefix[..., k, :] = sum_{j<k} x_j W[:, j] inside the chunk
        prefix = (x_chunk.unsqueeze(-2) * lower) @ weight_chunk
        hidden = torch.sigmoid(running.unsqueeze(-2) + prefix)
        pieces.append((hidden * output_weight[..., start:stop, :]).sum(-1))
        running = running + (x_chunk.unsqueeze(-2) @ weight_chunk).squeeze(-2)
    return torch.cat(pieces, dim=-1)


def nade_hidden_logits_reference(
    x: Tensor, input_weight: Tensor, hidden_bias: Tensor, output_weight: Tensor
) -> Tensor:
    r"""Naive per-dimension reference: recomputes :math:`a_d = b + W_{:, <d}\, x_{<d}` from
    scratch for every :math:`d`, :math:`O(D^2 H)`. For tests only.

    Shapes as in :func:`nade_hidden_logits` (``hidden_bias`` of shape ``(H,)`` or ``(N, H)``).

    Example:
        >>> x = torch.tensor([[1.0, 0.0, 1.0]])
        >>> input_weight, hidden_bias = torch.ones(2, 3), torch.zeros(2)
        >>> output_weight = torch.ones(3, 2)  # logit_d = V_d . sigmoid(b + W x_<d)
        >>> nade_hidden_logits_reference(x, input_weight, hidden_bias, output_weight)
        tensor([[1.0000, 1.4621, 1.4621]])
    """
    columns = []
    for d in range(x.shape[-1]):
        pre = hidden_bias + x[..., :d] @ input_weight[:, :d].T
        columns.append(torch.sigmoid(pre) @ output_weight[d])
    return torch.stack(columns, dim=-1)

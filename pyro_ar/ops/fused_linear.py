r"""An inference-only affine map with a fused activation, :math:`a(x W^\top + b)`, that takes
oneDNN's float32 GEMM on CPU.

PyTorch sends float32 matrix products on CPU to MKL, which on AMD processors takes its AVX2 code
path even where the processor has AVX-512; oneDNN picks its kernels from the instruction set and
runs the same product about twice as fast there (``python bench/gibbs_speed.py`` prints both).
Sampling loops (block Gibbs, annealed importance sampling, ancestral sampling) spend most of
their time in such products and need no gradient, so they use :func:`fused_linear`; anything
that needs autograd, another dtype or another device takes the plain :func:`torch.addmm` path,
which gives the same numbers up to float32 rounding, as does code being compiled by
:func:`torch.compile`. Pyro's provenance passes through (:mod:`pyro_ar.ops.provenance`).
"""

from __future__ import annotations

__all__ = ["fused_linear", "fused_linear_reference", "onednn_available"]

import logging

import torch
from torch import Tensor

from .provenance import attach_provenance, split_provenance

logger = logging.getLogger(__name__)

_ACTIVATIONS = {None: "none", "sigmoid": "sigmoid", "relu": "relu"}
_onednn_state: bool | None = None


def onednn_available() -> bool:
    """Whether oneDNN's fused float32 linear op works in this PyTorch build (probed once).

    Example:
        >>> isinstance(onednn_available(), bool)
        True
    """
    global _onednn_state
    if _onednn_state is None:
        try:
            op = torch.ops.mkldnn._linear_pointwise
            x, w, b = torch.ones(2, 3), torch.ones(4, 3), torch.zeros(4)
            ok = torch.equal(op(x, w, b, "none", [], ""), torch.full((2, 4), 3.0))
            _onednn_state = bool(ok and torch.backends.mkldnn.is_available())
        except (AttributeError, RuntimeError, NotImplementedError):
            _onednn_state = False
        logger.debug("oneDNN fused linear available: %s", _onednn_state)
    return _onednn_state


def _use_onednn(input: Tensor, weight: Tensor, bias: Tensor | None) -> bool:
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return (
        input.dim() >= 2
        and weight.dim() == 2
        and (bias is None or bias.dim() == 1)
        and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
        and input.numel() > 0
        and not torch.compiler.is_compiling()
        and onednn_available()
    )


def fused_linear(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, activation: str | None = None
) -> Tensor:
    r"""Computes :math:`a(x W^\top + b)` for :math:`a` the identity, the logistic sigmoid or
    ReLU, in one oneDNN call where it applies (CPU, float32, a 2-d weight, no gradient needed).

    Arguments:
        input: :math:`x`, shape ``(..., in_features)``.
        weight: :math:`W`, shape ``(out_features, in_features)`` (any strides).
        bias: :math:`b`, shape ``(out_features,)``, or ``None``.
        activation: ``None``, ``"sigmoid"`` or ``"relu"``.

    Returns:
        Shape ``(..., out_features)``.

    Example:
        >>> x, weight, bias = torch.randn(8, 5), torch.randn(3, 5), torch.randn(3)
        >>> expected = fused_linear_reference(x, weight, bias, "sigmoid")
        >>> torch.allclose(fused_linear(x, weight, bias, "sigmoid"), expected, atol=1e-6)
        True
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be None, 'sigmoid' or 'relu', got {activation!r}")
    if _use_onednn(input, weight, bias):
        (input, weight, bias), provenance = split_provenance(input, weight, bias)
        out = torch.ops.mkldnn._linear_pointwise(
            input, weight, bias, _ACTIVATIONS[activation], [], ""
        )
        return attach_provenance(out, provenance)
    return fused_linear_reference(input, weight, bias, activation)


def fused_linear_reference(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, activation: str | None = None
) -> Tensor:
    r"""The plain-PyTorch reference of :func:`fused_linear` (and its path wherever oneDNN does
    not apply): ``F.linear`` followed by the activation. Same arguments.

    Example:
        >>> x, weight, bias = torch.ones(1, 2), torch.ones(1, 2), torch.tensor([-2.0])
        >>> fused_linear_reference(x, weight, bias, "sigmoid")
        tensor([[0.5000]])
    """
    out = torch.nn.functional.linear(input, weight, bias)
    if activation == "sigmoid":
        return torch.sigmoid(out)
    if activation == "relu":
        return torch.relu(out)
    return out

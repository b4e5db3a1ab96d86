r"""Checks of values passed to the distributions, with errors that name the problem."""

from __future__ import annotations

__all__ = [
    "check_binary_values",
    "check_end_padding",
    "check_floating_parameters",
    "check_sample_shape",
    "check_parameters",
    "check_value_shape",
    "initialize_distribution",
    "through_first_end",
]

import torch
from torch import Tensor
from torch.distributions import Distribution


def check_value_shape(distribution: Distribution, value: object, kind: str) -> None:
    """Checks that ``value`` is a tensor of shape ``(..., D)`` broadcastable with the
    distribution's batch shape.

    Arguments:
        distribution: A distribution with ``event_shape == (D,)``.
        value: The value to check.
        kind: Words for the support in messages, e.g. ``"binary"``.

    Raises:
        ValueError: naming the expected and the actual shape.
    """
    name = type(distribution).__name__
    if not isinstance(value, Tensor):
        raise ValueError(f"{name} expects a tensor value, got {type(value).__name__}")
    num_dims = distribution.event_shape[0]
    if value.dim() < 1 or value.shape[-1] != num_dims:
        raise ValueError(
            f"{name} is over D={num_dims} {kind} dimensions, so a value must have shape "
            f"(..., {num_dims}); got shape {tuple(value.shape)}"
        )
    try:
        torch.broadcast_shapes(value.shape[:-1], distribution.batch_shape)
    except RuntimeError:
        raise ValueError(
            f"{name}: value batch shape {tuple(value.shape[:-1])} does not broadcast with "
            f"the distribution's batch_shape {tuple(distribution.batch_shape)}"
        ) from None


def check_binary_values(owner: str, value: Tensor) -> None:
    """Checks that every entry of ``value`` is 0 or 1 (no NaN).

    Raises:
        ValueError: naming an offending value and how many there are.
    """
    if value.dtype == torch.bool:
        return
    # x - x^2 vanishes exactly at 0 and 1, and is NaN for NaN and infinities: one fused pass
    # (for integers too: x^2 = x modulo 2^k only at 0 and 1)
    if not torch.addcmul(value, value, value, value=-1).any():
        return
    invalid = (value != 0).logical_and_(value != 1)
    if invalid.any():
        if value.is_floating_point() and torch.isnan(value).any():
            raise ValueError(f"{owner}: value contains NaN; values must be 0 or 1")
        example = value[invalid].flatten()[0].item()
        raise ValueError(
            f"{owner} is a distribution over binary vectors: values must be 0 or 1, found "
            f"{example!r} ({int(invalid.sum())} invalid entries)"
        )


def through_first_end(value: Tensor, end: int) -> Tensor:
    """Positions up to and including the first ``end`` along the last dim (all when there is
    none): the part of a sequence that is scored; the rest is padding."""
    is_end = (value == end).long()
    return (torch.cumsum(is_end, -1) - is_end) == 0


def check_end_padding(value: Tensor, end: int, message: str) -> None:
    """Raises ``ValueError(message)`` unless every position after the first ``end`` holds
    ``end`` too."""
    if bool((~through_first_end(value, end) & (value != end)).any()):
        raise ValueError(message)


def check_parameters(distribution: Distribution) -> None:
    """Checks every parameter named in ``arg_constraints``: no NaN or infinite entry (torch's
    ``constraints.real`` lets infinities through, and they turn into NaN log-probabilities) and
    the constraint itself. Empty parameters pass (torch's own check fails on them).

    Raises:
        ValueError: naming the distribution, the parameter and the problem.
    """
    owner = type(distribution).__name__
    for name, constraint in distribution.arg_constraints.items():
        value = getattr(distribution, name, None)
        if not isinstance(value, Tensor) or value.numel() == 0:
            continue
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            problem = "NaN" if bool(torch.isnan(value).any()) else "infinite values"
            raise ValueError(f"{owner}: parameter {name} contains {problem}")
        if not bool(constraint.check(value).all()):
            raise ValueError(
                f"{owner}: parameter {name} of shape {tuple(value.shape)} does not satisfy "
                f"the constraint {constraint}"
            )


def initialize_distribution(
    distribution: Distribution,
    batch_shape: torch.Size,
    event_shape: torch.Size,
    validate_args: bool | None,
) -> None:
    """``Distribution.__init__`` with :func:`check_parameters` in place of torch's own parameter
    validation (same switch: ``validate_args``, or the global default when it is ``None``)."""
    Distribution.__init__(distribution, batch_shape, event_shape, validate_args=False)
    if validate_args is None:
        del distribution._validate_args  # back to the class-wide default
    else:
        distribution._validate_args = validate_args
    if distribution._validate_args:
        check_parameters(distribution)


def check_sample_shape(owner: str, sample_shape) -> torch.Size:
    """``sample_shape`` as a ``torch.Size`` of non-negative sizes.

    Raises:
        ValueError: naming the distribution and the shape.
    """
    try:
        shape = torch.Size(sample_shape)
    except TypeError:
        raise ValueError(
            f"{owner}: sample_shape must be a tuple of sizes, got {sample_shape!r}"
        ) from None
    if any(size < 0 for size in shape):
        raise ValueError(f"{owner}: sample_shape must hold sizes >= 0, got {tuple(shape)}")
    return shape


def check_floating_parameters(owner: str, **parameters: Tensor) -> None:
    """Every parameter is a real floating-point tensor (float16/32/64, bfloat16).

    Raises:
        ValueError: naming the parameter and its dtype.
    """
    for name, value in parameters.items():
        if not isinstance(value, Tensor):
            raise ValueError(f"{owner}: {name} must be a tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise ValueError(
                f"{owner}: {name} must be a real floating-point tensor (e.g. float32), got "
                f"{value.dtype}"
            )

r"""Checks of values passed to the distributions, with errors that name the problem."""

from __future__ import annotations

__all__ = [
    "broadcast_batch_shapes",
    "check_binary_values",
    "check_partially_observed",
    "check_end_padding",
    "check_floating_parameters",
    "check_sample_shape",
    "check_parameters",
    "check_value_shape",
    "finish_expand",
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

    Example:
        >>> from pyro_ar.distributions import FVSBN
        >>> model = FVSBN(torch.zeros(3, 3), torch.zeros(3))
        >>> check_value_shape(model, torch.zeros(5, 3), "binary")  # passes
        >>> try:
        ...     check_value_shape(model, torch.zeros(5, 4), "binary")
        ... except ValueError:
        ...     print("wrong D")
        wrong D
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

    Example:
        >>> check_binary_values("RBM", torch.tensor([0.0, 1.0]))  # passes
        >>> try:
        ...     check_binary_values("RBM", torch.tensor([0.0, 0.5]))
        ... except ValueError as error:
        ...     print("0.5" in str(error))
        True
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
    """True at the positions up to and including the first ``end`` along the last dim (all
    when there is none): the part of a sequence that is scored; the rest is padding.

    Example:
        >>> through_first_end(torch.tensor([5, 6, 2, 2]), end=2)  # </s> has id 2
        tensor([ True,  True,  True, False])
    """
    is_end = (value == end).long()
    return (torch.cumsum(is_end, -1) - is_end) == 0


def check_end_padding(value: Tensor, end: int, message: str) -> None:
    """Raises ``ValueError(message)`` unless every position after the first ``end`` holds
    ``end`` too.

    Example:
        >>> check_end_padding(torch.tensor([5, 2, 2, 2]), 2, "padding after </s>")  # passes
        >>> try:
        ...     check_end_padding(torch.tensor([5, 2, 7]), 2, "padding after </s>")
        ... except ValueError as error:
        ...     print(error)
        padding after </s>
    """
    if bool((~through_first_end(value, end) & (value != end)).any()):
        raise ValueError(message)


def check_parameters(distribution: Distribution) -> None:
    """Checks every parameter named in ``arg_constraints``: no NaN or infinite entry (torch's
    ``constraints.real`` lets infinities through, and they turn into NaN log-probabilities) and
    the constraint itself. Empty parameters pass (torch's own check fails on them).

    Raises:
        ValueError: naming the distribution, the parameter and the problem.

    Example:
        >>> from pyro_ar.distributions import FVSBN
        >>> model = FVSBN(torch.zeros(2, 2), torch.zeros(2))
        >>> check_parameters(model)  # passes
        >>> model.bias = torch.tensor([0.0, float("inf")])
        >>> try:
        ...     check_parameters(model)
        ... except ValueError as error:
        ...     print("bias" in str(error))
        True
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
    validation (same switch: ``validate_args``, or the global default when it is ``None``).

    Example:
        >>> from pyro_ar.distributions import FVSBN
        >>> model = FVSBN.__new__(FVSBN)
        >>> model.weight, model.bias = torch.zeros(2, 2), torch.tensor([0.0, float("nan")])
        >>> try:
        ...     initialize_distribution(model, torch.Size(), torch.Size([2]), validate_args=True)
        ... except ValueError:
        ...     print("NaN bias refused")
        NaN bias refused
    """
    Distribution.__init__(distribution, batch_shape, event_shape, validate_args=False)
    if validate_args is None:
        del distribution._validate_args  # back to the class-wide default
    else:
        distribution._validate_args = validate_args
    if distribution._validate_args:
        check_parameters(distribution)


def finish_expand(new: Distribution, source: Distribution, batch_shape: torch.Size) -> None:
    """Completes an ``expand``: gives ``new`` the batch shape ``batch_shape`` and ``source``'s
    event shape, without validating the (already checked) parameters again, and carries over
    ``source``'s validation switch.

    Example:
        >>> from pyro_ar.distributions import FVSBN
        >>> source = FVSBN(torch.zeros(3, 3), torch.zeros(3))
        >>> new = source.expand((2,))
        >>> new.batch_shape, new.event_shape, new._validate_args == source._validate_args
        (torch.Size([2]), torch.Size([3]), True)
    """
    Distribution.__init__(new, torch.Size(batch_shape), source.event_shape, validate_args=False)
    new._validate_args = source._validate_args


def broadcast_batch_shapes(owner: str, **batch_shapes: torch.Size) -> torch.Size:
    """The batch shape that the parameters' batch dimensions broadcast to.

    Raises:
        ValueError: naming every parameter's batch dimensions when they do not broadcast.

    Example:
        >>> broadcast_batch_shapes("FVSBN", weight=torch.Size([2, 1]), bias=torch.Size([3]))
        torch.Size([2, 3])
    """
    try:
        return torch.broadcast_shapes(*batch_shapes.values())
    except RuntimeError:
        listed = ", ".join(f"{name} {tuple(shape)}" for name, shape in batch_shapes.items())
        raise ValueError(f"{owner}: the batch dimensions of {listed} do not broadcast") from None


def check_sample_shape(owner: str, sample_shape) -> torch.Size:
    """``sample_shape`` as a ``torch.Size`` of non-negative sizes.

    Raises:
        ValueError: naming the distribution and the shape.

    Example:
        >>> check_sample_shape("NADE", (2, 3))
        torch.Size([2, 3])
        >>> try:
        ...     check_sample_shape("NADE", (-1,))
        ... except ValueError as error:
        ...     print(error)
        NADE: sample_shape must hold sizes >= 0, got (-1,)
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

    Example:
        >>> check_floating_parameters("FVSBN", weight=torch.zeros(2, 2))  # passes
        >>> try:
        ...     check_floating_parameters("FVSBN", weight=torch.zeros(2, 2, dtype=torch.long))
        ... except ValueError as error:
        ...     print(error)
        FVSBN: weight must be a real floating-point tensor (e.g. float32), got torch.int64
    """
    for name, value in parameters.items():
        if not isinstance(value, Tensor):
            raise ValueError(f"{owner}: {name} must be a tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise ValueError(
                f"{owner}: {name} must be a real floating-point tensor (e.g. float32), got "
                f"{value.dtype}"
            )


def check_partially_observed(
    owner: str, observed: Tensor, mask: Tensor, event_shape: torch.Size, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Checks the ``observed`` values and boolean ``mask`` of a conditional sampler (both of
    shape ``(...,) + event_shape``) and returns them on ``device``, the entries where ``mask``
    is false set to 0 (so they may be NaN on input).

    Raises:
        ValueError: naming the method (``owner``), the argument and its shape or dtype.

    Example:
        >>> observed, mask = torch.tensor([1.0, float("nan")]), torch.tensor([True, False])
        >>> check_partially_observed("NADE.sample_conditional", observed, mask, (2,), "cpu")[0]
        tensor([1., 0.])
    """
    mask = torch.as_tensor(mask, device=device)
    if mask.dtype != torch.bool:
        raise ValueError(f"{owner}: mask must be boolean, got {mask.dtype}")
    event = tuple(event_shape)
    for label, tensor in (("observed", observed), ("mask", mask)):
        if tensor.dim() < len(event) or tuple(tensor.shape[tensor.dim() - len(event) :]) != event:
            raise ValueError(
                f"{owner}: {label} must have shape (..., {', '.join(map(str, event))}), got "
                f"{tuple(tensor.shape)}"
            )
    observed = observed.to(device=device)
    return torch.where(mask, observed, torch.zeros_like(observed)), mask

r"""Checks on the context passed to conditional modules."""

from __future__ import annotations

__all__ = ["check_context"]

from torch import Tensor


def check_context(owner: str, context: Tensor | None, context_features: int) -> Tensor | None:
    """Returns ``context`` after checking that it matches ``context_features``.

    Raises:
        ValueError: a context is missing, unexpected, or of the wrong size.

    Example:
        >>> check_context("NADEModule", torch.zeros(5, 3), context_features=3).shape
        torch.Size([5, 3])
        >>> try:
        ...     check_context("NADEModule", None, context_features=3)
        ... except ValueError:
        ...     print("a context is needed")
        a context is needed
    """
    if not context_features:
        if context is not None:
            raise ValueError(f"{owner} was built with context_features=0 but got a context")
        return None
    if context is None or context.shape[-1:] != (context_features,):
        shape = None if context is None else tuple(context.shape)
        raise ValueError(
            f"{owner} expects a context of shape (..., {context_features}), got {shape}"
        )
    return context

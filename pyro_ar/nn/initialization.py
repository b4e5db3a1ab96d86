r"""Initializations shared by the parameter-holding modules."""

from __future__ import annotations

__all__ = ["marginal_logits"]

import torch
from torch import Tensor


def marginal_logits(data: Tensor, num_dims: int, pseudocount: float = 1.0) -> Tensor:
    r"""Logits of the smoothed per-dimension means of binary data,

    .. math:: \operatorname{logit}\frac{\sum_n x_{nd} + \alpha}{N + 2\alpha},

    the maximum-likelihood output biases of a model with no connections, with a pseudocount
    :math:`\alpha` so that constant pixels give finite logits.

    Arguments:
        data: Binary data, shape ``(N, D)``.
        num_dims: The expected :math:`D`.
        pseudocount: :math:`\alpha > 0`.

    Returns:
        Shape ``(D,)``, in ``float32`` unless ``data`` is floating.

    Example:
        >>> marginal_logits(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), 2)  # (2 + 1) / 4 and 1 / 4
        tensor([ 1.0986, -1.0986])
    """
    data = torch.as_tensor(data)
    if data.dim() != 2 or data.shape[1] != num_dims:
        raise ValueError(
            f"initialization data must have shape (N, {num_dims}), got {tuple(data.shape)}"
        )
    if pseudocount <= 0:
        raise ValueError(f"pseudocount must be positive, got {pseudocount}")
    dtype = data.dtype if data.is_floating_point() else torch.get_default_dtype()
    data = data.to(dtype)
    if torch.isnan(data).any() or ((data != 0) & (data != 1)).any():
        raise ValueError("initialization data must be binary (0 or 1, no NaN)")
    mean = (data.sum(0) + pseudocount) / (data.shape[0] + 2 * pseudocount)
    return torch.logit(mean)

r"""A module holding an RBM's parameters that returns the distribution when called."""

from __future__ import annotations

__all__ = ["RBMModule"]

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..distributions.rbm import RBM, GaussianBernoulliRBM
from .context import check_context
from .initialization import marginal_logits
from .module import DensityModule, single_layer_size


class RBMModule(DensityModule, name="rbm"):
    r"""Parameters :math:`W` ``(H, D)``, :math:`b` ``(D,)``, :math:`c` ``(H,)`` of an RBM.

    Initialization follows Hinton's practical guide: :math:`W \sim \mathcal{N}(0, 0.01^2)`,
    :math:`c = 0`, and :math:`b` at the logits of the data's smoothed marginals
    (:func:`~pyro_ar.nn.marginal_logits`, the formula every module uses) when ``data`` is
    given; with ``gaussian=True`` the visibles are real (:class:`GaussianBernoulliRBM`, unit
    variances unless ``learn_scale``) and :math:`b` starts at the data's mean.

    Calling the module returns the distribution (``RBM`` or ``GaussianBernoulliRBM``); it
    trains by contrastive divergence (:func:`~pyro_ar.infer.fit_rbm`).

    Arguments:
        num_dims: :math:`D`, the visible units.
        hidden_features: :math:`H`, the hidden units (or a list of one layer size).
        data: Optional training data ``(N, D)`` for the visible biases.
        gaussian: Real-valued visible units.
        learn_scale: Learn the visible scales (Gaussian-Bernoulli only).
        seed: Seed of the weight initialization (default: PyTorch's global generator).
        num_visible, num_hidden: The RBM's own names for ``num_dims`` and ``hidden_features``
            (accepted as keywords; older checkpoints use them).

    References:
        G. E. Hinton. *A practical guide to training restricted Boltzmann machines*. UTML TR
        2010-003, 2010.

    Example:
        >>> module = RBMModule(6, 4, seed=0)
        >>> module().log_prob(torch.zeros(6)).shape
        torch.Size([])
    """

    objective = "contrastive_divergence"

    def __init__(
        self,
        num_dims: int | None = None,
        hidden_features: int | Sequence[int] | None = None,
        data: Tensor | None = None,
        gaussian: bool = False,
        learn_scale: bool = False,
        seed: int | None = None,
        *,
        num_visible: int | None = None,
        num_hidden: int | None = None,
    ):
        super().__init__()
        num_dims = _one_of("num_dims", num_dims, "num_visible", num_visible)
        hidden = _one_of("hidden_features", hidden_features, "num_hidden", num_hidden)
        if isinstance(num_dims, bool) or not isinstance(num_dims, int) or num_dims < 1:
            raise ValueError(f"RBMModule: num_dims must be a positive integer, got {num_dims!r}")
        try:
            hidden = single_layer_size("RBMModule", hidden)
        except ValueError:
            raise ValueError(
                f"RBMModule: num_hidden must be a positive integer, got {hidden!r}"
            ) from None
        self.num_visible, self.num_hidden, self.gaussian = num_dims, hidden, gaussian
        with self.seeded(seed):
            self.weight = nn.Parameter(0.01 * torch.randn(hidden, num_dims))
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))
        visible_bias = torch.zeros(num_dims)
        if data is not None:
            data = torch.as_tensor(data).reshape(-1, num_dims)
            visible_bias = data.float().mean(0) if gaussian else marginal_logits(data, num_dims)
        self.visible_bias = nn.Parameter(visible_bias.float())
        self.log_visible_scale = nn.Parameter(torch.zeros(num_dims)) if learn_scale else None

    @property
    def num_dims(self) -> int:
        return self.num_visible

    def forward(self, context: Tensor | None = None) -> RBM | GaussianBernoulliRBM:
        """The RBM (no context: ``context`` must be ``None``)."""
        check_context("RBMModule", context, 0)
        if self.gaussian:
            scale = 1.0 if self.log_visible_scale is None else self.log_visible_scale.exp()
            return GaussianBernoulliRBM(self.weight, self.visible_bias, self.hidden_bias, scale)
        return RBM(self.weight, self.visible_bias, self.hidden_bias)


def _one_of(name: str, value, alias: str, alias_value):
    if value is not None and alias_value is not None:
        raise ValueError(f"RBMModule: give {name} or {alias}, not both")
    chosen = value if value is not None else alias_value
    if chosen is None:
        raise ValueError(f"RBMModule needs {name}")
    return chosen

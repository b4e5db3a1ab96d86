r"""A module holding an RBM's parameters that returns the distribution when called."""

from __future__ import annotations

__all__ = ["RBMModule"]

import torch
from torch import Tensor, nn

from ..distributions.rbm import RBM, GaussianBernoulliRBM


class RBMModule(nn.Module):
    r"""Parameters :math:`W` ``(H, D)``, :math:`b` ``(D,)``, :math:`c` ``(H,)`` of an RBM.

    Initialization follows Hinton's practical guide: :math:`W \sim \mathcal{N}(0, 0.01^2)`,
    :math:`c = 0`, and :math:`b_i = \operatorname{logit}` of the data's marginal
    :math:`p(v_i = 1)` (clipped) when ``data`` is given. With ``gaussian=True`` the visibles are
    real (:class:`GaussianBernoulliRBM`, unit variances unless ``learn_scale``).

    Calling the module returns the distribution (``RBM`` or ``GaussianBernoulliRBM``).

    References:
        G. E. Hinton. *A practical guide to training restricted Boltzmann machines*. UTML TR
        2010-003, 2010.
    """

    def __init__(
        self,
        num_visible: int,
        num_hidden: int,
        data: Tensor | None = None,
        gaussian: bool = False,
        learn_scale: bool = False,
        seed: int | None = None,
    ):
        super().__init__()
        for name, value in (("num_visible", num_visible), ("num_hidden", num_hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RBMModule: {name} must be a positive integer, got {value!r}")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.num_visible, self.num_hidden, self.gaussian = num_visible, num_hidden, gaussian
        self.weight = nn.Parameter(
            0.01 * torch.randn(num_hidden, num_visible, generator=generator)
        )
        self.hidden_bias = nn.Parameter(torch.zeros(num_hidden))
        visible_bias = torch.zeros(num_visible)
        if data is not None:
            data = data.reshape(-1, num_visible).float()
            if gaussian:
                visible_bias = data.mean(0)
            else:
                visible_bias = torch.logit(data.mean(0).clamp(1e-3, 1 - 1e-3))
        self.visible_bias = nn.Parameter(visible_bias)
        self.log_visible_scale = nn.Parameter(torch.zeros(num_visible)) if learn_scale else None

    @property
    def num_dims(self) -> int:
        return self.num_visible

    @property
    def config(self) -> dict:
        """Constructor arguments that rebuild this module (for checkpoints)."""
        return {
            "num_visible": self.num_visible,
            "num_hidden": self.num_hidden,
            "gaussian": self.gaussian,
            "learn_scale": self.log_visible_scale is not None,
        }

    def forward(self) -> RBM | GaussianBernoulliRBM:
        if self.gaussian:
            scale = 1.0 if self.log_visible_scale is None else self.log_visible_scale.exp()
            return GaussianBernoulliRBM(self.weight, self.visible_bias, self.hidden_bias, scale)
        return RBM(self.weight, self.visible_bias, self.hidden_bias)

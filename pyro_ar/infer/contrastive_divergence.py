r"""Contrastive divergence (CD-k) and persistent CD as a loss for ``pyro.infer.SVI``, and the
usual ways to monitor RBM training."""

from __future__ import annotations

__all__ = ["ContrastiveDivergence", "pseudo_likelihood", "reconstruction_error"]

from collections.abc import Callable

import pyro.poutine as poutine
import torch
import torch.nn.functional as F
from pyro.distributions.util import scale_and_mask
from pyro.infer import ELBO
from pyro.poutine.util import site_is_subsample
from torch import Tensor

from ..distributions.rbm import RBM, RBMBase
from ..ops import BernoulliSampler
from .gibbs import base_distribution


class ContrastiveDivergence(ELBO):
    r"""A Pyro loss that trains observed RBM sites by contrastive divergence.

    For an observed site :math:`v_{1:N} \sim` RBM the log-likelihood gradient is
    :math:`-\sum_n \nabla F(v_n) + N\, E_{p}[\nabla F(v)]`; CD-k (Hinton 2002) replaces the model
    expectation by the average over negative samples :math:`\tilde v` obtained with ``steps``
    block-Gibbs sweeps started at the data, persistent CD (Tieleman 2008) by sweeps continued from
    the previous step's chains. The surrogate whose gradient this is,

    .. math:: L = s \Big[\sum_n m_n F(v_n) - \frac{\sum_n m_n}{M} \sum_m F(\tilde v_m)\Big]
              \quad (\tilde v \text{ held fixed}),

    with the site's subsampling scale :math:`s` and its ``poutine.mask`` :math:`m_n \in \{0,
    1\}` (with one chain per row, as in CD-k, the negative term is :math:`\sum_n m_n
    F(\tilde v_n)`), is added to the usual ELBO terms
    (:math:`-\log p` of the model's other sites, :math:`\log q` of the guide's), so priors on
    other sites, ``pyro.module``/``pyro.param`` parameters, Pyro optimizers (momentum, weight
    decay) and learning-rate schedulers all apply: ``SVI(model, guide, optim,
    loss=ContrastiveDivergence(steps=1))``.

    The value ``loss`` returns is the surrogate (a free-energy gap), *not* a likelihood; monitor
    training with :func:`pseudo_likelihood`, :func:`reconstruction_error` or AIS.

    Arguments:
        steps: Gibbs sweeps per update (:math:`k`).
        persistent: Keep the negative chains between updates (PCD).
        num_chains: Persistent chains per site (default: the first batch's size).

    References:
        G. E. Hinton. *Training products of experts by minimizing contrastive divergence*.
        Neural Computation, 2002. T. Tieleman. *Training restricted Boltzmann machines using
        approximations to the likelihood gradient*. ICML 2008.

    Example:
        >>> import pyro
        >>> def model(batch):
        ...     weight = pyro.param("weight", 0.01 * torch.randn(4, 6))
        ...     visible_bias = pyro.param("visible_bias", torch.zeros(6))
        ...     hidden_bias = pyro.param("hidden_bias", torch.zeros(4))
        ...     with pyro.plate("rows", len(batch)):
        ...         pyro.sample("v", RBM(weight, visible_bias, hidden_bias), obs=batch)
        >>> optimizer = pyro.optim.SGD({"lr": 0.01, "momentum": 0.5})
        >>> loss = ContrastiveDivergence(steps=2)
        >>> svi = pyro.infer.SVI(model, lambda batch: None, optimizer, loss)
        >>> isinstance(svi.step(torch.bernoulli(torch.full((8, 6), 0.5))), float)
        True
    """

    def __init__(self, steps: int = 1, persistent: bool = False, num_chains: int | None = None):
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        super().__init__(num_particles=1)  # an ELBO subclass, so SVI calls loss_and_grads
        self.steps = steps
        self.persistent = persistent
        self.num_chains = num_chains
        self.chains: dict[str, Tensor] = {}
        self.sampler = BernoulliSampler()

    def _negatives(self, name: str, rbm: RBMBase, data: Tensor) -> Tensor:
        with torch.no_grad():
            shared = len(rbm.batch_shape) == 0
            if self.persistent and shared:
                chains = self.chains.get(name)
                if chains is None or chains.shape[-1] != data.shape[-1]:
                    rows = data.reshape(-1, data.shape[-1])
                    count = self.num_chains or rows.shape[0]
                    chains = rows[torch.arange(count, device=rows.device) % rows.shape[0]].clone()
            elif self.persistent:
                chains = self.chains.get(name)
                if chains is None or chains.shape != data.shape:
                    chains = data.clone()
            else:
                chains = data
            visible = chains.to(rbm.weight.dtype)
            for _ in range(self.steps):
                visible, _ = rbm.gibbs_step(visible, sampler=self.sampler)
            if self.persistent:
                self.chains[name] = visible
            return visible

    def _surrogate(self, model: Callable, guide: Callable, *args, **kwargs) -> Tensor:
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            *args, **kwargs
        )
        total = torch.zeros(())
        found = False
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            base = base_distribution(site["fn"])
            if site["is_observed"] and isinstance(base, RBMBase):
                found = True
                total = total + self._free_energy_gap(name, site, base)
            else:
                total = total - _scaled_log_prob(site)
        if not found:
            raise ValueError("ContrastiveDivergence found no observed RBM site in the model")
        for site in guide_trace.nodes.values():
            if site["type"] == "sample" and not site_is_subsample(site):
                total = total + _scaled_log_prob(site)
        return total

    def _free_energy_gap(self, name: str, site: dict, rbm: RBMBase) -> Tensor:
        r""":math:`s [\sum_n m_n F(v_n) - \sum_n m_n F(\tilde v_n)]` for an observed RBM site
        with rows :math:`v_n`, mask :math:`m_n` (``poutine.mask``) and scale :math:`s`; shared
        persistent chains count as :math:`\bar F(\tilde v) \sum_n m_n`, their mean times the
        number of rows the mask keeps. A row that is masked out adds nothing, as in
        ``Trace_ELBO``."""
        data = site["value"]
        negatives = self._negatives(name, rbm, data)
        free_energy = rbm.free_energy(data)
        kept = _mask_weights(site["mask"], free_energy)
        negative_free_energy = rbm.free_energy(negatives)
        if negative_free_energy.shape == free_energy.shape:  # a chain per row
            negative = (kept * negative_free_energy).sum()
        else:
            negative = negative_free_energy.mean() * kept.sum()
        return site["scale"] * ((kept * free_energy).sum() - negative)

    def _get_trace(self, model, guide, args, kwargs):
        raise NotImplementedError("ContrastiveDivergence does not sample particles")

    def loss(self, model: Callable, guide: Callable, *args, **kwargs) -> float:
        """The surrogate's value (it also advances persistent chains)."""
        with torch.no_grad():
            return float(self._surrogate(model, guide, *args, **kwargs))

    def loss_and_grads(self, model: Callable, guide: Callable, *args, **kwargs) -> float:
        """The surrogate's value; its gradient is accumulated in the parameters."""
        surrogate = self._surrogate(model, guide, *args, **kwargs)
        if surrogate.requires_grad:
            surrogate.backward()
        return float(surrogate.detach())


def _mask_weights(mask, like: Tensor) -> Tensor:
    """A site's ``mask`` (``None``, a bool or a bool tensor) as 0/1 weights of ``like``'s shape,
    dtype and device."""
    if mask is None or mask is True:
        return torch.ones_like(like)
    if mask is False:
        return torch.zeros_like(like)
    return torch.as_tensor(mask, device=like.device).expand(like.shape).to(like.dtype)


def _scaled_log_prob(site: dict) -> Tensor:
    """A site's ``log_prob`` summed with its scale and mask applied exactly as Pyro's ELBOs do
    (``scale_and_mask``: a masked-out term is zero, even where it is not finite)."""
    log_prob = site["fn"].log_prob(site["value"])
    return scale_and_mask(log_prob, site["scale"], site["mask"]).sum()


def pseudo_likelihood(rbm: RBM, visible: Tensor) -> Tensor:
    r"""Deterministic full log pseudo-likelihood :math:`\sum_i \log p(v_i \mid v_{-i})`, with
    :math:`p(v_i \mid v_{-i}) = \sigma(F(v^{(i)}) - F(v))` (:math:`v^{(i)}`: bit :math:`i`
    flipped), per row, shape ``visible.shape[:-1]``. All :math:`D` flips at once from the hidden
    pre-activations (memory ``rows x D x H``; pass minibatches). Unlike scikit-learn's
    ``score_samples`` (one random bit), no randomness (Besag 1975).

    Example:
        >>> rbm = RBM(0.1 * torch.randn(3, 5), torch.zeros(5), torch.zeros(3))
        >>> pseudo_likelihood(rbm, torch.ones(2, 5)).shape  # per row, in nats
        torch.Size([2])
    """
    visible = visible.to(rbm.weight.dtype)
    activation = rbm.hidden_logits(visible)  # (..., H)
    sign = 1 - 2 * visible  # +1 turns a 0 on, -1 turns a 1 off
    flipped = activation.unsqueeze(-2) + sign.unsqueeze(-1) * rbm.weight.transpose(-1, -2)
    # F(v^(i)) - F(v) = -b_i sign_i - sum_j [softplus(flipped) - softplus(activation)]
    gap = -rbm.visible_bias * sign - (
        F.softplus(flipped) - F.softplus(activation).unsqueeze(-2)
    ).sum(-1)
    return F.logsigmoid(gap).sum(-1)


def reconstruction_error(rbm: RBM, visible: Tensor) -> Tensor:
    r"""Mean squared error of the mean-field reconstruction :math:`\sigma(b + W^\top
    \sigma(c + W v))`, per row. Cheap, but not a likelihood: it can fall while the model gets
    worse (Hinton 2010, *A practical guide to training RBMs*).

    Example:
        >>> from pyro_ar.distributions import RBM
        >>> rbm = RBM(torch.zeros(2, 3), torch.zeros(3), torch.zeros(2))  # reconstructs 0.5
        >>> reconstruction_error(rbm, torch.tensor([[1.0, 0.0, 1.0]]))
        tensor([0.2500])
    """
    visible = visible.to(rbm.weight.dtype)
    hidden = torch.sigmoid(rbm.hidden_logits(visible))
    reconstruction = torch.sigmoid(rbm.visible_logits(hidden))
    return ((visible - reconstruction) ** 2).mean(-1)

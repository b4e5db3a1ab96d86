r"""Sigmoid belief networks: layers of binary latent units with directed sigmoid connections.

A sigmoid belief network with latent layers :math:`h_1, \ldots, h_L` (bottom to top) over
binary data :math:`x` is "a feedforward network with the arrows reversed":

.. math:: p(x, h_{1:L}) = p(h_L) \prod_{k=1}^{L-1} p(h_k \mid h_{k+1})\, p(x \mid h_1), \qquad
   p(h_{k,i} = 1 \mid h_{k+1}) = \sigma(W_k h_{k+1} + b_k)_i,

with a factorized top prior :math:`p(h_{L,i} = 1) = \sigma(b_L)_i`. With
``autoregressive=True`` every latent layer also conditions on its own earlier units, as in
DARN: :math:`p(h_{k,i} = 1 \mid h_{k,<i}, h_{k+1}) = \sigma(W_k h_{k+1} + U_k h_k + b_k)_i`
with :math:`U_k` strictly lower triangular (each layer an
:class:`~pyro_ar.distributions.FVSBN` whose bias comes from the layer above). The marginal
:math:`p(x) = \sum_h p(x, h)` has no closed form; it is computed exactly by enumerating every
latent configuration where there are few latent units, and otherwise estimated by importance
sampling with an amortized recognition network ("guide")

.. math:: q(h_{1:L} \mid x) = q(h_1 \mid x) \prod_{k=2}^{L} q(h_k \mid h_{k-1}),

factorized sigmoid layers going up. The estimate
:math:`\log \frac{1}{K} \sum_k p(x, h^{(k)}) / q(h^{(k)} \mid x)` with :math:`h^{(k)} \sim q`
is the importance-weighted bound of Burda et al.: below :math:`\log p(x)` in expectation, and
tightening as :math:`K` grows. It is returned with its standard error; an ELBO is never
reported as a log-likelihood.

References:
    | Connectionist learning of belief networks (Neal, 1992)
    | https://doi.org/10.1016/0004-3702(92)90065-6
    | Neural Variational Inference and Learning in Belief Networks (Mnih & Gregor, 2014)
    | https://arxiv.org/abs/1402.0030
    | Deep AutoRegressive Networks (Gregor et al., 2014) https://arxiv.org/abs/1310.8499
    | Reweighted Wake-Sleep (Bornschein & Bengio, 2015) https://arxiv.org/abs/1406.2751
    | Importance Weighted Autoencoders (Burda, Grosse & Salakhutdinov, 2016)
    | https://arxiv.org/abs/1509.00519
"""

from __future__ import annotations

__all__ = ["SigmoidBeliefNetwork"]

import itertools
import math
from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributions.autoregressive import MarginalEstimate
from ..distributions.fvsbn import FVSBN
from .module import layer_sizes


def _bernoulli_log_prob(logits: Tensor, value: Tensor) -> Tensor:
    logits, value = torch.broadcast_tensors(logits, value)
    return -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)


class SigmoidBeliefNetwork(nn.Module):
    r"""A deep sigmoid belief network with an amortized factorized recognition network (see the
    module docstring for the equations).

    ``model(x)`` and ``guide(x)`` are Pyro programs over data ``(N, D)`` in a plate named
    ``"data"`` (sites ``h1``, ..., ``hL`` and the observed ``x``), for
    ``SVI(model, guide, optimizer, TraceGraph_ELBO())`` (score-function gradients with the
    dependency structure, as NVIL), ``ReweightedWakeSleep`` and importance-weighted objectives
    such as ``RenyiELBO(alpha=0)``. Both register the network with ``pyro.module``. Pyro's
    ``ReweightedWakeSleep`` normalizes the importance weights of the whole minibatch jointly
    (not per data point, as the paper does), so it needs many particles for large minibatches.

    Arguments:
        num_dims: :math:`D`, the binary data dimensions.
        latent_sizes: The sizes of :math:`h_1, \ldots, h_L`, bottom (next to the data) first.
        max_enumerated_units: :meth:`log_prob` enumerates the :math:`2^{\sum_k |h_k|}` latent
            states up to this many latent units in all, and refuses otherwise.
        baseline_beta: With ``TraceGraph_ELBO``: each latent site of the guide gets Pyro's
            decaying-average baseline with this decay (the variance reduction of NVIL's
            input-independent baseline); ``None``: no baseline.
        autoregressive: Within-layer autoregressive connections in every latent layer (DARN).
        seed: Seed of the initial weights.

    Shapes:
        ``log_joint(x, latents)``: ``x (..., D)`` and one tensor ``(..., |h_k|)`` per layer ->
        ``(...)``; ``log_prob(x)`` and ``importance_log_prob(x, K)``: ``(N, D) -> (N,)``.

    Example:
        >>> network = SigmoidBeliefNetwork(6, [3, 2], seed=0)
        >>> x = torch.bernoulli(torch.full((4, 6), 0.5))
        >>> exact = network.log_prob(x)  # 2^5 latent states
        >>> estimate = network.importance_log_prob(x, num_samples=100)
        >>> exact.shape, estimate.log_prob.shape, bool((estimate.standard_error > 0).all())
        (torch.Size([4]), torch.Size([4]), True)
    """

    def __init__(
        self,
        num_dims: int,
        latent_sizes: int | Sequence[int],
        max_enumerated_units: int = 20,
        baseline_beta: float | None = None,
        autoregressive: bool = False,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        if isinstance(num_dims, bool) or not isinstance(num_dims, int) or num_dims < 1:
            raise ValueError(f"SigmoidBeliefNetwork: num_dims must be positive, got {num_dims!r}")
        sizes = layer_sizes("SigmoidBeliefNetwork", latent_sizes)
        self.num_dims, self.latent_sizes = num_dims, sizes
        self.max_enumerated_units = max_enumerated_units
        if baseline_beta is not None and not 0 <= baseline_beta < 1:
            raise ValueError(f"baseline_beta must lie in [0, 1), got {baseline_beta}")
        self.baseline_beta = baseline_beta
        below = [num_dims, *sizes[:-1]]  # what each generative layer produces
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.top_logits = nn.Parameter(torch.zeros(sizes[-1]))
            #: generative[k] maps h_{k+1} to the logits of the layer below it (x for k = 0)
            self.generative = nn.ModuleList(
                nn.Linear(size, lower) for size, lower in zip(sizes, below, strict=True)
            )
            #: recognition[k] maps the layer below (x for k = 0) to the logits of h_{k+1}
            self.recognition = nn.ModuleList(
                nn.Linear(lower, size) for size, lower in zip(sizes, below, strict=True)
            )
            #: within-layer weights of h_1..h_L (their strictly lower triangles are used)
            self.within = (
                nn.ParameterList(nn.Parameter(torch.zeros(size, size)) for size in sizes)
                if autoregressive
                else None
            )

    @property
    def num_layers(self) -> int:
        return len(self.latent_sizes)

    def _layer_distribution(self, index: int, logits: Tensor) -> dist.TorchDistribution:
        """The distribution of latent layer ``index`` (0 for h_1) given its input logits."""
        if self.within is None:
            return dist.Bernoulli(logits=logits).to_event(1)
        return FVSBN(self.within[index], logits)

    def site_names(self) -> list[str]:
        """The latent sites, bottom first: ``["h1", ..., "hL"]``."""
        return [f"h{k + 1}" for k in range(self.num_layers)]

    # ------------------------------------------------------------------ Pyro programs

    def model(self, x: Tensor) -> None:
        """The generative model: latent layers top-down, then ``x`` observed."""
        pyro.module("sigmoid_belief_network", self)
        names = self.site_names()
        with pyro.plate("data", x.shape[0]):
            logits = self.top_logits.expand(x.shape[:1] + self.top_logits.shape)
            top = self.num_layers - 1
            above = pyro.sample(names[-1], self._layer_distribution(top, logits))
            for index in range(top, 0, -1):
                logits = self.generative[index](above)
                above = pyro.sample(names[index - 1], self._layer_distribution(index - 1, logits))
            logits = self.generative[0](above)
            pyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x.to(logits.dtype))

    def guide(self, x: Tensor) -> None:
        """The recognition network: latent layers bottom-up given ``x``."""
        pyro.module("sigmoid_belief_network", self)
        below = x.to(self.top_logits.dtype)
        infer = {}
        if self.baseline_beta is not None:
            infer["baseline"] = {
                "use_decaying_avg_baseline": True,
                "baseline_beta": self.baseline_beta,
            }
        with pyro.plate("data", x.shape[0]):
            for index, name in enumerate(self.site_names()):
                logits = self.recognition[index](below)
                below = pyro.sample(name, dist.Bernoulli(logits=logits).to_event(1), infer=infer)

    # ------------------------------------------------------------------ densities

    def log_joint(self, x: Tensor, latents: Sequence[Tensor]) -> Tensor:
        r""":math:`\log p(x, h_{1:L})`, ``latents`` bottom first."""
        dtype = self.top_logits.dtype
        x, latents = x.to(dtype), [latent.to(dtype) for latent in latents]
        top = self.num_layers - 1
        total = self._layer_log_prob(top, self.top_logits, latents[-1])
        for index in range(top, 0, -1):
            logits = self.generative[index](latents[index])
            total = total + self._layer_log_prob(index - 1, logits, latents[index - 1])
        return total + _bernoulli_log_prob(self.generative[0](latents[0]), x)

    def _layer_log_prob(self, index: int, logits: Tensor, value: Tensor) -> Tensor:
        if self.within is None:
            return _bernoulli_log_prob(logits, value)
        logits, value = torch.broadcast_tensors(logits, value)
        return FVSBN(self.within[index], logits, validate_args=False).log_prob(value)

    def guide_log_prob(self, x: Tensor, latents: Sequence[Tensor]) -> Tensor:
        r""":math:`\log q(h_{1:L} \mid x)`, ``latents`` bottom first."""
        dtype = self.top_logits.dtype
        below, total = x.to(dtype), 0.0
        for index, latent in enumerate(latent.to(dtype) for latent in latents):
            total = total + _bernoulli_log_prob(self.recognition[index](below), latent)
            below = latent
        return total

    def sample_guide(self, x: Tensor, num_samples: int) -> list[Tensor]:
        """``num_samples`` draws of every latent layer from :math:`q(h \\mid x)`, each
        ``(num_samples, N, |h_k|)``."""
        below = x.to(self.top_logits.dtype).expand((num_samples,) + x.shape)
        latents = []
        for layer in self.recognition:
            below = torch.bernoulli(torch.sigmoid(layer(below))).detach()
            latents.append(below)
        return latents

    @torch.no_grad()
    def sample(self, num_samples: int) -> Tensor:
        """Ancestral samples of the data, ``(num_samples, D)`` (0.0/1.0): the top layer from its
        prior, each layer below given the one above, then :math:`x`."""
        top = self.num_layers - 1
        logits = self.top_logits.expand(num_samples, self.latent_sizes[-1])
        above = self._layer_distribution(top, logits).sample()
        for index in range(top, 0, -1):
            above = self._layer_distribution(index - 1, self.generative[index](above)).sample()
        return torch.bernoulli(torch.sigmoid(self.generative[0](above)))

    def log_prob(self, x: Tensor) -> Tensor:
        r"""Exact :math:`\log p(x) = \log \sum_h p(x, h)` by enumerating every latent state.

        Raises:
            ValueError: when the network has more than ``max_enumerated_units`` latent units;
                use :meth:`importance_log_prob` (an estimate with its standard error) then.
        """
        units = sum(self.latent_sizes)
        if units > self.max_enumerated_units:
            raise ValueError(
                f"SigmoidBeliefNetwork.log_prob enumerates 2^{units} latent states, more than "
                f"max_enumerated_units={self.max_enumerated_units} allows: call "
                "importance_log_prob(x, num_samples) for an estimate with its standard error"
            )
        states = torch.tensor(
            list(itertools.product((0.0, 1.0), repeat=units)), dtype=self.top_logits.dtype
        )
        latents, start = [], 0
        for size in self.latent_sizes:
            latents.append(states[:, None, start : start + size])  # (S, 1, |h_k|)
            start += size
        return self.log_joint(x[None], latents).logsumexp(0)

    def reweighted_wake_sleep_losses(
        self, x: Tensor, num_samples: int = 5
    ) -> tuple[Tensor, Tensor]:
        r"""The reweighted wake-sleep objectives with weights normalized per data point, as in
        the paper (Pyro's ``ReweightedWakeSleep`` normalizes a minibatch jointly).

        With :math:`h^{(k)} \sim q(h \mid x_n)` and :math:`w_{nk} = p(x_n, h^{(k)}) /
        q(h^{(k)} \mid x_n)`, :math:`\bar w_{nk} = w_{nk} / \sum_j w_{nj}`:

        .. math:: L_\theta = -\sum_n \log \frac{1}{K} \sum_k w_{nk}, \qquad
           L_\phi = -\sum_n \sum_k \bar w_{nk} \log q(h^{(k)} \mid x_n),

        the wake update of the generative weights (only they receive gradients from
        :math:`L_\theta`) and the wake-phi update of the recognition weights (only they from
        :math:`L_\phi`); backpropagate their sum.

        Returns:
            ``(L_theta, L_phi)``, scalars.
        """
        if num_samples < 1:
            raise ValueError("reweighted_wake_sleep_losses: num_samples must be positive")
        latents = self.sample_guide(x, num_samples)
        log_q = self.guide_log_prob(x, latents)  # (K, N)
        log_weights = self.log_joint(x, latents) - log_q.detach()
        theta_loss = -(log_weights.logsumexp(0) - math.log(num_samples)).sum()
        normalized = torch.softmax(log_weights.detach(), dim=0)
        phi_loss = -(normalized * log_q).sum()
        return theta_loss, phi_loss

    def importance_log_prob(self, x: Tensor, num_samples: int = 1000) -> MarginalEstimate:
        r"""The importance-sampling estimate :math:`\log \frac{1}{K} \sum_k w_k`,
        :math:`w_k = p(x, h^{(k)}) / q(h^{(k)} \mid x)`, :math:`h^{(k)} \sim q(h \mid x)`:
        the importance-weighted bound, :math:`\le \log p(x)` in expectation, with the
        delta-method standard error :math:`\operatorname{sd}(w) / (\bar w \sqrt K)`.

        Returns:
            A :class:`~pyro_ar.distributions.MarginalEstimate` (``exact`` false everywhere).
        """
        if num_samples < 1:
            raise ValueError("importance_log_prob: num_samples must be positive")
        latents = self.sample_guide(x, num_samples)
        log_weights = self.log_joint(x, latents) - self.guide_log_prob(x, latents)
        log_prob = log_weights.logsumexp(0) - math.log(num_samples)
        weights = torch.exp(log_weights.detach() - log_prob.detach())
        if num_samples > 1:
            error = weights.std(0) / math.sqrt(num_samples)
        else:  # one weight says nothing about its spread
            error = torch.full_like(log_prob, math.inf)
        exact = torch.zeros_like(log_prob, dtype=torch.bool)
        return MarginalEstimate(log_prob, error, exact, num_samples)

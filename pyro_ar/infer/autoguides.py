r"""Automatic guides built from the library's autoregressive networks: a Gaussian MADE over all
continuous latents (an inverse-autoregressive guide, :class:`AutoGaussianMADE`) and an
autoregressive guide over binary latent vectors (:class:`AutoBinaryAutoregressive`, NADE or
MADE, trained with score-function gradients)."""

from __future__ import annotations

__all__ = ["AutoBinaryAutoregressive", "AutoGaussianMADE", "InverseAutoregressiveAffine"]

import math
from collections.abc import Callable, Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.infer.autoguide import AutoContinuous, AutoGuide
from pyro.infer.autoguide.initialization import init_to_median
from torch import Tensor, nn
from torch.distributions import constraints
from torch.distributions.transforms import Transform

from ..nn.made import MADEModule
from ..nn.masked import MaskedAutoencoder
from ..nn.nade import NADEModule

#: Bounds on a conditional's log-scale, as Pyro's ``AffineAutoregressive`` keeps them: an
#: unbounded scale lets one bad step blow a sample up to inf.
LOG_SCALE_BOUNDS = (-5.0, 3.0)


class InverseAutoregressiveAffine(Transform):
    r"""The inverse-autoregressive affine map of a MADE network :math:`(m, s)`:

    .. math:: z_d = \mu_d + m_d(\epsilon_{<d}) + e^{s_d(\epsilon_{<d})}\, \epsilon_d, \qquad
       \log \left| \det \frac{\partial z}{\partial \epsilon} \right| = \sum_d s_d(\epsilon_{<d}),

    with :math:`(m_d, s_d)` the two outputs of a :class:`~pyro_ar.nn.MaskedAutoencoder`
    (``outputs_per_dim=2``) and :math:`\mu` a location vector. The forward map (sampling) is
    one network pass; the inverse needs :math:`D` passes, one per dimension in the network's
    ordering, and is skipped for the transform's own samples (``cache_size=1``).

    Arguments:
        network: The MADE, ``outputs_per_dim == 2``.
        loc: :math:`\mu`, shape ``(D,)``.

    References:
        D. P. Kingma, T. Salimans, R. Jozefowicz, X. Chen, I. Sutskever, M. Welling.
        *Improved variational inference with inverse autoregressive flow*. NeurIPS 2016.
        M. Germain, K. Gregor, I. Murray, H. Larochelle. *MADE: Masked autoencoder for
        distribution estimation*. ICML 2015.

    Example:
        >>> network = MaskedAutoencoder(3, [8], outputs_per_dim=2)
        >>> transform = InverseAutoregressiveAffine(network, torch.zeros(3))
        >>> noise = torch.randn(5, 3)
        >>> z = transform(noise)
        >>> torch.allclose(transform._inverse(z), noise, atol=1e-5)
        True
    """

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True

    def __init__(self, network: MaskedAutoencoder, loc: Tensor) -> None:
        super().__init__(cache_size=1)
        if network.outputs_per_dim != 2:
            raise ValueError(
                "InverseAutoregressiveAffine needs two outputs per dimension (shift, "
                f"log-scale), the network has {network.outputs_per_dim}"
            )
        self.network = network
        self.loc = loc

    def _shift_and_log_scale(self, noise: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_scale = self.network(noise).unbind(-1)
        return self.loc + shift, log_scale.clamp(*LOG_SCALE_BOUNDS)

    def _call(self, noise: Tensor) -> Tensor:
        shift, log_scale = self._shift_and_log_scale(noise)
        return shift + torch.exp(log_scale) * noise

    def _inverse(self, value: Tensor) -> Tensor:
        noise = torch.zeros_like(value)
        for dim in self.network.ordering.tolist():
            # entry dim depends only on earlier entries, all of which are already final
            shift, log_scale = self._shift_and_log_scale(noise)
            entry = (value[..., dim] - shift[..., dim]) * torch.exp(-log_scale[..., dim])
            noise = torch.cat([noise[..., :dim], entry[..., None], noise[..., dim + 1 :]], -1)
        return noise

    def log_abs_det_jacobian(self, noise: Tensor, value: Tensor) -> Tensor:
        return self._shift_and_log_scale(noise)[1].sum(-1)


class AutoGaussianMADE(AutoContinuous):
    r"""A guide over all continuous latent sites (in their unconstrained space, as every
    ``AutoContinuous`` guide) whose posterior is an inverse-autoregressive Gaussian MADE:

    .. math:: \epsilon \sim \mathcal{N}(0, I), \qquad
       z_d = \mu_d + m_d(\epsilon_{<d}) + e^{s_d(\epsilon_{<d})} \epsilon_d

    (:class:`InverseAutoregressiveAffine`). Each conditional :math:`q(z_d \mid z_{<d})` is
    Gaussian with a mean and scale that are nonlinear functions of the earlier latents, so the
    guide captures correlations and curved posteriors that ``AutoNormal`` cannot. The output
    layer starts at zero, so training starts from :math:`z = \mu + \text{init\_scale}\cdot
    \epsilon` (``AutoNormal``'s start) with :math:`\mu` from ``init_loc_fn``. Sampling is one
    network pass; ``log_prob`` of the guide's own samples reuses its noise.

    Use it wherever ``AutoNormal`` or ``AutoIAFNormal`` are used: ``SVI`` with any ELBO,
    ``Predictive(model, guide=...)``.

    Arguments:
        model: A Pyro model with continuous latent sites.
        hidden_features: Sizes of the MADE's hidden layers (default: one layer of
            ``max(2 D, 16)`` units).
        init_loc_fn: Where :math:`\mu` starts (per site, as in Pyro's autoguides).
        init_scale: The initial scale of every conditional.
        direct_connections: Connect inputs to outputs directly (a linear path, so an exactly
            Gaussian posterior is representable), on by default.
        seed: Seed of the MADE's ordering and weights.

    References:
        D. P. Kingma et al. *Improved variational inference with inverse autoregressive flow*.
        NeurIPS 2016. M. Germain et al. *MADE*. ICML 2015. A. Kucukelbir et al. *Automatic
        differentiation variational inference*. JMLR 2017.

    Example:
        >>> from pyro.infer import SVI, Trace_ELBO
        >>> def model():
        ...     z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        ...     pyro.sample("x", dist.Normal(z.sum(), 0.5), obs=torch.tensor(1.0))
        >>> guide = AutoGaussianMADE(model)
        >>> svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
        >>> losses = [svi.step() for _ in range(3)]
        >>> guide()["z"].shape
        torch.Size([2])
    """

    def __init__(
        self,
        model: Callable,
        hidden_features: Sequence[int] | None = None,
        init_loc_fn: Callable = init_to_median,
        init_scale: float = 0.1,
        direct_connections: bool = True,
        seed: int = 0,
    ) -> None:
        if not init_scale > 0:
            raise ValueError(f"init_scale must be positive, got {init_scale}")
        self._hidden_features = None if hidden_features is None else list(hidden_features)
        self._init_scale = init_scale
        self._direct_connections = direct_connections
        self._seed = seed
        super().__init__(model, init_loc_fn=init_loc_fn)

    def _setup_prototype(self, *args, **kwargs) -> None:
        super()._setup_prototype(*args, **kwargs)
        latent_dim = self.latent_dim
        loc = self._init_loc().detach()
        hidden = self._hidden_features or [max(2 * latent_dim, 16)]
        network = MaskedAutoencoder(
            latent_dim,
            hidden,
            outputs_per_dim=2,
            direct_connections=self._direct_connections,
            seed=self._seed,
        ).to(dtype=loc.dtype, device=loc.device)
        with torch.no_grad():
            network.output.weight.zero_()
            bias = network.output.bias.view(latent_dim, 2)
            bias[:, 0] = 0.0
            bias[:, 1] = math.log(self._init_scale)
            if network.direct is not None:
                network.direct.weight.zero_()
        self.network = network
        self.loc = nn.Parameter(loc)

    def get_base_dist(self) -> dist.TorchDistribution:
        zeros = self.loc.new_zeros(self.latent_dim)
        return dist.Normal(zeros, torch.ones_like(zeros)).to_event(1)

    def get_transform(self, *args, **kwargs) -> Transform:
        return InverseAutoregressiveAffine(self.network, self.loc)


def _binary_event_size(site) -> int:
    support = site["fn"].support
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    if support is not constraints.boolean:
        raise ValueError(
            f"AutoBinaryAutoregressive handles binary sites only; site {site['name']!r} has "
            f"support {site['fn'].support}"
        )
    if site["fn"].event_dim != 1:
        raise ValueError(
            f"site {site['name']!r} must be a binary vector (event_dim 1, e.g. a NADE/MADE/"
            f"FVSBN prior or Bernoulli(...).to_event(1)); it has event_dim {site['fn'].event_dim}"
        )
    return site["fn"].event_shape[0]


class AutoBinaryAutoregressive(AutoGuide):
    r"""A guide for the binary latent vectors of a model: each latent binary site
    :math:`z \in \{0, 1\}^D` gets its own autoregressive posterior

    .. math:: q_\phi(z) = \prod_d q_\phi(z_d \mid z_{<d})

    from a :class:`~pyro_ar.nn.NADEModule` (``kind="nade"``) or :class:`~pyro_ar.nn.MADEModule`
    (``kind="made"``). Samples are discrete, so Pyro's ELBOs train :math:`\phi` by the score
    function estimator :math:`\nabla_\phi \mathbb{E}_q[f] = \mathbb{E}_q[f\, \nabla_\phi
    \log q_\phi(z)]`: use ``TraceGraph_ELBO`` (its baselines and Rao-Blackwellization cut the
    variance) or ``ReweightedWakeSleep``; ``Trace_ELBO`` is unbiased but noisier. The
    posterior is exact in form (any distribution over :math:`\{0,1\}^D` is autoregressive),
    so the only gap is the networks' capacity.

    Sites must be binary vectors (``event_dim == 1``) outside any plate over data points
    (global latents); a site inside a plate would get one posterior shared by every plate
    element, which is refused.

    Arguments:
        model: A Pyro model with binary vector latent sites (other latent sites are refused:
            combine with another guide through ``AutoGuideList``).
        kind: ``"nade"`` or ``"made"``.
        hidden_features: Hidden units of each site's network.
        seed: Seed of the networks' weights (and MADE's ordering).

    References:
        H. Larochelle, I. Murray. *The neural autoregressive distribution estimator*. AISTATS
        2011. A. Mnih, K. Gregor. *Neural variational inference and learning in belief
        networks*. ICML 2014. J. Bornschein, Y. Bengio. *Reweighted wake-sleep*. ICLR 2015.

    Example:
        >>> from pyro.infer import SVI, TraceGraph_ELBO
        >>> def model():
        ...     z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(4)).to_event(1))
        ...     pyro.sample("x", dist.Normal(z.sum(), 1.0), obs=torch.tensor(3.0))
        >>> guide = AutoBinaryAutoregressive(model, hidden_features=8)
        >>> svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), TraceGraph_ELBO())
        >>> losses = [svi.step() for _ in range(3)]
        >>> guide()["z"].shape
        torch.Size([4])
    """

    def __init__(
        self, model: Callable, kind: str = "nade", hidden_features: int = 32, seed: int = 0
    ) -> None:
        if kind not in ("nade", "made"):
            raise ValueError(f"kind must be 'nade' or 'made', not {kind!r}")
        self.kind = kind
        self._hidden_features = hidden_features
        self._seed = seed
        super().__init__(model)

    def _setup_prototype(self, *args, **kwargs) -> None:
        super()._setup_prototype(*args, **kwargs)
        # a plain ModuleDict: the guide (a PyroModule) registers a plain child's parameters
        # with Pyro's param store when it is accessed; a PyroModule container would not
        networks = nn.ModuleDict()
        for name, site in self.prototype_trace.iter_stochastic_nodes():
            size = _binary_event_size(site)
            plates = [frame.name for frame in site["cond_indep_stack"] if frame.vectorized]
            if plates or site["fn"].batch_shape:
                raise ValueError(
                    f"site {name!r} is inside plates {plates} (batch shape "
                    f"{tuple(site['fn'].batch_shape)}): AutoBinaryAutoregressive would give "
                    "every plate element the same posterior; it handles global binary vectors"
                )
            if self.kind == "nade":
                network = NADEModule(size, self._hidden_features, seed=self._seed)
            else:
                network = MADEModule(size, self._hidden_features, seed=self._seed)
            networks[name] = network
        self.networks = networks

    def forward(self, *args, **kwargs) -> dict[str, Tensor]:
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        # every site is global (setup refuses sites inside plates): no plate to enter
        return {
            name: pyro.sample(name, self.networks[name]())
            for name, _ in self.prototype_trace.iter_stochastic_nodes()
        }

    def posterior(self, name: str) -> dist.TorchDistribution:
        """The guide's distribution :math:`q_\\phi` for site ``name`` (after the first call)."""
        if self.prototype_trace is None:
            raise RuntimeError("call the guide once (or run an SVI step) before posterior()")
        return self.networks[name]()

r"""Gibbs within HMC/NUTS: an MCMC kernel for models with discrete and continuous latent
sites, alternating the library's Gibbs updates (discrete sites) with Pyro's HMC or NUTS
(continuous sites)."""

from __future__ import annotations

__all__ = ["HMCGibbs"]

from collections.abc import Callable, Mapping, Sequence

import pyro.poutine as poutine
import torch
from pyro.infer.mcmc import HMC
from pyro.poutine.util import site_is_subsample
from torch import Tensor

from .gibbs import GibbsKernel, PresettableKernel, fast_initial_state


class HMCGibbs(PresettableKernel):
    r"""Metropolis-within-Gibbs for mixed models: each :meth:`sample` first updates the discrete
    latent sites :math:`d` by :class:`~pyro_ar.infer.GibbsKernel` (block Gibbs for free RBM
    sites, plate-parallel or element-wise full conditionals otherwise) given the continuous
    ones :math:`c`, then moves :math:`c` by one step of the inner HMC or NUTS kernel given the
    new :math:`d`:

    .. math::

        d' \sim K_\text{Gibbs}(d, \cdot \mid c), \qquad
        c' \sim K_\text{HMC}(c, \cdot \mid d').

    Each kernel leaves the conditional of its block invariant, so their composition leaves the
    joint posterior :math:`p(d, c \mid x)` invariant. The inner kernel's potential is the
    model conditioned on the current :math:`d` (its cache is dropped after each Gibbs update,
    so the Metropolis correction uses the new discrete values); its step size and mass matrix
    adapt during warmup exactly as when it runs alone, which is how NumPyro's ``HMCGibbs``
    adapts.

    Runs inside ``pyro.infer.MCMC`` with ``num_chains`` (one chain per process, as Pyro runs
    HMC). Samples: continuous sites constrained, as HMC returns them; discrete sites in their
    own dtype; ``lp__`` (the joint log-density, unnormalized for RBM sites) and
    ``flip_rate__`` per draw. :func:`pyro_ar.diagnostics.to_inference_data` keeps the
    discrete sites integer and adds ``diverging`` from the inner kernel.

    Arguments:
        inner_kernel: ``pyro.infer.HMC`` or ``NUTS`` built on the model (not on a
            ``potential_fn``, and without ``jit_compile``, which would freeze the discrete
            values into the compiled potential); its options (step size, adaptation,
            ``init_strategy``, dense mass) are used as they are.
        discrete_sites: The sites to Gibbs-sample (default: every latent site with a discrete
            support); every other latent site goes to the inner kernel.
        clamped: As in :class:`~pyro_ar.infer.GibbsKernel`: discrete site name ->
            ``(values, mask)`` elements held fixed.
        site_dtypes: Return discrete sites in their own dtype (default) rather than as float.

    References:
        S. Duane, A. D. Kennedy, B. J. Pendleton, D. Roweth. *Hybrid Monte Carlo*. Physics
        Letters B, 1987. M. D. Hoffman, A. Gelman. *The No-U-Turn Sampler*. JMLR, 2014.
        D. Phan, N. Pradhan, M. Jankowiak. *Composable effects for flexible and accelerated
        probabilistic programming in NumPyro*. 2019 (``HMCGibbs``).

    Example:
        >>> import pyro, pyro.distributions as dist
        >>> from pyro.infer import MCMC, NUTS
        >>> data = torch.tensor([-2.1, -1.9, 2.0, 2.2])
        >>> prior_means = torch.tensor([-1.0, 1.0])
        >>> def model():
        ...     means = pyro.sample("means", dist.Normal(prior_means, 2.0).to_event(1))
        ...     with pyro.plate("data", len(data)):
        ...         labels = pyro.sample("labels", dist.Bernoulli(0.5))
        ...         pyro.sample("x", dist.Normal(means[labels.long()], 1.0), obs=data)
        >>> kernel = HMCGibbs(NUTS(model))
        >>> mcmc = MCMC(kernel, num_samples=50, warmup_steps=50, disable_progbar=True)
        >>> mcmc.run()
        >>> samples = mcmc.get_samples()
        >>> samples["means"].shape, samples["labels"].shape, kernel.discrete_sites
        (torch.Size([50, 2]), torch.Size([50, 4]), ('labels',))
    """

    def __init__(
        self,
        inner_kernel: HMC,
        discrete_sites: Sequence[str] | None = None,
        clamped: Mapping[str, tuple[Tensor, Tensor]] | None = None,
        site_dtypes: bool = True,
    ) -> None:
        if not isinstance(inner_kernel, HMC):
            raise TypeError(
                f"inner_kernel must be pyro.infer.HMC or NUTS, not {type(inner_kernel).__name__}"
            )
        if inner_kernel.model is None:
            raise ValueError(
                "inner_kernel must be built on a model (HMC(model)), not on a potential_fn: "
                "the discrete sites are conditioned through the model"
            )
        if getattr(inner_kernel, "_jit_compile", False):
            raise ValueError(
                "inner_kernel must not use jit_compile=True: the compiled potential would keep "
                "the discrete values it was traced with instead of the Gibbs kernel's current ones"
            )
        super().__init__()
        self.inner_kernel = inner_kernel
        self.model: Callable = inner_kernel.model
        self.transforms: dict | None = None
        self._requested_discrete = None if discrete_sites is None else tuple(discrete_sites)
        # filled in place, so that the conditioned models always see the current values
        self._discrete_values: dict[str, Tensor] = {}
        self._continuous_values: dict[str, Tensor] = {}
        inner_kernel.model = poutine.condition(self.model, data=self._discrete_values)
        self.gibbs = GibbsKernel(
            poutine.condition(self.model, data=self._continuous_values),
            clamped=clamped,
            site_dtypes=site_dtypes,
        )
        self._discrete: tuple[str, ...] = ()
        self._continuous: tuple[str, ...] = ()

    # ------------------------------------------------------------------------- interface
    @property
    def discrete_sites(self) -> tuple[str, ...]:
        """The Gibbs-sampled sites (known after :meth:`setup`)."""
        return self._discrete

    @property
    def continuous_sites(self) -> tuple[str, ...]:
        """The sites moved by the inner HMC/NUTS kernel (known after :meth:`setup`)."""
        return self._continuous

    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        prototype = poutine.trace(fast_initial_state(self.model)).get_trace(*args, **kwargs)
        latent = {
            name: site
            for name, site in prototype.nodes.items()
            if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)
        }
        if self._requested_discrete is None:
            discrete = [name for name, site in latent.items() if site["fn"].support.is_discrete]
        else:
            unknown = set(self._requested_discrete) - set(latent)
            if unknown:
                raise ValueError(
                    f"discrete_sites names sites that are not latent: {sorted(unknown)}"
                )
            discrete = list(self._requested_discrete)
        continuous = [name for name in latent if name not in discrete]
        if not discrete:
            raise ValueError("the model has no discrete latent site: use HMC/NUTS directly")
        if not continuous:
            raise ValueError("the model has no continuous latent site: use GibbsKernel directly")
        self._discrete, self._continuous = tuple(discrete), tuple(continuous)
        user = self.preset_params
        self._discrete_values.clear()
        for name in discrete:
            value = user.get(name, prototype.nodes[name]["value"])
            self._discrete_values[name] = torch.as_tensor(value).detach()
        hmc_start = {name: user[name] for name in continuous if name in user}
        self.inner_kernel.initial_params = hmc_start or None
        self.inner_kernel.setup(warmup_steps, *args, **kwargs)
        hmc_params = self.inner_kernel.initial_params
        self._set_continuous(hmc_params)
        self.gibbs.initial_params = dict(self._discrete_values)
        self.gibbs.setup(warmup_steps, *args, **kwargs)
        # clamped elements are applied by the Gibbs kernel's setup
        self._discrete_values.update({name: self.gibbs.initial_params[name] for name in discrete})
        self.transforms = {**self.gibbs.transforms, **self.inner_kernel.transforms}
        self._initial_params = {**hmc_params, **self.gibbs.initial_params}

    def cleanup(self) -> None:
        self.inner_kernel.cleanup()
        self.gibbs.cleanup()
        self.forget_drawn_start()

    def sample(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        continuous = {name: params[name] for name in self._continuous}
        self._set_continuous(continuous)
        discrete = self.gibbs.sample({name: params[name] for name in self._discrete})
        state = {name: discrete[name] for name in self._discrete}
        self._discrete_values.update(state)
        # the potential depends on the discrete values just drawn: recompute it and its grads
        self.inner_kernel.clear_cache()
        continuous = self.inner_kernel.sample(continuous)
        self._set_continuous(continuous)
        log_density = self.gibbs.log_density(state).detach()
        return {**continuous, **state, "lp__": log_density, "flip_rate__": discrete["flip_rate__"]}

    def logging(self) -> dict:
        return {**self.inner_kernel.logging(), **self.gibbs.logging()}

    def diagnostics(self) -> dict:
        return {
            **self.inner_kernel.diagnostics(),
            "flip_rate": self.gibbs.diagnostics()["flip_rate"],
        }

    # ------------------------------------------------------------------------- internals
    def _set_continuous(self, unconstrained: Mapping[str, Tensor]) -> None:
        transforms = self.inner_kernel.transforms
        for name, value in unconstrained.items():
            constrained = transforms[name].inv(value) if name in transforms else value
            self._continuous_values[name] = constrained.detach()

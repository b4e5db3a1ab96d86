r"""A Gibbs-sampling MCMC kernel for ``pyro.infer.MCMC``: block Gibbs for RBM sites and
coordinate-wise Gibbs for every other discrete site, with chains vectorized in one tensor."""

from __future__ import annotations

__all__ = ["GibbsKernel", "PresettableKernel", "base_distribution", "fast_initial_state"]

import logging
import math
from collections.abc import Callable, Mapping

import pyro
import pyro.poutine as poutine
import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from torch import Tensor
from torch.distributions import constraints
from torch.distributions.transforms import Transform

from ..distributions.rbm import RBMBase
from ..ops import BernoulliSampler

logger = logging.getLogger(__name__)

#: Per-draw statistics saved alongside the sites (Stan's naming); ``to_inference_data`` moves
#: them to ``sample_stats`` as ``lp`` and ``flip_rate``.
STATISTICS = ("lp__", "flip_rate__")
_CHAIN_PLATE = "_gibbs_chains"


def base_distribution(fn):
    """The distribution under Pyro's wrappers (``Independent``, ``ExpandedDistribution``,
    ``MaskedDistribution``): what a site really samples from.

    Example:
        >>> import pyro.distributions as dist
        >>> wrapped = dist.Bernoulli(torch.tensor([0.5])).expand([3, 1]).to_event(1).mask(False)
        >>> type(base_distribution(wrapped)).__name__
        'Bernoulli'
    """
    while hasattr(fn, "base_dist"):
        fn = fn.base_dist
    return fn


def _candidate_values(support, name: str) -> list[float]:
    """The values one element of a discrete site can take."""
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    if support is constraints.boolean:
        return [0.0, 1.0]
    if isinstance(support, constraints.integer_interval):
        return [float(k) for k in range(int(support.lower_bound), int(support.upper_bound) + 1)]
    raise ValueError(
        f"GibbsKernel samples discrete sites only; site {name!r} has support {support} "
        "(use NUTS/HMC for continuous sites, or condition on them)"
    )


def _site_log_density(site) -> Tensor:
    """``log_prob`` of a site, or the unnormalized one for RBMs (Gibbs never needs log Z)."""
    fn, value = site["fn"], site["value"]
    base = base_distribution(fn)
    if isinstance(base, RBMBase):
        density = base.unnormalized_log_prob(value)
        density = density.expand(torch.broadcast_shapes(density.shape, fn.batch_shape))
    else:
        density = fn.log_prob(value)
    mask = site.get("mask")
    if mask is False:
        density = torch.zeros_like(density)
    elif mask is not None and mask is not True:
        # where, not a product: a masked-out -inf (a value outside the support) must give 0
        density = torch.where(mask, density, torch.zeros((), dtype=density.dtype))
    scale = site.get("scale", 1.0)
    return density * scale


class _RestoreDtype(Transform):
    """Pyro's ``MCMC`` concatenates every site of a draw into one float tensor; it passes its
    samples through the kernel's ``transforms`` (``.inv``) at the end of the run, and this
    transform gives an integer or boolean site its own dtype back."""

    bijective = True
    domain = constraints.real
    codomain = constraints.real

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def _call(self, x: Tensor) -> Tensor:
        return x.to(torch.get_default_dtype())

    def _inverse(self, y: Tensor) -> Tensor:
        return (y != 0) if self.dtype == torch.bool else y.round().to(self.dtype)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.zeros_like(x)


class _QuickRBMStart(Messenger):
    """Gives unobserved RBM sites an independent draw from their visible biases instead of
    ``RBM.sample`` (which, for a large hidden layer, runs a long Gibbs chain): the kernel only
    needs a starting state."""

    def _pyro_sample(self, msg):
        base = base_distribution(msg["fn"])
        if msg["value"] is None and not msg["is_observed"] and isinstance(base, RBMBase):
            shape = msg["fn"].batch_shape + msg["fn"].event_shape
            with torch.no_grad():
                msg["value"] = base.initial_visible(shape[:-1])


def fast_initial_state(model: Callable) -> Callable:
    """The model with every unobserved RBM site drawn independently from its visible biases
    (:meth:`~pyro_ar.distributions.RBM.initial_visible`) instead of by ``RBM.sample``'s long
    Gibbs chain: an MCMC kernel only needs some starting state, and a fast one.

    Example:
        >>> import pyro.distributions as dist
        >>> def model():
        ...     return pyro.sample("x", dist.Bernoulli(torch.tensor([0.5])).to_event(1))
        >>> fast_initial_state(model)().shape
        torch.Size([1])
    """

    def wrapped(*args, **kwargs):
        with _QuickRBMStart():
            return model(*args, **kwargs)

    return wrapped


class PresettableKernel(MCMCKernel):
    """An MCMC kernel whose starting state may be preset before :meth:`setup` (by the user, or
    by ``pyro.infer.MCMC`` from its ``initial_params`` argument, which it sets before calling
    ``setup``). ``setup`` starts from :attr:`preset_params` and draws the rest; ``cleanup``
    calls :meth:`forget_drawn_start`, so that the next chain draws its own start unless one
    was preset.

    Example:
        >>> class Stay(PresettableKernel):  # a kernel that never moves
        ...     def sample(self, params):
        ...         return params
        >>> kernel = Stay()
        >>> kernel.preset_params
        {}
        >>> kernel.initial_params = {"x": torch.zeros(2)}
        >>> sorted(kernel.preset_params), kernel.params_from_user
        (['x'], True)
    """

    def __init__(self) -> None:
        self._initial_params: dict[str, Tensor] | None = None
        #: Whether :attr:`initial_params` was set from outside (then it is kept across chains).
        self.params_from_user = False

    @property
    def initial_params(self) -> dict[str, Tensor] | None:
        return self._initial_params

    @initial_params.setter
    def initial_params(self, params: dict[str, Tensor]) -> None:
        self._initial_params = dict(params)
        self.params_from_user = True

    @property
    def preset_params(self) -> dict[str, Tensor]:
        """A copy of the preset starting values (empty if none were set)."""
        return dict(self._initial_params or {}) if self.params_from_user else {}

    def forget_drawn_start(self) -> None:
        """Drops a start the kernel drew itself (a preset one is kept)."""
        if not self.params_from_user:
            self._initial_params = None


class GibbsKernel(PresettableKernel):
    r"""Gibbs sampling for the discrete latent sites of a Pyro model.

    Each :meth:`sample` is one sweep over the latent sites in the order the model samples them:

    * a site whose distribution is an :class:`~pyro_ar.distributions.RBM` (or
      :class:`~pyro_ar.distributions.GaussianBernoulliRBM`) and on which no other site depends
      gets a **block-Gibbs** step :math:`h \sim p(h \mid v)`, :math:`v \sim p(v \mid h)`, which
      leaves the RBM invariant and needs no :math:`\log Z`;
    * every other discrete site (binary vectors, e.g. under a NADE or FVSBN prior; Bernoulli or
      categorical sites) is updated one element at a time from its full conditional,
      :math:`p(x_i = k \mid \text{rest}) \propto \exp \log p(x_{i \leftarrow k}, \text{rest})`,
      by evaluating the model's joint log-density for each candidate value (RBM sites enter
      it unnormalized).

    ``clamped={"site": (values, mask)}`` fixes the elements where ``mask`` is true (e.g. the
    visible pixels of an occluded image) and samples the rest from their conditional.

    Chains: Pyro's ``MCMC(num_chains=...)`` works as with any kernel; with
    ``num_vectorized_chains=C`` the kernel also runs ``C`` chains inside one tensor (one batched
    model evaluation per update, GPU-friendly), each saved draw having a leading ``C`` axis;
    :func:`pyro_ar.diagnostics.to_inference_data` turns that axis into ArviZ's chain dimension.

    As with Pyro's vectorized particles, a vectorized model must tolerate an extra batch
    dimension on the left of ``max_plate_nesting`` (e.g. feed a vector site's event dimension
    to an observed site with ``.to_event(1)`` rather than to a plate).

    Each draw also saves ``lp__`` (the joint log-density, unnormalized for RBM sites) and
    ``flip_rate__`` (the fraction of elements that changed in the sweep).

    Block Gibbs needs an RBM site's value to enter no other site's density. That is decided by
    Pyro's dependency analysis (provenance tracking, which every pyro_ar distribution passes
    through) and then verified numerically: the other sites' log-densities must not change when
    the RBM value does. If either check fails, the site gets the element-wise update, which is
    always correct, and a warning says so.

    Samples come back in each site's own dtype (``mcmc.get_samples()``: integer for
    categorical sites, as their distributions draw them), through the kernel's ``transforms``;
    Pyro's ``mcmc.summary()`` and ``mcmc.diagnostics()`` cannot average integer tensors, so use
    :func:`pyro_ar.diagnostics.to_inference_data` with ArviZ for diagnostics, or pass
    ``site_dtypes=False`` to keep Pyro's float samples.

    Element-wise updates score every candidate value of an element with validation disabled,
    so a candidate outside the site's support (a ``<s>`` token, a broken end padding) gets
    log-density :math:`-\infty` and probability zero instead of an error.

    Arguments:
        model: A Pyro model whose latent sites are all discrete.
        clamped: Site name -> ``(values, mask)``.
        num_vectorized_chains: ``C`` chains in one tensor (default: one, no extra axis).
        max_plate_nesting: The model's plate depth (default: found by tracing the model).
        site_dtypes: Return each site's samples in its own dtype (default) rather than as
            Pyro's MCMC stores them (float).

    References:
        S. Geman, D. Geman. *Stochastic relaxation, Gibbs distributions, and the Bayesian
        restoration of images*. IEEE PAMI, 1984. G. E. Hinton. *Training products of experts by
        minimizing contrastive divergence*. Neural Computation, 2002.

    Example:
        >>> import pyro.distributions as dist
        >>> from pyro.infer import MCMC
        >>> def model():
        ...     pyro.sample("bits", dist.Bernoulli(torch.tensor([0.2, 0.9])).to_event(1))
        >>> kernel = GibbsKernel(model, num_vectorized_chains=100)
        >>> mcmc = MCMC(kernel, num_samples=20, warmup_steps=5, disable_progbar=True)
        >>> mcmc.run()
        >>> mcmc.get_samples()["bits"].shape, kernel.latent_sites
        (torch.Size([20, 100, 2]), ('bits',))
    """

    def __init__(
        self,
        model: Callable,
        clamped: Mapping[str, tuple[Tensor, Tensor]] | None = None,
        num_vectorized_chains: int | None = None,
        max_plate_nesting: int | None = None,
        site_dtypes: bool = True,
    ):
        if num_vectorized_chains is not None and num_vectorized_chains < 1:
            raise ValueError("num_vectorized_chains must be positive")
        super().__init__()
        self.model = model
        # None until setup: Pyro's MCMC then runs setup to find them (parallel chains run
        # setup in worker processes only)
        self.transforms: dict | None = None
        self.site_dtypes = site_dtypes
        self.clamped = dict(clamped or {})
        self.num_vectorized_chains = num_vectorized_chains
        self.max_plate_nesting = max_plate_nesting
        self._step = 0
        self._last_lp = float("nan")
        self._last_flip_rate = float("nan")
        self._flips: list[float] = []

    # ------------------------------------------------------------------------- interface
    @property
    def latent_sites(self) -> tuple[str, ...]:
        """The latent sites the kernel samples (all discrete), in the model's order (known
        after :meth:`setup`)."""
        return tuple(getattr(self, "_latent", ()))

    @property
    def discrete_sites(self) -> tuple[str, ...]:
        """The sites whose samples are discrete (here: every latent site), for
        :func:`~pyro_ar.diagnostics.to_inference_data`."""
        return self.latent_sites

    @property
    def parallel_plates(self) -> dict[str, tuple[int, ...]]:
        """Site -> the plate dims (negative, as in ``pyro.plate(dim=...)``) along which its
        elements are drawn together, one model evaluation per candidate value (decided by
        :meth:`setup`: plates that hold every site depending on it, confirmed numerically)."""
        return dict(getattr(self, "_parallel_dims", {}))

    @property
    def block_sites(self) -> frozenset[str]:
        """The sites updated by block Gibbs (decided by :meth:`setup`: RBM sites on which no
        other site depends); every other latent site gets element-wise updates."""
        return frozenset(getattr(self, "_block", ()))

    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        self._args, self._kwargs = args, kwargs
        self._warmup_steps = warmup_steps
        self._sampler = BernoulliSampler()
        self._step = 0
        self._flips = []
        if self.max_plate_nesting is None:
            self.max_plate_nesting = _plate_nesting(fast_initial_state(self.model), args, kwargs)
        prior = poutine.trace(fast_initial_state(self.chained_model)).get_trace(*args, **kwargs)
        self._latent = [
            name
            for name, site in prior.nodes.items()
            if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)
        ]
        if not self._latent:
            raise ValueError("the model has no latent sample sites for GibbsKernel to sample")
        unknown = set(self.clamped) - set(self._latent)
        if unknown:
            raise ValueError(f"clamped names sites that are not latent: {sorted(unknown)}")
        self._event_dims = {name: prior.nodes[name]["fn"].event_dim for name in self._latent}
        self.transforms = {
            name: _RestoreDtype(prior.nodes[name]["value"].dtype)
            for name in self._latent
            if self.site_dtypes and not prior.nodes[name]["value"].is_floating_point()
        }
        params = self.preset_params
        for name in self._latent:
            if name not in params:
                params[name] = prior.nodes[name]["value"].detach()
            params[name] = self._apply_clamp(name, params[name])
        self._chain_axes = {
            name: params[name].dim() - self._event_dims[name] - (self.max_plate_nesting + 1)
            for name in self._latent
        }
        dependencies = self._dependencies(prior)
        self._block = self._free_rbm_sites(prior, params, dependencies)
        self._candidates = {
            name: _candidate_values(prior.nodes[name]["fn"].support, name)
            for name in self._latent
            if name not in self._block
        }
        self._find_parallel_plates(prior, params, dependencies)
        log_density = self.log_density(params)
        params["lp__"] = log_density.detach()
        params["flip_rate__"] = torch.zeros_like(log_density)
        self._initial_params = params

    def cleanup(self) -> None:
        self.forget_drawn_start()  # the next chain draws its own start from the prior

    def sample(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        state = {name: params[name] for name in self._latent}
        changed, total = 0.0, 0
        for name in self._latent:
            before = state[name]
            if name in self._block:
                state[name] = self._block_update(state, name)
            else:
                state[name] = self._coordinate_update(state, name)
            changed += (state[name] != before).double().sum().item()
            total += before.numel()
        self._step += 1
        log_density = self.log_density(state).detach()
        flip_rate = torch.full_like(log_density, changed / max(total, 1))
        self._last_lp = float(log_density.mean())
        self._last_flip_rate = changed / max(total, 1)
        self._flips.append(self._last_flip_rate)
        return {**state, "lp__": log_density, "flip_rate__": flip_rate}

    def logging(self) -> dict:
        phase = "warmup" if self._step <= self._warmup_steps else "sample"
        return {
            "phase": phase,
            "lp": round(self._last_lp, 3),
            "flip": round(self._last_flip_rate, 3),
        }

    def diagnostics(self) -> dict:
        rate = sum(self._flips) / len(self._flips) if self._flips else float("nan")
        return {"divergences": [], "flip_rate": rate}

    # ------------------------------------------------------------------------- internals
    def chain_axis(self, name: str) -> int:
        """The axis of the vectorized-chain dimension in a saved draw of site ``name`` (or of
        a per-draw statistic such as ``lp__``)."""
        if name in STATISTICS:
            return 0
        return self._chain_axes[name]

    def chained_model(self, *args, **kwargs):
        """The model inside the plate of vectorized chains (the model itself without them):
        what the kernel conditions and traces."""
        if self.num_vectorized_chains is None:
            return self.model(*args, **kwargs)
        with pyro.plate(
            _CHAIN_PLATE, self.num_vectorized_chains, dim=-(self.max_plate_nesting + 1)
        ):
            return self.model(*args, **kwargs)

    def _trace(self, state: Mapping[str, Tensor]):
        conditioned = poutine.condition(self.chained_model, data=dict(state))
        return poutine.trace(conditioned).get_trace(*self._args, **self._kwargs)

    def log_density(self, state: Mapping[str, Tensor]) -> Tensor:
        """The model's joint log-density at ``state`` (latent site -> value), unnormalized for
        RBM sites: :math:`\\sum_\text{sites} \\log p`, per vectorized chain (shape ``(C,)``, or
        ``()`` without vectorized chains)."""
        trace = self._trace(state)
        total = None
        for site in trace.nodes.values():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            density = _site_log_density(site)
            reduced = self._per_chain(density)
            total = reduced if total is None else total + reduced
        return total

    def _per_chain(self, density: Tensor) -> Tensor:
        if self.num_vectorized_chains is None:
            return density.sum()
        depth = self.max_plate_nesting + 1
        if density.dim() < depth:
            return density.sum().expand(self.num_vectorized_chains)
        axis = density.dim() - depth
        density = density.expand(
            density.shape[:axis] + (self.num_vectorized_chains,) + density.shape[axis + 1 :]
        )
        return density.movedim(axis, 0).reshape(self.num_vectorized_chains, -1).sum(-1)

    def _dependencies(self, prior) -> dict | None:
        """Pyro's dependency graph of the model, computed only where a decision needs it (an
        RBM site, or a latent site inside a plate); ``None`` if it cannot be computed."""
        needed = any(
            isinstance(base_distribution(prior.nodes[name]["fn"]), RBMBase)
            or any(
                frame.dim is not None and frame.name != _CHAIN_PLATE
                for frame in prior.nodes[name]["cond_indep_stack"]
            )
            for name in self._latent
        )
        if not needed:
            return None
        try:
            from pyro.infer.inspect import get_dependencies

            return get_dependencies(fast_initial_state(self.model), self._args, self._kwargs)
        except Exception as error:  # provenance tracking fails on some models
            logger.warning(
                "dependency analysis failed (%s); element-wise Gibbs for every site", error
            )
            return None

    def _free_rbm_sites(self, trace, state: Mapping[str, Tensor], dependencies) -> set[str]:
        """Latent RBM sites on which no other site depends (block Gibbs is exact for them):
        Pyro's dependency graph proposes them, and :meth:`_enters_other_sites` confirms each
        numerically."""
        rbm_sites = [
            name
            for name in self._latent
            if isinstance(base_distribution(trace.nodes[name]["fn"]), RBMBase)
        ]
        if not rbm_sites or dependencies is None:
            return set()
        free = set()
        for name in rbm_sites:
            downstream = [
                other
                for other, upstream in dependencies["prior_dependencies"].items()
                if other != name and name in upstream
            ]
            if downstream:
                logger.info(
                    "RBM site %s feeds %s: element-wise Gibbs instead of block", name, downstream
                )
            elif self._enters_other_sites(state, name):
                logger.warning(
                    "dependency analysis found no site that depends on RBM site %s, but other "
                    "sites' densities change with its value (a distribution in the model drops "
                    "Pyro's provenance): element-wise Gibbs instead of block",
                    name,
                )
            else:
                free.add(name)
        return free

    def _enters_other_sites(self, state: Mapping[str, Tensor], name: str) -> bool:
        """Whether the log-density of the sites other than ``name`` changes when ``name``'s
        value is set to all zeros, all ones, or kept."""
        value = state[name]
        totals = []
        for probe in (value, torch.zeros_like(value), torch.ones_like(value)):
            trace = self._trace({**state, name: probe})
            total = torch.zeros(())
            for other, site in trace.nodes.items():
                if site["type"] == "sample" and other != name and not site_is_subsample(site):
                    total = total + _site_log_density(site).detach().sum().cpu()
            totals.append(total)
        return not all(torch.equal(totals[0], total) for total in totals[1:])

    def _apply_clamp(self, name: str, value: Tensor) -> Tensor:
        if name not in self.clamped:
            return value
        values, mask = self.clamped[name]
        mask = torch.as_tensor(mask, dtype=torch.bool, device=value.device)
        return torch.where(
            mask, torch.as_tensor(values, device=value.device).to(value.dtype), value
        )

    def _block_update(self, state: dict[str, Tensor], name: str) -> Tensor:
        fn = self._trace(state).nodes[name]["fn"]
        rbm = base_distribution(fn).expand(fn.batch_shape)
        visible, _ = rbm.gibbs_step(state[name], sampler=self._sampler)
        return self._apply_clamp(name, visible.to(state[name].dtype))

    def _coordinate_update(self, state: dict[str, Tensor], name: str) -> Tensor:
        """One sweep over the elements of site ``name``, each drawn from its full conditional;
        the elements along :attr:`parallel_plates` (and the vectorized chains) are
        conditionally independent and drawn together, from one model evaluation per
        candidate value."""
        value = state[name]
        layout = _ElementLayout(value, self._parallel_axes(name, value))
        flat = layout.flatten(value).clone()  # the update must not edit the caller's draw
        free = torch.ones_like(flat, dtype=torch.bool)
        if name in self.clamped:
            mask = torch.as_tensor(self.clamped[name][1], dtype=torch.bool, device=flat.device)
            free = ~layout.flatten(mask.expand(value.shape))
        candidates = torch.tensor(self._candidates[name], dtype=flat.dtype, device=flat.device)
        for element in torch.nonzero(free.any(0).cpu()).flatten().tolist():
            scores = []
            for candidate in candidates:
                proposal = flat.clone()
                proposal[:, element] = candidate
                # values outside the support score -inf instead of failing validation
                with pyro.validation_enabled(False):
                    scores.append(
                        self._element_scores(
                            {**state, name: layout.restore(proposal)}, name, layout
                        )
                    )
            choice = torch.distributions.Categorical(logits=torch.stack(scores, -1)).sample()
            flat[:, element] = torch.where(free[:, element], candidates[choice], flat[:, element])
        return layout.restore(flat)

    def _parallel_axes(self, name: str, value: Tensor) -> tuple[int, ...]:
        """The axes of ``value`` updated in parallel: the vectorized-chain axis and the
        dims of the site's parallel plates."""
        batch_ndim = value.dim() - self._event_dims[name]
        axes = []
        for dim in self._parallel_dims.get(name, ()):
            if batch_ndim + dim >= 0:
                axes.append(batch_ndim + dim)
        if self.num_vectorized_chains is not None:
            axis = batch_ndim - (self.max_plate_nesting + 1)
            if axis < 0 or value.shape[axis] != self.num_vectorized_chains:
                raise ValueError(
                    f"a value of shape {tuple(value.shape)} lacks the chain axis of size "
                    f"{self.num_vectorized_chains} at dim "
                    f"{-(self.max_plate_nesting + 1 + self._event_dims[name])}"
                )
            axes.append(axis)
        return tuple(sorted(set(axes)))

    def _element_scores(self, state: Mapping[str, Tensor], name: str, layout) -> Tensor:
        """The joint log-density for each parallel element of site ``name``, shape ``(P,)``:
        every site's log-density summed over all dims but the parallel ones (a term outside
        the parallel plates adds the same constant to every candidate)."""
        batch_ndim = state[name].dim() - self._event_dims[name]
        others = tuple(axis for axis in range(batch_ndim) if axis not in layout.axes)
        total = None
        for site in self._trace(state).nodes.values():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            density = _site_log_density(site)
            if density.dim() > batch_ndim:
                density = density.sum(tuple(range(density.dim() - batch_ndim)))
            density = density.reshape((1,) * (batch_ndim - density.dim()) + density.shape)
            if others:
                density = density.sum(others, keepdim=True)
            total = density if total is None else total + density
        return layout.flatten_batch(total)

    def _find_parallel_plates(self, prior, state: Mapping[str, Tensor], dependencies) -> None:
        """For each element-wise site, the plates along which its elements are conditionally
        independent given the rest: those of its plates that contain every site depending on
        it (Pyro's dependency analysis), confirmed numerically by changing one element and
        checking that no other element's conditional moves."""
        self._parallel_dims: dict[str, tuple[int, ...]] = {}
        for name in self._latent:
            if name in self._block:
                continue
            frames = {
                frame.name: frame.dim
                for frame in prior.nodes[name]["cond_indep_stack"]
                if frame.dim is not None and frame.name != _CHAIN_PLATE
            }
            if not frames or dependencies is None:
                continue
            for other, upstream in dependencies["prior_dependencies"].items():
                if other == name or name not in upstream or other not in prior.nodes:
                    continue
                inside = {frame.name for frame in prior.nodes[other]["cond_indep_stack"]}
                frames = {plate: dim for plate, dim in frames.items() if plate in inside}
            dims = tuple(sorted(frames.values()))
            if dims:
                self._parallel_dims[name] = dims
                if not self._conditionals_separate(state, name):
                    logger.warning(
                        "the elements of site %s along plates %s are not conditionally "
                        "independent numerically, although dependency analysis says so (a "
                        "distribution in the model drops Pyro's provenance): element-wise "
                        "Gibbs along them instead",
                        name,
                        sorted(frames),
                    )
                    del self._parallel_dims[name]

    def _conditionals_separate(self, state: Mapping[str, Tensor], name: str) -> bool:
        """Whether changing the first parallel element of ``name`` leaves the other elements'
        scores unchanged (they must not see it)."""
        value = state[name]
        layout = _ElementLayout(value, self._parallel_axes(name, value))
        flat = layout.flatten(value)
        if flat.shape[0] < 2:
            return True
        candidates = self._candidates[name]
        changed = flat.clone()
        changed[0] = torch.where(
            changed[0] == candidates[0],
            torch.tensor(candidates[-1], dtype=flat.dtype, device=flat.device),
            torch.tensor(candidates[0], dtype=flat.dtype, device=flat.device),
        )
        with pyro.validation_enabled(False):
            before = self._element_scores(state, name, layout)
            after = self._element_scores({**state, name: layout.restore(changed)}, name, layout)
        # only row 0 (one chain's first plate element) changed: no other row may see it
        return bool(torch.allclose(before[1:], after[1:], rtol=1e-5, atol=1e-6, equal_nan=True))


class _ElementLayout:
    """Views a site value as a ``(P, S)`` matrix: ``P`` elements along the parallel ``axes``
    (updated together) by ``S`` elements along the other axes (updated in turn)."""

    def __init__(self, value: Tensor, axes: tuple[int, ...]) -> None:
        self.axes = axes
        self.shape = value.shape
        self._front = tuple(range(len(axes)))
        self.moved_shape = value.movedim(axes, self._front).shape
        self.num_parallel = math.prod(self.moved_shape[: len(axes)])

    def flatten(self, tensor: Tensor) -> Tensor:
        return tensor.movedim(self.axes, self._front).reshape(self.num_parallel, -1)

    def restore(self, flat: Tensor) -> Tensor:
        return flat.reshape(self.moved_shape).movedim(self._front, self.axes)

    def flatten_batch(self, density: Tensor) -> Tensor:
        """A batch-shaped density (size 1 off the parallel axes) as a ``(P,)`` vector."""
        sizes = [1] * density.dim()
        for axis in self.axes:
            sizes[axis] = self.shape[axis]
        return density.expand(sizes).movedim(self.axes, self._front).reshape(self.num_parallel)


def _plate_nesting(model, args, kwargs) -> int:
    trace = poutine.trace(model).get_trace(*args, **kwargs)
    depth = 0
    for site in trace.nodes.values():
        if site["type"] != "sample":
            continue
        for frame in site["cond_indep_stack"]:
            if frame.dim is not None:
                depth = max(depth, -frame.dim)
    return depth

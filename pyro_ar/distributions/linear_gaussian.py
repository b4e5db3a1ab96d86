r"""Linear-Gaussian latent models: probabilistic PCA and factor analysis.

Both generate :math:`x \in \mathbb{R}^D` from :math:`K` latent factors,

.. math:: h \sim \mathcal{N}(0, I_K), \qquad x = \mu + W h + \epsilon, \qquad
   \epsilon \sim \mathcal{N}(0, \Psi),

with :math:`\Psi = \sigma^2 I` (probabilistic PCA) or :math:`\Psi = \operatorname{diag}(\psi)`
(factor analysis). The marginal is :math:`\mathcal{N}(\mu, C)` with :math:`C = W W^\top + \Psi`,
evaluated in :math:`O(DK^2)` through the capacitance matrix
:math:`M = I_K + W^\top \Psi^{-1} W`:

.. math:: \log|C| = \log|\Psi| + \log|M|, \qquad
   r^\top C^{-1} r = r^\top \Psi^{-1} r - b^\top M^{-1} b, \quad b = W^\top \Psi^{-1} r.

Missing coordinates (NaN) are marginalized exactly: the marginal of the observed coordinates
:math:`o` has the same form with :math:`W_o` and :math:`\Psi_o`, so each row gets its own
:math:`M = I + W_o^\top \Psi_o^{-1} W_o`.

References:
    | Probabilistic Principal Component Analysis (Tipping & Bishop, 1999)
    | https://doi.org/10.1111/1467-9868.00196
    | EM Algorithms for ML Factor Analysis (Rubin & Thayer, 1982)
    | https://doi.org/10.1007/BF02293851
"""

from __future__ import annotations

__all__ = [
    "FactorAnalysis",
    "LinearGaussianLatent",
    "PPCA",
    "kl_linear_gaussian_linear_gaussian",
    "kl_linear_gaussian_normal",
    "kl_normal_linear_gaussian",
]

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints, kl_divergence, register_kl

from .validation import (
    broadcast_batch_shapes,
    check_floating_parameters,
    check_sample_shape,
    check_value_shape,
    finish_expand,
    initialize_distribution,
)


class LinearGaussianLatent(TorchDistribution):
    r"""Base class of :class:`PPCA` and :class:`FactorAnalysis`: the marginal of
    :math:`x = \mu + W h + \epsilon` with a diagonal noise covariance.

    ``log_prob`` treats NaN entries as missing and marginalizes them out; infinite values are
    rejected. Subclasses only define how ``noise_scale`` becomes the diagonal
    :math:`\Psi^{1/2}` (:meth:`_noise_std`).

    Arguments:
        loc: :math:`\mu`, shape ``batch_shape + (D,)``.
        weight: :math:`W`, shape ``batch_shape + (D, K)``.
        noise_scale: Standard deviation(s) of :math:`\epsilon`.
        validate_args: Whether to validate parameters and values.

    Example:
        >>> model = FactorAnalysis(torch.zeros(4), torch.randn(4, 2), torch.ones(4))
        >>> x = torch.tensor([[0.5, float("nan"), -1.0, 0.2]])  # NaN: missing, marginalized out
        >>> model.log_prob(x).shape, bool(model.impute(x).isnan().any())
        (torch.Size([1]), False)
    """

    support = constraints.independent(constraints.real, 1)
    has_rsample = True

    def __init__(
        self, loc: Tensor, weight: Tensor, noise_scale: Tensor, validate_args: bool | None = None
    ) -> None:
        name = type(self).__name__
        check_floating_parameters(name, loc=loc, weight=weight, noise_scale=noise_scale)
        if loc.dim() < 1:
            raise ValueError(f"{name}: loc must have shape (..., D), got {tuple(loc.shape)}")
        num_dims = loc.shape[-1]
        if weight.dim() < 2 or weight.shape[-2] != num_dims:
            raise ValueError(
                f"{name}: weight must have shape (..., D={num_dims}, K), got {tuple(weight.shape)}"
            )
        if weight.shape[-1] < 1:
            raise ValueError(f"{name}: the latent dimension K must be at least 1")
        self.loc, self.weight, self.noise_scale = loc, weight, noise_scale
        noise_std = self._noise_std()
        batch_shape = broadcast_batch_shapes(
            name, loc=loc.shape[:-1], weight=weight.shape[:-2], noise_scale=noise_std.shape[:-1]
        )
        initialize_distribution(self, batch_shape, torch.Size([num_dims]), validate_args)

    def _noise_std(self) -> Tensor:
        """:math:`\\Psi^{1/2}` as a tensor of shape ``(..., D)`` (or broadcastable to it)."""
        raise NotImplementedError

    @property
    def latent_dim(self) -> int:
        """The number :math:`K` of latent factors."""
        return self.weight.shape[-1]

    @property
    def noise_variance(self) -> Tensor:
        r"""The diagonal of :math:`\Psi`, shape ``batch_shape + (D,)``."""
        return (self._noise_std() ** 2).expand(self.batch_shape + self.event_shape)

    # ------------------------------------------------------------------ moments

    @property
    def mean(self) -> Tensor:
        return self.loc.expand(self.batch_shape + self.event_shape)

    @property
    def variance(self) -> Tensor:
        return (self.weight**2).sum(-1) + self.noise_variance

    @property
    def covariance_matrix(self) -> Tensor:
        r""":math:`C = W W^\top + \Psi`, shape ``batch_shape + (D, D)``."""
        covariance = self.weight @ self.weight.transpose(-1, -2)
        return covariance + torch.diag_embed(self.noise_variance)

    def entropy(self) -> Tensor:
        r"""Differential entropy :math:`\tfrac12 \log\det(2\pi e\, C)` of the marginal
        :math:`\mathcal{N}(\mu, C)`, :math:`C = W W^\top + \Psi`, by the matrix determinant
        lemma (:math:`O(D K^2)`), shape ``batch_shape``.

        Example:
            >>> ppca = PPCA(torch.zeros(3), torch.eye(3)[:, :1], torch.tensor(1.0))
            >>> covariance = ppca.covariance_matrix
            >>> full = torch.distributions.MultivariateNormal(torch.zeros(3), covariance)
            >>> torch.allclose(ppca.entropy(), full.entropy())
            True
        """
        return self.marginal().entropy()

    def marginal(self) -> dist.LowRankMultivariateNormal:
        """The same distribution as Pyro's ``LowRankMultivariateNormal`` (no missing values)."""
        shape = self.batch_shape + self.event_shape
        return dist.LowRankMultivariateNormal(
            self.loc.expand(shape),
            self.weight.expand(shape + self.weight.shape[-1:]),
            self.noise_variance,
        )

    def expand(self, batch_shape: torch.Size, _instance=None):
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc, new.weight, new.noise_scale = self.loc, self.weight, self.noise_scale
        torch.broadcast_shapes(batch_shape, self.batch_shape)
        finish_expand(new, self, batch_shape)
        return new

    # ------------------------------------------------------------------ validation

    def _validate_sample(self, value: Tensor) -> None:
        check_value_shape(self, value, "real")
        name = type(self).__name__
        if not value.is_floating_point():
            raise ValueError(f"{name} expects a floating-point value, got {value.dtype}")
        if torch.isinf(value).any():
            raise ValueError(
                f"{name}: value contains inf; only finite values or NaN (missing) are allowed"
            )

    # ------------------------------------------------------------------ densities

    def _capacitance(self, precision: Tensor) -> Tensor:
        r""":math:`M = I + W^\top \operatorname{diag}(p) W` for a precision vector ``p``
        (zero on missing coordinates), shape ``(..., K, K)``."""
        weighted = self.weight * precision.unsqueeze(-1)
        capacitance = self.weight.transpose(-1, -2) @ weighted
        eye = torch.eye(self.latent_dim, dtype=capacitance.dtype, device=capacitance.device)
        return capacitance + eye

    def _condition_on(self, value: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        r"""The quantities shared by :meth:`log_prob` and :meth:`posterior`.

        Returns the observed mask, the residual :math:`r` (0 where missing), the precision
        :math:`\Psi^{-1}` (0 where missing), the Cholesky factor of :math:`M`, and
        :math:`b = W^\top \Psi^{-1} r` of shape ``(..., K, 1)``. Without missing values
        :math:`M` is shared by all rows (:math:`O(DK^2)` once instead of per row).
        """
        if self._validate_args:
            self._validate_sample(value)
        value = value.to(self.loc.dtype)
        # broadcast first: parameters may carry batch dimensions that the value lacks
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        value = value.expand(shape + self.event_shape)
        observed = ~torch.isnan(value)
        residual = torch.where(observed, value - self.loc, torch.zeros_like(value))
        inverse_variance = 1 / self._noise_std() ** 2
        if not bool(torch.isfinite(inverse_variance).all()):
            raise ValueError(
                f"{type(self).__name__}: noise_scale is too small for {inverse_variance.dtype} "
                f"(1 / noise_scale^2 overflows; smallest {float(self._noise_std().min()):.3g}): "
                "use float64 or a larger noise scale"
            )
        if bool(observed.all()):
            precision = inverse_variance.expand(self.batch_shape + self.event_shape)
        else:
            precision = observed * inverse_variance
        cholesky, info = torch.linalg.cholesky_ex(self._capacitance(precision))
        if bool((info != 0).any()):
            raise ValueError(
                f"{type(self).__name__}: the capacitance matrix I + W^T Psi^-1 W is not "
                f"positive definite in {cholesky.dtype} (weight too large relative to "
                "noise_scale for this precision): use float64 or rescale the parameters"
            )
        projected = self.weight.transpose(-1, -2) @ (precision * residual).unsqueeze(-1)
        return observed, residual, precision, cholesky, projected

    def log_prob(self, value: Tensor) -> Tensor:
        r"""Exact marginal log-density :math:`\log \mathcal{N}(x_o; \mu_o, C_{oo})` of the
        observed (non-NaN) coordinates :math:`o`, in :math:`O(DK^2)` per row.

        Arguments:
            value: Shape ``(..., D)``; NaN marks a missing coordinate.

        Returns:
            Shape ``broadcast(value.shape[:-1], batch_shape)``. A row with every coordinate
            missing has log-density 0.
        """
        observed, residual, precision, cholesky, projected = self._condition_on(value)
        whitened = torch.linalg.solve_triangular(
            cholesky.expand(projected.shape[:-2] + cholesky.shape[-2:]), projected, upper=False
        ).squeeze(-1)
        log_variance = torch.log(self._noise_std() ** 2).expand_as(observed)
        log_det = (log_variance * observed).sum(-1)
        log_det = log_det + 2 * torch.log(torch.diagonal(cholesky, dim1=-2, dim2=-1)).sum(-1)
        mahalanobis = (precision * residual**2).sum(-1) - (whitened**2).sum(-1)
        count = observed.sum(-1).to(residual.dtype)
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        return (-0.5 * (count * math.log(2 * math.pi) + log_det + mahalanobis)).expand(shape)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        r"""Reparameterized draw :math:`x = \mu + W h + \Psi^{1/2} \epsilon`.

        Returns:
            Shape ``sample_shape + batch_shape + (D,)``.
        """
        shape = self._extended_shape(check_sample_shape(type(self).__name__, sample_shape))
        latent = torch.randn(
            shape[:-1] + (self.latent_dim,), dtype=self.loc.dtype, device=self.loc.device
        )
        noise = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return (
            self.loc + (self.weight @ latent.unsqueeze(-1)).squeeze(-1) + self._noise_std() * noise
        )

    # ------------------------------------------------------------------ latents

    def posterior(self, value: Tensor) -> dist.MultivariateNormal:
        r"""The Gaussian over latents given data, :math:`p(h \mid x)`:

        .. math:: \operatorname{Cov} = M^{-1}, \qquad
           \mathbb{E}[h \mid x] = M^{-1} W^\top \Psi^{-1} (x - \mu),

        with :math:`M = I + W^\top \Psi^{-1} W` restricted to the observed (non-NaN)
        coordinates of each row.

        Returns:
            A ``MultivariateNormal`` with batch shape
            ``broadcast(value.shape[:-1], batch_shape)`` and event shape ``(K,)``.
        """
        _, _, _, cholesky, projected = self._condition_on(value)
        mean = torch.cholesky_solve(projected, cholesky).squeeze(-1)
        covariance = torch.cholesky_inverse(cholesky)
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        latent = self.latent_dim
        return dist.MultivariateNormal(
            mean.expand(shape + (latent,)),
            covariance_matrix=covariance.expand(shape + (latent, latent)),
        )

    def reconstruct(self, value: Tensor) -> Tensor:
        r""":math:`\mu + W\, \mathbb{E}[h \mid x]`: the denoised data. On missing (NaN)
        coordinates this is the exact conditional mean :math:`\mathbb{E}[x_m \mid x_o]`.

        Returns:
            Shape ``broadcast(value.shape[:-1], batch_shape) + (D,)``.
        """
        latent_mean = self.posterior(value).mean
        return self.loc + (self.weight @ latent_mean.unsqueeze(-1)).squeeze(-1)

    def impute(self, value: Tensor) -> Tensor:
        r"""Replaces each NaN by :math:`\mathbb{E}[x_m \mid x_o]` and keeps observed values."""
        return torch.where(torch.isnan(value), self.reconstruct(value), value)

    def latent_model(self, data: Tensor | None = None, num_rows: int | None = None) -> Tensor:
        r"""The joint latent-variable form as a Pyro model:

        .. math:: h_n \sim \mathcal{N}(0, I_K), \qquad
           x_n \mid h_n \sim \mathcal{N}(\mu + W h_n, \Psi),

        with sites ``"latent"`` and ``"x"`` in a plate ``"rows"``. Marginalizing ``"latent"``
        gives this distribution (tested via the ELBO with :meth:`posterior` as the guide).
        Only for ``batch_shape == ()``.

        Arguments:
            data: Observed rows ``(N, D)``, or ``None`` to sample ``num_rows`` rows.
            num_rows: The number of rows when ``data`` is ``None``.
        """
        if self.batch_shape:
            raise ValueError("latent_model needs a distribution with batch_shape ()")
        rows = len(data) if data is not None else num_rows
        if rows is None:
            raise ValueError("latent_model needs data or num_rows")
        with pyro.plate("rows", rows):
            prior = dist.Normal(
                torch.zeros(self.latent_dim, dtype=self.loc.dtype, device=self.loc.device), 1.0
            ).to_event(1)
            latent = pyro.sample("latent", prior)
            mean = self.loc + (self.weight @ latent.unsqueeze(-1)).squeeze(-1)
            noise = self._noise_std().expand(mean.shape)
            return pyro.sample("x", dist.Normal(mean, noise).to_event(1), obs=data)

    def posterior_guide(self, data: Tensor, num_rows: int | None = None) -> None:
        """The exact posterior of :meth:`latent_model`'s latents, as a Pyro guide."""
        with pyro.plate("rows", len(data)):
            pyro.sample("latent", self.posterior(data))


class PPCA(LinearGaussianLatent):
    r"""Probabilistic PCA: :math:`x \sim \mathcal{N}(\mu, W W^\top + \sigma^2 I)`.

    Arguments:
        loc: :math:`\mu`, shape ``batch_shape + (D,)``.
        weight: :math:`W`, shape ``batch_shape + (D, K)``.
        noise_scale: :math:`\sigma > 0`, shape ``batch_shape`` (one scalar per batch member).
        validate_args: Whether to validate parameters and values.

    References:
        | Probabilistic Principal Component Analysis (Tipping & Bishop, 1999)
        | https://doi.org/10.1111/1467-9868.00196

    Example:
        >>> d = PPCA(torch.zeros(5), torch.randn(5, 2), torch.tensor(0.5))
        >>> d.log_prob(d.sample((3,))).shape
        torch.Size([3])
    """

    arg_constraints = {
        "loc": constraints.independent(constraints.real, 1),
        "weight": constraints.independent(constraints.real, 2),
        "noise_scale": constraints.positive,
    }

    def __init__(
        self,
        loc: Tensor,
        weight: Tensor,
        noise_scale: Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        noise_scale = torch.as_tensor(noise_scale, dtype=loc.dtype, device=loc.device)
        super().__init__(loc, weight, noise_scale, validate_args)

    def _noise_std(self) -> Tensor:
        return self.noise_scale.unsqueeze(-1)


class FactorAnalysis(LinearGaussianLatent):
    r"""Factor analysis: :math:`x \sim \mathcal{N}(\mu, W W^\top + \operatorname{diag}(\psi))`.

    Arguments:
        loc: :math:`\mu`, shape ``batch_shape + (D,)``.
        weight: :math:`W`, shape ``batch_shape + (D, K)``.
        noise_scale: :math:`\sqrt{\psi} > 0`, shape ``batch_shape + (D,)``.
        validate_args: Whether to validate parameters and values.

    References:
        | EM Algorithms for ML Factor Analysis (Rubin & Thayer, 1982)
        | https://doi.org/10.1007/BF02293851

    Example:
        >>> d = FactorAnalysis(torch.zeros(5), torch.randn(5, 2), torch.ones(5))
        >>> d.posterior(d.sample((3,))).mean.shape
        torch.Size([3, 2])
    """

    arg_constraints = {
        "loc": constraints.independent(constraints.real, 1),
        "weight": constraints.independent(constraints.real, 2),
        "noise_scale": constraints.independent(constraints.positive, 1),
    }

    def __init__(
        self,
        loc: Tensor,
        weight: Tensor,
        noise_scale: Tensor,
        validate_args: bool | None = None,
    ) -> None:
        if noise_scale.dim() < 1 or noise_scale.shape[-1] != loc.shape[-1]:
            raise ValueError(
                f"FactorAnalysis: noise_scale must have shape (..., D={loc.shape[-1]}), got "
                f"{tuple(noise_scale.shape)}"
            )
        super().__init__(loc, weight, noise_scale, validate_args)

    def _noise_std(self) -> Tensor:
        return self.noise_scale


@register_kl(LinearGaussianLatent, LinearGaussianLatent)
def kl_linear_gaussian_linear_gaussian(p: LinearGaussianLatent, q: LinearGaussianLatent) -> Tensor:
    r""":math:`\mathrm{KL}(p \,\|\, q)` of two linear-Gaussian models (PPCA, factor analysis, in
    any pairing) in closed form, through their low-rank Gaussian marginals:
    :math:`\tfrac12 [\operatorname{tr}(C_q^{-1} C_p) + (\mu_q - \mu_p)^\top C_q^{-1}
    (\mu_q - \mu_p) - D + \log\det C_q - \log\det C_p]`.

    Example:
        >>> p = PPCA(torch.zeros(3), torch.eye(3)[:, :1], torch.tensor(1.0))
        >>> q = FactorAnalysis(torch.ones(3), torch.eye(3)[:, 1:], torch.ones(3))
        >>> float(torch.distributions.kl_divergence(p, p)) == 0.0
        True
    """
    return kl_divergence(p.marginal(), q.marginal())


@register_kl(LinearGaussianLatent, torch.distributions.MultivariateNormal)
def kl_linear_gaussian_normal(
    p: LinearGaussianLatent, q: torch.distributions.MultivariateNormal
) -> Tensor:
    r""":math:`\mathrm{KL}(p \,\|\, q)` against a full-covariance Gaussian.

    Example:
        >>> p = PPCA(torch.zeros(2), torch.ones(2, 1), torch.tensor(1.0))
        >>> q = torch.distributions.MultivariateNormal(torch.zeros(2), p.covariance_matrix)
        >>> abs(float(torch.distributions.kl_divergence(p, q))) < 1e-6
        True
    """
    return kl_divergence(p.marginal(), q)


@register_kl(torch.distributions.MultivariateNormal, LinearGaussianLatent)
def kl_normal_linear_gaussian(
    p: torch.distributions.MultivariateNormal, q: LinearGaussianLatent
) -> Tensor:
    r""":math:`\mathrm{KL}(p \,\|\, q)` of a full-covariance Gaussian against a linear-Gaussian
    model.

    Example:
        >>> q = PPCA(torch.zeros(2), torch.ones(2, 1), torch.tensor(1.0))
        >>> p = torch.distributions.MultivariateNormal(torch.zeros(2), q.covariance_matrix)
        >>> abs(float(torch.distributions.kl_divergence(p, q))) < 1e-6
        True
    """
    full = torch.distributions.MultivariateNormal(q.mean, q.covariance_matrix)
    return kl_divergence(p, full)

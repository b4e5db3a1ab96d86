r"""Maximum-likelihood fitting of probabilistic PCA and factor analysis.

Without missing values every estimator here works on the sufficient statistics, the mean
:math:`\bar x` and the covariance :math:`S = \frac{1}{N}\sum_n (x_n - \bar x)(x_n - \bar x)^\top`,
so after one pass over the data each iteration costs :math:`O(D^2 K)` to :math:`O(D^3)`,
whatever :math:`N`. The per-row log-likelihood is

.. math:: \ell = -\tfrac{1}{2}\big(D \log 2\pi + \log|C| + \operatorname{tr}(C^{-1} S)\big),
   \qquad C = W W^\top + \Psi.

* PPCA in closed form (Tipping & Bishop 1999): with :math:`S = U \Lambda U^\top`,
  :math:`\sigma^2 = \frac{1}{D-K}\sum_{k>K}\lambda_k` and
  :math:`W = U_K (\Lambda_K - \sigma^2 I)^{1/2}`.
* Factor analysis by alternating exact maximizations: for fixed :math:`\Psi` the best
  :math:`W` comes from the top eigenvectors of :math:`\tilde S = \Psi^{-1/2} S \Psi^{-1/2}`,
  :math:`W = \Psi^{1/2} U_K (\Lambda_K - I)_+^{1/2}`; for fixed :math:`W`,
  :math:`\Psi = \operatorname{diag}(S - W W^\top)`. Each step increases the likelihood
  (the algorithm of Barber 2012, §21.2, that sklearn runs on the data matrix each iteration).
* With missing values (NaN): exact EM over the latents with each row's observed coordinates
  (Ilin & Raiko 2010), for both models.

A **noise floor** keeps every noise variance at least ``noise_floor``: a training column that is
constant (MNIST's border pixels) otherwise drives its variance to 0 and any held-out row with a
different value to a log-likelihood of about :math:`-10^{12}` (sklearn's factor analysis floors
at ``1e-12``). The default is :data:`DEFAULT_RELATIVE_NOISE_FLOOR` times the mean variance of
the data, so it follows the data's units.

References:
    | Probabilistic Principal Component Analysis (Tipping & Bishop, 1999)
    | https://doi.org/10.1111/1467-9868.00196
    | Bayesian Reasoning and Machine Learning, ch. 21 (Barber, 2012)
    | Practical Approaches to Principal Component Analysis in the Presence of Missing Values
    | (Ilin & Raiko, 2010) https://jmlr.org/papers/v11/ilin10a.html
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_RELATIVE_NOISE_FLOOR",
    "LinearGaussianFit",
    "fit_by_svi",
    "fit_factor_analysis",
    "fit_ppca",
]

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..distributions.linear_gaussian import PPCA, FactorAnalysis, LinearGaussianLatent

logger = logging.getLogger(__name__)

#: Default noise floor, as a fraction of the data's mean per-coordinate variance.
DEFAULT_RELATIVE_NOISE_FLOOR = 1e-3


@dataclass
class LinearGaussianFit:
    """The result of a fit: the distribution and how the optimization went.

    Attributes:
        distribution: The fitted :class:`~pyro_ar.distributions.PPCA` or
            :class:`~pyro_ar.distributions.FactorAnalysis`.
        log_likelihood: Mean log-likelihood per training row, in nats.
        history: Mean log-likelihood per row after each iteration.
        iterations: Number of iterations run (0 for the closed form).
        converged: Whether the change in log-likelihood fell below the tolerance.
        noise_floor: The noise-variance floor that was applied.

    Example:
        >>> fit = fit_ppca(torch.randn(100, 5), 2)
        >>> fit.distribution.latent_dim, fit.iterations, fit.converged
        (2, 0, True)
    """

    distribution: LinearGaussianLatent
    log_likelihood: float
    history: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = True
    noise_floor: float = 0.0


def _check_data(data: Tensor, latent_dim: int) -> tuple[Tensor, bool]:
    """Checks shapes and values; returns the data (floating) and whether any entry is NaN.

    The column sums are finite exactly when no entry is NaN or infinite (barring overflow), so
    the element-wise scans, which cost as much as the fit itself on large data, run only when
    those sums say something is wrong.
    """
    data = torch.as_tensor(data)
    if data.dim() != 2:
        raise ValueError(f"data must be a matrix of shape (N, D), got {tuple(data.shape)}")
    if not data.is_floating_point():
        data = data.to(torch.get_default_dtype())
    num_rows, num_dims = data.shape
    if num_rows < 2:
        raise ValueError(f"need at least 2 rows of data, got {num_rows}")
    if not 1 <= latent_dim <= num_dims:
        raise ValueError(f"latent_dim must lie in [1, D={num_dims}], got {latent_dim}")
    if data.device.type == "cpu" and not data.requires_grad:
        sums_finite = bool(np.isfinite(data.contiguous().numpy().sum(0)).all())
    else:
        sums_finite = bool(torch.isfinite(data.sum(0)).all())
    if sums_finite:
        return data, False
    if torch.isinf(data).any():
        raise ValueError("data contains inf; use NaN for missing values")
    missing = torch.isnan(data)
    if missing.all(0).any():
        raise ValueError("a column of data is entirely missing (NaN)")
    return data, bool(missing.any())


def _moments(data: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and maximum-likelihood covariance (divided by N).

    On the CPU this runs in NumPy end to end: its ``dot`` recognizes :math:`X^\\top X` and
    calls BLAS ``syrk`` (half the multiply-adds of torch's general product), and torch
    operations interleaved with NumPy's BLAS calls would wait for its threads. In float64 the
    covariance is :math:`X^\\top X / N - \\bar x \\bar x^\\top`, which avoids copying the
    data; in lower precision the data are centred first, since that subtraction would cancel
    digits.
    """
    if data.device.type == "cpu" and not data.requires_grad:
        array = data.contiguous().numpy()
        # an overflow is reported by the caller's check of the variances, with the fix
        with np.errstate(over="ignore", invalid="ignore"):
            mean = array.mean(0)
            if array.dtype == np.float64:
                covariance = np.dot(array.T, array)
                covariance /= len(array)
                covariance -= np.outer(mean, mean)
            else:
                centred = array - mean
                covariance = np.dot(centred.T, centred)
                covariance /= len(array)
        return torch.from_numpy(mean), torch.from_numpy(covariance)
    mean = data.mean(0)
    centred = data - mean
    return mean, centred.T @ centred / len(data)


def _ppca_closed_form(
    covariance: np.ndarray, latent_dim: int, floor: float
) -> tuple[np.ndarray, float, float]:
    r"""Tipping & Bishop's maximum likelihood from the sample covariance (a small D x D
    matrix, so NumPy on the CPU whatever the data's device).

    Returns :math:`W`, :math:`\sigma^2` and the per-row log-likelihood, which in the
    eigenbasis of :math:`S` is
    :math:`-\frac{1}{2}\big(D \log 2\pi + \sum_k \log c_k + \sum_k \lambda_k / c_k\big)`
    with model eigenvalues :math:`c_k = \max(\lambda_k, \sigma^2)` for :math:`k \le K` and
    :math:`\sigma^2` beyond.
    """
    num_dims = covariance.shape[0]
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues = np.clip(eigenvalues[::-1], 0, None)  # descending
    eigenvectors = eigenvectors[:, ::-1]
    discarded = eigenvalues[latent_dim:]
    noise_variance = max(float(discarded.mean()) if len(discarded) else 0.0, floor)
    if noise_variance <= 0:
        raise ValueError(
            "the maximum-likelihood noise variance is 0 (K = D, or the data have rank <= K): "
            "pass a positive noise_floor"
        )
    top = eigenvalues[:latent_dim]
    weight = eigenvectors[:, :latent_dim] * np.sqrt(np.clip(top - noise_variance, 0, None))
    model = np.concatenate(
        [np.maximum(top, noise_variance), np.full(num_dims - latent_dim, noise_variance)]
    )
    log_likelihood = -0.5 * (
        num_dims * math.log(2 * math.pi) + np.log(model).sum() + (eigenvalues / model).sum()
    )
    return np.ascontiguousarray(weight), noise_variance, float(log_likelihood)


def _noise_floor(variances: Tensor, noise_floor: float | None, per_column: bool) -> float:
    """The noise-variance floor, checked; ``per_column``: factor analysis, whose noise variance
    of a constant column would be 0 without a floor (PPCA shares one noise variance)."""
    if not bool(torch.isfinite(variances).all()):
        raise ValueError(
            f"the data's variances overflow {variances.dtype} (values too large for this "
            "dtype): rescale the data or convert it to float64"
        )
    if noise_floor is None:
        floor = DEFAULT_RELATIVE_NOISE_FLOOR * float(variances.mean())
    elif not 0 <= noise_floor < math.inf:  # NaN fails too
        raise ValueError(f"noise_floor must be a finite number >= 0, got {noise_floor}")
    else:
        floor = float(noise_floor)
    if per_column and floor <= 0 and bool((variances <= 0).any()):
        constant = torch.nonzero(variances <= 0).flatten()[:5].tolist()
        raise ValueError(
            f"data columns {constant} are constant and the noise floor is 0: their "
            "maximum-likelihood noise variance would be 0; pass a positive noise_floor"
        )
    return floor


def _check_iterations(max_iter: int, tol: float) -> None:
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    if not 0 <= tol < math.inf:
        raise ValueError(f"tol must be a finite number >= 0, got {tol}")


def _mean_log_likelihood(covariance: Tensor, weight: Tensor, noise_variance: Tensor) -> float:
    r"""Per-row log-likelihood from the sufficient statistics, via the capacitance matrix."""
    num_dims, latent = weight.shape
    scaled = weight / noise_variance.unsqueeze(-1)  # Psi^{-1} W
    capacitance = torch.eye(latent, dtype=weight.dtype, device=weight.device) + weight.T @ scaled
    cholesky = torch.linalg.cholesky(capacitance)
    log_det = noise_variance.log().sum() + 2 * cholesky.diagonal().log().sum()
    projected = scaled.T @ covariance @ scaled  # W^T Psi^-1 S Psi^-1 W
    trace = (covariance.diagonal() / noise_variance).sum() - torch.trace(
        torch.cholesky_solve(projected, cholesky)
    )
    return float(-0.5 * (num_dims * math.log(2 * math.pi) + log_det + trace))


def _top_eigenpairs(
    matrix: Tensor, count: int, start: Tensor | None, power_steps: int = 2
) -> tuple[Tensor, Tensor, Tensor]:
    """The ``count`` largest eigenpairs of a symmetric matrix (ascending), and a basis to
    warm-start the next call.

    From a previous basis, a few steps of subspace iteration followed by Rayleigh-Ritz cost
    :math:`O(D^2 (K + p))` instead of a full :math:`O(D^3)` eigendecomposition; between two
    iterations of factor analysis the subspace barely moves, so this is accurate. Without a start
    (or for small matrices) it runs the full ``eigh``.
    """
    size = matrix.shape[-1]
    width = min(size, count + 10)
    if start is None or width * 4 >= size:
        values, vectors = torch.linalg.eigh(matrix)
        return values[-count:], vectors[:, -count:], vectors[:, -width:]
    basis = start
    for _ in range(power_steps):
        basis, _ = torch.linalg.qr(matrix @ basis)
    values, rotation = torch.linalg.eigh(basis.T @ matrix @ basis)
    vectors = basis @ rotation
    return values[-count:], vectors[:, -count:], vectors


def fit_ppca(
    data: Tensor,
    latent_dim: int,
    noise_floor: float | None = None,
    max_iter: int = 500,
    tol: float = 1e-6,
) -> LinearGaussianFit:
    r"""Maximum-likelihood probabilistic PCA.

    Without missing values: the closed form of Tipping & Bishop (eigendecomposition of the
    sample covariance, :math:`O(ND^2 + D^3)`). With NaN entries: exact EM on the observed
    coordinates, stopped when the mean log-likelihood per row gains less than ``tol``.

    Arguments:
        data: Shape ``(N, D)``; NaN marks missing values.
        latent_dim: :math:`K` in ``[1, D]``.
        noise_floor: Smallest allowed :math:`\sigma^2`; default
            :data:`DEFAULT_RELATIVE_NOISE_FLOOR` times the mean variance.
        max_iter: EM iterations at most (missing values only).
        tol: EM convergence tolerance in nats per row (missing values only).

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> data = torch.randn(500, 2) @ torch.randn(2, 5) + 0.1 * torch.randn(500, 5)
        >>> fit = fit_ppca(data, latent_dim=2)
        >>> round(fit.distribution.noise_scale.item(), 1), fit.converged
        (0.1, True)
        >>> abs(fit.distribution.log_prob(data).mean().item() - fit.log_likelihood) < 1e-4
        True
    """
    data, has_missing = _check_data(data, latent_dim)
    _check_iterations(max_iter, tol)
    if has_missing:
        return _fit_with_missing(data, latent_dim, True, noise_floor, max_iter, tol)
    mean, covariance = _moments(data)
    floor = _noise_floor(covariance.diagonal(), noise_floor, per_column=False)
    weight, noise_variance, log_likelihood = _ppca_closed_form(
        covariance.cpu().numpy(), latent_dim, floor
    )
    weight = torch.from_numpy(weight).to(device=data.device, dtype=data.dtype)
    noise_scale = torch.tensor(math.sqrt(noise_variance), dtype=data.dtype, device=data.device)
    distribution = PPCA(mean.to(data.device), weight, noise_scale)
    return LinearGaussianFit(distribution, log_likelihood, [log_likelihood], 0, True, floor)


def fit_factor_analysis(
    data: Tensor,
    latent_dim: int,
    noise_floor: float | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> LinearGaussianFit:
    r"""Maximum-likelihood factor analysis.

    Without missing values: alternating exact maximizations on the sample covariance
    (see the module docstring), each iteration :math:`O(D^3)` whatever :math:`N`. With NaN
    entries: exact EM on the observed coordinates. Stops when the mean log-likelihood per row
    gains less than ``tol`` nats.

    Arguments:
        data: Shape ``(N, D)``; NaN marks missing values.
        latent_dim: :math:`K` in ``[1, D]``.
        noise_floor: Smallest allowed :math:`\psi_d`; default
            :data:`DEFAULT_RELATIVE_NOISE_FLOOR` times the mean variance.
        max_iter: Iterations at most.
        tol: Convergence tolerance in nats per row.

    Example:
        >>> data = torch.randn(200, 6) @ torch.randn(6, 6)
        >>> data[0, 2] = float("nan")  # a missing value: exact EM
        >>> fit = fit_factor_analysis(data, 2)
        >>> fit.distribution.noise_scale.shape, fit.converged
        (torch.Size([6]), True)
    """
    data, has_missing = _check_data(data, latent_dim)
    _check_iterations(max_iter, tol)
    if has_missing:
        return _fit_with_missing(data, latent_dim, False, noise_floor, max_iter, tol)
    mean, covariance = _moments(data)
    variances = covariance.diagonal()
    floor = _noise_floor(variances, noise_floor, per_column=True)
    noise_variance = variances.clamp_min(floor)
    history: list[float] = []
    converged = False
    basis = None
    for iteration in range(max_iter + 1):
        root = noise_variance.sqrt()
        scaled = covariance / root.unsqueeze(0) / root.unsqueeze(1)
        # the last step is always an exact eigendecomposition, so the result does not depend
        # on the warm-started approximation
        exact = converged or iteration == max_iter
        top_values, top_vectors, basis = _top_eigenpairs(
            scaled, latent_dim, None if exact else basis
        )
        weight = root.unsqueeze(-1) * top_vectors * (top_values - 1).clamp_min(0).sqrt()
        noise_variance = (variances - (weight**2).sum(-1)).clamp_min(floor)
        history.append(_mean_log_likelihood(covariance, weight, noise_variance))
        if exact:
            break
        if len(history) > 1 and history[-1] - history[-2] < tol:
            converged = True
    logger.info("factor analysis: %d iterations, log-likelihood %.6f", len(history), history[-1])
    # Columns in descending order of explained variance, like PCA's.
    weight = weight.flip(-1)
    distribution = FactorAnalysis(mean, weight, noise_variance.sqrt())
    return LinearGaussianFit(distribution, history[-1], history, len(history), converged, floor)


def _fit_with_missing(
    data: Tensor,
    latent_dim: int,
    isotropic: bool,
    noise_floor: float | None,
    max_iter: int,
    tol: float,
) -> LinearGaussianFit:
    r"""Exact EM with missing values (Ilin & Raiko 2010, §4).

    E-step, per row with observed set :math:`o`: :math:`M_n = I + W_o^\top \Psi_o^{-1} W_o`,
    :math:`\mathbb{E}[h_n] = M_n^{-1} W_o^\top \Psi_o^{-1}(x_o - \mu_o)`,
    :math:`\operatorname{Cov}[h_n] = M_n^{-1}`. M-step, per coordinate :math:`d` over the rows
    that observe it: a least-squares solve for :math:`(\mu_d, W_d)` against
    :math:`\mathbb{E}[(1, h)]`, then :math:`\psi_d` (or one shared :math:`\sigma^2`) from the
    expected squared residuals.
    """
    observed = ~torch.isnan(data)
    mask = observed.to(data.dtype)
    filled = torch.where(observed, data, torch.zeros_like(data))
    counts = mask.sum(0)
    mean = filled.sum(0) / counts
    variances = (mask * (filled - mean) ** 2).sum(0) / counts
    floor = _noise_floor(variances, noise_floor, per_column=not isotropic)
    # Start from the principal directions of the mean-imputed data.
    imputed = torch.where(observed, data, mean)
    _, singular, right = torch.linalg.svd(imputed - mean, full_matrices=False)
    scale = singular[:latent_dim] / math.sqrt(len(data))
    weight = right[:latent_dim].T * scale * 0.5
    noise_variance = variances.clamp_min(floor)
    if isotropic:
        noise_variance = noise_variance.mean().expand_as(noise_variance).clone()
    model_class = PPCA if isotropic else FactorAnalysis

    def build(mean: Tensor, weight: Tensor, noise_variance: Tensor) -> LinearGaussianLatent:
        scale = noise_variance[0].sqrt() if isotropic else noise_variance.sqrt()
        return model_class(mean, weight, scale)

    distribution = build(mean, weight, noise_variance)
    history: list[float] = [float(distribution.log_prob(data).mean())]  # the starting point
    converged = False
    for _ in range(max_iter):
        # E-step: the exact posterior of each row's latents given its observed coordinates
        posterior = distribution.posterior(data)
        latent_mean, covariance = posterior.mean, posterior.covariance_matrix
        # sufficient statistics of the augmented latent (1, h) per coordinate
        augmented = torch.cat([torch.ones_like(latent_mean[:, :1]), latent_mean], dim=1)
        second = augmented.unsqueeze(-1) * augmented.unsqueeze(-2)
        second[:, 1:, 1:] += covariance
        gram = torch.einsum("nd,nij->dij", mask, second)  # (D, K+1, K+1)
        target = torch.einsum("nd,ni->di", mask * filled, augmented)  # (D, K+1)
        solution = torch.linalg.solve(gram, target.unsqueeze(-1))[..., 0]
        mean, weight = solution[:, 0], solution[:, 1:]
        predicted = mean + latent_mean @ weight.T
        spread = torch.einsum("dk,nkl,dl->nd", weight, covariance, weight)
        squared = mask * ((filled - predicted) ** 2 + spread)
        if isotropic:
            noise_variance = (squared.sum() / mask.sum()).expand_as(noise_variance).clone()
        else:
            noise_variance = squared.sum(0) / counts
        noise_variance = noise_variance.clamp_min(floor)
        distribution = build(mean, weight, noise_variance)
        history.append(float(distribution.log_prob(data).mean()))
        if abs(history[-1] - history[-2]) < tol:
            converged = True
            break
    iterations = len(history) - 1
    return LinearGaussianFit(distribution, history[-1], history, iterations, converged, floor)


def fit_by_svi(
    data: Tensor,
    latent_dim: int,
    isotropic: bool = False,
    num_steps: int = 2000,
    learning_rate: float = 0.02,
    subsample_size: int | None = None,
    seed: int = 0,
    name: str = "linear_gaussian",
) -> LinearGaussianFit:
    r"""Maximum likelihood by stochastic gradients through Pyro's SVI.

    The model observes the data through the exact marginal (NaN entries are marginalized),
    with ``pyro.param`` sites ``loc``, ``weight`` and a positive ``noise_scale``, and an empty
    guide, so the ELBO is the log-likelihood. Slower than :func:`fit_ppca` and
    :func:`fit_factor_analysis`, but it composes: the same site can sit in a larger Pyro model.

    Arguments:
        data: Shape ``(N, D)``; NaN marks missing values.
        latent_dim: :math:`K`.
        isotropic: PPCA (one noise scale) instead of factor analysis.
        num_steps: Adam steps.
        learning_rate: Adam's step size.
        subsample_size: Rows per step (default: all).
        seed: Seeds the initialization and the subsampling.
        name: Prefix of the ``pyro.param`` names (``NAME.loc``, ``NAME.weight``,
            ``NAME.noise_scale``); earlier values under these names are replaced.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> data = torch.randn(200, 1) @ torch.ones(1, 3) + 0.3 * torch.randn(200, 3)
        >>> fit = fit_by_svi(data, latent_dim=1, isotropic=True, num_steps=300)
        >>> fit.log_likelihood > fit_ppca(data, 1).log_likelihood - 0.1  # near the maximum
        True
    """
    import pyro
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam

    data, _ = _check_data(data, latent_dim)
    pyro.set_rng_seed(seed)
    num_rows, num_dims = data.shape
    observed = ~torch.isnan(data)
    filled = torch.where(observed, data, torch.zeros_like(data))
    mean = filled.sum(0) / observed.sum(0)
    spread = float(((filled - mean) ** 2 * observed).sum() / observed.sum()) ** 0.5
    model_class = PPCA if isotropic else FactorAnalysis
    noise_shape = () if isotropic else (num_dims,)
    store = pyro.get_param_store()
    names = {part: f"{name}.{part}" for part in ("loc", "weight", "noise_scale")}
    for full_name in names.values():
        if full_name in store:
            del store[full_name]

    def model(data: Tensor) -> None:
        loc = pyro.param(names["loc"], mean.clone())
        weight = pyro.param(
            names["weight"],
            0.1 * spread * torch.randn(num_dims, latent_dim, dtype=data.dtype, device=data.device),
        )
        noise_scale = pyro.param(
            names["noise_scale"],
            torch.full(noise_shape, spread, dtype=data.dtype, device=data.device),
            constraint=torch.distributions.constraints.positive,
        )
        with pyro.plate("rows", num_rows, subsample_size=subsample_size) as index:
            pyro.sample("x", model_class(loc, weight, noise_scale), obs=data[index])

    def guide(data: Tensor) -> None:
        pass

    svi = SVI(model, guide, Adam({"lr": learning_rate}), Trace_ELBO())
    history = [-svi.step(data) / num_rows for _ in range(num_steps)]
    with torch.no_grad():
        distribution = model_class(*(pyro.param(names[part]).detach() for part in names))
        log_likelihood = float(distribution.log_prob(data).mean())
    return LinearGaussianFit(distribution, log_likelihood, history, num_steps, True, 0.0)

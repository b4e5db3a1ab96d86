r"""Bayesian probabilistic PCA and factor analysis as Pyro models, for NUTS.

The likelihood is the collapsed marginal :math:`x_n \sim \mathcal{N}(\mu, W W^\top + \Psi)`
(the latents integrated out exactly), which NUTS explores far better than the joint form.
:math:`W` is only identified up to a rotation :math:`W R`; the chains would wander along that
orbit and R-hat would never settle. The rotation is removed by the classic constraint of a
lower-triangular :math:`W` with a positive diagonal (Geweke & Zhou 1996; Lopes & West 2004):

.. math:: W_{ij} = 0 \; (j > i), \qquad W_{ii} \sim \text{LogNormal}(\log s, 1), \qquad
   W_{ij} \sim \mathcal{N}(0, s^2) \; (j < i),

with :math:`\mu \sim \mathcal{N}(0, 10^2)` and noise scales :math:`\sim \text{HalfNormal}(1)`
(one per coordinate for factor analysis, one in all for PPCA). The priors assume
standardized data. The first :math:`K` coordinates act as the factors' "leaders": order the
columns so that they are informative.

References:
    | Measuring the pricing error of the arbitrage pricing theory (Geweke & Zhou, 1996)
    | https://doi.org/10.1093/rfs/9.2.557
    | Bayesian model assessment in factor analysis (Lopes & West, 2004)
    | https://www.jstor.org/stable/24307224
"""

from __future__ import annotations

__all__ = [
    "assemble_loadings",
    "bayesian_linear_gaussian_model",
    "initial_values",
    "rotate_to_lower_triangular",
]

import math

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor

from ..distributions.linear_gaussian import PPCA, FactorAnalysis


def _lower_indices(num_dims: int, latent_dim: int, device=None) -> tuple[Tensor, Tensor]:
    return tuple(torch.tril_indices(num_dims, latent_dim, offset=-1, device=device))


def assemble_loadings(lower: Tensor, diagonal: Tensor, num_dims: int) -> Tensor:
    r"""Builds the lower-triangular :math:`W` from its free entries.

    Arguments:
        lower: Entries strictly below the diagonal, row by row, shape ``(..., L)``.
        diagonal: The positive diagonal, shape ``(..., K)``.
        num_dims: :math:`D`.

    Returns:
        Shape ``(..., D, K)``, zero above the diagonal.

    Example:
        >>> assemble_loadings(torch.tensor([5.0, 6.0, 7.0]), torch.tensor([1.0, 2.0]), num_dims=3)
        tensor([[1., 0.],
                [5., 2.],
                [6., 7.]])
    """
    latent_dim = diagonal.shape[-1]
    rows, columns = _lower_indices(num_dims, latent_dim, lower.device)
    steps = torch.arange(latent_dim, device=lower.device)
    # positions in the flattened (D * K) matrix; scatter is out of place, so autograd works
    positions = torch.cat([rows * latent_dim + columns, steps * latent_dim + steps])
    values = torch.cat([lower, diagonal], dim=-1)
    flat = values.new_zeros(values.shape[:-1] + (num_dims * latent_dim,))
    flat = flat.scatter(-1, positions.expand(values.shape), values)
    return flat.reshape(values.shape[:-1] + (num_dims, latent_dim))


def rotate_to_lower_triangular(weight: Tensor) -> Tensor:
    r"""The rotation :math:`W Q` of ``weight`` (D, K) that is lower-triangular with a
    non-negative diagonal; :math:`W Q Q^\top W^\top = W W^\top`, so the likelihood is unchanged.

    With the LQ decomposition of the top block, :math:`W_{1:K} = L Q^\top`, :math:`W Q` has
    the lower-triangular top block :math:`L`; column signs are then flipped to make its
    diagonal non-negative.

    Example:
        >>> weight = torch.randn(5, 2)
        >>> lower = rotate_to_lower_triangular(weight)
        >>> lower[0, 1].item(), torch.allclose(lower @ lower.T, weight @ weight.T, atol=1e-5)
        (0.0, True)
    """
    latent_dim = weight.shape[-1]
    orthogonal, _ = torch.linalg.qr(weight[..., :latent_dim, :].transpose(-1, -2))
    rotated = weight @ orthogonal
    signs = torch.sign(torch.diagonal(rotated[..., :latent_dim, :], dim1=-2, dim2=-1))
    return rotated * torch.where(signs == 0, torch.ones_like(signs), signs).unsqueeze(-2)


def initial_values(fit_distribution) -> dict[str, Tensor]:
    """Starting values for :func:`bayesian_linear_gaussian_model` from a maximum-likelihood fit
    (:func:`~pyro_ar.infer.fit_factor_analysis` or :func:`~pyro_ar.infer.fit_ppca`).

    Use with ``NUTS(..., init_strategy=pyro.infer.autoguide.init_to_value(values=...))``: the
    lower-triangular parameterization has minor modes where a diagonal loading is near 0 and
    its column's sign is flipped; chains started at the (rotated) likelihood maximum stay in the
    main mode.

    Example:
        >>> from pyro_ar.infer import fit_ppca
        >>> fit = fit_ppca(torch.randn(50, 4) @ torch.randn(4, 4), latent_dim=2)
        >>> sorted(initial_values(fit.distribution))
        ['loadings_diagonal', 'loadings_lower', 'loc', 'noise_scale']
    """
    weight = rotate_to_lower_triangular(fit_distribution.weight)
    num_dims, latent_dim = weight.shape
    rows, columns = _lower_indices(num_dims, latent_dim, weight.device)
    steps = torch.arange(latent_dim, device=weight.device)
    return {
        "loc": fit_distribution.loc,
        "loadings_lower": weight[rows, columns],
        "loadings_diagonal": weight[steps, steps].clamp_min(1e-3),
        "noise_scale": fit_distribution.noise_scale,
    }


def _left_of_rows(value: Tensor, event_dim: int) -> Tensor:
    """A global site's value with its batch dimensions left of the ``rows`` plate (dim -1).

    Vectorized draws of a global site arrive with a singleton at dim -1 (``(P, 1) + event``),
    except from ``Predictive(parallel=True)`` (which ``arviz.from_pyro`` uses for the
    log-likelihood): it reshapes each draw to ``(P,) + event``, one dimension short when the
    event is not empty, and the draws would then collide with the rows.
    """
    if value.dim() > event_dim and value.shape[value.dim() - event_dim - 1] != 1:
        value = value.unsqueeze(value.dim() - event_dim)
    return value


def bayesian_linear_gaussian_model(
    data: Tensor | None,
    latent_dim: int,
    isotropic: bool = False,
    num_rows: int | None = None,
    num_dims: int | None = None,
    loading_scale: float = 1.0,
) -> Tensor:
    """Bayesian factor analysis (``isotropic=False``) or PPCA (``isotropic=True``).

    Sites: ``loc`` (D), ``loadings_lower`` (the strictly lower entries of W),
    ``loadings_diagonal`` (K, positive), ``noise_scale`` (D, or a scalar for PPCA), and the
    observed ``x`` in the plate ``rows``. Run it with ``pyro.infer.NUTS``; see
    :func:`assemble_loadings` to rebuild W from the draws.

    Arguments:
        data: Observed rows ``(N, D)`` (standardize them first), or ``None`` to sample.
        latent_dim: :math:`K <= D`.
        isotropic: PPCA's single noise scale instead of one per coordinate.
        num_rows: Rows to sample when ``data`` is ``None``.
        num_dims: :math:`D` when ``data`` is ``None``.
        loading_scale: Prior scale :math:`s` of the loadings.

    Example:
        >>> import pyro
        >>> data = torch.randn(20, 4)
        >>> trace = pyro.poutine.trace(bayesian_linear_gaussian_model).get_trace(data, 2)
        >>> trace.nodes["x"]["value"].shape, trace.nodes["loadings_lower"]["value"].shape
        (torch.Size([20, 4]), torch.Size([5]))
    """
    if data is not None:
        num_rows, num_dims = data.shape
        dtype, device = data.dtype, data.device
    else:
        if num_rows is None or num_dims is None:
            raise ValueError("without data, give num_rows and num_dims")
        dtype, device = torch.get_default_dtype(), None
    if not 1 <= latent_dim <= num_dims:
        raise ValueError(f"latent_dim must lie in [1, D={num_dims}], got {latent_dim}")
    zero = torch.zeros((), dtype=dtype, device=device)
    num_lower = len(_lower_indices(num_dims, latent_dim)[0])
    loc = pyro.sample("loc", dist.Normal(zero, 10.0).expand([num_dims]).to_event(1))
    lower = pyro.sample(
        "loadings_lower", dist.Normal(zero, loading_scale).expand([num_lower]).to_event(1)
    )
    # a prior that vanishes at 0 keeps chains out of the reflected minor modes (W_kk -> 0)
    diagonal = pyro.sample(
        "loadings_diagonal",
        dist.LogNormal(zero + math.log(loading_scale), 1.0).expand([latent_dim]).to_event(1),
    )
    loc, lower, diagonal = (_left_of_rows(value, 1) for value in (loc, lower, diagonal))
    weight = assemble_loadings(lower, diagonal, num_dims)
    if isotropic:
        noise_scale = pyro.sample("noise_scale", dist.HalfNormal(zero + 1.0))
        likelihood = PPCA(loc, weight, _left_of_rows(noise_scale, 0))
    else:
        noise_scale = pyro.sample(
            "noise_scale", dist.HalfNormal(zero + 1.0).expand([num_dims]).to_event(1)
        )
        likelihood = FactorAnalysis(loc, weight, _left_of_rows(noise_scale, 1))
    with pyro.plate("rows", num_rows):
        return pyro.sample("x", likelihood, obs=data)

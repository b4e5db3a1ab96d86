r"""Low-level numerical building blocks shared by the samplers: a oneDNN-backed affine map with
a fused activation, and exact Bernoulli draws from one random byte per draw on CPU (loops
compiled by Numba)."""

from .bernoulli_sampler import BernoulliSampler
from .fused_linear import fused_linear, onednn_available

__all__ = ["BernoulliSampler", "fused_linear", "onednn_available"]

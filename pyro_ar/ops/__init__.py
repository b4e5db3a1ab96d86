r"""Fast numerical kernels, each with a plain reference implementation it is tested against,
and the rules every kernel follows at Pyro's seams (provenance passes through; under
:func:`torch.compile` the reference path runs).

- :func:`format_arpa_lines` (:func:`format_arpa_lines_reference`): the lines of an ARPA file,
  formatted by one loop compiled by Numba.
- :func:`fused_linear` (:func:`fused_linear_reference`): an inference-only affine map with a
  fused activation through oneDNN's float32 GEMM on CPU.
- :class:`BernoulliSampler`: exact Bernoulli draws from one random byte per draw, in loops
  compiled by Numba (NumPy and torch backends as references).
- :func:`masked_linear` (:func:`masked_linear_reference`): MADE's masked products, with
  :class:`ScratchPool` and :class:`BlockPlanner` (block plans that skip zero rectangles).
- :func:`nade_hidden_logits` (:func:`nade_hidden_logits_reference`): NADE's chunked running
  sum.
- :func:`split_provenance` / :func:`attach_provenance`: kernels run on the plain tensors under
  Pyro's ``ProvenanceTensor`` and return the inputs' provenance.
"""

from .arpa_lines import format_arpa_lines, format_arpa_lines_reference
from .bernoulli_sampler import BernoulliSampler
from .fused_linear import fused_linear, fused_linear_reference, onednn_available
from .masked_linear import (
    Block,
    BlockPlanner,
    ScratchPool,
    block_plan,
    masked_linear,
    masked_linear_reference,
    plan_area,
)
from .nade import (
    DEFAULT_CHUNK_SIZE,
    nade_hidden_logits,
    nade_hidden_logits_reference,
)
from .provenance import attach_provenance, split_provenance

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BernoulliSampler",
    "Block",
    "BlockPlanner",
    "ScratchPool",
    "format_arpa_lines",
    "format_arpa_lines_reference",
    "attach_provenance",
    "block_plan",
    "fused_linear",
    "fused_linear_reference",
    "masked_linear",
    "masked_linear_reference",
    "nade_hidden_logits",
    "nade_hidden_logits_reference",
    "onednn_available",
    "plan_area",
    "split_provenance",
]

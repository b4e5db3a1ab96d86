r"""Keeping Pyro's provenance tracking intact across kernels that leave plain PyTorch.

Pyro tracks which sample sites a tensor depends on with a tensor subclass,
:class:`pyro.ops.provenance.ProvenanceTensor`, that carries a set of site names through every
PyTorch operation (``__torch_function__``). ``TraceGraph_ELBO`` passes a guide's sampled values
to ``log_prob`` in this form, and :func:`pyro.infer.inspect.get_dependencies` (which
:class:`~pyro_ar.infer.GibbsKernel` relies on) reads the provenance of every ``log_prob``.

A custom :class:`torch.autograd.Function`, an ``out=`` buffer or a NumPy/Numba kernel does not
propagate that subclass correctly: given a ``ProvenanceTensor`` a custom Function returns an
output *detached from the autograd graph*, and NumPy drops the provenance. So every kernel in
:mod:`pyro_ar.ops` runs on the plain tensors underneath (:func:`split_provenance`) and puts the
union of its inputs' provenance on its outputs (:func:`attach_provenance`): outputs depend on
every input, which is what provenance means for an elementwise or matrix kernel.

The plain tensor under a ``ProvenanceTensor`` is the very tensor that was wrapped (same autograd
history), so gradients are unchanged.

Example:
    >>> from pyro.ops.provenance import ProvenanceTensor, get_provenance
    >>> x = ProvenanceTensor(torch.ones(3), frozenset({"z"}))
    >>> (plain,), provenance = split_provenance(x)
    >>> type(plain) is torch.Tensor, sorted(provenance)
    (True, ['z'])
    >>> sorted(get_provenance(attach_provenance(plain * 2, provenance)))
    ['z']
"""

from __future__ import annotations

__all__ = ["attach_provenance", "split_provenance"]

from typing import TypeVar

from pyro.ops.provenance import extract_provenance, track_provenance

T = TypeVar("T")


def split_provenance(*tensors: T) -> tuple[list[T], frozenset]:
    """The plain tensors under ``tensors`` (``None`` and plain tensors pass through unchanged)
    and the union of their provenance sets.

    Only the arguments themselves are unwrapped (no recursion into lists), so containers that a
    kernel mutates by identity, such as scratch pools, are never copied.

    Example:
        >>> from pyro.ops.provenance import track_provenance
        >>> tracked = track_provenance(torch.ones(2), frozenset({"z"}))
        >>> (plain,), provenance = split_provenance(tracked)
        >>> type(plain).__name__, provenance
        ('Tensor', frozenset({'z'}))
    """
    plain, provenance = [], frozenset()
    for tensor in tensors:
        value, found = extract_provenance(tensor)
        plain.append(value)
        provenance = provenance | found
    return plain, provenance


def attach_provenance(result: T, provenance: frozenset) -> T:
    """``result`` (a tensor, or a tuple/list/dict of tensors) carrying ``provenance``; unchanged
    when ``provenance`` is empty.

    Example:
        >>> from pyro.ops.provenance import get_provenance
        >>> get_provenance(attach_provenance(torch.ones(2), frozenset({"z"})))
        frozenset({'z'})
    """
    return track_provenance(result, provenance) if provenance else result

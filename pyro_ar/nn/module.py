r"""The contract of the modules that hold a model's parameters and return its distribution.

A :class:`DensityModule` is an ``nn.Module`` whose call returns a Pyro distribution, so that
``pyro.module`` registers its parameters and a model writes ``pyro.sample("x", module(),
obs=data)``. Written once here, for every model:

- **Registration by name**: ``class NADEModule(DensityModule, name="nade")`` puts the class in
  :data:`MODULES`, which checkpoints, the command line and the benchmarks read.
- **Configuration**: the constructor's arguments are recorded as :attr:`DensityModule.config`
  (plain values; the initialization data is not kept), from which a checkpoint rebuilds the
  module before loading its weights.
- **Seeding**: :meth:`DensityModule.seeded` draws the initial parameters from ``seed`` without
  touching PyTorch's global generator (``seed=None``: from the global generator).
- **Names**: every module takes ``num_dims`` (:math:`D`) first (an image model its
  ``image_shape``, and has ``num_dims`` as a property) and ``hidden_features`` (an
  integer, or a list of layer sizes where a model has several layers) where it has hidden units.
- **Data**: :meth:`DensityModule.shape_data` turns rows ``(N, D)`` into what the distribution
  scores (images ``(N, C, H, W)`` for a PixelCNN).
- **State**: calling the module never changes it; a training loop calls
  :meth:`DensityModule.after_optimizer_step` after every step (a MADE with several mask sets
  moves to its next one there). :attr:`DensityModule.objective` names how it trains
  (``"maximum_likelihood"`` or ``"contrastive_divergence"``).

A new model is one file with one such class.
"""

from __future__ import annotations

__all__ = [
    "MODULES",
    "AutoregressiveModule",
    "DensityModule",
    "layer_sizes",
    "single_layer_size",
]

import contextlib
import functools
import inspect
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

#: The registered modules by name (``pyro-ar fit NAME``, checkpoints).
MODULES: dict[str, type[DensityModule]] = {}

#: Constructor arguments that initialize but are not configuration.
_NOT_CONFIGURATION = frozenset({"self", "data"})


def _plain(value: Any) -> Any:
    """A configuration value as plain data (tensors and tuples become lists)."""
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class DensityModule(nn.Module):
    """Base class of the parameter-holding modules (see the module docstring).

    Subclasses implement ``forward(context=None)``, returning the distribution (with batch
    shape ``context.shape[:-1]`` when a context is given), and declare themselves with a name:

    Example:
        >>> class Coin(DensityModule, name="coin-example"):
        ...     def __init__(self, num_dims: int, seed: int | None = None):
        ...         super().__init__()
        ...         with self.seeded(seed):
        ...             self.logits = nn.Parameter(torch.randn(num_dims))
        ...
        ...     def forward(self, context=None):
        ...         import pyro.distributions as dist
        ...
        ...         return dist.Bernoulli(logits=self.logits).to_event(1)
        >>> Coin(3, seed=0).config
        {'num_dims': 3, 'seed': 0}
        >>> MODULES["coin-example"] is Coin
        True
    """

    #: The registered name (``None`` for an unregistered class).
    name: ClassVar[str | None] = None
    #: How the command line trains it: ``"maximum_likelihood"`` or ``"contrastive_divergence"``.
    objective: ClassVar[str] = "maximum_likelihood"

    def __init_subclass__(cls, name: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            if name in MODULES and MODULES[name].__qualname__ != cls.__qualname__:
                raise ValueError(f"a module named {name!r} is already registered")
            MODULES[name] = cls
            cls.name = name
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__init__)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's arguments (defaults included, the initialization data left out),
        as plain values: ``type(module)(**module.config)`` builds a module of the same shape."""
        return dict(getattr(self, "_config", {}))

    @staticmethod
    @contextlib.contextmanager
    def seeded(seed: int | None) -> Iterator[None]:
        """Draws inside the block from ``seed`` (PyTorch's global generator is restored
        afterwards), or from the global generator when ``seed`` is ``None``."""
        if seed is None:
            yield
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    def shape_data(self, data: Tensor) -> Tensor:
        """Rows of flat data ``(N, D)`` as the distribution takes them (unchanged by default;
        an image model gives ``(N, C, H, W)``). The command line and the benchmarks pass their
        data through it."""
        return data

    def after_optimizer_step(self) -> None:
        """Called by training loops after every optimizer step (default: nothing)."""

    @classmethod
    def for_data(cls, data: Tensor, **options: Any) -> DensityModule:
        """A module for training data ``(N, D)``: ``num_dims`` from the data, the data for
        initialization where the module takes it, and those ``options`` that its constructor
        accepts (so that one call builds any registered module)."""
        parameters = inspect.signature(cls.__init__).parameters
        arguments = {key: value for key, value in options.items() if key in parameters}
        if "data" in parameters:
            arguments["data"] = data
        return cls(data.shape[-1], **arguments)


def _recording(init):
    """Wraps a subclass ``__init__`` so that the outermost call records its bound arguments."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        outermost = not getattr(self, "_recording_config", False)
        if outermost:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            object.__setattr__(self, "_recording_config", True)
        try:
            init(self, *args, **kwargs)
        finally:
            if outermost:
                object.__setattr__(self, "_recording_config", False)
        if outermost:
            config = {
                key: _plain(value)
                for key, value in bound.arguments.items()
                if key not in _NOT_CONFIGURATION
                and signature.parameters[key].kind
                not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            }
            self._config = config

    return __init__


def layer_sizes(owner: str, hidden_features: int | Sequence[int]) -> list[int]:
    """``hidden_features`` as a list of positive layer sizes (an integer is one layer).

    Raises:
        ValueError: naming the module and what was given.

    Example:
        >>> layer_sizes("MADEModule", 8), layer_sizes("MADEModule", (16, 8))
        ([8], [16, 8])
    """
    sizes = [hidden_features] if isinstance(hidden_features, int) else list(hidden_features)
    if not sizes or any(
        isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in sizes
    ):
        raise ValueError(
            f"{owner}: hidden_features must be a positive integer or a list of them, got "
            f"{hidden_features!r}"
        )
    return sizes


def single_layer_size(owner: str, hidden_features: int | Sequence[int]) -> int:
    """``hidden_features`` of a model with one hidden layer: an integer, or a list of one.

    Raises:
        ValueError: naming the module and what was given.

    Example:
        >>> single_layer_size("NADEModule", 8), single_layer_size("NADEModule", [8])
        (8, 8)
    """
    sizes = layer_sizes(owner, hidden_features)
    if len(sizes) != 1:
        raise ValueError(f"{owner} has one hidden layer; hidden_features got {hidden_features!r}")
    return sizes[0]


class AutoregressiveModule(DensityModule):
    """A :class:`DensityModule` of a fully-visible autoregressive model with an ordering and an
    optional context: the checks and the ``ordering`` buffer that FVSBN and NADE share.

    Arguments:
        num_dims: :math:`D`, at least 1.
        ordering: A permutation of ``range(D)`` (natural order if ``None``), kept as the buffer
            ``ordering`` (checkpoints carry it).
        context_features: Size of the context (0 for none).

    Example:
        >>> from pyro_ar.nn import NADEModule
        >>> module = NADEModule(6, 4, ordering=[5, 4, 3, 2, 1, 0])
        >>> isinstance(module, AutoregressiveModule), module().ordering.tolist()
        (True, [5, 4, 3, 2, 1, 0])
    """

    def __init__(
        self, num_dims: int, ordering: Tensor | Sequence[int] | None, context_features: int
    ) -> None:
        from ..distributions.autoregressive import check_ordering

        super().__init__()
        owner = type(self).__name__
        if isinstance(num_dims, bool) or not isinstance(num_dims, int) or num_dims < 1:
            raise ValueError(f"{owner}: num_dims must be a positive integer, got {num_dims!r}")
        if context_features < 0:
            raise ValueError(f"{owner}: context_features must be >= 0, got {context_features}")
        self.num_dims = num_dims
        self.context_features = context_features
        self.register_buffer("ordering", check_ordering(ordering, num_dims, "cpu"))

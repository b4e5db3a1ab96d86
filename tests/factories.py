"""Every factory the tests share, in one place: distributions with random parameters for the
autoregressive contract, one case per public distribution for the conformance suite, modules
for the Pyro integration tests, and data files in the formats the loaders read.

Conformance cases: every case builds its distribution from leaf parameters (``case.parameters``,
which require grad) and an *offset* tensor of shape ``batch_shape + (case.width,)`` that enters
one of its inputs (a bias, the location, a MADE context, an n-gram prefix). The offset sets the
batch shape, carries the batch dimensions of parameters, and is how an upstream Pyro site feeds
the distribution in the dependency and inference tests. Sizes are small enough to enumerate the
support of every discrete case.
"""

from __future__ import annotations

import gzip
import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from pyro.distributions import TorchDistribution
from torch import Tensor

from pyro_ar.data.mnist import MNIST_FILES
from pyro_ar.distributions import (
    FVSBN,
    NADE,
    PPCA,
    RBM,
    BernoulliMADE,
    CategoricalMADE,
    FactorAnalysis,
    GaussianBernoulliRBM,
    GaussianMADE,
    MADEEnsemble,
    MarkovChain,
    MixtureOfGaussiansMADE,
    NGramChain,
    PixelCNN,
)
from pyro_ar.nn import (
    FVSBNModule,
    GatedPixelCNNNetwork,
    MADEModule,
    MaskedAutoencoder,
    NADEModule,
    PixelCNNNetwork,
)

# ------------------------------------------------------- distributions with random parameters


def make_fvsbn(
    num_dims,
    batch_shape=(),
    ordering=None,
    device="cpu",
    dtype=torch.float64,
    scale=1.0,
    generator=None,
):
    """An FVSBN with random N(0, 1) parameters (logits multiplied by ``scale``)."""
    weight = torch.randn(*batch_shape, num_dims, num_dims, generator=generator, dtype=dtype)
    bias = torch.randn(*batch_shape, num_dims, generator=generator, dtype=dtype)
    return FVSBN(weight.to(device) * scale, bias.to(device) * scale, ordering=ordering)


def make_nade(
    num_dims,
    batch_shape=(),
    ordering=None,
    device="cpu",
    dtype=torch.float64,
    scale=1.0,
    hidden=6,
    generator=None,
    chunk_size=3,
):
    """A NADE with random parameters (logits multiplied by ``scale``)."""

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype).to(device)

    return NADE(
        randn(*batch_shape, hidden, num_dims) * 1.5,
        randn(*batch_shape, hidden),
        randn(*batch_shape, num_dims, hidden) * 1.5 * scale,
        randn(*batch_shape, num_dims) * scale,
        ordering=ordering,
        chunk_size=chunk_size,
    )


def make_made(
    num_dims,
    batch_shape=(),
    ordering=None,
    device="cpu",
    dtype=torch.float64,
    scale=1.0,
    generator=None,
    hidden=(12, 12),
    direct_connections=True,
):
    """A Bernoulli MADE with random weights; a batch shape comes from a random context."""
    context_features = 2 if batch_shape else 0
    network = MaskedAutoencoder(
        num_dims,
        hidden,
        ordering=ordering,
        direct_connections=direct_connections,
        context_features=context_features,
        activation=torch.nn.Tanh,
    ).to(device=device, dtype=dtype)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=dtype))
        for layer in (network.output, network.direct):
            if layer is not None:
                for parameter in layer.parameters():
                    parameter.mul_(scale)
    context = None
    if batch_shape:
        context = torch.randn(*batch_shape, 2, generator=generator, dtype=dtype).to(device)
    return BernoulliMADE(network, context)


MODEL_FACTORIES = {"fvsbn": make_fvsbn, "nade": make_nade, "made": make_made}


# ----------------------------------------------------------- modules for Pyro's inference


MODULE_FACTORIES = {
    "fvsbn": lambda data, context=0: FVSBNModule(64, data=data, context_features=context),
    "made": lambda data, context=0: MADEModule(
        64, [48], data=data, context_features=context, direct_connections=True
    ),
    "nade": lambda data, context=0: NADEModule(
        64, 16, data=data, context_features=context, seed=0
    ),
}


# ------------------------------------------------------------------------------ data files


def write_idx(path, array, compress=False, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        struct.pack(">I", size) for size in array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def write_fake_mnist(directory, compress=True, corrupt=None):
    """Writes four small-but-valid IDX files with MNIST's names and shapes."""
    directory.mkdir(exist_ok=True)
    suffix = ".gz" if compress else ""
    for stem, shape in MNIST_FILES.items():
        # a repeating ramp: every grey level occurs, and gzip handles it quickly
        array = (np.arange(int(np.prod(shape))) % (251 if len(shape) == 3 else 10)).reshape(shape)
        if stem == corrupt:
            array = array[:-1]
        write_idx(directory / (stem + suffix), array, compress)


# ----------------------------------------------------------- one case per public distribution


@dataclass
class Case:
    """A distribution family at one parameter setting."""

    name: str
    make: Callable[[Tensor], TorchDistribution]
    width: int
    dtype: torch.dtype
    parameters: list[Tensor] = field(default_factory=list)
    #: the value support: "binary", "categorical" (integer ids) or "real"
    kind: str = "binary"
    #: all states of the support when it is small enough to enumerate (discrete cases)
    states: Tensor | None = None

    def __call__(self, offset: Tensor | None = None) -> TorchDistribution:
        if offset is None:
            offset = torch.zeros(self.width, dtype=self.dtype)
        return self.make(offset)

    def offset(self, *batch_shape: int, seed: int = 0) -> Tensor:
        generator = torch.Generator().manual_seed(seed)
        shape = (*batch_shape, self.width)
        return torch.randn(shape, generator=generator, dtype=torch.float64).to(self.dtype)

    @property
    def discrete(self) -> bool:
        return self.kind != "real"


def _leaves(generator: torch.Generator, dtype: torch.dtype, *shapes, scale: float = 1.0):
    return [
        # drawn in float64 and cast, so that both dtypes get the same parameters
        (scale * torch.randn(tuple(shape), generator=generator, dtype=torch.float64))
        .to(dtype)
        .requires_grad_()
        for shape in shapes
    ]


def _binary_states(num_dims: int, dtype: torch.dtype) -> Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=num_dims)), dtype=dtype)


def _network(
    generator: torch.Generator,
    dtype: torch.dtype,
    num_dims: int,
    outputs: int,
    context: int,
    masks: int = 1,
) -> MaskedAutoencoder:
    network = MaskedAutoencoder(
        num_dims,
        [10],
        outputs_per_dim=outputs,
        ordering=[2, 0, 3, 1][:num_dims] if num_dims == 4 else None,
        direct_connections=True,
        context_features=context,
        activation=torch.nn.Tanh,
        num_masks=masks,
        order_agnostic=masks > 1,
        seed=1,
    ).to(dtype)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return network


def fvsbn(dtype: torch.dtype, seed: int = 0) -> Case:
    generator = torch.Generator().manual_seed(seed)
    weight, bias = _leaves(generator, dtype, (4, 4), (4,))
    return Case(
        "fvsbn",
        lambda offset: FVSBN(weight, bias + offset, ordering=[1, 3, 0, 2]),
        4,
        dtype,
        [weight, bias],
        states=_binary_states(4, dtype),
    )


def nade(dtype: torch.dtype, seed: int = 0) -> Case:
    generator = torch.Generator().manual_seed(seed)
    weight, bias, output_weight, output_bias = _leaves(
        generator, dtype, (3, 4), (3,), (4, 3), (4,), scale=1.5
    )
    return Case(
        "nade",
        lambda offset: NADE(
            weight, bias + offset, output_weight, output_bias, ordering=[3, 1, 0, 2], chunk_size=3
        ),
        3,
        dtype,
        [weight, bias, output_weight, output_bias],
        states=_binary_states(4, dtype),
    )


def _binary_made(name: str, distribution: type, masks: int, dtype: torch.dtype, seed: int) -> Case:
    network = _network(torch.Generator().manual_seed(seed), dtype, 4, 1, 2, masks=masks)
    return Case(
        name,
        lambda offset: distribution(network, offset),
        2,
        dtype,
        list(network.parameters()),
        states=_binary_states(4, dtype),
    )


def bernoulli_made(dtype: torch.dtype, seed: int = 0) -> Case:
    return _binary_made("bernoulli_made", BernoulliMADE, 1, dtype, seed)


def made_ensemble(dtype: torch.dtype, seed: int = 0) -> Case:
    return _binary_made("made_ensemble", MADEEnsemble, 3, dtype, seed)


def categorical_made(dtype: torch.dtype, seed: int = 0) -> Case:
    network = _network(torch.Generator().manual_seed(seed), dtype, 3, 3, 2)
    states = torch.tensor(list(itertools.product(range(3), repeat=3)))
    return Case(
        "categorical_made",
        lambda offset: CategoricalMADE(network, offset),
        2,
        dtype,
        list(network.parameters()),
        kind="categorical",
        states=states,
    )


def _real_made(name: str, family, outputs: int, dtype: torch.dtype, seed: int) -> Case:
    network = _network(torch.Generator().manual_seed(seed), dtype, 3, outputs, 2)
    with torch.no_grad():  # moderate log-scales
        network.output.weight.mul_(0.3)
        network.output.bias.mul_(0.3)
    return Case(
        name,
        lambda offset: family(network, offset),
        2,
        dtype,
        list(network.parameters()),
        kind="real",
    )


def gaussian_made(dtype: torch.dtype, seed: int = 0) -> Case:
    return _real_made("gaussian_made", GaussianMADE, 2, dtype, seed)


def mixture_made(dtype: torch.dtype, seed: int = 0) -> Case:
    return _real_made("mixture_made", MixtureOfGaussiansMADE, 6, dtype, seed)


def ppca(dtype: torch.dtype, seed: int = 0) -> Case:
    generator = torch.Generator().manual_seed(seed)
    loc, weight, log_scale = _leaves(generator, dtype, (4,), (4, 2), ())
    return Case(
        "ppca",
        lambda offset: PPCA(loc + offset, weight, (log_scale - 0.5).exp()),
        4,
        dtype,
        [loc, weight, log_scale],
        kind="real",
    )


def factor_analysis(dtype: torch.dtype, seed: int = 0) -> Case:
    generator = torch.Generator().manual_seed(seed)
    loc, weight, log_scale = _leaves(generator, dtype, (4,), (4, 2), (4,))
    return Case(
        "factor_analysis",
        lambda offset: FactorAnalysis(loc + offset, weight, (0.5 * log_scale - 0.5).exp()),
        4,
        dtype,
        [loc, weight, log_scale],
        kind="real",
    )


def rbm(dtype: torch.dtype, seed: int = 0) -> Case:
    generator = torch.Generator().manual_seed(seed)
    weight, visible_bias, hidden_bias = _leaves(generator, dtype, (3, 4), (4,), (3,))
    return Case(
        "rbm",
        lambda offset: RBM(weight, visible_bias, hidden_bias + offset, burn_in=50),
        3,
        dtype,
        [weight, visible_bias, hidden_bias],
        states=_binary_states(4, dtype),
    )


def gaussian_rbm(dtype: torch.dtype, seed: int = 0) -> Case:
    generator = torch.Generator().manual_seed(seed)
    weight, visible_bias, hidden_bias, log_scale = _leaves(
        generator, dtype, (3, 3), (3,), (3,), (3,), scale=0.5
    )
    return Case(
        "gaussian_rbm",
        lambda offset: GaussianBernoulliRBM(
            weight, visible_bias, hidden_bias + offset, log_scale.exp(), burn_in=50
        ),
        3,
        dtype,
        [weight, visible_bias, hidden_bias, log_scale],
        kind="real",
    )


def markov_chain(dtype: torch.dtype, seed: int = 0) -> Case:
    generator = torch.Generator().manual_seed(seed)
    (logits,) = _leaves(generator, dtype, (4, 3))
    states = torch.tensor(list(itertools.product(range(3), repeat=3)))
    return Case(
        "markov_chain",
        lambda offset: MarkovChain(
            torch.softmax(logits + offset.unsqueeze(-2), -1), length=3, end_state=2
        ),
        3,
        dtype,
        [logits],
        kind="categorical",
        states=states,
    )


_NGRAM_MODEL = None


def _ngram_model():
    global _NGRAM_MODEL
    if _NGRAM_MODEL is None:
        from pyro_ar.ngram import NGramModel

        sentences = [["a", "b"], ["b", "a", "a"], ["a"], ["b", "b", "a"]] * 2
        _NGRAM_MODEL = NGramModel.fit(sentences, order=2, smoothing="witten_bell")
    return _NGRAM_MODEL


def ngram_chain(dtype: torch.dtype, seed: int = 0) -> Case:
    model = _ngram_model()
    vocabulary = model.vocabulary
    words = vocabulary.encode(["a", "b"])
    size = len(vocabulary)
    states = torch.tensor(list(itertools.product(range(size), repeat=3)))
    temperature = 0.8 if seed else 1.0

    def make(offset: Tensor) -> NGramChain:
        # the prefix word: "a" where the offset is negative, "b" otherwise
        prefix = torch.where(offset[..., :1] > 0, words[1], words[0])
        return NGramChain(model, 3, prefix=prefix, temperature=temperature, dtype=dtype)

    return Case("ngram_chain", make, 1, dtype, [], kind="categorical", states=states)


def _image_network(architecture, generator, dtype, image_shape, levels, context):
    network = architecture(
        image_shape,
        num_levels=levels,
        hidden_channels=6 if image_shape[0] == 3 else 4,
        num_layers=2,
        first_kernel_size=3,
        context_features=context,
    ).to(dtype)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return network


def pixelcnn(dtype: torch.dtype, seed: int = 0) -> Case:
    """A binary 2x3 image model (Gated PixelCNN) whose context is the offset."""
    generator = torch.Generator().manual_seed(seed)
    network = _image_network(GatedPixelCNNNetwork, generator, dtype, (1, 2, 3), 2, 2)
    return Case(
        "pixelcnn",
        lambda offset: PixelCNN(network, offset),
        2,
        dtype,
        list(network.parameters()),
        states=_binary_states(6, dtype).view(-1, 1, 2, 3),
    )


def categorical_pixelcnn(dtype: torch.dtype, seed: int = 0) -> Case:
    """Three channels of three levels on a 1x2 image (original PixelCNN, channel masks)."""
    generator = torch.Generator().manual_seed(seed)
    network = _image_network(PixelCNNNetwork, generator, dtype, (3, 1, 2), 3, 2)
    states = torch.tensor(list(itertools.product(range(3), repeat=6))).view(-1, 1, 2, 3)
    return Case(
        "categorical_pixelcnn",
        lambda offset: PixelCNN(network, offset),
        2,
        dtype,
        list(network.parameters()),
        kind="categorical",
        states=states.permute(0, 3, 1, 2).contiguous(),
    )


CASES: dict[str, Callable[..., Case]] = {
    function.__name__: function
    for function in (
        fvsbn,
        nade,
        bernoulli_made,
        made_ensemble,
        categorical_made,
        gaussian_made,
        mixture_made,
        ppca,
        factor_analysis,
        rbm,
        gaussian_rbm,
        markov_chain,
        ngram_chain,
        pixelcnn,
        categorical_pixelcnn,
    )
}

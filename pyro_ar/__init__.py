r"""pyro_ar: classic deep density models as Pyro distributions.

Subpackages:

* :mod:`pyro_ar.distributions`: the models as Pyro ``Distribution`` subclasses;
* :mod:`pyro_ar.nn`: ``torch.nn.Module`` s that hold the parameters and return distributions;
* :mod:`pyro_ar.infer`: training (maximum likelihood trainer, checkpoints);
* :mod:`pyro_ar.data`: data loaders (binarized digits, MNIST, Penn Treebank, text);
* :mod:`pyro_ar.ngram`: count-based n-gram language models (smoothing, ARPA files);
* :mod:`pyro_ar.diagnostics`: MCMC output as ArviZ ``InferenceData``;
* :mod:`pyro_ar.ops`: numerical building blocks of the samplers (fused GEMMs, fast exact draws).
"""

__version__ = "0.1.0"

from . import data, diagnostics, distributions, infer, ngram, nn, ops

__all__ = ["__version__", "data", "diagnostics", "distributions", "infer", "ngram", "nn", "ops"]

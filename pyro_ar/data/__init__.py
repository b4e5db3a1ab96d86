r"""Data sets: binarized digits (embedded default), MNIST from IDX files, the Penn Treebank and
your own text (tokenization and vocabularies for the n-gram models)."""

from __future__ import annotations

import os

from ..ngram.vocabulary import (
    Tokenizer,
    UnknownTokenError,
    Vocabulary,
    pad_sequences,
    read_sentences,
)
from .binarization import DynamicBinarization, binarize_stochastic, binarize_threshold
from .digits import load_binarized_digits, load_digits_intensities
from .mnist import (
    MNIST_DIR_VARIABLE,
    DataFileError,
    download_mnist,
    load_binarized_mnist,
    load_mnist,
    read_idx,
)
from .penn_treebank import load_penn_treebank
from .splits import DataSplits

#: Names accepted by :func:`load_binary_dataset` (and ``pyro-ar --data``).
DATASETS = ("digits", "mnist")


def load_binary_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    binarization: str = "stochastic",
    seed: int = 0,
) -> DataSplits:
    """Loads a binary image data set by name.

    Arguments:
        name: ``"digits"`` (embedded; ignores the other arguments) or ``"mnist"``.
        data_dir: MNIST's directory (default ``$PYRO_AR_MNIST_DIR``).
        binarization: MNIST's binarization, ``"stochastic"`` or ``"threshold"``.
        seed: Seed of the stochastic binarization.

    Example:
        >>> load_binary_dataset("digits").train.shape  # "mnist" reads data_dir
        torch.Size([1437, 64])
    """
    if name == "digits":
        return load_binarized_digits()
    if name == "mnist":
        return load_binarized_mnist(data_dir, binarization=binarization, seed=seed)
    raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


__all__ = [
    "DATASETS",
    "MNIST_DIR_VARIABLE",
    "DataFileError",
    "DataSplits",
    "Tokenizer",
    "UnknownTokenError",
    "Vocabulary",
    "DynamicBinarization",
    "binarize_stochastic",
    "binarize_threshold",
    "download_mnist",
    "load_binarized_digits",
    "load_binarized_mnist",
    "load_binary_dataset",
    "load_digits_intensities",
    "load_mnist",
    "load_penn_treebank",
    "pad_sequences",
    "read_idx",
    "read_sentences",
]

r"""The 8x8 handwritten digits embedded in pyro_ar, binarized: the default data set."""

from __future__ import annotations

__all__ = ["load_binarized_digits", "load_digits_intensities"]

import gzip
from importlib import resources

import numpy as np
import torch
from torch import Tensor

from .binarization import binarize_threshold
from .splits import DataSplits

#: The digits' grey levels run from 0 to this value.
MAX_INTENSITY = 16


def load_digits_intensities() -> tuple[Tensor, Tensor]:
    """The 1,797 digits as grey levels in ``[0, 1]``, shape ``(1797, 64)``, and their labels.

    The data are the UCI optical-recognition digits that scikit-learn bundles as
    ``load_digits``; pyro_ar embeds a copy so that it needs no scikit-learn.

    Example:
        >>> images, labels = load_digits_intensities()
        >>> images.shape, float(images.min()), float(images.max()), labels[:5].tolist()
        (torch.Size([1797, 64]), 0.0, 1.0, [0, 1, 2, 3, 4])
    """
    source = resources.files("pyro_ar.data").joinpath("resources/digits.csv.gz")
    with source.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    pixels = torch.from_numpy(table[:, :64]).float() / MAX_INTENSITY
    return pixels, torch.from_numpy(table[:, 64])


def load_binarized_digits() -> DataSplits:
    r"""Binarized 8x8 digits with a fixed split: pyro_ar's embedded default data.

    Binarization: a pixel is 1 when its grey level is at least half the maximum
    (``level > 7`` on the 0..16 scale, i.e. :func:`binarize_threshold` at 7/16).
    Split, by the index :math:`i` of the digit in the original file (no randomness, so it is the
    same on every machine and version): test :math:`i \bmod 10 = 0` (180 digits), validation
    :math:`i \bmod 10 = 1` (180), training the rest (1,437).

    Returns:
        Splits of shape ``(N, 64)`` in ``float32``, ``image_shape == (8, 8)``.

    Example:
        >>> digits = load_binarized_digits()
        >>> digits.train.shape, digits.test.shape, digits.train.unique().tolist()
        (torch.Size([1437, 64]), torch.Size([180, 64]), [0.0, 1.0])
    """
    pixels, _ = load_digits_intensities()
    binary = binarize_threshold(pixels, threshold=7 / MAX_INTENSITY)
    remainder = torch.arange(len(binary)) % 10
    return DataSplits(
        name="digits",
        train=binary[remainder >= 2],
        valid=binary[remainder == 1],
        test=binary[remainder == 0],
        image_shape=(8, 8),
        description=(
            "UCI 8x8 digits (sklearn load_digits), pixel = [level > 7 of 16]; "
            "split by index mod 10: 0 test, 1 valid, else train"
        ),
    )

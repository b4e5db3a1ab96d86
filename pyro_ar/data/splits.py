r"""Train/validation/test splits of a data set."""

from __future__ import annotations

__all__ = ["DataSplits"]

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class DataSplits:
    """A data set divided into training, validation and test sets.

    Attributes:
        name: Short name of the data set (``"digits"``, ``"mnist"``).
        train: Training examples, shape ``(N_train, D)``.
        valid: Validation examples (early stopping), shape ``(N_valid, D)``.
        test: Test examples, shape ``(N_test, D)``.
        image_shape: ``(height, width)`` of each example seen as an image.
        description: How the data were made (source, binarization, split).

    Example:
        >>> from pyro_ar.data import load_binarized_digits
        >>> digits = load_binarized_digits()
        >>> digits.name, digits.num_dims, digits.image_shape, len(digits.valid)
        ('digits', 64, (8, 8), 180)
    """

    name: str
    train: Tensor
    valid: Tensor
    test: Tensor
    image_shape: tuple[int, int]
    description: str

    @property
    def num_dims(self) -> int:
        """The number of dimensions :math:`D` of each example."""
        return self.train.shape[-1]

    def __getitem__(self, split: str) -> Tensor:
        if split not in ("train", "valid", "test"):
            raise KeyError(f"unknown split {split!r}; choose 'train', 'valid' or 'test'")
        return getattr(self, split)

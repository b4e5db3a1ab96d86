r"""Pyro distributions of the classic deep density models."""

from .autoregressive import BinaryAutoregressive
from .fvsbn import FVSBN
from .nade import NADE

__all__ = ["BinaryAutoregressive", "FVSBN", "NADE"]

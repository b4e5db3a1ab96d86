r"""Count-based n-gram language models: vectorized counting, smoothing (up to modified
Kneser-Ney), batched scoring, ARPA files, and classification by author."""

from .arpa import ARPAFormatError, read_arpa, write_arpa
from .classification import class_posterior
from .counts import NGramCounts, count_ngrams
from .model import NGramModel
from .smoothing import SMOOTHING_METHODS, DiscountError, Interpolation, smooth

__all__ = [
    "ARPAFormatError",
    "SMOOTHING_METHODS",
    "DiscountError",
    "Interpolation",
    "NGramCounts",
    "NGramModel",
    "count_ngrams",
    "class_posterior",
    "read_arpa",
    "smooth",
    "write_arpa",
]

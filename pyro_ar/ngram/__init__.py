r"""Count-based n-gram language models: tokens and vocabularies, vectorized counting, smoothing
(up to modified Kneser-Ney), batched scoring, ARPA files, and classification by author."""

from .arpa import ARPA_ZERO, UNIGRAM_SUM_TOLERANCE, ARPAFormatError, read_arpa, write_arpa
from .classification import class_posterior
from .counts import NGramCounts, count_ngrams
from .model import NGramModel, NGramTable, NGramTableError
from .smoothing import SMOOTHING_METHODS, DiscountError, Interpolation, smooth
from .vocabulary import Tokenizer, UnknownTokenError, Vocabulary, pad_sequences, read_sentences

__all__ = [
    "ARPA_ZERO",
    "UNIGRAM_SUM_TOLERANCE",
    "ARPAFormatError",
    "SMOOTHING_METHODS",
    "DiscountError",
    "Interpolation",
    "NGramCounts",
    "NGramModel",
    "NGramTable",
    "NGramTableError",
    "Tokenizer",
    "UnknownTokenError",
    "Vocabulary",
    "count_ngrams",
    "class_posterior",
    "pad_sequences",
    "read_arpa",
    "read_sentences",
    "smooth",
    "write_arpa",
]

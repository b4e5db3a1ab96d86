r"""Count-based n-gram language models: tokens and vocabularies, vectorized counting, smoothing
(up to modified Kneser-Ney), batched scoring, ARPA files, and classification by author."""

from .arpa import ARPA_ZERO, UNIGRAM_SUM_TOLERANCE, ARPAFormatError, read_arpa, write_arpa
from .classification import class_posterior
from .counts import NGramCounts, count_in_shards, count_ngrams, merge_counts
from .model import NGramModel, NGramTable, NGramTableError
from .smoothing import SMOOTHING_METHODS, DiscountError, Interpolation, smooth
from .vocabulary import (
    KENLM_TOKEN_PATTERN,
    SEPARATORS,
    SpecialTokenError,
    Tokenizer,
    UnknownTokenError,
    Vocabulary,
    pad_sequences,
    read_sentences,
)

__all__ = [
    "ARPA_ZERO",
    "UNIGRAM_SUM_TOLERANCE",
    "ARPAFormatError",
    "KENLM_TOKEN_PATTERN",
    "SEPARATORS",
    "SpecialTokenError",
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
    "count_in_shards",
    "count_ngrams",
    "merge_counts",
    "class_posterior",
    "pad_sequences",
    "read_arpa",
    "read_sentences",
    "smooth",
    "write_arpa",
]

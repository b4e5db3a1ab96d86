r"""Text for the n-gram models: tokenization, a vocabulary with ``<unk>`` and sentence boundaries,
and encoding between strings and id tensors."""

from __future__ import annotations

__all__ = [
    "token_lists",
    "BEGIN_TOKEN",
    "END_TOKEN",
    "UNKNOWN_TOKEN",
    "Tokenizer",
    "UnknownTokenError",
    "Vocabulary",
    "pad_sequences",
    "read_sentences",
]

import itertools
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

#: Sentence-start symbol: only ever a context, never predicted (as in ARPA files and KenLM).
BEGIN_TOKEN = "<s>"
#: Sentence-end symbol: predicted like a word (PTB's ``<eos>``).
END_TOKEN = "</s>"
#: Out-of-vocabulary symbol.
UNKNOWN_TOKEN = "<unk>"


class UnknownTokenError(KeyError):
    """A token is not in the vocabulary and the vocabulary has no ``<unk>``.

    Example:
        >>> try:
        ...     Vocabulary(["a", "b"], unknown_token=None).encode(["zebra"])
        ... except UnknownTokenError as error:
        ...     print(type(error).__name__)
        UnknownTokenError
    """

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Tokenizer:
    r"""Splits a line of text into tokens.

    The default splits on whitespace, which is what pre-tokenized corpora (Penn Treebank, the
    output of Moses or spaCy) need. ``pattern`` gives a regular expression whose matches are the
    tokens instead, e.g. ``r"\w+|[^\w\s]"`` separates punctuation from words.

    Arguments:
        pattern: Regular expression matching one token, or ``None`` for whitespace splitting.
        lowercase: Lower-case the line first.

    Example:
        >>> Tokenizer()("Hello, world!"), Tokenizer(lowercase=True)("The Cat")
        (['Hello,', 'world!'], ['the', 'cat'])
    """

    def __init__(self, pattern: str | None = None, lowercase: bool = False):
        self.pattern = pattern
        self.lowercase = lowercase
        self._regex = re.compile(pattern) if pattern is not None else None

    def __call__(self, line: str) -> list[str]:
        if not isinstance(line, str):
            raise TypeError(f"the tokenizer expects a string, got {type(line).__name__}")
        if self.lowercase:
            line = line.lower()
        if self._regex is None:
            return line.split()
        return self._regex.findall(line)

    def __repr__(self) -> str:
        return f"Tokenizer(pattern={self.pattern!r}, lowercase={self.lowercase})"


def read_sentences(
    source: str | os.PathLike | Iterable[str],
    tokenizer: Tokenizer | None = None,
    skip_empty: bool = True,
) -> list[list[str]]:
    """Tokenized sentences, one per line, from a text file or from an iterable of strings.

    Arguments:
        source: A path to a UTF-8 text file, or an iterable of lines (a list of strings).
            A bare string is taken as a path when such a file exists, otherwise it is an error
            (pass ``[text]`` or ``text.splitlines()`` for text in memory).
        tokenizer: Default: whitespace splitting.
        skip_empty: Drop lines with no tokens.

    Example:
        >>> read_sentences(["The cat sat.", "", "A dog"], Tokenizer(lowercase=True))
        [['the', 'cat', 'sat.'], ['a', 'dog']]
    """
    tokenizer = tokenizer or Tokenizer()
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f"no text file {str(source)!r}; to use text in memory, pass a list of lines"
            )
        with open(source, encoding="utf-8") as file:
            lines: Iterable[str] = file.read().splitlines()
    else:
        lines = source
    sentences = [tokenizer(line) for line in lines]
    return [s for s in sentences if s] if skip_empty else sentences


class Vocabulary:
    r"""A bijection between tokens and ids ``0 .. len(self) - 1``.

    Ids: ``<unk>`` (if any) first, then ``<s>``, ``</s>``, then the words by decreasing count
    (ties alphabetically), so the same corpus always gives the same ids. ``<s>`` is only ever a
    context; the models predict the other ``len(self) - 1`` symbols (:attr:`num_predictable`).

    Arguments:
        tokens: The words, in id order (without the special symbols).
        unknown_token: The out-of-vocabulary symbol, or ``None`` for a closed vocabulary in which
            an unknown token is an error.
        begin_token, end_token: Sentence boundary symbols.

    Example:
        >>> vocabulary = Vocabulary.build([["a", "b", "a"], ["b"]])
        >>> vocabulary.decode(torch.arange(len(vocabulary)), strip_end=False)  # specials first
        ['<unk>', '<s>', '</s>', 'a', 'b']
        >>> vocabulary.encode(["b", "zebra"], add_end=True)  # unknown words map to <unk>
        tensor([4, 0, 2])
    """

    def __init__(
        self,
        tokens: Sequence[str],
        unknown_token: str | None = UNKNOWN_TOKEN,
        begin_token: str = BEGIN_TOKEN,
        end_token: str = END_TOKEN,
    ):
        specials = ([unknown_token] if unknown_token is not None else []) + [
            begin_token,
            end_token,
        ]
        self.unknown_token = unknown_token
        self.begin_token = begin_token
        self.end_token = end_token
        words = [t for t in tokens if t not in specials]
        self.itos: list[str] = specials + words
        if len(set(self.itos)) != len(self.itos):
            duplicates = sorted(t for t, c in Counter(self.itos).items() if c > 1)
            raise ValueError(f"duplicate tokens in the vocabulary: {duplicates[:10]}")
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(
        cls,
        sentences: Iterable[Sequence[str]],
        min_count: int = 1,
        max_size: int | None = None,
        unknown_token: str | None = UNKNOWN_TOKEN,
        begin_token: str = BEGIN_TOKEN,
        end_token: str = END_TOKEN,
    ) -> Vocabulary:
        """The words that occur at least ``min_count`` times (at most ``max_size`` of them, the
        most frequent) in tokenized sentences. Rarer words will map to ``<unk>``."""
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        counts = Counter(token for sentence in sentences for token in sentence)
        if not counts:
            raise ValueError("cannot build a vocabulary from an empty corpus")
        kept = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[:max_size]
        if unknown_token is None and len(kept) < len(counts):
            raise ValueError(
                "min_count/max_size drop words but the vocabulary has no unknown token; "
                "pass unknown_token='<unk>'"
            )
        return cls(kept, unknown_token, begin_token, end_token)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, unknown_token={self.unknown_token!r})"

    @property
    def unknown_id(self) -> int | None:
        return None if self.unknown_token is None else self.stoi[self.unknown_token]

    @property
    def begin_id(self) -> int:
        return self.stoi[self.begin_token]

    @property
    def end_id(self) -> int:
        return self.stoi[self.end_token]

    @property
    def num_predictable(self) -> int:
        """Number of symbols a model predicts: every id except ``<s>``."""
        return len(self) - 1

    def lookup(self, token: str) -> int:
        """The id of ``token``; ``<unk>``'s id for an unknown token, or an error without one."""
        index = self.stoi.get(token)
        if index is None:
            if self.unknown_token is None:
                raise UnknownTokenError(
                    f"unknown token {token!r} and the vocabulary has no unknown token "
                    "(build it with unknown_token='<unk>')"
                )
            return self.stoi[self.unknown_token]
        return index

    def encode(self, tokens: Sequence[str], add_end: bool = False) -> Tensor:
        """Ids of tokens as a ``long`` tensor of shape ``(len(tokens) [+ 1],)``."""
        if isinstance(tokens, str):
            raise TypeError("encode expects a list of tokens; tokenize the string first")
        ids = [self.lookup(t) for t in tokens]
        if self.begin_token in tokens:
            raise ValueError(f"{self.begin_token!r} is a context symbol and cannot appear in text")
        if add_end:
            ids.append(self.end_id)
        return torch.tensor(ids, dtype=torch.long)

    def encode_batch(
        self, sentences: Sequence[Sequence[str]], add_end: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Encodes and pads sentences: ids ``(N, max_length)`` (padded with ``</s>``) and
        lengths ``(N,)``. With ``add_end`` each sentence ends with ``</s>`` (in the lengths)."""
        return pad_sequences([self.encode(s, add_end=add_end) for s in sentences], self.end_id)

    def decode(self, ids: Tensor | Sequence[int], strip_end: bool = True) -> list[str]:
        """Tokens of a 1-D id sequence; with ``strip_end`` it stops at the first ``</s>``."""
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        if values and isinstance(values[0], list):
            raise ValueError("decode expects one sequence (1-D); loop over a batch")
        tokens = []
        for index in values:
            if not 0 <= index < len(self):
                raise IndexError(f"id {index} is out of range for a vocabulary of {len(self)}")
            if strip_end and index == self.end_id:
                break
            tokens.append(self.itos[index])
        return tokens

    def encode_corpus(self, sentences: Iterable[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """The corpus as one flat ``int64`` array of ids, each sentence written as ``<s> w_1 ..
        w_n </s>``, and the ``(N + 1,)`` offsets of the sentences in it (CSR layout)."""
        sentences = sentences if isinstance(sentences, list) else list(sentences)
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
        tokens = list(itertools.chain.from_iterable(sentences))
        words = list(map(self.stoi.get, tokens))
        if None in words:
            unknown = self.unknown_id
            if unknown is None:
                self.lookup(tokens[words.index(None)])  # raises the explanatory error
            words = [unknown if w is None else w for w in words]
        word_ids = np.asarray(words, dtype=np.int64)
        if len(word_ids) and bool((word_ids == self.begin_id).any()):
            raise ValueError(f"{self.begin_token!r} cannot appear inside a sentence")
        offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum(lengths + 2, out=offsets[1:])
        flat = np.full(offsets[-1], self.end_id, dtype=np.int64)
        flat[offsets[:-1]] = self.begin_id
        # word j of sentence i sits after the i + 1 boundary symbols before it
        sentence_of_word = np.repeat(np.arange(len(sentences)), lengths)
        flat[np.arange(len(word_ids)) + 2 * sentence_of_word + 1] = word_ids
        return flat, offsets


def pad_sequences(sequences: Sequence[Tensor], padding_value: int) -> tuple[Tensor, Tensor]:
    """Stacks 1-D ``long`` tensors into ``(N, max_length)``, padding on the right, and returns the
    lengths ``(N,)`` too.

    Example:
        >>> padded, lengths = pad_sequences([torch.tensor([1, 2, 3]), torch.tensor([4])], 0)
        >>> padded.tolist(), lengths.tolist()
        ([[1, 2, 3], [4, 0, 0]], [3, 1])
    """
    if len(sequences) == 0:
        raise ValueError("no sequences to pad")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    padded = torch.nn.utils.rnn.pad_sequence(
        list(sequences), batch_first=True, padding_value=padding_value
    )
    return padded, lengths


def token_lists(sentences: Sequence[Sequence[str]] | Sequence[str]) -> list[list[str]]:
    """Sentences as lists of tokens: lists pass through (no copy), strings are split on
    whitespace (:class:`Tokenizer`), other sequences become lists.

    Raises:
        TypeError: ``sentences`` is one string (a common slip: wrap it in a list).

    Example:
        >>> token_lists(["a waste of time", ["great", "plot"]])
        [['a', 'waste', 'of', 'time'], ['great', 'plot']]
    """
    if isinstance(sentences, str):
        raise TypeError("expected a list of sentences, got one string; wrap it in a list")
    if all(type(sentence) is list for sentence in sentences):
        return sentences  # the common case: already tokenized, no copy
    tokenizer = Tokenizer()
    return [tokenizer(s) if isinstance(s, str) else list(s) for s in sentences]

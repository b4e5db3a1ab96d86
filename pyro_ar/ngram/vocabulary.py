r"""Text for the n-gram models: tokenization, a vocabulary with ``<unk>`` and sentence boundaries,
and encoding between strings and id tensors."""

from __future__ import annotations

__all__ = [
    "token_lists",
    "BEGIN_TOKEN",
    "END_TOKEN",
    "KENLM_TOKEN_PATTERN",
    "SEPARATORS",
    "SPECIAL_TOKEN_MODES",
    "check_token",
    "garbage_collection_paused",
    "UNKNOWN_TOKEN",
    "SpecialTokenError",
    "Tokenizer",
    "UnknownTokenError",
    "Vocabulary",
    "pad_sequences",
    "read_sentences",
]

import collections
import contextlib
import gc
import itertools
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

#: Sentence-start symbol: only ever a context, never predicted (as in ARPA files and KenLM).
BEGIN_TOKEN = "<s>"
#: Sentence-end symbol: predicted like a word (PTB's ``<eos>``).
END_TOKEN = "</s>"
#: Out-of-vocabulary symbol.
UNKNOWN_TOKEN = "<unk>"
#: The characters that separate tokens in KenLM's ``lmplz`` input and in ARPA files (NUL, tab,
#: newline, carriage return, space). No token may contain one; any other character, Unicode
#: whitespace such as U+00A0 or U+3000 included, is part of a token.
SEPARATORS = "\x00\t\n\r "
#: A :class:`Tokenizer` pattern that splits a line exactly as ``lmplz`` does.
KENLM_TOKEN_PATTERN = r"[^\x00\t\n\r ]+"
_SEPARATOR = re.compile(r"[\x00\t\n\r ]")
#: Characters on which str.split and lmplz disagree: NUL, and whitespace other than SEPARATORS.
_NOT_KENLM_SPACE = re.compile(r"[\x00]|[^\S\t\n\r ]")
#: The ways :meth:`Vocabulary.encode_corpus` treats ``</s>`` and ``<unk>`` found in text.
SPECIAL_TOKEN_MODES = ("allow", "error", "skip", "unknown")


@contextlib.contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """Pauses CPython's cyclic garbage collector inside the block (restoring its state after).

    Tokenizing a corpus creates millions of lists and strings, none of them in a reference
    cycle; the collector would traverse all of them again and again (it halves the time to
    read a few million tokens). Reference counting still frees everything as usual.

    Example:
        >>> import gc
        >>> with garbage_collection_paused():
        ...     paused = not gc.isenabled()
        >>> paused, gc.isenabled()
        (True, True)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class SpecialTokenError(ValueError):
    """A training sentence contains ``<s>``, ``</s>`` or ``<unk>`` as text.

    Sentence boundaries are added by the library and ``<unk>`` stands for the words outside the
    vocabulary, so these symbols in training text would be counted as something else; KenLM's
    ``lmplz`` rejects them the same way. Pass ``special_tokens="skip"`` (``lmplz
    --skip_symbols``) to drop them as if they were whitespace, or ``special_tokens="unknown"``
    to count a literal ``<unk>`` as the unknown word. ``sentence`` is the index of the offending
    sentence.

    Example:
        >>> from pyro_ar.ngram import NGramModel
        >>> try:
        ...     NGramModel.fit([["a", "</s>", "b"]], order=2, smoothing="witten_bell")
        ... except SpecialTokenError as error:
        ...     print(error.sentence, error.token)
        0 </s>
    """

    def __init__(self, message: str, sentence: int, token: str) -> None:
        super().__init__(message)
        self.sentence = sentence
        self.token = token


def check_token(token: str) -> None:
    r"""Raises ``ValueError`` unless ``token`` can be written to an ARPA file and read back: not
    empty and without a :data:`SEPARATORS` character.

    Example:
        >>> check_token("caf\u00e9\u00a0noir")  # a no-break space is part of a token, as in KenLM
        >>> try:
        ...     check_token("two words")
        ... except ValueError as error:
        ...     print(str(error)[:42])
        the token 'two words' contains a separator
    """
    if not isinstance(token, str):
        raise TypeError(f"tokens must be strings, got {type(token).__name__} {token!r}")
    if token == "":
        raise ValueError("the empty string is not a token (ARPA files could not store it)")
    separator = _SEPARATOR.search(token)
    if separator is not None:
        raise ValueError(
            f"the token {token!r} contains a separator ({separator.group()!r}): ARPA files and "
            "KenLM split tokens on NUL, tab, newline, carriage return and space, so it would be "
            "written as several tokens; tokenize the text first"
        )


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

    The default splits on whitespace (any Unicode whitespace, as ``str.split``), which is what
    pre-tokenized corpora (Penn Treebank, the output of Moses or spaCy) need. ``pattern`` gives a
    regular expression whose matches are the tokens instead, e.g. ``r"\w+|[^\w\s]"`` separates
    punctuation from words; :data:`KENLM_TOKEN_PATTERN` (or :meth:`kenlm`) splits exactly as
    KenLM's ``lmplz`` does, on :data:`SEPARATORS` only.

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

    @classmethod
    def kenlm(cls) -> Tokenizer:
        """The tokenizer of KenLM's ``lmplz``: splits on NUL, tab, newline, carriage return and
        space, nothing else.

        Example:
            >>> Tokenizer.kenlm()("a\u00a0b c")  # U+00A0 is part of a token for KenLM
            ['a\xa0b', 'c']
        """
        return cls(KENLM_TOKEN_PATTERN)

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
    skip_empty: bool | None = None,
    kenlm_compatible: bool = False,
) -> list[list[str]]:
    """Tokenized sentences, one per line, from a text file or from an iterable of strings.

    Empty lines: KenLM's ``lmplz`` counts an empty line as the sentence ``<s> </s>``; this
    function drops them by default (``skip_empty=True``), which changes the counts of ``<s>
    </s>`` and every ``</s>`` continuation. For a model identical to ``lmplz``'s on the same file
    pass ``kenlm_compatible=True``: lines end at ``\\n`` only (not at the other line breaks of
    ``str.splitlines``, such as U+2028 or form feed), tokens are split as
    :meth:`Tokenizer.kenlm` does, and empty lines are kept.

    Arguments:
        source: A path to a UTF-8 text file, or an iterable of lines (a list of strings).
            A bare string is taken as a path when such a file exists, otherwise it is an error
            (pass ``[text]`` or ``text.splitlines()`` for text in memory).
        tokenizer: Default: whitespace splitting (:meth:`Tokenizer.kenlm` with
            ``kenlm_compatible``).
        skip_empty: Drop lines with no tokens (default: ``True``, ``False`` with
            ``kenlm_compatible``).
        kenlm_compatible: Read the file exactly as ``lmplz`` does (see above).

    Example:
        >>> read_sentences(["The cat sat.", "", "A dog"], Tokenizer(lowercase=True))
        [['the', 'cat', 'sat.'], ['a', 'dog']]
        >>> read_sentences(["a b", "", "c"], kenlm_compatible=True)  # lmplz: <s> </s> for ""
        [['a', 'b'], [], ['c']]
    """
    kenlm_split = tokenizer is None and kenlm_compatible
    text = None
    if skip_empty is None:
        skip_empty = not kenlm_compatible
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f"no text file {str(source)!r}; to use text in memory, pass a list of lines"
            )
        with open(source, encoding="utf-8", newline="" if kenlm_compatible else None) as file:
            text = file.read()
        if kenlm_compatible:
            lines: Iterable[str] = text.split("\n")
            if lines and lines[-1] == "":  # the newline that ends the last line
                lines = lines[:-1]
        else:
            lines = text.splitlines()
    else:
        lines = source
    if kenlm_split:
        lines = lines if isinstance(lines, list) else list(lines)
        # str.split is lmplz's split unless the text holds NUL or other whitespace
        if text is None:
            other_space = any(map(_NOT_KENLM_SPACE.search, lines))
        else:
            other_space = _NOT_KENLM_SPACE.search(text) is not None
        tokenizer = Tokenizer.kenlm() if other_space else None
    elif tokenizer is None:
        tokenizer = Tokenizer()
    with garbage_collection_paused():
        if tokenizer:
            sentences = [tokenizer(line) for line in lines]
        else:
            sentences = list(map(str.split, lines))
        return [s for s in sentences if s] if skip_empty else sentences


class Vocabulary:
    r"""A bijection between tokens and ids ``0 .. len(self) - 1``.

    Ids: ``<unk>`` (if any) first, then ``<s>``, ``</s>``, then the words by decreasing count
    (ties alphabetically), so the same corpus always gives the same ids. ``<s>`` is only ever a
    context; the models predict the other ``len(self) - 1`` symbols (:attr:`num_predictable`).

    Tokens must be non-empty and free of :data:`SEPARATORS` (so every model can be written to an
    ARPA file and read back); any other character is allowed.

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
        for token in specials:
            check_token(token)
        words = [t for t in tokens if t not in specials]
        if any(map(_SEPARATOR.search, words)) or "" in words:
            for word in words:
                check_token(word)  # raises, naming the first bad token
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
        counts = Counter(itertools.chain.from_iterable(sentences))
        return cls._from_counts(counts, min_count, max_size, unknown_token, begin_token, end_token)

    @classmethod
    def _from_counts(
        cls, counts, min_count, max_size, unknown_token, begin_token, end_token
    ) -> Vocabulary:
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

    @classmethod
    def build_and_encode(
        cls,
        sentences: Sequence[Sequence[str]],
        min_count: int = 1,
        special_tokens: str = "allow",
    ) -> tuple[Vocabulary, np.ndarray, np.ndarray]:
        """:meth:`build` then :meth:`encode_corpus` in one pass over the tokens (words get
        provisional ids in order of appearance, counted with ``np.bincount``, then renumbered):
        the same vocabulary and encoding, in about half the time on large corpora.

        Example:
            >>> vocabulary, flat, offsets = Vocabulary.build_and_encode([["b", "a", "b"]])
            >>> vocabulary.itos, flat.tolist(), offsets.tolist()
            (['<unk>', '<s>', '</s>', 'b', 'a'], [1, 3, 4, 3, 2], [0, 5])
        """
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        sentences = sentences if isinstance(sentences, list) else list(sentences)
        tokens = list(itertools.chain.from_iterable(sentences))
        provisional = collections.defaultdict(itertools.count().__next__)
        first_ids = np.fromiter(
            map(provisional.__getitem__, tokens), dtype=np.int64, count=len(tokens)
        )
        words = list(provisional)
        occurrences = np.bincount(first_ids, minlength=len(words)).tolist()
        vocabulary = cls._from_counts(
            dict(zip(words, occurrences, strict=True)),
            min_count,
            None,
            UNKNOWN_TOKEN,
            BEGIN_TOKEN,
            END_TOKEN,
        )
        renumber = np.fromiter(
            map(vocabulary.stoi.get, words, itertools.repeat(-1)),
            dtype=np.int64,
            count=len(words),
        )
        lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
        flat, offsets = vocabulary._encode_ids(
            renumber[first_ids], lengths, sentences, special_tokens
        )
        return vocabulary, flat, offsets

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

    def encode_corpus(
        self, sentences: Iterable[Sequence[str]], special_tokens: str = "allow"
    ) -> tuple[np.ndarray, np.ndarray]:
        """The corpus as one flat ``int64`` array of ids, each sentence written as ``<s> w_1 ..
        w_n </s>``, and the ``(N + 1,)`` offsets of the sentences in it (CSR layout).

        Arguments:
            special_tokens: What to do with ``</s>`` and a literal ``<unk>`` inside a sentence:
                ``"allow"`` (scoring: ``</s>`` is scored as a word, ``<unk>`` as the unknown
                word); for training text, ``"error"`` (:class:`SpecialTokenError`, as
                ``lmplz``), ``"skip"`` (drop them, as ``lmplz --skip_symbols``) or
                ``"unknown"`` (``<unk>`` is the unknown word, ``</s>`` an error: for text such
                as the Penn Treebank's, in which ``<unk>`` already replaces rare words). ``<s>``
                inside a sentence is an error unless skipped.

        Example:
            >>> vocabulary = Vocabulary(["a"])  # <unk> <s> </s> a
            >>> flat, offsets = vocabulary.encode_corpus([["a", "</s>"]], special_tokens="skip")
            >>> flat.tolist(), offsets.tolist()
            ([1, 3, 2], [0, 3])
        """
        if special_tokens not in SPECIAL_TOKEN_MODES:
            raise ValueError(
                f"special_tokens must be one of {', '.join(map(repr, SPECIAL_TOKEN_MODES))}, "
                f"got {special_tokens!r}"
            )
        sentences = sentences if isinstance(sentences, list) else list(sentences)
        lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
        word_ids = np.fromiter(
            map(self.stoi.get, itertools.chain.from_iterable(sentences), itertools.repeat(-1)),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        return self._encode_ids(word_ids, lengths, sentences, special_tokens)

    def _encode_ids(self, word_ids, lengths, sentences, special_tokens):
        """:meth:`encode_corpus` from the tokens' ids (-1 for unknown ones)."""
        specials = [self.begin_id]
        if special_tokens != "allow":
            specials.append(self.end_id)
        if special_tokens in ("error", "skip") and self.unknown_id is not None:
            specials.append(self.unknown_id)  # only the literal token maps to it here
        special = np.isin(word_ids, specials)
        if special.any():
            position = int(np.flatnonzero(special)[0])
            sentence = int(np.searchsorted(np.cumsum(lengths), position, side="right"))
            token = self.itos[int(word_ids[position])]  # a special id: the token itself
            if special_tokens != "skip":
                if token == self.unknown_token:
                    hint = (
                        "pass special_tokens='unknown' to count it as the unknown word (text "
                        "such as the Penn Treebank's, where <unk> already replaces rare words), "
                        "or 'skip' to drop it as KenLM's lmplz --skip_symbols does"
                    )
                else:
                    hint = (
                        "sentence boundaries are added for you; remove it, or pass "
                        "special_tokens='skip' to drop such tokens as KenLM's lmplz "
                        "--skip_symbols does"
                    )
                raise SpecialTokenError(
                    f"sentence {sentence} contains the special token {token!r}: {hint}",
                    sentence,
                    token,
                )
            sentence_of_token = np.repeat(np.arange(len(sentences)), lengths)
            lengths = lengths - np.bincount(
                sentence_of_token[special], minlength=len(sentences)
            ).astype(np.int64)
            word_ids = word_ids[~special]
        missing = word_ids < 0
        if missing.any():
            unknown = self.unknown_id
            if unknown is None:
                words = itertools.chain.from_iterable(sentences)
                self.lookup(next(w for w in words if w not in self.stoi))  # explanatory error
            word_ids[missing] = unknown
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

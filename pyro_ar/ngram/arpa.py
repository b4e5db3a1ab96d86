r"""Reading and writing ARPA back-off language-model files (the format of SRILM, KenLM, IRSTLM).

An ARPA file lists, order by order, every stored n-gram with :math:`\log_{10} P` and (below the
highest order) :math:`\log_{10} B`; see :class:`~pyro_ar.ngram.model.NGramModel` for the
semantics. Zero probabilities (``<s>``, unsmoothed models) are written as ``-99``, the SRILM
convention, and read back as zero.

References:
    A. Stolcke. *SRILM: an extensible language modeling toolkit*. ICSLP 2002 (``ngram-format``).
"""

from __future__ import annotations

__all__ = [
    "ARPA_ZERO",
    "ARPAFormatError",
    "UNIGRAM_SUM_TOLERANCE",
    "arpa_entries",
    "read_arpa",
    "split_fields",
    "write_arpa",
]

import itertools
import math
import operator
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..io.files import write_atomically
from ..ops.arpa_lines import format_arpa_line_chunks
from .model import NGramModel, NGramTable, NGramTableError
from .vocabulary import (
    BEGIN_TOKEN,
    END_TOKEN,
    UNKNOWN_TOKEN,
    Vocabulary,
    garbage_collection_paused,
)

_LOG10 = math.log(10.0)
#: ARPA's stand-in for :math:`\log_{10} 0`.
ARPA_ZERO = -99.0


class ARPAFormatError(ValueError):
    """An ARPA file is malformed; the message names the line.

    Example:
        >>> issubclass(ARPAFormatError, ValueError)  # read_arpa's error, naming file and line
        True
    """


def _to_log10(values: torch.Tensor) -> np.ndarray:
    result = values.detach().cpu().double().numpy() / _LOG10
    return np.where(np.isneginf(result), ARPA_ZERO, result)


def write_arpa(model: NGramModel, path: str | os.PathLike, decimals: int = 8) -> Path:
    """Writes ``model`` as an ARPA file, atomically (a crash never leaves a partial file).

    Every vocabulary word is a unigram; probabilities and backoff weights are written as base-10
    logarithms in fixed point with ``decimals`` digits after the point (trailing zeros dropped;
    the default 8 is finer than KenLM's float32 values), zero probabilities as ``-99``; a
    backoff weight of 1 is omitted. Lines are formatted by
    :func:`~pyro_ar.ops.arpa_lines.format_arpa_line_chunks` (a compiled loop, in as many
    threads as there are processors).

    Example:
        >>> import tempfile
        >>> from pyro_ar.ngram import NGramModel
        >>> model = NGramModel.fit([["a", "b", "a"], ["b", "a"]], order=2, smoothing="witten_bell")
        >>> path = write_arpa(model, Path(tempfile.mkdtemp()) / "model.arpa")
        >>> ids, _ = model.vocabulary.encode_batch([["b", "a"]])
        >>> torch.allclose(read_arpa(path).sequence_log_probs(ids), model.sequence_log_probs(ids),
        ...                atol=1e-7)
        True
    """
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 1 <= decimals <= 12:
        raise ValueError(f"decimals must be an integer from 1 to 12, got {decimals!r}")
    vocabulary = model.vocabulary
    size = len(vocabulary)
    parts = [b"\n\\data\\\n"]
    parts += [f"ngram {n}={model.num_entries(n)}\n".encode() for n in range(1, model.order + 1)]
    tokens = np.zeros((0, 0), dtype=np.int64)
    for n in range(1, model.order + 1):
        keys = model.keys[n - 1].cpu().numpy()
        last = (keys % size)[:, None]
        tokens = last if n == 1 else np.concatenate([tokens[keys // size], last], axis=1)
        probs = _to_log10(model.log_probs[n - 1])
        backoffs = _to_log10(model.log_backoffs[n - 1]) if n < model.order else None
        parts.append(f"\n\\{n}-grams:\n".encode())
        parts += format_arpa_line_chunks(tokens, probs, backoffs, vocabulary.itos, decimals)
    parts.append(b"\n\\end\\\n")
    return write_atomically(path, parts)


#: How far the unigram probabilities of a file (``<s>`` aside) may sum from one: ARPA files
#: round each to a few significant digits.
UNIGRAM_SUM_TOLERANCE = 0.01


@dataclass
class _Section:
    """The entries of one order: their words (``n`` per entry, flat), log10 probabilities and
    backoffs; entry ``i`` is on line ``first_line + i``."""

    words: list[str]
    probs: np.ndarray
    backoffs: np.ndarray
    first_line: int

    @property
    def lines(self) -> range:
        return range(self.first_line, self.first_line + len(self.probs))


def read_arpa(
    path: str | os.PathLike,
    unknown_token: str = UNKNOWN_TOKEN,
    begin_token: str = BEGIN_TOKEN,
    end_token: str = END_TOKEN,
) -> NGramModel:
    r"""Reads an ARPA file into an :class:`NGramModel` (on the CPU; use ``.to(device)``).

    The unigrams define the vocabulary; ``<s>`` and ``</s>`` must be among them, ``<unk>`` is
    optional (without it, unknown words are an error when scoring). Every n-gram's first
    :math:`n - 1` words must be stored at the order below, as in files from SRILM and KenLM.
    ``<s>`` is never predicted: it gets probability 0 whatever the file says (KenLM's lmplz
    writes :math:`\log_{10} p = 0` for it), at every order. Lines end at ``\\n`` and fields are
    separated by spaces, tabs and carriage returns only, as KenLM reads them, so words may hold
    any other character (Unicode whitespace such as U+00A0 or U+3000 included).

    What is checked, each error naming the file and the line: the ``\data\`` header and its
    counts (non-negative integers, orders 1, 2, ...), every section and its number of entries,
    UTF-8 text, numbers (log10 probabilities at most 0, with ``-99`` or ``-inf`` for zero, as
    SRILM and KenLM write it; backoffs finite or ``-inf``), words stored once per order,
    ``<s>``/``</s>`` present, unigram probabilities summing to one (within
    :data:`UNIGRAM_SUM_TOLERANCE`), n-gram words that are unigrams, and the stored prefix of
    every n-gram.

    Raises:
        ARPAFormatError: naming the line and the problem.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "model.arpa"
        >>> _ = path.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-0.3\ta\n\\end\\\n")
        >>> try:
        ...     read_arpa(path)
        ... except ARPAFormatError as error:
        ...     print(str(error).split(", ", 1)[1])
        line 6: the \1-grams: section ends after 1 of the 2 entries that 'ngram 1=2' declares
    """
    name = os.fspath(path)
    text = _read_text(path)
    # str.split is KenLM's split unless the file holds other whitespace (U+00A0, form feed...)
    split = split_fields if _has_other_whitespace(text) else str.split
    # Lines end at "\n" only (KenLM); str.splitlines would also break at U+2028, form feed...
    lines = text.split("\n")
    declared, position = _parse_header(lines, name)
    sections = []
    with garbage_collection_paused():  # millions of small lists, none in a cycle
        for n, expected in enumerate(declared, start=1):
            section, position = _parse_section(lines, position, n, expected, name, split)
            sections.append(section)
    while position < len(lines) and not lines[position].strip():
        position += 1
    if position == len(lines) or lines[position].strip() != "\\end\\":
        raise ARPAFormatError(
            f"{name}, line {position + 1}: expected \\end\\ after {len(declared)} sections "
            "(is a count wrong?)"
        )
    return _build_model(sections, unknown_token, begin_token, end_token, name)


def _read_text(path: str | os.PathLike) -> str:
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ARPAFormatError(
            f"{os.fspath(path)}, line {line}: not UTF-8 text (byte {data[error.start]:#04x} "
            f"at offset {error.start}); ARPA files are read as UTF-8"
        ) from None
    return text


def _parse_header(lines: list[str], name: str) -> tuple[list[int], int]:
    """The declared entry counts per order, and the position after the header."""
    position = 0
    while position < len(lines) and lines[position].strip() != "\\data\\":
        position += 1
    if position == len(lines):
        raise ARPAFormatError(f"{name}: no \\data\\ section; not an ARPA file")
    position += 1
    declared: list[int] = []
    while position < len(lines) and lines[position].strip().startswith("ngram "):
        line = lines[position].strip()
        where = f"{name}, line {position + 1}"
        try:
            order, count = (int(field) for field in line[6:].split("="))
        except ValueError:
            raise ARPAFormatError(f"{where}: malformed count line {line!r}") from None
        if order != len(declared) + 1:
            raise ARPAFormatError(f"{where}: expected 'ngram {len(declared) + 1}=...'")
        if count < 0:
            raise ARPAFormatError(f"{where}: a negative number of {order}-grams ({count})")
        declared.append(count)
        position += 1
    if not declared:
        raise ARPAFormatError(
            f"{name}, line {position + 1}: no 'ngram n=count' lines after \\data\\"
        )
    return declared, position


#: What separates the fields of an ARPA line for KenLM: space, tab and carriage return.
_FIELD_SEPARATORS = re.compile(r"[ \t\r]+")


def arpa_entries(path: str | os.PathLike) -> dict[tuple[str, ...], tuple[float, float]]:
    r"""Every n-gram of an ARPA file, as words, with its log10 probability and backoff as
    written (backoff 0 where omitted; ``-inf`` read as :data:`ARPA_ZERO`, as SRILM writes it):
    for comparing two files entry by entry. It checks nothing; :func:`read_arpa` does.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "model.arpa"
        >>> lines = ["\\data\\", "ngram 1=2", "", "\\1-grams:", "-inf\t<s>\t-0.5", "0\t</s>"]
        >>> lines.append("\\end\\")
        >>> _ = path.write_text("\n".join(lines) + "\n")
        >>> arpa_entries(path)
        {('<s>',): (-99.0, -0.5), ('</s>',): (0.0, 0.0)}
    """
    entries, order = {}, 0
    with open(path, encoding="utf-8", newline="") as file:
        for line in file:
            line = line.rstrip("\n")
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1 : line.index("-")])
            elif order and line and not line.startswith("\\"):
                fields = line.split("\t")
                values = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
                entries[tuple(fields[1].split(" "))] = tuple(max(v, ARPA_ZERO) for v in values)
    return entries


def split_fields(line: str) -> list[str]:
    r"""The fields of an ARPA line as KenLM reads them: split on space, tab and carriage return
    only, so a word may hold any other character (U+00A0, U+3000, form feed...).

    Example:
        >>> split_fields("-0.5\tcaf\u00e9\u00a0noir  x\t-0.1\r")
        ['-0.5', 'café\xa0noir', 'x', '-0.1']
    """
    return [field for field in _FIELD_SEPARATORS.split(line) if field]


#: Whitespace that ``str.split`` separates on but KenLM does not.
_OTHER_WHITESPACE = re.compile(r"[^\S \t\r\n]")
_OTHER_ASCII_WHITESPACE = "\x0b\x0c\x1c\x1d\x1e\x1f"


def _has_other_whitespace(text: str) -> bool:
    if text.isascii():  # the common case, and much faster than the regular expression
        return any(character in text for character in _OTHER_ASCII_WHITESPACE)
    return _OTHER_WHITESPACE.search(text) is not None


def _parse_section(
    lines: list[str], position: int, n: int, expected: int, name: str, split
) -> tuple[_Section, int]:
    while position < len(lines) and not lines[position].strip():
        position += 1
    if position == len(lines) or lines[position].strip() != f"\\{n}-grams:":
        raise ARPAFormatError(f"{name}, line {position + 1}: expected the \\{n}-grams: section")
    position += 1
    # The whole section at once: one split per line, then vectorized checks; the slow path
    # below only runs to name the line of an error.
    block = lines[position : position + expected]
    ended = next((i for i, line in enumerate(block) if not line.strip() or line[0] == "\\"), None)
    if ended is None and len(block) < expected:
        ended = len(block)
    if ended is not None:
        raise ARPAFormatError(
            f"{name}, line {position + ended + 1}: the \\{n}-grams: section ends after {ended} "
            f"of the {expected} entries that 'ngram {n}={expected}' declares"
        )
    fields = list(map(split, block))
    widths = np.fromiter(map(len, fields), dtype=np.int64, count=expected)
    wrong = np.flatnonzero((widths != n + 1) & (widths != n + 2))
    if len(wrong):
        raise ARPAFormatError(
            f"{name}, line {position + int(wrong[0]) + 1}: expected {n} words with a probability "
            "and optional backoff"
        )
    has_backoff = widths == n + 2
    try:
        probs = np.array(list(map(operator.itemgetter(0), fields)), dtype=np.float64)
        backoffs = np.zeros(expected)
        backoffs[has_backoff] = np.array(
            [f[-1] for f in itertools.compress(fields, has_backoff)], dtype=np.float64
        )
    except ValueError:
        for i, entry in enumerate(fields):
            try:
                float(entry[0]), float(entry[-1]) if has_backoff[i] else 0.0
            except ValueError:
                raise ARPAFormatError(
                    f"{name}, line {position + i + 1}: malformed number in {block[i]!r}"
                ) from None
        raise
    bad = np.flatnonzero(np.isnan(probs) | (probs > 0))
    if len(bad):
        i = int(bad[0])
        raise ARPAFormatError(
            f"{name}, line {position + i + 1}: log10 probability {fields[i][0]} is not a number "
            f"<= 0 (write {ARPA_ZERO:g} or -inf for probability 0)"
        )
    bad = np.flatnonzero(np.isnan(backoffs) | (backoffs == np.inf))
    if len(bad):
        i = int(bad[0])
        raise ARPAFormatError(
            f"{name}, line {position + i + 1}: log10 backoff {fields[i][-1]} is not finite or -inf"
        )
    words = list(itertools.chain.from_iterable(map(operator.itemgetter(slice(1, n + 1)), fields)))
    return _Section(words, probs, backoffs, position + 1), position + expected


def _build_model(
    sections: list[_Section], unknown_token: str, begin_token: str, end_token: str, name: str
) -> NGramModel:
    unigrams = sections[0]
    words = unigrams.words
    first_line: dict[str, int] = {}
    for word, line in zip(words, unigrams.lines, strict=True):
        if word in first_line:
            raise ARPAFormatError(
                f"{name}, line {line}: the unigram {word!r} is listed a second time (first at "
                f"line {first_line[word]})"
            )
        first_line[word] = line
    for token in (begin_token, end_token):
        if token not in first_line:
            raise ARPAFormatError(f"{name}: the unigrams lack {token!r}")
    vocabulary = Vocabulary(
        words, unknown_token if unknown_token in first_line else None, begin_token, end_token
    )
    predicted = [p for word, p in zip(words, unigrams.probs, strict=True) if word != begin_token]
    total = float(
        np.sum(np.where(np.asarray(predicted) <= ARPA_ZERO, 0.0, 10.0 ** np.asarray(predicted)))
    )
    if abs(total - 1) > UNIGRAM_SUM_TOLERANCE:
        raise ARPAFormatError(
            f"{name}, lines {unigrams.lines[0]}-{unigrams.lines[-1]}: the unigram probabilities "
            f"(<s> aside) sum to {total:.4g}, not 1"
        )

    def natural(values: np.ndarray) -> Tensor:
        return torch.from_numpy(np.where(values <= ARPA_ZERO, -np.inf, values * _LOG10))

    orders = []
    for n, section in enumerate(sections, start=1):
        flat = np.fromiter(
            map(vocabulary.stoi.get, section.words, itertools.repeat(-1)),
            dtype=np.int64,
            count=len(section.words),
        )
        missing = np.flatnonzero(flat < 0)
        if len(missing):
            word = section.words[int(missing[0])]
            raise ARPAFormatError(f"{name}: a {n}-gram uses {word!r}, which is not a unigram")
        probs = natural(section.probs)
        ids = torch.from_numpy(flat).reshape(-1, n)
        probs[ids[:, -1] == vocabulary.begin_id] = -torch.inf  # <s> is never predicted
        orders.append(
            NGramTable(
                ids,
                probs,
                natural(section.backoffs),
                section.lines,
            )
        )
    try:
        return NGramModel.from_tables(vocabulary, orders, description=f"ARPA file {name}")
    except NGramTableError as error:
        line = f", line {error.line}" if error.line is not None else ""
        raise ARPAFormatError(f"{name}{line}: {error}") from None

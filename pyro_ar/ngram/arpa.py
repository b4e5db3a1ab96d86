r"""Reading and writing ARPA back-off language-model files (the format of SRILM, KenLM, IRSTLM).

An ARPA file lists, order by order, every stored n-gram with :math:`\log_{10} P` and (below the
highest order) :math:`\log_{10} B`; see :class:`~pyro_ar.ngram.model.NGramModel` for the
semantics. Zero probabilities (``<s>``, unsmoothed models) are written as ``-99``, the SRILM
convention, and read back as zero.

References:
    A. Stolcke. *SRILM: an extensible language modeling toolkit*. ICSLP 2002 (``ngram-format``).
"""

from __future__ import annotations

__all__ = ["ARPAFormatError", "read_arpa", "write_arpa"]

import io
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..data.text import BEGIN_TOKEN, END_TOKEN, UNKNOWN_TOKEN, Vocabulary
from ..files import write_atomically
from .model import NGramModel

_LOG10 = math.log(10.0)
#: ARPA's stand-in for :math:`\log_{10} 0`.
ARPA_ZERO = -99.0


class ARPAFormatError(ValueError):
    """An ARPA file is malformed; the message names the line."""


def _to_log10(values: torch.Tensor) -> np.ndarray:
    result = values.detach().cpu().double().numpy() / _LOG10
    return np.where(np.isneginf(result), ARPA_ZERO, result)


def write_arpa(model: NGramModel, path: str | os.PathLike, precision: int = 10) -> Path:
    """Writes ``model`` as an ARPA file, atomically (a crash never leaves a partial file).

    Every vocabulary word is a unigram; probabilities and backoff weights are written as base-10
    logarithms with ``precision`` significant digits; a backoff weight of 1 is omitted."""
    vocabulary = model.vocabulary
    words = np.asarray(vocabulary.itos, dtype=object)
    size = len(vocabulary)
    buffer = io.StringIO()
    buffer.write("\n\\data\\\n")
    for n in range(1, model.order + 1):
        buffer.write(f"ngram {n}={model.num_entries(n)}\n")
    tokens = None
    for n in range(1, model.order + 1):
        keys = model.keys[n - 1].cpu().numpy()
        last = keys % size
        tokens = (
            last[:, None] if n == 1 else np.concatenate([tokens[keys // size], last[:, None]], 1)
        )
        text = [" ".join(row) for row in words[tokens]]
        probs = _to_log10(model.log_probs[n - 1])
        buffer.write(f"\n\\{n}-grams:\n")
        if n < model.order:
            backoffs = _to_log10(model.log_backoffs[n - 1])
            lines = [
                f"{p:.{precision}g}\t{t}\t{b:.{precision}g}\n"
                if b != 0
                else f"{p:.{precision}g}\t{t}\n"
                for p, t, b in zip(probs.tolist(), text, backoffs.tolist(), strict=True)
            ]
        else:
            lines = [
                f"{p:.{precision}g}\t{t}\n" for p, t in zip(probs.tolist(), text, strict=True)
            ]
        buffer.writelines(lines)
    buffer.write("\n\\end\\\n")
    return write_atomically(path, buffer.getvalue().encode("utf-8"))


def read_arpa(
    path: str | os.PathLike,
    unknown_token: str = UNKNOWN_TOKEN,
    begin_token: str = BEGIN_TOKEN,
    end_token: str = END_TOKEN,
) -> NGramModel:
    """Reads an ARPA file into an :class:`NGramModel` (on the CPU; use ``.to(device)``).

    The unigrams define the vocabulary; ``<s>`` and ``</s>`` must be among them, ``<unk>`` is
    optional (without it, unknown words are an error when scoring). Every n-gram's first
    :math:`n - 1` words must be stored at the order below, as in files from SRILM and KenLM.

    Raises:
        ARPAFormatError: Missing sections, wrong counts, unknown words, malformed numbers.
    """
    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    position = 0

    def fail(message: str) -> ARPAFormatError:
        return ARPAFormatError(f"{os.fspath(path)}, line {position + 1}: {message}")

    while position < len(lines) and lines[position].strip() != "\\data\\":
        position += 1
    if position == len(lines):
        raise ARPAFormatError(f"{os.fspath(path)}: no \\data\\ section; not an ARPA file")
    position += 1
    declared: list[int] = []
    while position < len(lines) and lines[position].strip().startswith("ngram "):
        try:
            order, count = lines[position].strip()[6:].split("=")
            if int(order) != len(declared) + 1:
                raise fail(f"expected 'ngram {len(declared) + 1}=...'")
            declared.append(int(count))
        except ValueError as error:
            if isinstance(error, ARPAFormatError):
                raise
            raise fail(f"malformed count line {lines[position]!r}") from error
        position += 1
    if not declared:
        raise fail("no 'ngram n=count' lines after \\data\\")

    sections: list[tuple[list[str], np.ndarray, np.ndarray]] = []
    for n, expected in enumerate(declared, start=1):
        while position < len(lines) and not lines[position].strip():
            position += 1
        if position == len(lines) or lines[position].strip() != f"\\{n}-grams:":
            raise fail(f"expected the \\{n}-grams: section")
        position += 1
        grams, probs, backoffs = [], np.empty(expected), np.zeros(expected)
        for i in range(expected):
            if (
                position == len(lines)
                or not lines[position].strip()
                or lines[position].startswith("\\")
            ):
                raise fail(
                    f"the \\{n}-grams: section ends after {i} of the {expected} entries that "
                    f"'ngram {n}={expected}' declares"
                )
            fields = lines[position].split()
            if len(fields) not in (n + 1, n + 2):
                raise fail(f"expected {n} words with a probability and optional backoff")
            try:
                probs[i] = float(fields[0])
                if len(fields) == n + 2:
                    backoffs[i] = float(fields[-1])
            except ValueError as error:
                raise fail(f"malformed number in {lines[position]!r}") from error
            grams.append(" ".join(fields[1 : n + 1]))
            position += 1
        sections.append((grams, probs, backoffs))
    while position < len(lines) and not lines[position].strip():
        position += 1
    if position == len(lines) or lines[position].strip() != "\\end\\":
        raise fail(f"expected \\end\\ after {len(declared)} sections (is a count wrong?)")

    unigrams = sections[0][0]
    for token in (begin_token, end_token):
        if token not in unigrams:
            raise ARPAFormatError(f"{os.fspath(path)}: the unigrams lack {token!r}")
    has_unknown = unknown_token in unigrams
    vocabulary = Vocabulary(
        unigrams, unknown_token if has_unknown else None, begin_token, end_token
    )
    size = len(vocabulary)
    order_of_unigrams = np.array([vocabulary.stoi[w] for w in unigrams])

    def natural(values: np.ndarray) -> torch.Tensor:
        values = np.where(values <= ARPA_ZERO, -np.inf, values * _LOG10)
        return torch.from_numpy(values)

    probs = np.full(size, -np.inf)
    backoffs = np.zeros(size)
    probs[order_of_unigrams] = sections[0][1]
    backoffs[order_of_unigrams] = sections[0][2]
    model = NGramModel(
        vocabulary,
        [torch.arange(size)],
        [natural(probs)],
        [natural(backoffs)],
        description=f"ARPA file {os.fspath(path)}",
    )
    for n in range(2, len(declared) + 1):
        grams, gram_probs, gram_backoffs = sections[n - 1]
        try:
            ids = torch.tensor(
                [[vocabulary.stoi[w] for w in gram.split(" ")] for gram in grams],
                dtype=torch.long,
            ).reshape(-1, n)
        except KeyError as error:
            raise ARPAFormatError(
                f"{os.fspath(path)}: a {n}-gram uses {error.args[0]!r}, which is not a unigram"
            ) from None
        context = ids[:, 0]
        for k in range(2, n):
            context = model.lookup(k, context, ids[:, k - 1])
        missing = torch.nonzero(context < 0)
        if len(missing):
            raise ARPAFormatError(
                f"{os.fspath(path)}: the {n}-gram {grams[missing[0, 0]]!r} has no entry for "
                f"its first {n - 1} words at order {n - 1}"
            )
        keys = context * size + ids[:, -1]
        keys, sort = torch.sort(keys)
        if len(keys) > 1 and bool((keys[1:] == keys[:-1]).any()):
            raise ARPAFormatError(f"{os.fspath(path)}: duplicate {n}-grams")
        model.keys.append(keys)
        model.log_probs.append(natural(gram_probs)[sort])
        model.log_backoffs.append(natural(gram_backoffs)[sort])
    return model

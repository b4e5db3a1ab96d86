r"""Formatting the lines of an ARPA file: ``log10 P \t w_1 .. w_n [\t log10 B] \n`` per n-gram.

Numbers are written in fixed point: :math:`x` becomes the integer :math:`m = \mathrm{rint}(|x|
\cdot 10^d)` (half to even) split into :math:`\lfloor m / 10^d \rfloor` and the :math:`d`
decimals, trailing zeros dropped (``-0.25``, ``-99``); a value that rounds to zero is ``0``. A
backoff of exactly zero (a weight of one) is left out, as ARPA writers do.

:func:`format_arpa_lines` is a loop compiled by Numba (one pass, no temporary per byte);
:func:`format_arpa_lines_reference` is the same format in plain Python, and the two agree byte
for byte (tested on random inputs).
"""

from __future__ import annotations

__all__ = [
    "CHUNK_LINES",
    "format_arpa_line_chunks",
    "format_arpa_lines",
    "format_arpa_lines_reference",
]

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np


def _check(tokens: np.ndarray, log10_probs: np.ndarray, log10_backoffs, decimals: int) -> None:
    if tokens.ndim != 2 or tokens.shape[0] != len(log10_probs):
        raise ValueError(
            f"tokens must be (E, n) with E = len(log10_probs) = {len(log10_probs)}, "
            f"got {tuple(tokens.shape)}"
        )
    if log10_backoffs is not None and len(log10_backoffs) != len(log10_probs):
        raise ValueError("log10_backoffs must have one value per n-gram")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 1 <= decimals <= 12:
        raise ValueError(f"decimals must be an integer from 1 to 12, got {decimals!r}")
    for name, values in (("log10_probs", log10_probs), ("log10_backoffs", log10_backoffs)):
        if values is not None and not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite (write log10 0 as -99)")
        if values is not None and len(values) and np.abs(values).max() >= 1e6:
            raise ValueError(f"{name} holds a magnitude of 1e6 or more; not a log10 weight")


def format_arpa_lines_reference(
    tokens: np.ndarray,
    log10_probs: np.ndarray,
    log10_backoffs: np.ndarray | None,
    words: list[str],
    decimals: int = 8,
) -> bytes:
    """The ARPA lines of the n-grams ``tokens (E, n)`` (word ids into ``words``), in plain
    Python: the reference of :func:`format_arpa_lines`.

    Example:
        >>> tokens = np.array([[0, 1], [1, 0]])
        >>> format_arpa_lines_reference(tokens, np.array([-0.25, -1.0]), np.array([0.0, -0.5]),
        ...                             ["a", "b"])
        b'-0.25\\ta b\\n-1\\tb a\\t-0.5\\n'
    """
    _check(tokens, log10_probs, log10_backoffs, decimals)
    scale = 10**decimals

    def number(value: float) -> str:
        scaled = int(np.rint(abs(value) * float(scale)))
        if scaled == 0:
            return "0"
        integer, fraction = divmod(scaled, scale)
        text = ("-" if value < 0 else "") + str(integer)
        if fraction:
            text += "." + str(fraction).rjust(decimals, "0").rstrip("0")
        return text

    lines = []
    for row, gram in enumerate(tokens.tolist()):
        line = number(float(log10_probs[row])) + "\t" + " ".join(words[w] for w in gram)
        if log10_backoffs is not None and log10_backoffs[row] != 0:
            line += "\t" + number(float(log10_backoffs[row]))
        lines.append(line + "\n")
    return "".join(lines).encode("utf-8")


@numba.njit(cache=True, nogil=True)
def _write_number(out, position, value, decimals, scale):
    scaled = np.int64(np.rint(abs(value) * scale))
    if scaled == 0:
        out[position] = 48  # "0"
        return position + 1
    if value < 0:
        out[position] = 45  # "-"
        position += 1
    integer = scaled // np.int64(scale)
    fraction = scaled % np.int64(scale)
    digits = 1
    bound = np.int64(10)
    while integer >= bound:
        digits += 1
        bound *= 10
    for k in range(digits - 1, -1, -1):
        out[position + k] = 48 + integer % 10
        integer //= 10
    position += digits
    if fraction > 0:
        kept = decimals
        while fraction % 10 == 0:
            fraction //= 10
            kept -= 1
        out[position] = 46  # "."
        for k in range(kept, 0, -1):
            out[position + k] = 48 + fraction % 10
            fraction //= 10
        position += kept + 1
    return position


@numba.njit(cache=True, nogil=True)
def _format_lines(
    tokens,
    log10_probs,
    log10_backoffs,
    has_backoffs,
    word_bytes,
    word_starts,
    word_lengths,
    decimals,
):
    rows, width = tokens.shape
    scale = 10.0**decimals
    text = 0
    for row in range(rows):
        for column in range(width):
            text += word_lengths[tokens[row, column]]
    # a number takes at most "-" + 6 integer digits + "." + decimals
    bound = text + rows * (width + 3 + 2 * (8 + decimals))
    out = np.empty(bound, dtype=np.uint8)
    position = 0
    for row in range(rows):
        position = _write_number(out, position, log10_probs[row], decimals, scale)
        out[position] = 9  # tab
        position += 1
        for column in range(width):
            word = tokens[row, column]
            start = word_starts[word]
            for k in range(word_lengths[word]):
                out[position + k] = word_bytes[start + k]
            position += word_lengths[word]
            out[position] = 32 if column < width - 1 else 10  # space between words, then "\n"
            position += 1
        if has_backoffs and log10_backoffs[row] != 0:
            out[position - 1] = 9  # the tab before the backoff replaces the newline
            position = _write_number(out, position, log10_backoffs[row], decimals, scale)
            out[position] = 10
            position += 1
    return out[:position]


#: Lines formatted per thread by :func:`format_arpa_line_chunks` (below this, one thread).
CHUNK_LINES = 1 << 18


def format_arpa_line_chunks(
    tokens: np.ndarray,
    log10_probs: np.ndarray,
    log10_backoffs: np.ndarray | None,
    words: list[str],
    decimals: int = 8,
    threads: int | None = None,
) -> list[np.ndarray]:
    """:func:`format_arpa_lines` as consecutive ``uint8`` chunks of :data:`CHUNK_LINES` lines,
    formatted by ``threads`` threads at once (the compiled loop releases the GIL; default: the
    processor count). Writing the chunks in order gives the same bytes.

    Example:
        >>> tokens = np.array([[0, 1], [1, 0]])
        >>> chunks = format_arpa_line_chunks(tokens, np.array([-0.25, -1.0]), None, ["a", "b"])
        >>> b"".join(chunk.tobytes() for chunk in chunks)
        b'-0.25\\ta b\\n-1\\tb a\\n'
    """
    _check(tokens, log10_probs, log10_backoffs, decimals)
    encoded = [word.encode("utf-8") for word in words]
    word_bytes = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
    word_lengths = np.array([len(word) for word in encoded], dtype=np.int64)
    word_starts = np.cumsum(word_lengths) - word_lengths
    tokens = np.ascontiguousarray(tokens, dtype=np.int64)
    if len(tokens) and (tokens.min() < 0 or tokens.max() >= len(words)):
        raise ValueError(f"tokens must be word ids in [0, {len(words)})")
    has_backoffs = log10_backoffs is not None
    backoffs = np.ascontiguousarray(
        log10_backoffs if has_backoffs else np.zeros(len(tokens)), dtype=np.float64
    )
    probs = np.ascontiguousarray(log10_probs, dtype=np.float64)

    def chunk(begin: int) -> np.ndarray:
        end = begin + CHUNK_LINES
        return _format_lines(
            tokens[begin:end],
            probs[begin:end],
            backoffs[begin:end],
            has_backoffs,
            word_bytes,
            word_starts,
            word_lengths,
            decimals,
        )

    begins = range(0, max(len(tokens), 1), CHUNK_LINES)
    threads = threads or os.cpu_count() or 1
    if threads == 1 or len(begins) == 1:
        return [chunk(begin) for begin in begins]
    with ThreadPoolExecutor(min(threads, len(begins))) as pool:
        return list(pool.map(chunk, begins))


def format_arpa_lines(
    tokens: np.ndarray,
    log10_probs: np.ndarray,
    log10_backoffs: np.ndarray | None,
    words: list[str],
    decimals: int = 8,
) -> np.ndarray:
    """The ARPA lines of the n-grams ``tokens (E, n)`` (word ids into ``words``) with their
    log10 probabilities ``(E,)`` and optional log10 backoffs ``(E,)``, as UTF-8 bytes, formatted
    by one compiled loop (the format is in the module docstring; values must be finite, with
    :math:`\\log_{10} 0` written as -99 by the caller). Returns the bytes as a ``uint8`` array
    (``.tobytes()`` for ``bytes``).

    Example:
        >>> tokens = np.array([[0, 1], [1, 0]])
        >>> lines = format_arpa_lines(tokens, np.array([-0.25, -1.0]), np.array([0.0, -0.5]),
        ...                           ["a", "b"])
        >>> lines.tobytes()
        b'-0.25\\ta b\\n-1\\tb a\\t-0.5\\n'
    """
    chunks = format_arpa_line_chunks(tokens, log10_probs, log10_backoffs, words, decimals, 1)
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

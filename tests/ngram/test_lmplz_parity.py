"""Parity with KenLM's own estimator, ``lmplz``, on many small random corpora and on the Penn
Treebank: the same n-gram sets, probabilities and backoffs within lmplz's float32 precision, for
the default estimate, ``--discount_fallback``, ``--interpolate_unigrams 0``, ``--prune`` and
``--limit_vocab_file``, and the same verdict where lmplz refuses to estimate discounts.

``lmplz`` is not on PyPI: these tests run where ``LMPLZ`` names the binary or ``lmplz`` is on
the ``PATH`` (``tools/build_lmplz.sh`` builds it; CI does) and are skipped otherwise."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_ar.ngram import DiscountError, NGramModel, read_arpa, read_sentences, write_arpa
from pyro_ar.ngram.arpa import arpa_entries

LMPLZ = os.environ.get("LMPLZ") or shutil.which("lmplz")
pytestmark = pytest.mark.skipif(
    LMPLZ is None or not os.access(LMPLZ, os.X_OK),
    reason="lmplz is not built: set LMPLZ to its path (tools/build_lmplz.sh builds it)",
)
FALLBACK = (0.5, 1.0, 1.5)
# lmplz computes in float32 and prints shortest float32 values
TOLERANCE = 2e-6


def lmplz(lines: list[str], order: int, arguments: list[str], directory: Path):
    text = directory / "corpus.txt"
    text.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    arpa = directory / "lmplz.arpa"
    command = [LMPLZ, "-o", str(order), "-S", "100M", "-T", str(directory), "--text", str(text)]
    result = subprocess.run(
        [*command, "--arpa", str(arpa), *arguments], capture_output=True, text=True
    )
    return result, text, arpa


def assert_same_model(theirs: Path, ours: NGramModel, directory: Path) -> None:
    expected = arpa_entries(theirs)
    actual = arpa_entries(write_arpa(ours, directory / "ours.arpa"))
    assert set(actual) == set(expected), sorted(set(actual) ^ set(expected))[:5]
    worst = max(
        max(abs(a - b) for a, b in zip(actual[gram], values, strict=True))
        for gram, values in expected.items()
        if gram != ("<s>",)  # lmplz writes log10 p(<s>) = 0 for a probability it never uses
    )
    assert worst < TOLERANCE


def random_corpus(rng: np.random.Generator) -> list[str]:
    """Zipf-like text over a small vocabulary, empty lines included, sometimes repeated so that
    counts reach 3 and 4."""
    words = [f"w{i}" for i in range(rng.integers(3, 40))]
    weights = 1 / np.arange(1, len(words) + 1) ** rng.uniform(0.5, 1.5)
    weights /= weights.sum()

    def lines():
        return [
            " ".join(rng.choice(words, size=rng.integers(0, 12), p=weights))
            for _ in range(rng.integers(5, 150))
        ]

    return lines() * int(rng.integers(1, 4)) + lines()


def fit_like_lmplz(text: Path, order: int, **options) -> NGramModel:
    return NGramModel.fit(read_sentences(text, kenlm_compatible=True), order=order, **options)


@pytest.mark.parametrize("seed", range(40))
def test_random_corpora_default_and_fallback(seed, tmp_path):
    logging.getLogger("pyro_ar.ngram.smoothing").setLevel(logging.ERROR)
    rng = np.random.default_rng(seed)
    lines = random_corpus(rng)
    order = int(rng.integers(2, 6))
    result, text, arpa = lmplz(lines, order, [], tmp_path)
    try:
        model = fit_like_lmplz(text, order)
    except DiscountError as error:
        assert result.returncode != 0, f"lmplz estimated what we refused: {error}"
        failing = str(error).split("order ")[1].split(":")[0]
        assert f"for {failing}-grams" in result.stderr or f"ERROR: {failing}-gram" in result.stderr
    else:
        assert result.returncode == 0, result.stderr[-500:]
        assert_same_model(arpa, model, tmp_path)
    result, text, arpa = lmplz(lines, order, ["--discount_fallback"], tmp_path)
    assert result.returncode == 0, result.stderr[-500:]
    assert_same_model(arpa, fit_like_lmplz(text, order, discount_fallback=FALLBACK), tmp_path)


@pytest.mark.parametrize("seed", range(25))
def test_random_corpora_with_options(seed, tmp_path):
    logging.getLogger("pyro_ar.ngram.smoothing").setLevel(logging.ERROR)
    rng = np.random.default_rng(100 + seed)
    lines = random_corpus(rng)
    order = int(rng.integers(2, 6))
    thresholds = sorted(int(t) for t in rng.integers(0, 3, size=order))
    words = sorted({w for line in lines for w in line.split()})
    allowed = [w for w in words if rng.random() < 0.6]
    vocabulary_file = tmp_path / "vocabulary.txt"
    vocabulary_file.write_text(" ".join(allowed))
    fallback = ["--discount_fallback"]
    cases = [
        (["--interpolate_unigrams", "0"], {"interpolate_unigrams": False}),
        (["--prune", *map(str, thresholds)], {"prune": thresholds}),
        (["--limit_vocab_file", str(vocabulary_file)], {"limit_vocabulary": allowed}),
        (
            ["--prune", *map(str, thresholds), "--limit_vocab_file", str(vocabulary_file)],
            {"prune": thresholds, "limit_vocabulary": allowed},
        ),
    ]
    for arguments, options in cases:
        result, text, arpa = lmplz(lines, order, arguments + fallback, tmp_path)
        assert result.returncode == 0, result.stderr[-500:]
        model = fit_like_lmplz(text, order, discount_fallback=FALLBACK, **options)
        assert_same_model(arpa, model, tmp_path)


def test_penn_treebank_five_gram(tmp_path, penn_treebank):
    lines = [" ".join(sentence) for sentence in penn_treebank["train"][:20000]]
    # PTB text holds a literal <unk>: lmplz refuses it unless told to drop it
    result, text, arpa = lmplz(lines, 5, [], tmp_path)
    assert result.returncode != 0 and "<unk>" in result.stderr
    result, text, arpa = lmplz(lines, 5, ["--skip_symbols", "--prune", "0", "0", "1"], tmp_path)
    assert result.returncode == 0, result.stderr[-500:]
    model = fit_like_lmplz(text, 5, special_tokens="skip", prune=[0, 0, 1])
    assert_same_model(arpa, model, tmp_path)
    # lmplz's own file reads back as a proper model: <s> never predicted, conditionals sum to 1
    loaded = read_arpa(arpa)
    histories = loaded.vocabulary.encode_batch(penn_treebank["valid"][:50], add_end=False)[0]
    begin = torch.full((len(histories), 1), loaded.vocabulary.begin_id)
    conditionals = loaded.next_log_probs(torch.cat([begin, histories[:, :3]], 1)).exp()
    assert bool((conditionals[:, loaded.vocabulary.begin_id] == 0).all())
    torch.testing.assert_close(
        conditionals.sum(-1), torch.ones(len(histories), dtype=torch.float64), atol=1e-4, rtol=0
    )


def test_tokens_with_unicode_whitespace(tmp_path):
    words = ["a\u00a0b", "x\u3000y", "f\x0cg", "p\u2028q", "n\x85m", "plain", "w\x1ev"]
    rng = np.random.default_rng(1)
    lines = [" ".join(rng.choice(words, size=rng.integers(0, 8))) for _ in range(300)]
    result, text, arpa = lmplz(lines, 3, ["--discount_fallback"], tmp_path)
    assert result.returncode == 0, result.stderr[-500:]
    model = fit_like_lmplz(text, 3, discount_fallback=FALLBACK)
    assert set(words) <= set(model.vocabulary.itos)
    assert_same_model(arpa, model, tmp_path)
    assert set(read_arpa(arpa).vocabulary.itos) == set(model.vocabulary.itos)

"""Modified Kneser-Ney estimation and scoring against KenLM, side by side in one run.

Estimation end to end (read the text, count, smooth, write the ARPA file): ``lmplz -o N`` versus
``read_sentences(kenlm_compatible=True)`` + ``NGramModel.fit`` + ``write_arpa``, on the Penn
Treebank training text and on a corpus of a few million tokens (the Penn Treebank four times,
each copy with its words renamed, so the n-grams do not repeat). Both estimate the same model
(``--skip_symbols`` / ``special_tokens="skip"`` for PTB's literal ``<unk>``); the ARPA files are
compared entry by entry. lmplz runs with ``-S 1G`` (its fastest setting here; its default,
80% of the memory, is 2-3x slower). Ours is timed warm (the median of the repeats in this
process) and cold (a fresh interpreter: imports and loading the compiled kernels included),
lmplz as a process.

Scoring: the sum of log-probabilities of every test sentence, ``kenlm.Model.score`` in a loop
versus ``NGramModel.score`` (from strings) and ``NGramModel.stream_log_probs`` (from ids).

    LMPLZ=$(tools/build_lmplz.sh) python bench/ngram_kenlm.py      # from the repository root
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import timed_pair, write_result

from pyro_ar.data.penn_treebank import load_penn_treebank
from pyro_ar.ngram import NGramModel, read_sentences, write_arpa
from pyro_ar.ngram.arpa import arpa_entries

COLD_RUN = """
import sys, time
start = time.perf_counter()
from pyro_ar.ngram import NGramModel, read_sentences, write_arpa
from pyro_ar.ngram.arpa import arpa_entries
sentences = read_sentences(sys.argv[1], kenlm_compatible=True)
model = NGramModel.fit(sentences, order=int(sys.argv[3]), special_tokens="skip")
write_arpa(model, sys.argv[2])
print(time.perf_counter() - start)
"""


def compare_arpa(ours: Path, theirs: Path) -> dict:
    a, b = arpa_entries(ours), arpa_entries(theirs)
    common = [gram for gram in b if gram in a and gram != ("<s>",)]
    worst = max(max(abs(x - y) for x, y in zip(a[g], b[g], strict=True)) for g in common)
    return {"same_ngrams": set(a) == set(b), "entries": len(b), "max_abs_log10_difference": worst}


def estimate(
    text: Path, order: int, lmplz: str, memory: str, directory: Path, repeats: int
) -> dict:
    ours_arpa, lmplz_arpa = directory / "ours.arpa", directory / "lmplz.arpa"

    def ours():
        model = NGramModel.fit(
            read_sentences(text, kenlm_compatible=True), order=order, special_tokens="skip"
        )
        write_arpa(model, ours_arpa)
        return model

    def theirs():
        command = [lmplz, "-o", str(order), "--skip_symbols", "-S", memory, "-T", str(directory)]
        subprocess.run(
            [*command, "--text", str(text), "--arpa", str(lmplz_arpa)],
            check=True,
            capture_output=True,
        )

    ours_seconds, model, lmplz_seconds, _ = timed_pair(ours, theirs, repeats)
    cold = []
    for _ in range(max(1, repeats // 2)):
        output = subprocess.run(
            [sys.executable, "-c", COLD_RUN, str(text), str(ours_arpa), str(order)],
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        )
        cold.append(float(output.stdout.split()[-1]))
    figures = {
        "ours_warm_seconds": ours_seconds,
        "ours_cold_seconds": statistics.median(cold),
        "lmplz_seconds": lmplz_seconds,
        "speed_ratio_warm": lmplz_seconds / ours_seconds,
        "speed_ratio_cold": lmplz_seconds / statistics.median(cold),
        "entries": [model.num_entries(n) for n in range(1, order + 1)],
    }
    figures.update(compare_arpa(ours_arpa, lmplz_arpa))
    return figures, model, lmplz_arpa


def scoring(model: NGramModel, arpa: Path, test: list[list[str]], repeats: int) -> dict:
    import kenlm

    reference = kenlm.Model(str(arpa))
    lines = [" ".join(sentence) for sentence in test]
    flat, _ = model.vocabulary.encode_corpus(test)
    ids = torch.from_numpy(flat).unsqueeze(0)

    def kenlm_scores():
        return [reference.score(line) for line in lines]

    ours_seconds, ours_scores, kenlm_seconds, kenlm_scores_ = timed_pair(
        lambda: model.score(test), kenlm_scores, repeats
    )
    ids_seconds, _, kenlm_seconds_again, _ = timed_pair(
        lambda: model.stream_log_probs(ids), kenlm_scores, repeats
    )
    difference = np.abs(ours_scores.numpy() / np.log(10) - np.array(kenlm_scores_)).max()
    return {
        "sentences": len(test),
        "tokens": int(len(flat)),
        "ours_from_strings_seconds": ours_seconds,
        "ours_from_ids_seconds": ids_seconds,
        "kenlm_score_seconds": statistics.median([kenlm_seconds, kenlm_seconds_again]),
        "speed_ratio_from_strings": kenlm_seconds / ours_seconds,
        "speed_ratio_from_ids": kenlm_seconds_again / ids_seconds,
        "max_abs_log10_sentence_difference": float(difference),
    }


def renamed_copies(sentences: list[list[str]], copies: int) -> list[list[str]]:
    """``copies`` concatenated copies of the corpus, word ``w`` written ``w_k`` in copy ``k``
    (``<unk>`` is left as it is)."""
    corpus = []
    for copy in range(copies):
        suffix = f"_{copy}"
        corpus += [[w if w == "<unk>" else w + suffix for w in s] for s in sentences]
    return corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", type=int, default=4, help="copies in the larger corpus")
    parser.add_argument(
        "--lmplz-memory",
        default="1G",
        help="lmplz -S: 1G was its fastest here (its default, 80%% of memory, took 2-3x longer)",
    )
    args = parser.parse_args()
    lmplz = os.environ.get("LMPLZ") or shutil.which("lmplz")
    if lmplz is None:
        sys.exit("no lmplz: build it with tools/build_lmplz.sh and set LMPLZ")
    train, test = load_penn_treebank("train"), load_penn_treebank("test")
    figures = {"order": args.order, "lmplz_memory": args.lmplz_memory}
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        for name, corpus, test_corpus in (
            ("ptb", train, test),
            (f"ptb_x{args.copies}", renamed_copies(train, args.copies), None),
        ):
            text = directory / f"{name}.txt"
            text.write_text("".join(" ".join(s) + "\n" for s in corpus), encoding="utf-8")
            tokens = sum(len(s) + 1 for s in corpus)
            start = time.perf_counter()
            result, model, arpa = estimate(
                text, args.order, lmplz, args.lmplz_memory, directory, args.repeats
            )
            result["tokens"] = tokens
            print(
                f"{name} ({tokens} tokens): lmplz {result['lmplz_seconds']:.2f} s, ours "
                f"{result['ours_warm_seconds']:.2f} s warm ({result['speed_ratio_warm']:.2f}x), "
                f"{result['ours_cold_seconds']:.2f} s cold ({result['speed_ratio_cold']:.2f}x); "
                f"same n-grams: {result['same_ngrams']}, max |log10 difference| "
                f"{result['max_abs_log10_difference']:.2e} ({time.perf_counter() - start:.0f} s)"
            )
            if test_corpus is not None:
                try:
                    result["scoring"] = scoring(model, arpa, test_corpus, 4 * args.repeats)
                except ImportError:
                    print("the kenlm module is not installed: no scoring comparison")
                else:
                    s = result["scoring"]
                    print(
                        f"scoring {s['tokens']} test tokens: kenlm score loop "
                        f"{s['kenlm_score_seconds'] * 1e3:.1f} ms; ours "
                        f"{s['ours_from_strings_seconds'] * 1e3:.1f} ms from strings "
                        f"({s['speed_ratio_from_strings']:.2f}x), "
                        f"{s['ours_from_ids_seconds'] * 1e3:.1f} ms from ids "
                        f"({s['speed_ratio_from_ids']:.2f}x); max |log10 sentence difference| "
                        f"{s['max_abs_log10_sentence_difference']:.1e}"
                    )
            figures[name] = result
    write_result(f"ngram_kenlm_order{args.order}", figures)


if __name__ == "__main__":
    main()

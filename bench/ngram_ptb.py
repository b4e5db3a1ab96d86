"""5-gram modified Kneser-Ney on the Penn Treebank: perplexity, fit time, KenLM parity and
scoring speed, with KenLM and NLTK side by side in one run.

Targets: test perplexity <= 142 (``<eos>`` counted as a token; anchor 141.2 for KN5 in
Mikolov et al. 2011); fit <= 20 s on 2 cores; batched scoring at least as fast as the ``kenlm``
module's ``full_scores`` on the same ARPA file.

    python bench/ngram_ptb.py            # add --skip-nltk to leave out NLTK (about a minute)
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import timed_pair, write_result

from pyro_ar.data.penn_treebank import load_penn_treebank
from pyro_ar.ngram import NGramModel, write_arpa


def nltk_figures(train, test, order: int, tokens_to_score: int) -> dict:
    """NLTK's KneserNeyInterpolated: fit time and scoring rate on the first test tokens."""
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    start = time.perf_counter()
    grams, vocab = padded_everygram_pipeline(order, train)
    reference = KneserNeyInterpolated(order)
    reference.fit(grams, vocab)
    fit_seconds = time.perf_counter() - start
    words = ["<s>"] * (order - 1) + [w for s in test for w in s + ["</s>"]][:tokens_to_score]
    start = time.perf_counter()
    for t in range(order - 1, len(words)):
        reference.logscore(words[t], words[t - order + 1 : t])
    rate = (len(words) - order + 1) / (time.perf_counter() - start)
    return {"nltk_fit_seconds": fit_seconds, "nltk_tokens_per_second": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-nltk", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    train, valid, test = (load_penn_treebank(s) for s in ("train", "valid", "test"))
    load_seconds = time.perf_counter() - start
    fit_times = []
    for _ in range(3):
        start = time.perf_counter()
        model = NGramModel.fit(
            train, order=args.order, smoothing="modified_kneser_ney", special_tokens="unknown"
        )
        fit_times.append(time.perf_counter() - start)
    fit_seconds = statistics.median(fit_times)
    test_perplexity = model.perplexity(test)
    valid_perplexity = model.perplexity(valid)
    num_test_tokens = sum(len(s) + 1 for s in test)
    print(f"{model}")
    print(f"fit {fit_seconds:.2f} s (median of 3; PTB read {load_seconds:.2f} s)")
    print(f"perplexity: test {test_perplexity:.2f}, valid {valid_perplexity:.2f}")

    figures = {
        "order": args.order,
        "smoothing": "modified_kneser_ney",
        "discounts": model.discounts,
        "entries": [model.num_entries(n) for n in range(1, args.order + 1)],
        "train_tokens": sum(len(s) + 1 for s in train),
        "test_tokens": num_test_tokens,
        "fit_seconds": fit_seconds,
        "fit_seconds_all": fit_times,
        "ptb_load_seconds": load_seconds,
        "test_perplexity": test_perplexity,
        "valid_perplexity": valid_perplexity,
    }
    try:
        import kenlm
    except ImportError:
        kenlm = None
        print("kenlm is not installed: no parity or speed comparison")
    if kenlm is not None:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "ptb.arpa"
            start = time.perf_counter()
            write_arpa(model, path)
            figures["arpa_write_seconds"] = time.perf_counter() - start
            reference = kenlm.Model(str(path))
        lines = [" ".join(s) for s in test]
        ours = torch.cat(model.token_scores(test)).numpy() / math.log(10)
        theirs = np.array([s for line in lines for s, _, _ in reference.full_scores(line)])
        max_difference = float(np.abs(ours - theirs).max())
        kenlm_perplexity = 10 ** (-theirs.sum() / len(theirs))

        def kenlm_scores():
            return [s for line in lines for s, _, _ in reference.full_scores(line)]

        ours_seconds, _, kenlm_seconds, _ = timed_pair(
            lambda: model.score(test), kenlm_scores, args.repeats
        )
        flat, _ = model.vocabulary.encode_corpus(test)
        ids = torch.from_numpy(flat).unsqueeze(0)
        ids_seconds, _, kenlm_seconds_again, _ = timed_pair(
            lambda: model.stream_log_probs(ids), kenlm_scores, args.repeats
        )
        figures.update(
            kenlm_max_abs_log10_difference=max_difference,
            kenlm_perplexity_of_our_arpa=kenlm_perplexity,
            score_seconds_from_strings=ours_seconds,
            score_seconds_from_ids=ids_seconds,
            kenlm_full_scores_seconds=statistics.median([kenlm_seconds, kenlm_seconds_again]),
            speed_ratio_from_strings=kenlm_seconds / ours_seconds,
            speed_ratio_from_ids=kenlm_seconds_again / ids_seconds,
        )
        print(
            f"KenLM on our ARPA: max |log10 difference| {max_difference:.2e}, "
            f"perplexity {kenlm_perplexity:.2f}"
        )
        print(
            f"scoring {num_test_tokens} test tokens: ours {ours_seconds * 1e3:.1f} ms from "
            f"strings ({kenlm_seconds / ours_seconds:.2f}x KenLM), {ids_seconds * 1e3:.1f} ms "
            f"from ids ({kenlm_seconds_again / ids_seconds:.2f}x); KenLM full_scores "
            f"{kenlm_seconds * 1e3:.1f} ms"
        )
    if not args.skip_nltk:
        nltk = nltk_figures(train, test, args.order, tokens_to_score=200)
        figures.update(nltk, nltk_fit_ratio=nltk["nltk_fit_seconds"] / fit_seconds)
        print(
            f"NLTK KneserNeyInterpolated: fit {nltk['nltk_fit_seconds']:.1f} s "
            f"({nltk['nltk_fit_seconds'] / fit_seconds:.0f}x ours), scores "
            f"{nltk['nltk_tokens_per_second']:.1f} tokens/s"
        )
    write_result(f"ngram_ptb_order{args.order}", figures)


if __name__ == "__main__":
    main()

"""The cases around KenLM parity, checked by hand (``test_lmplz_parity.py`` checks them against
``lmplz`` itself where it is built): discount rules, lmplz's count-of-counts, ``<s>`` in ARPA
files, special tokens and separators in training text, empty lines, interpolate_unigrams,
pruning, vocabulary limiting and shard-by-shard counting."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from pyro_ar.ngram import (
    NGramModel,
    SpecialTokenError,
    Vocabulary,
    count_in_shards,
    count_ngrams,
    merge_counts,
    read_arpa,
    read_sentences,
    smooth,
    write_arpa,
)
from pyro_ar.ngram.smoothing import (
    DiscountError,
    estimate_discounts,
    lmplz_raw_count_entries,
    modified_kneser_ney,
    prune,
    witten_bell,
)

CORPUS = [
    ["the", "cat", "sat"],
    ["the", "dog", "sat"],
    ["a", "cat", "ran"],
    ["the", "cat", "ran", "off"],
    ["a", "dog", "sat", "down"],
    ["the", "bird", "sang"],
    ["a", "cat", "sat"],
] * 2 + [["the", "end"], ["a", "bird", "ran"]]
FALLBACK = (0.5, 1.0, 1.5)


def conditionals(model: NGramModel, histories: list[list[str]]) -> torch.Tensor:
    vocabulary = model.vocabulary
    rows = [[vocabulary.begin_id] + [vocabulary.lookup(w) for w in h] for h in histories]
    width = max(map(len, rows))
    # left-pad with <s>: a history that restarts at a sentence boundary
    ids = torch.tensor([[vocabulary.begin_id] * (width - len(r)) + r for r in rows])
    return model.next_log_probs(ids).exp()


# ----------------------------------------------------------------------------- discounts
def test_discounts_follow_lmplz_rules():
    # n4 = 0 is accepted (D3+ = 3), as lmplz does; before, it was an error
    assert estimate_discounts([10, 4, 2, 0], order=3) == pytest.approx((5 / 9, 7 / 6, 3.0))
    # a discount of exactly 0 is inside [0, k]: Y = 6/12, D2 = 2 - 3 Y n3/n2 = 2 - 1.5 * 4/3
    assert estimate_discounts([6, 3, 4, 1], order=2) == (0.5, 0.0, 2.5)
    for counts, message in (
        ([0, 3, 2, 1], "adjusted count 1"),
        ([5, 0, 2, 1], "adjusted count 2"),
        ([5, 3, 0, 1], "adjusted count 3"),
        ([1, 1, 9, 1], "D2 = .* is outside"),
    ):
        with pytest.raises(DiscountError, match=message):
            estimate_discounts(counts, order=2)
    with pytest.raises(ValueError, match="n1..n4"):
        estimate_discounts([1, 2, 3], order=1)


def test_fallback_replaces_only_the_orders_that_fail(caplog):
    with caplog.at_level(logging.WARNING, logger="pyro_ar.ngram.smoothing"):
        assert estimate_discounts([5, 3, 0, 1], order=2, fallback=FALLBACK) == FALLBACK
    assert "order 2" in caplog.text and "D3" in caplog.text
    counts = count_ngrams(CORPUS, 3, Vocabulary.build(CORPUS))
    weights = modified_kneser_ney(counts, discount_fallback=FALLBACK, discount_statistics="exact")
    for order, used in enumerate(weights.discounts, start=1):
        values = counts.counts[order - 1] if order == 3 else None
        if values is not None:  # the highest order: raw counts, checkable by hand
            n = [int(np.sum(values == k)) for k in (1, 2, 3, 4)]
            try:
                expected = estimate_discounts(n, order)
            except DiscountError:
                expected = FALLBACK
            assert used == pytest.approx(expected)


def test_lmplz_count_of_counts_differ_in_one_entry_per_lower_order():
    counts = count_ngrams(CORPUS, 3, Vocabulary.build(CORPUS))
    entries = lmplz_raw_count_entries(counts)
    # lmplz numbers words by first appearance, so the last trigram in its suffix order ends
    # with the newest word type, "end" (in "<s> the end"); its suffixes are "the end", "end"
    vocabulary = counts.vocabulary
    assert set(entries) == {1, 2}
    assert vocabulary.itos[entries[1]] == "end"
    tokens = counts.ngram_tokens(2)[entries[2]]
    assert [vocabulary.itos[i] for i in tokens] == ["the", "end"]
    exact = modified_kneser_ney(counts, discount_fallback=FALLBACK, discount_statistics="exact")
    lmplz = modified_kneser_ney(counts, discount_fallback=FALLBACK)
    assert exact.discounts[2] == lmplz.discounts[2]  # the highest order is not affected
    with pytest.raises(ValueError, match="discount_statistics"):
        modified_kneser_ney(counts, discount_statistics="srilm")


# ------------------------------------------------------------------------- special tokens
def test_training_text_rejects_special_tokens_or_skips_or_maps_them():
    with pytest.raises(SpecialTokenError, match="sentence 1 .*'</s>'") as error:
        NGramModel.fit([["a", "b"], ["a", "</s>", "b"]], order=2, smoothing="witten_bell")
    assert error.value.sentence == 1 and error.value.token == "</s>"
    with pytest.raises(SpecialTokenError, match="special_tokens='unknown'"):
        NGramModel.fit([["a", "<unk>", "b"]], order=2, smoothing="witten_bell")
    with pytest.raises(SpecialTokenError, match="'<s>'"):
        NGramModel.fit([["a", "<s>"]], order=2, smoothing="witten_bell")
    # skip drops them as whitespace: the same counts as the text without them
    vocabulary = Vocabulary.build([["a", "b"]])
    skipped = count_ngrams([["a", "</s>", "<unk>", "b", "<s>"]], 2, vocabulary, "skip")
    plain = count_ngrams([["a", "b"]], 2, vocabulary)
    for ours, theirs in zip(skipped.counts, plain.counts, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # unknown: a literal <unk> is the unknown word (Penn Treebank text); </s> stays an error
    mapped = count_ngrams([["a", "<unk>", "b"]], 1, vocabulary, "unknown")
    assert mapped.counts[0][vocabulary.unknown_id] == 1
    with pytest.raises(SpecialTokenError):
        count_ngrams([["a", "</s>"]], 1, vocabulary, "unknown")
    with pytest.raises(ValueError, match="scoring"):
        count_ngrams([["a"]], 1, vocabulary, "allow")
    # scoring still takes </s> and <unk> inside a sentence
    model = NGramModel.fit([["a", "b"]], order=2, smoothing="witten_bell")
    assert torch.isfinite(model.score([["a", "</s>", "<unk>"]])).all()


@pytest.mark.parametrize("token", ["two words", "tab\there", "new\nline", "cr\rhere", "nul\0", ""])
def test_tokens_with_separators_are_rejected_when_the_vocabulary_is_built(token):
    with pytest.raises(ValueError, match="separator|empty string"):
        NGramModel.fit([["a", token, "b"]], order=2, smoothing="witten_bell")
    with pytest.raises(ValueError, match="separator|empty string"):
        Vocabulary(["a", token])


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2028", "\u0085", "\x0c", "\x1e", "\x0b"])
def test_unicode_whitespace_inside_tokens_survives_write_and_read(space, tmp_path):
    word = f"caf\u00e9{space}noir"
    corpus = [["a", word, "b"], [word, "a"], ["b", "a", word]]
    model = NGramModel.fit(corpus, order=2, smoothing="witten_bell")
    loaded = read_arpa(write_arpa(model, tmp_path / "model.arpa"))
    assert loaded.vocabulary == model.vocabulary and word in loaded.vocabulary
    torch.testing.assert_close(loaded.score(corpus), model.score(corpus), rtol=0, atol=1e-6)
    # and read_sentences splits such text as lmplz does
    text = tmp_path / "corpus.txt"
    text.write_text("".join(" ".join(s) + "\n" for s in corpus), encoding="utf-8")
    assert read_sentences(text, kenlm_compatible=True) == corpus


def test_read_arpa_takes_minus_infinity_and_gives_begin_probability_zero(tmp_path):
    path = tmp_path / "model.arpa"
    path.write_text(
        "\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-0.30103\t</s>\n0\t<s>\t-0.1\n"
        "-0.30103\ta\t-0.2\n-inf\tb\n\n\\2-grams:\n-0.1\t<s> a\n-0.5\ta <s>\n\n\\end\\\n"
    )
    model = read_arpa(path)
    begin, b = model.vocabulary.begin_id, model.vocabulary.stoi["b"]
    history = torch.tensor([[begin, model.vocabulary.stoi["a"]]])
    after_a = model.next_log_probs(history).exp()[0]
    assert after_a[begin] == 0 and after_a[b] == 0  # "a <s>" is stored, still never predicted
    assert model.log_probs[0][begin] == -math.inf


def test_empty_lines_are_sentences_for_lmplz(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_bytes(b"a b\n\nb a\r\n\n")
    assert read_sentences(text) == [["a", "b"], ["b", "a"]]
    kenlm_style = read_sentences(text, kenlm_compatible=True)
    assert kenlm_style == [["a", "b"], [], ["b", "a"], []]
    counts = count_ngrams(kenlm_style, 2, Vocabulary.build(kenlm_style))
    vocabulary = counts.vocabulary
    grams = {
        tuple(row): int(c)
        for row, c in zip(counts.ngram_tokens(2).tolist(), counts.counts[1].tolist(), strict=True)
    }
    assert grams[(vocabulary.begin_id, vocabulary.end_id)] == 2  # <s> </s> twice


@pytest.mark.parametrize("order", [True, 2.0, 0, "3"])
def test_order_must_be_an_integer(order):
    with pytest.raises(ValueError, match="integer"):
        NGramModel.fit(CORPUS, order=order, smoothing="witten_bell")
    assert NGramModel.fit(CORPUS, order=np.int64(2), smoothing="witten_bell").order == 2


# ------------------------------------------------------------------- interpolate_unigrams
def test_without_unigram_interpolation_unknown_gets_the_interpolation_mass():
    counts = count_ngrams(CORPUS, 2, Vocabulary.build(CORPUS))
    weights = modified_kneser_ney(counts, discount_fallback=FALLBACK, interpolate_unigrams=False)
    model = NGramModel.from_interpolation(counts, weights)
    unigrams = model.log_probs[0].exp().numpy()
    vocabulary = counts.vocabulary
    unknown = vocabulary.unknown_id
    assert unigrams[unknown] == pytest.approx(weights.gammas[0][0])
    others = np.delete(np.arange(len(vocabulary)), [unknown, vocabulary.begin_id])
    np.testing.assert_allclose(unigrams[others], weights.alphas[0][others])
    assert unigrams.sum() == pytest.approx(1.0)
    closed = count_ngrams(CORPUS, 2, Vocabulary.build(CORPUS, unknown_token=None))
    with pytest.raises(ValueError, match="unknown token"):
        modified_kneser_ney(closed, discount_fallback=FALLBACK, interpolate_unigrams=False)


# ------------------------------------------------------------------------------- pruning
def test_pruning_moves_the_removed_weights_to_the_backoff_and_stays_normalized():
    counts = count_ngrams(CORPUS, 3, Vocabulary.build(CORPUS))
    weights = witten_bell(counts)
    pruned, kept = prune(counts, weights, thresholds=[0, 1, 2])
    np.testing.assert_array_equal(kept[1], counts.counts[1] > 1)
    np.testing.assert_array_equal(kept[2], counts.counts[2] > 2)
    # alpha + gamma per context is unchanged: the removed alphas moved into gamma
    for n in (2, 3):
        before = np.bincount(counts.contexts[n - 1], weights.alphas[n - 1]) + 0
        after = np.bincount(counts.contexts[n - 1], pruned.alphas[n - 1])
        size = len(after)
        np.testing.assert_allclose(
            before + weights.gammas[n - 1][:size], after + pruned.gammas[n - 1][:size]
        )
    model = NGramModel.fit(CORPUS, order=3, smoothing="witten_bell", prune=[0, 1, 2])
    assert model.num_entries(2) == int(kept[1].sum()) and model.num_entries(3) == int(
        kept[2].sum()
    )
    histories = [[], ["the"], ["a", "cat"], ["the", "cat"], ["zebra", "sat"], ["dog", "sat"]]
    np.testing.assert_allclose(conditionals(model, histories).sum(-1), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="not decrease"):
        NGramModel.fit(CORPUS, order=3, prune=[0, 2, 1], discount_fallback=FALLBACK)
    with pytest.raises(ValueError, match="1 to 3"):
        NGramModel.fit(CORPUS, order=3, prune=[0, 1, 1, 1], discount_fallback=FALLBACK)


def test_unigram_pruning_and_vocabulary_limits_shrink_the_vocabulary():
    model = NGramModel.fit(CORPUS, order=2, smoothing="witten_bell", prune=[2, 2])
    removed = {"off", "down", "sang", "end"}  # seen at most twice
    assert removed.isdisjoint(model.vocabulary.itos)
    assert {"cat", "bird"} <= set(model.vocabulary.itos)  # bird: three times
    limited = NGramModel.fit(
        CORPUS, order=3, smoothing="witten_bell", limit_vocabulary=["the", "a", "cat", "sat"]
    )
    assert set(limited.vocabulary.itos) == {"<unk>", "<s>", "</s>", "the", "a", "cat", "sat"}
    # no stored n-gram holds another word, and the dog reads as <unk>
    for n in (2, 3):
        assert limited.num_entries(n) > 0
    histories = [[], ["the"], ["the", "dog"], ["a", "cat"]]
    for pruned_model in (model, limited):
        np.testing.assert_allclose(conditionals(pruned_model, histories).sum(-1), 1.0, atol=1e-12)


# ------------------------------------------------------------------ counting in shards
@pytest.mark.parametrize("shard_size", [1, 2, 5, 100])
def test_counting_in_shards_equals_counting_at_once(shard_size):
    vocabulary = Vocabulary.build(CORPUS)
    whole = count_ngrams(CORPUS, 4, vocabulary)
    sharded = count_in_shards(iter(CORPUS), 4, vocabulary, shard_size=shard_size)
    for name in ("keys", "contexts", "words", "counts", "suffixes", "first_words"):
        for ours, theirs in zip(getattr(sharded, name), getattr(whole, name), strict=True):
            np.testing.assert_array_equal(ours, theirs, err_msg=name)
    np.testing.assert_array_equal(sharded.first_occurrence, whole.first_occurrence)
    assert (sharded.num_sentences, sharded.num_tokens) == (whole.num_sentences, whole.num_tokens)
    a = NGramModel.from_counts(sharded, "modified_kneser_ney", discount_fallback=FALLBACK)
    b = NGramModel.from_counts(whole, "modified_kneser_ney", discount_fallback=FALLBACK)
    assert a.discounts == b.discounts
    for ours, theirs in zip(a.log_probs, b.log_probs, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_merging_needs_one_vocabulary_and_order():
    vocabulary = Vocabulary.build(CORPUS)
    with pytest.raises(ValueError, match="vocabularies"):
        merge_counts(
            count_ngrams(CORPUS, 2, vocabulary),
            count_ngrams(CORPUS, 2, Vocabulary.build(CORPUS[:3])),
        )
    with pytest.raises(ValueError, match="orders"):
        merge_counts(count_ngrams(CORPUS, 2, vocabulary), count_ngrams(CORPUS, 3, vocabulary))
    with pytest.raises(ValueError, match="empty corpus"):
        count_in_shards(iter([]), 2, vocabulary)
    with pytest.raises(ValueError, match="shard_size"):
        count_in_shards(iter(CORPUS), 2, vocabulary, shard_size=0)
    assert smooth(count_in_shards(iter(CORPUS), 2, vocabulary), "witten_bell").alphas

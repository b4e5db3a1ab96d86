"""Count-based n-gram models: counts, smoothing, normalization, ARPA, peers (NLTK, KenLM)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from pyro_ar.ngram import (
    SMOOTHING_METHODS,
    ARPAFormatError,
    DiscountError,
    NGramModel,
    NGramTable,
    NGramTableError,
    Vocabulary,
    class_posterior,
    count_ngrams,
    read_arpa,
    smooth,
    write_arpa,
)

# The lecture's running example: a critic's reviews.
REVIEWS = [
    "this movie was a waste of time",
    "a waste of money and a waste of time",
    "what a great movie",
    "the plot was a mess",
    "the acting was great but the plot was a waste of talent",
    "a great movie with a great cast",
]
OPTIONS = {"modified_kneser_ney": {"discount_fallback": (0.5, 1.0, 1.5)}}


def fit(sentences, order, method, **extra):
    return NGramModel.fit(
        sentences, order=order, smoothing=method, **OPTIONS.get(method, {}), **extra
    )


def history_ids(model, words):
    vocabulary = model.vocabulary
    return torch.tensor([vocabulary.begin_id] + [vocabulary.lookup(w) for w in words])


def test_counts_by_hand():
    vocabulary = Vocabulary.build([s.split() for s in REVIEWS])
    counts = count_ngrams([s.split() for s in REVIEWS], 3, vocabulary)
    grams = {
        n: {
            tuple(vocabulary.itos[i] for i in row): int(c)
            for row, c in zip(counts.ngram_tokens(n), counts.counts[n - 1], strict=True)
        }
        for n in (1, 2, 3)
    }
    assert grams[3][("waste", "of", "time")] == 2
    assert grams[3][("waste", "of", "money")] == 1
    assert grams[2][("waste", "of")] == 4
    assert grams[2][("<s>", "a")] == 2
    assert grams[3][("<s>", "a", "waste")] == 1
    assert grams[1][("a",)] == 8
    assert grams[1][("<s>",)] == len(REVIEWS) == counts.num_sentences
    assert ("of", "time", "</s>") in grams[3] and ("time", "</s>", "<s>") not in grams[3]
    assert counts.num_tokens == sum(len(s.split()) + 1 for s in REVIEWS)
    # continuation count: the distinct words before "of time" are {waste}
    continuation = dict(
        zip(map(tuple, counts.ngram_tokens(2)), counts.continuation_counts(2), strict=True)
    )
    of, time = vocabulary.stoi["of"], vocabulary.stoi["time"]
    assert continuation[(of, time)] == 1


def test_maximum_likelihood_is_the_relative_frequency():
    model = fit(REVIEWS, 3, "maximum_likelihood")
    # count("waste of time") / count("waste of") = 2 / 4
    lp = model.next_log_probs(history_ids(model, ["waste", "of"]))
    v = model.vocabulary
    assert math.isclose(lp[v.stoi["time"]].exp().item(), 2 / 4, rel_tol=1e-12)
    assert math.isclose(lp[v.stoi["money"]].exp().item(), 1 / 4, rel_tol=1e-12)
    assert lp[v.stoi["movie"]].item() == -math.inf  # unsmoothed: unseen word, zero probability
    assert math.isinf(model.perplexity(["a waste of movie"]))


def test_kneser_ney_bigram_by_hand():
    sentences = ["a b", "a c", "b c", "c"]
    model = fit(sentences, 2, "kneser_ney", discount=0.5)
    v = model.vocabulary
    # context "a" (highest order, raw counts): c(a b) = c(a c) = 1, c(a .) = 2, N1+(a .) = 2
    #   -> gamma = 0.5 * 2 / 2
    # unigram continuation counts N1+(. w): a <- {<s>}, b <- {a, <s>}, c <- {a, b, <s>},
    #   </s> <- {b, c}; total 8 over 4 types -> gamma = 0.5 * 4 / 8; V = 5 predicted symbols
    uniform = 1 / v.num_predictable
    assert v.num_predictable == 5
    gamma_unigram = 0.5 * 4 / 8
    p1 = {"a": (1 - 0.5) / 8, "b": (2 - 0.5) / 8, "c": (3 - 0.5) / 8, "</s>": (2 - 0.5) / 8}
    p1 = {w: p + gamma_unigram * uniform for w, p in p1.items()}
    expected_c = (1 - 0.5) / 2 + 0.5 * p1["c"]
    expected_a = 0.5 * p1["a"]
    lp = model.next_log_probs(history_ids(model, ["a"]))
    assert math.isclose(lp[v.stoi["c"]].exp().item(), expected_c, rel_tol=1e-12)
    assert math.isclose(lp[v.stoi["a"]].exp().item(), expected_a, rel_tol=1e-12)


@pytest.mark.parametrize("method", list(SMOOTHING_METHODS))
@pytest.mark.parametrize("order", [1, 2, 3, 4, 6])
def test_every_conditional_is_normalized(method, order, device):
    model = fit(REVIEWS, order, method).to(device)
    contexts = [
        [],  # sentence start
        ["a", "waste", "of"],  # seen at every order
        ["the", "plot"],
        ["great"],
        ["of", "a"],  # seen words, unseen bigram
        ["zebra", "quokka"],  # out of vocabulary -> <unk>
        ["movie", "zebra"],
    ]
    for words in contexts:
        history = history_ids(model, words).to(device)
        dense = model.next_log_probs(history)
        total = torch.logsumexp(dense, -1).item()
        assert abs(total) < 1e-12, (method, order, words, total)
        assert dense[model.vocabulary.begin_id].item() == -math.inf
        # the dense conditional equals per-word scoring of the extended history
        candidates = torch.tensor(
            [i for i in range(len(model.vocabulary)) if i != model.vocabulary.begin_id],
            device=device,
        )
        streams = torch.cat([history.expand(len(candidates), -1), candidates[:, None]], -1)
        scored = model.stream_log_probs(streams)[:, -1]
        torch.testing.assert_close(scored, dense[candidates], rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", [m for m in SMOOTHING_METHODS if m != "maximum_likelihood"])
def test_smoothed_perplexity_is_finite_with_unseen_words_and_contexts(method):
    model = fit(REVIEWS, 3, method)
    value = model.perplexity(["a zebra wasted my time", "plot plot plot", "movie"])
    assert math.isfinite(value) and value > 1


def test_modified_kneser_ney_discounts_and_fallback(caplog):
    with pytest.raises(DiscountError, match="discount_fallback"):
        NGramModel.fit(REVIEWS, order=3, smoothing="modified_kneser_ney")
    with caplog.at_level(logging.WARNING, logger="pyro_ar.ngram.smoothing"):
        model = NGramModel.fit(
            REVIEWS, order=3, smoothing="modified_kneser_ney", discount_fallback=(0.5, 1, 1.5)
        )
    assert "order 3" in caplog.text and "fallback" in caplog.text
    assert model.discounts[2] == (0.5, 1.0, 1.5)  # only the order that cannot be estimated
    assert model.discounts[0] != (0.5, 1.0, 1.5) and model.discounts[0][2] == 3.0  # n4 = 0
    with pytest.raises(DiscountError, match="discount="):
        NGramModel.fit(["a b", "a b"], order=2, smoothing="kneser_ney")


def test_modified_kneser_ney_estimates_follow_chen_and_goodman(penn_treebank):
    train = penn_treebank["train"][:5000]
    vocabulary = Vocabulary.build(train)
    counts = count_ngrams(train, 3, vocabulary, special_tokens="unknown")
    weights = smooth(counts, "modified_kneser_ney")
    top = counts.counts[2]
    n1, n2, n3, n4 = (np.sum(top == k) for k in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2)
    expected = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    np.testing.assert_allclose(weights.discounts[2], expected, rtol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="empty corpus"):
        NGramModel.fit([], order=2)
    with pytest.raises(ValueError, match="order"):
        NGramModel.fit(REVIEWS, order=0)
    with pytest.raises(ValueError, match="unknown smoothing"):
        NGramModel.fit(REVIEWS, order=2, smoothing="good_turing")
    closed = Vocabulary(
        list(dict.fromkeys(w for s in REVIEWS for w in s.split())), unknown_token=None
    )
    model = NGramModel.fit(REVIEWS, order=2, smoothing="witten_bell", vocabulary=closed)
    with pytest.raises(KeyError, match="unknown token 'zebra'.*no unknown token"):
        model.score(["a zebra"])
    with pytest.raises(ValueError, match="out of range"):
        model.stream_log_probs(torch.tensor([[1, len(closed)]]))
    with pytest.raises(TypeError, match="integer"):
        model.stream_log_probs(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(TypeError, match="one string"):
        model.score("a waste of time")


@pytest.mark.parametrize("method", list(SMOOTHING_METHODS))
def test_arpa_round_trip(method, tmp_path):
    model = fit(REVIEWS, 3, method)
    path = write_arpa(model, tmp_path / "model.arpa")
    loaded = read_arpa(path)
    assert loaded.vocabulary == model.vocabulary and loaded.order == 3
    sentences = REVIEWS + ["a zebra wasted my time", "plot plot"]
    # 8 decimals of log10: each stored value is off by at most 0.5e-8 ln 10 = 1.2e-8, and a
    # sentence score sums a few dozen of them
    torch.testing.assert_close(loaded.score(sentences), model.score(sentences), rtol=0, atol=1e-6)
    finer = read_arpa(write_arpa(model, tmp_path / "finer.arpa", decimals=12))
    torch.testing.assert_close(finer.score(sentences), model.score(sentences), rtol=0, atol=1e-10)
    text = path.read_text()
    assert text.startswith("\n\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    assert "-99\t<s>" in text  # <s> is never predicted: log10 0 written the SRILM way


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_tables_rebuilds_the_model_from_its_entries_in_any_float_dtype(dtype):
    model = fit(REVIEWS, 2, "witten_bell")
    size, tables = len(model.vocabulary), []
    for n in range(1, model.order + 1):
        # a bigram's key is (its first word's unigram entry = the word id) * size + word
        keys = model.keys[n - 1]
        columns = [keys % size] if n == 1 else [keys // size, keys % size]
        ids = torch.stack(columns, dim=-1).flip(0)  # any row order is accepted
        tables.append(
            NGramTable(
                ids,
                model.log_probs[n - 1].flip(0).to(dtype),
                model.log_backoffs[n - 1].flip(0).to(dtype),
            )
        )
    rebuilt = NGramModel.from_tables(model.vocabulary, tables)
    sentences = REVIEWS + ["a zebra wasted my time"]
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(
        rebuilt.score(sentences), model.score(sentences), rtol=0, atol=tolerance * 50
    )
    with pytest.raises(NGramTableError, match="at least the unigram table"):
        NGramModel.from_tables(model.vocabulary, [])


def test_arpa_errors(tmp_path):
    model = fit(REVIEWS, 2, "kneser_ney")
    good = write_arpa(model, tmp_path / "good.arpa").read_text()
    cases = {
        "no \\\\data": good.replace("\\data\\", "\\dada\\"),
        "section ends": good.replace("ngram 2=", "ngram 2=1"),
        "not a unigram": good.replace("\ta waste", "\ta zebra"),
        "malformed number": good.replace("\ta waste", "\ta waste\tx", 1).replace(
            "waste\tx", "waste x"
        ),
    }
    for message, text in cases.items():
        path = tmp_path / "bad.arpa"
        path.write_text(text)
        with pytest.raises(ARPAFormatError, match=message.replace("\\\\", "\\\\")):
            read_arpa(path)
    # a trigram whose first two words are not a stored bigram
    trigram = fit(REVIEWS, 3, "kneser_ney")
    text = write_arpa(trigram, tmp_path / "tri.arpa").read_text()
    lines = text.splitlines()
    index = lines.index("\\3-grams:") + 1
    probability = lines[index].split("\t")[0]
    lines[index] = f"{probability}\tgreat plot mess"
    (tmp_path / "missing.arpa").write_text("\n".join(lines))
    with pytest.raises(ARPAFormatError, match="no entry for its first 2 words"):
        read_arpa(tmp_path / "missing.arpa")


def test_kenlm_reads_our_arpa_and_agrees(tmp_path, penn_treebank):
    kenlm = pytest.importorskip("kenlm")
    train = penn_treebank["train"][:8000]
    model = NGramModel.fit(
        train, order=4, smoothing="modified_kneser_ney", min_count=2, special_tokens="unknown"
    )
    path = write_arpa(model, tmp_path / "ptb4.arpa")
    reference = kenlm.Model(str(path))
    sentences = penn_treebank["valid"][:300] + [["zebra", "quokka", "the"], ["the"]]
    ours = torch.cat(model.token_scores(sentences)).numpy() / math.log(10)
    theirs = np.array(
        [score for s in sentences for score, _, _ in reference.full_scores(" ".join(s))]
    )
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    # the order of the longest match agrees too (KenLM's ngram_length)
    lengths = [n for s in sentences for _, n, _ in reference.full_scores(" ".join(s))]
    assert max(lengths) == 4


def test_interpolated_kneser_ney_agrees_with_nltk_where_the_definitions_agree():
    """NLTK's ``KneserNeyInterpolated`` and ours share the recursion alpha + gamma * lower, the
    fixed discount, raw counts at the highest order and continuation counts below. They differ
    in (1) padding: NLTK writes order-1 ``<s>`` and ``</s>`` symbols and counts n-grams made of
    padding; (2) the unigrams: NLTK uses the undiscounted continuation frequency (zero for unseen
    words, hence its infinite perplexities), we discount it and interpolate with the uniform
    distribution, like KenLM. So we compare alpha and gamma of orders 3 and 2 for contexts made of
    words, and the full conditional with NLTK's unigram plugged into our recursion."""
    nltk_lm = pytest.importorskip("nltk.lm")
    from nltk.lm.preprocessing import padded_everygram_pipeline

    sentences = [s.split() for s in REVIEWS]
    train, vocab = padded_everygram_pipeline(3, sentences)
    reference = nltk_lm.KneserNeyInterpolated(3, discount=0.75)
    reference.fit(train, vocab)
    vocabulary = Vocabulary.build(sentences)
    counts = count_ngrams(sentences, 3, vocabulary)
    weights = smooth(counts, "kneser_ney", discount=0.75)
    index = {n: {tuple(r): e for e, r in enumerate(counts.ngram_tokens(n))} for n in (1, 2, 3)}
    words = [w for w in vocabulary.itos if w not in ("<s>", "<unk>")]
    estimator = reference.estimator
    checked = 0
    for (first, second), entry in index[2].items():
        context = (vocabulary.itos[first], vocabulary.itos[second])
        if "<s>" in context or "</s>" in context:
            continue
        for word in words:
            alpha3, gamma3 = estimator.alpha_gamma(word, context)
            alpha2, gamma2 = estimator.alpha_gamma(word, context[1:])
            ours3 = index[3].get((first, second, vocabulary.stoi[word]))
            ours2 = index[2].get((second, vocabulary.stoi[word]))
            assert math.isclose(gamma3, weights.gammas[2][entry], rel_tol=1e-12)
            assert math.isclose(gamma2, weights.gammas[1][second], rel_tol=1e-12)
            assert math.isclose(
                alpha3, 0.0 if ours3 is None else weights.alphas[2][ours3], abs_tol=1e-15
            )
            assert math.isclose(
                alpha2, 0.0 if ours2 is None else weights.alphas[1][ours2], abs_tol=1e-15
            )
            unigram = estimator.unigram_score(word)
            ours = (0.0 if ours3 is None else weights.alphas[2][ours3]) + weights.gammas[2][
                entry
            ] * (
                (0.0 if ours2 is None else weights.alphas[1][ours2])
                + weights.gammas[1][second] * unigram
            )
            assert math.isclose(ours, reference.score(word, context), rel_tol=1e-12)
            checked += 1
    assert checked > 100


def test_scoring_on_device_matches_cpu(device):
    model = fit(REVIEWS, 3, "kneser_ney")
    moved = model.to(device)
    sentences = REVIEWS + ["a zebra wasted my time"]
    torch.testing.assert_close(moved.score(sentences).cpu(), model.score(sentences))
    assert moved.score(sentences).device.type == device.type


def test_class_posterior_is_bayes_rule():
    critic_a = ["a waste of time", "a waste of money", "what a waste"]
    critic_b = ["a great movie", "a great cast", "what a great plot"]
    models = {
        "a": NGramModel.fit(critic_a, order=2, smoothing="witten_bell"),
        "b": NGramModel.fit(critic_b, order=2, smoothing="witten_bell"),
    }
    texts = [["a waste of a movie"], ["a great great movie", "what a cast"]]
    names, posterior = class_posterior(models, texts, prior={"a": 0.3, "b": 0.7})
    assert names == ["a", "b"]
    assert posterior[0, 0] > 0.5 and posterior[1, 1] > 0.5
    for t, text in enumerate(texts):
        log_joint = torch.stack(
            [models[n].score(text).sum() + math.log(p) for n, p in (("a", 0.3), ("b", 0.7))]
        )
        torch.testing.assert_close(posterior[t], torch.softmax(log_joint, 0))
    with pytest.raises(ValueError, match="prior lacks"):
        class_posterior(models, texts, prior={"a": 1.0})

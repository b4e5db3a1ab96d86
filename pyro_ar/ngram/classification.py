r"""Classification with n-gram models: which of several sources (authors, critics, languages)
most probably produced a text."""

from __future__ import annotations

__all__ = ["class_posterior"]

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from .model import NGramModel
from .vocabulary import token_lists


def class_posterior(
    models: Mapping[str, NGramModel],
    texts: Sequence[Sequence[Sequence[str] | str]],
    prior: Mapping[str, float] | None = None,
) -> tuple[list[str], Tensor]:
    r"""Posterior class probabilities of each text by Bayes' rule,

    .. math:: P(c \mid \text{text}) \propto P(c) \prod_{s \in \text{text}} p_c(s),

    where :math:`p_c` is class :math:`c`'s n-gram model (sentences scored with ``</s>``, natural
    logs, normalized with ``logsumexp`` so long texts do not underflow). Each model uses its own
    vocabulary; give them the same ``<unk>`` treatment (e.g. the same ``min_count``) so that
    out-of-vocabulary words do not favour a class by construction.

    Arguments:
        models: Class name -> fitted model.
        texts: Each text is a list of sentences (token lists, or strings split on whitespace).
        prior: Class name -> prior probability (default uniform).

    Returns:
        The class names (in ``models`` order) and probabilities ``(len(texts), len(models))``.

    Example:
        >>> from pyro_ar.ngram import NGramModel
        >>> alice = NGramModel.fit([["a", "b", "a"], ["a", "a"]], order=2, smoothing="witten_bell")
        >>> bob = NGramModel.fit([["b", "b"], ["b"]], order=2, smoothing="witten_bell",
        ...                      vocabulary=alice.vocabulary)
        >>> texts = [[["a", "a"]], [["b"]]]  # two texts of one sentence each
        >>> labels, posterior = class_posterior({"alice": alice, "bob": bob}, texts)
        >>> labels, posterior.argmax(-1).tolist()
        (['alice', 'bob'], [0, 1])
    """
    if not models:
        raise ValueError("class_posterior needs at least one model")
    names = list(models)
    if prior is None:
        log_prior = torch.zeros(len(names), dtype=torch.float64)
    else:
        missing = set(names) - set(prior)
        if missing:
            raise ValueError(f"prior lacks classes {sorted(missing)}")
        log_prior = torch.tensor([float(prior[n]) for n in names], dtype=torch.float64).log()
    texts = [token_lists(text) for text in texts]
    if any(len(text) == 0 for text in texts):
        raise ValueError("every text needs at least one sentence")
    sentences = [sentence for text in texts for sentence in text]
    text_of_sentence = torch.repeat_interleave(
        torch.arange(len(texts)), torch.tensor([len(t) for t in texts])
    )
    log_likelihood = torch.zeros(len(texts), len(names), dtype=torch.float64)
    for column, name in enumerate(names):
        scores = models[name].score(sentences).cpu().double()
        log_likelihood[:, column].index_add_(0, text_of_sentence, scores)
    return names, torch.softmax(log_likelihood + log_prior, dim=-1)

r"""A smoothed n-gram language model as a Pyro distribution over token-id sequences."""

from __future__ import annotations

__all__ = ["NGramChain"]

import math

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from ..ngram.model import NGramModel
from .validation import (
    check_end_padding,
    check_sample_shape,
    check_value_shape,
    finish_expand,
    through_first_end,
)

# Rows of dense conditionals computed at once when tempering log_prob (memory: rows x V).
_DENSE_CHUNK_ROWS = 1024


class NGramChain(TorchDistribution):
    r"""Token sequences :math:`x_{1:L}` drawn from an n-gram model, one word at a time:

    .. math:: p(x_{1:L}) = \prod_{t=1}^{T} p_\tau(x_t \mid \texttt{<s>}, \text{prefix}, x_{<t}),
              \qquad p_\tau(w \mid h) \propto p(w \mid h)^{1/\tau},

    with the model's smoothed conditionals :math:`p(w \mid h)` (natural logs), temperature
    :math:`\tau` (1 = the model itself), and :math:`T = L` or, with ``stop_at_end``, the position
    of the first ``</s>``: a sentence ends there and the rest of the row is padding, which must be
    ``</s>`` too. So the support is every sequence of ``L`` non-``<s>`` ids (fixed length), or
    every sentence of at most ``L`` tokens ending in ``</s>`` plus every unfinished ``L``-token
    prefix (stop mode); :meth:`sample` draws from exactly the distribution that :meth:`log_prob`
    scores (unlike NLTK's ``generate``, which only draws seen continuations).

    ``prefix`` (shape ``batch_shape + (P,)``) conditions on given first words, for completion;
    :meth:`greedy` and :meth:`beam_search` give the most probable continuations.

    Arguments:
        model: A fitted :class:`~pyro_ar.ngram.model.NGramModel` (its tables' device is used).
        length: :math:`L`, the number of tokens per sequence.
        prefix: ``long`` tensor of given words (no ``<s>``), or ``None``.
        stop_at_end: Treat ``</s>`` as the end of the sequence (default) or as a word.
        temperature: :math:`\tau > 0`.
        dtype: The floating dtype of :meth:`log_prob` (default: PyTorch's default dtype, as for
            every distribution without floating parameters; the tables are float64 and the
            sums are taken in float64 before the cast).
        validate_args: Whether to validate values. Without validation a value outside the
            support (a ``<s>`` token, padding after ``</s>`` that is not ``</s>``) has
            log-probability :math:`-\infty`.

    Shapes: ``batch_shape = prefix.shape[:-1]`` (or ``()``), ``event_shape = (L,)``.

    Example:
        >>> model = NGramModel.fit([["a", "b"], ["b", "a", "a"]], order=2, smoothing="witten_bell")
        >>> chain = NGramChain(model, length=4)
        >>> x = chain.sample((3,))
        >>> chain.log_prob(x).shape, chain.log_prob(x).dtype
        (torch.Size([3]), torch.float32)
    """

    arg_constraints: dict = {}
    has_enumerate_support = False

    def __init__(
        self,
        model: NGramModel,
        length: int,
        prefix: Tensor | None = None,
        stop_at_end: bool = True,
        temperature: float = 1.0,
        dtype: torch.dtype | None = None,
        validate_args: bool | None = None,
    ):
        if not isinstance(model, NGramModel):
            raise TypeError(f"NGramChain needs an NGramModel, got {type(model).__name__}")
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a positive integer, got {length!r}")
        if not 0 < temperature < math.inf:
            raise ValueError(f"temperature must be positive and finite, got {temperature}")
        if prefix is None:
            prefix = torch.zeros((0,), dtype=torch.long, device=model.device)
        if not isinstance(prefix, Tensor) or prefix.dim() < 1:
            raise ValueError("prefix must be a tensor of token ids of shape (..., P)")
        model.check_ids(prefix, "prefix")
        if bool((prefix == model.vocabulary.begin_id).any()):
            raise ValueError("prefix must not contain <s>: it is added in front automatically")
        if prefix.device != model.device:
            raise ValueError(f"prefix is on {prefix.device} but the model on {model.device}")
        self.model = model
        self.length = length
        self.prefix = prefix.long()
        self.stop_at_end = stop_at_end
        self.temperature = float(temperature)
        self.dtype = torch.get_default_dtype() if dtype is None else dtype
        if not self.dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating dtype, got {self.dtype}")
        super().__init__(prefix.shape[:-1], torch.Size([length]), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.independent(
            constraints.integer_interval(0, len(self.model.vocabulary) - 1), 1
        )

    def expand(self, batch_shape, _instance=None) -> NGramChain:
        new = self._get_checked_instance(NGramChain, _instance)
        batch_shape = torch.Size(batch_shape)
        new.model = self.model
        new.length = self.length
        new.prefix = self.prefix.expand(batch_shape + self.prefix.shape[-1:])
        new.stop_at_end = self.stop_at_end
        new.temperature = self.temperature
        new.dtype = self.dtype
        finish_expand(new, self, batch_shape)
        return new

    # ----------------------------------------------------------------------------- scoring
    def _validate_sample(self, value: Tensor) -> None:
        check_value_shape(self, value, "token")
        if value.dtype.is_floating_point and bool((value != value.round()).any()):
            raise ValueError("NGramChain values must be integer token ids")
        self.model.check_ids(value.long(), "value")
        if bool((value == self.model.vocabulary.begin_id).any()):
            raise ValueError("value contains <s>, which is a context symbol, never a token")
        if self.stop_at_end:
            check_end_padding(
                value,
                self.model.vocabulary.end_id,
                "with stop_at_end, positions after the first </s> must be padded with </s> "
                f"(id {self.model.vocabulary.end_id})",
            )

    def _counted(self, value: Tensor) -> Tensor:
        """Positions that are part of the sequence (not padding after the first ``</s>``)."""
        if not self.stop_at_end:
            return torch.ones_like(value, dtype=torch.bool)
        return through_first_end(value, self.model.vocabulary.end_id)

    def token_log_probs(self, value: Tensor) -> Tensor:
        r"""Per-position :math:`\log p_\tau(x_t \mid \dots)` (0 at padding, :math:`-\infty`
        at a ``<s>`` or at padding that is not ``</s>``), in float64, shape
        ``broadcast(value.shape[:-1], batch_shape) + (L,)``."""
        value = value.long()
        scores = self.model.sequence_log_probs(value, self.prefix)
        if self.temperature != 1.0:
            scores = scores / self.temperature - self._tempered_normalizers(value)
        counted = self._counted(value).expand(scores.shape)
        scores = torch.where(counted, scores, torch.zeros((), dtype=scores.dtype))
        impossible = value == self.model.vocabulary.begin_id
        if self.stop_at_end:
            impossible = impossible | (~counted & (value != self.model.vocabulary.end_id))
        return torch.where(impossible, torch.full((), -torch.inf, dtype=scores.dtype), scores)

    def log_prob(self, value: Tensor) -> Tensor:
        r""":math:`\log p(x_{1:L})` in natural log, in :attr:`dtype`, shape
        ``broadcast(value.shape[:-1], batch_shape)``."""
        if self._validate_args:
            self._validate_sample(value)
        return self.token_log_probs(value).sum(-1).to(self.dtype)

    def _tempered_normalizers(self, value: Tensor) -> Tensor:
        r""":math:`\log \sum_w p(w \mid h_t)^{1/\tau}` for every position's history."""
        batch = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        prefix = self.prefix.expand(batch + self.prefix.shape[-1:])
        value = value.expand(batch + value.shape[-1:])
        begin = value.new_full(batch + (1,), self.model.vocabulary.begin_id)
        stream = torch.cat([begin, prefix, value[..., :-1]], -1)
        stream = stream.reshape(batch.numel(), stream.shape[-1])
        found = self.model.entries(stream)
        # The history of value position j ends at stream position P + j.
        start = prefix.shape[-1]
        contexts = [f[:, start:].reshape(-1) for f in found[: self.model.order - 1]]
        rows = stream.shape[0] * self.length
        normalizers = []
        for first in range(0, rows, _DENSE_CHUNK_ROWS):
            chunk = [c[first : first + _DENSE_CHUNK_ROWS] for c in contexts]
            dense = self.model.dense_log_probs(chunk, min(_DENSE_CHUNK_ROWS, rows - first))
            normalizers.append(torch.logsumexp(dense / self.temperature, -1))
        return torch.cat(normalizers).reshape(batch + (self.length,))

    # ----------------------------------------------------------------------------- sampling
    def _start(self, sample_shape: torch.Size) -> tuple[torch.Size, list[Tensor]]:
        """Rows to generate and the context entries after ``<s>`` + prefix (one per order)."""
        shape = check_sample_shape("NGramChain", sample_shape) + self.batch_shape
        width = self.prefix.shape[-1]
        prefix = self.prefix.expand(shape + (width,)).reshape(shape.numel(), width)
        begin = prefix.new_full((prefix.shape[0], 1), self.model.vocabulary.begin_id)
        found = self.model.entries(torch.cat([begin, prefix], -1))
        return shape, [f[:, -1] for f in found[: self.model.order - 1]]

    def _advance(self, contexts: list[Tensor], token: Tensor) -> list[Tensor]:
        """Context entries after appending ``token`` (orders 1 .. N-1)."""
        updated = [token]
        for k in range(2, self.model.order):
            updated.append(self.model.lookup(k, contexts[k - 2], token))
        return updated

    def _next_scores(self, contexts: list[Tensor], rows: int) -> Tensor:
        dense = self.model.dense_log_probs(contexts, rows)
        if self.temperature != 1.0:
            dense = torch.log_softmax(dense / self.temperature, -1)
        return dense

    def _generate(self, sample_shape: torch.Size, choose) -> Tensor:
        """Runs the chain for ``L`` steps, picking each token with ``choose(log-probs)``; after
        ``</s>`` (stop mode) only padding follows."""
        with torch.no_grad():
            shape, contexts = self._start(sample_shape)
            rows = shape.numel()
            end = self.model.vocabulary.end_id
            finished = torch.zeros(rows, dtype=torch.bool, device=self.model.device)
            tokens = []
            for _ in range(self.length):
                token = choose(self._next_scores(contexts, rows))
                if self.stop_at_end:
                    token = torch.where(finished, end, token)
                    finished = finished | (token == end)
                tokens.append(token)
                contexts = self._advance(contexts, token)
            return torch.stack(tokens, -1).reshape(shape + (self.length,))

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """Ancestral sampling, ``L`` steps for all rows at once (Gumbel-max per step)."""

        def gumbel_max(scores: Tensor) -> Tensor:
            gumbel = -torch.log(-torch.log(torch.rand_like(scores).clamp_(min=1e-30)))
            return torch.argmax(scores + gumbel, -1)

        return self._generate(sample_shape, gumbel_max)

    def greedy(self) -> Tensor:
        """The continuation that takes the most probable token at each step,
        shape ``batch_shape + (L,)``."""
        return self._generate(torch.Size(), lambda scores: torch.argmax(scores, -1))

    def beam_search(self, beam_size: int = 5) -> tuple[Tensor, Tensor]:
        r"""Beam search for the most probable sequences under :meth:`log_prob`.

        Keeps the ``beam_size`` best partial sequences per batch element; a finished sentence
        (stop mode) is extended only by ``</s>`` padding at no cost. Returns sequences
        ``batch_shape + (beam_size, L)`` and their log-probabilities ``batch_shape +
        (beam_size,)`` (in :attr:`dtype`), best first."""
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        with torch.no_grad():
            shape, contexts = self._start(torch.Size())
            batch = shape.numel()
            end = self.model.vocabulary.end_id
            size = len(self.model.vocabulary)
            device = self.model.device
            # Start with one live beam per batch element (the others at -inf).
            contexts = [c.repeat_interleave(beam_size) for c in contexts]
            scores = torch.full((batch, beam_size), -torch.inf, dtype=torch.float64, device=device)
            scores[:, 0] = 0.0
            finished = torch.zeros(batch * beam_size, dtype=torch.bool, device=device)
            history = torch.zeros((batch * beam_size, 0), dtype=torch.long, device=device)
            for _ in range(self.length):
                step = self._next_scores(contexts, batch * beam_size)
                if self.stop_at_end:
                    padded = torch.full_like(step, -torch.inf)
                    padded[:, end] = 0.0
                    step = torch.where(finished.unsqueeze(-1), padded, step)
                total = (scores.reshape(-1, 1) + step).reshape(batch, beam_size * size)
                scores, choice = torch.topk(total, beam_size, dim=-1)
                first_beam = torch.arange(batch, device=device).unsqueeze(-1) * beam_size
                parent = (choice // size + first_beam).reshape(-1)
                token = (choice % size).reshape(-1)
                history = torch.cat([history[parent], token.unsqueeze(-1)], -1)
                finished = finished[parent] | (token == end) if self.stop_at_end else finished
                contexts = self._advance([c[parent] for c in contexts], token)
            sequences = history.reshape(shape + (beam_size, self.length))
            return sequences, scores.reshape(shape + (beam_size,)).to(self.dtype)

r"""An order-k Markov chain over a small vocabulary with a dense, differentiable transition
tensor, so the transition probabilities can be Pyro latent variables (Dirichlet prior)."""

from __future__ import annotations

__all__ = ["MarkovChain", "dirichlet_posterior", "transition_counts"]

import pyro.distributions as dist
import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from .validation import (
    check_end_padding,
    check_sample_shape,
    check_value_shape,
    finish_expand,
    initialize_distribution,
    through_first_end,
)


def _context_index(value: Tensor, num_states: int, order: int) -> Tensor:
    r"""Flat index of :math:`(x_{t-k}, \dots, x_{t-1})` in :math:`(S + 1)^k`, with the start
    state :math:`S` before the sequence; shape ``value.shape``."""
    start = value.new_full(value.shape[:-1] + (order,), num_states)
    padded = torch.cat([start, value], -1)
    index = torch.zeros_like(value)
    length = value.shape[-1]
    for j in range(order):
        index = index * (num_states + 1) + padded[..., j : j + length]
    return index


class MarkovChain(TorchDistribution):
    r"""Sequences :math:`x_{1:L}` of states :math:`0..S-1` from an order-:math:`k` chain:

    .. math:: p(x_{1:L}) = \prod_{t=1}^{L} \pi[x_{t-k}, \dots, x_{t-1}, x_t],

    where positions before the sequence hold a start state :math:`S`, so ``transition_probs``
    :math:`\pi` has shape ``batch_shape + (S + 1,) * k + (S,)``, each last-axis row a probability
    vector (the start row gives the first word). ``log_prob`` is one gather, differentiable in
    :math:`\pi`, so :math:`\pi` can be sampled from a Dirichlet prior in a Pyro model and inferred
    with SVI or NUTS; :func:`dirichlet_posterior` gives the exact conjugate posterior.

    With ``end_state`` (e.g. the id of ``</s>``) a sequence stops at its first end state: the
    positions after it are padding, must hold the end state too, and are not scored, so
    sentences of different lengths fit in one ``(N, L)`` tensor.

    Arguments:
        transition_probs: :math:`\pi`, shape ``batch_shape + (S + 1,) * order + (S,)``.
        length: :math:`L`.
        order: :math:`k \ge 1`.
        end_state: A state that ends the sequence, or ``None``.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])  # from state 0, 1, start
        >>> chain = MarkovChain(probs, length=4)
        >>> round(chain.log_prob(torch.tensor([0, 0, 1, 1])).exp().item(), 4)  # .5 * .9 * .1 * .8
        0.036
    """

    arg_constraints = {"transition_probs": constraints.simplex}
    has_enumerate_support = False

    def __init__(
        self,
        transition_probs: Tensor,
        length: int,
        order: int = 1,
        end_state: int | None = None,
        validate_args: bool | None = None,
    ):
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a positive integer, got {length!r}")
        shape = transition_probs.shape
        if transition_probs.dim() < order + 1:
            raise ValueError(
                f"transition_probs of an order-{order} chain needs at least {order + 1} dims"
            )
        num_states = shape[-1]
        if any(size != num_states + 1 for size in shape[-order - 1 : -1]):
            raise ValueError(
                f"transition_probs must have shape (..., {'S+1, ' * order}S) with a start state; "
                f"got {tuple(shape)}"
            )
        if end_state is not None and not 0 <= end_state < num_states:
            raise ValueError(f"end_state must be one of the states 0..{num_states - 1}")
        self.transition_probs, self.end_state = transition_probs, end_state
        self.order, self.num_states, self.length = order, num_states, length
        initialize_distribution(self, shape[: -order - 1], torch.Size([length]), validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.independent(constraints.integer_interval(0, self.num_states - 1), 1)

    def expand(self, batch_shape, _instance=None) -> MarkovChain:
        new = self._get_checked_instance(MarkovChain, _instance)
        batch_shape = torch.Size(batch_shape)
        table_shape = self.transition_probs.shape[len(self.batch_shape) :]
        new.transition_probs = self.transition_probs.expand(batch_shape + table_shape)
        new.order, new.num_states, new.length = self.order, self.num_states, self.length
        new.end_state = self.end_state
        finish_expand(new, self, batch_shape)
        return new

    def _validate_sample(self, value: Tensor) -> None:
        check_value_shape(self, value, "state")
        if bool(((value < 0) | (value >= self.num_states) | (value != value.round())).any()):
            raise ValueError(
                f"MarkovChain values must be integer states in 0..{self.num_states - 1}"
            )
        if self.end_state is not None:
            check_end_padding(
                value,
                self.end_state,
                f"positions after the first end state must hold it too ({self.end_state})",
            )

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = value.long()
        batch = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        flat = self.transition_probs.reshape(self.batch_shape + (-1,))
        flat = flat.expand(batch + flat.shape[-1:])
        index = _context_index(value, self.num_states, self.order) * self.num_states + value
        index = index.expand(batch + (self.length,))
        log_probs = torch.gather(flat, -1, index).log()
        if self.end_state is not None:
            scored = through_first_end(value, self.end_state).expand(log_probs.shape)
            log_probs = torch.where(scored, log_probs, torch.zeros((), dtype=log_probs.dtype))
            # without validation, padding that is not the end state is impossible
            broken = ~scored & (value != self.end_state)
            log_probs = torch.where(
                broken, torch.full((), -torch.inf, dtype=log_probs.dtype), log_probs
            )
        return log_probs.sum(-1)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        with torch.no_grad():
            shape = check_sample_shape("MarkovChain", sample_shape) + self.batch_shape
            rows = shape.numel()
            if rows == 0:
                device = self.transition_probs.device
                return torch.empty(shape + self.event_shape, dtype=torch.long, device=device)
            table = self.transition_probs.expand(
                shape + self.transition_probs.shape[len(self.batch_shape) :]
            )
            table = table.reshape(rows, -1, self.num_states)
            context = torch.zeros(rows, dtype=torch.long, device=table.device)
            start = sum((self.num_states) * (self.num_states + 1) ** j for j in range(self.order))
            context += start  # all-start context: every digit equals S
            modulus = (self.num_states + 1) ** self.order
            tokens = []
            finished = torch.zeros(rows, dtype=torch.bool, device=table.device)
            for _ in range(self.length):
                probs = table[torch.arange(rows, device=table.device), context]
                token = torch.multinomial(probs, 1).squeeze(-1)
                if self.end_state is not None:
                    token = torch.where(finished, self.end_state, token)
                    finished = finished | (token == self.end_state)
                tokens.append(token)
                context = (context * (self.num_states + 1) + token) % modulus
            return torch.stack(tokens, -1).reshape(shape + (self.length,))


def transition_counts(
    sequences: Tensor, num_states: int, order: int = 1, end_state: int | None = None
) -> Tensor:
    r"""How often each (context, next state) occurs in ``sequences (N, L)`` (start state
    :math:`S` before each sequence; padding after an ``end_state`` not counted), shape
    ``(S + 1,) * order + (S,)``; float, on the sequences' device.

    Example:
        >>> transition_counts(torch.tensor([[0, 1, 1]]), num_states=2)  # rows: from 0, 1, start
        tensor([[0., 1.],
                [0., 1.],
                [1., 0.]])
    """
    sequences = sequences.long().reshape(-1, sequences.shape[-1])
    if bool(((sequences < 0) | (sequences >= num_states)).any()):
        raise ValueError(f"sequences must hold states in 0..{num_states - 1}")
    index = _context_index(sequences, num_states, order) * num_states + sequences
    if end_state is not None:
        index = index[through_first_end(sequences, end_state)]
    size = (num_states + 1) ** order * num_states
    counts = torch.bincount(index.reshape(-1), minlength=size).to(torch.get_default_dtype())
    return counts.reshape((num_states + 1,) * order + (num_states,))


def dirichlet_posterior(
    prior_concentration: Tensor, sequences: Tensor, order: int = 1, end_state: int | None = None
) -> dist.Distribution:
    r"""The exact posterior of :math:`\pi` under independent Dirichlet priors on its rows:
    :math:`\pi[c, \cdot] \mid x \sim \mathrm{Dirichlet}(\alpha[c, \cdot] + n[c, \cdot])` with
    :math:`n` = :func:`transition_counts` (Dirichlet-multinomial conjugacy), as a
    ``Dirichlet(...).to_event(order)`` over the whole tensor.

    Example:
        >>> posterior = dirichlet_posterior(torch.ones(3, 2), torch.tensor([[0, 1, 1]]))
        >>> posterior.mean
        tensor([[0.3333, 0.6667],
                [0.3333, 0.6667],
                [0.6667, 0.3333]])
    """
    num_states = prior_concentration.shape[-1]
    counts = transition_counts(sequences, num_states, order, end_state).to(prior_concentration)
    return dist.Dirichlet(prior_concentration + counts).to_event(order)

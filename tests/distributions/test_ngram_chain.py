"""NGramChain and MarkovChain: normalization, sampling vs log_prob, completion, Pyro, conjugacy."""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO
from stats import cells_chi_square_p_value

from pyro_ar.distributions import MarkovChain, NGramChain, dirichlet_posterior, transition_counts
from pyro_ar.ngram import NGramModel

CORPUS = ["a b a c", "a b b", "c a b", "b c", "a", "c c a b a"]


@pytest.fixture(scope="module")
def model():
    return NGramModel.fit(CORPUS, order=3, smoothing="kneser_ney", discount=0.6)


def support(model, length, stop_at_end):
    """Every value in the chain's support, as rows (small vocabularies only)."""
    v = model.vocabulary
    ids = [i for i in range(len(v)) if i != v.begin_id]
    rows = torch.tensor(list(itertools.product(ids, repeat=length)))
    if stop_at_end:
        end = rows == v.end_id
        after = (torch.cumsum(end.long(), -1) - end.long()) > 0
        rows = rows[~(after & ~end).any(-1)]
    return rows


@pytest.mark.parametrize("stop_at_end", [True, False])
@pytest.mark.parametrize("temperature", [1.0, 0.6, 1.7])
@pytest.mark.parametrize("with_prefix", [False, True])
def test_normalized_by_enumeration(model, stop_at_end, temperature, with_prefix, device):
    model = model.to(device)
    prefix = None
    if with_prefix:
        prefix = torch.stack(
            [model.vocabulary.encode(["a", "b"]), model.vocabulary.encode(["c", "c"])]
        )
        prefix = prefix.to(device)
    chain = NGramChain(
        model,
        3,
        prefix=prefix,
        stop_at_end=stop_at_end,
        temperature=temperature,
        dtype=torch.float64,
    )
    rows = support(model, 3, stop_at_end).to(device)
    log_probs = chain.log_prob(rows.unsqueeze(-2) if with_prefix else rows)
    total = torch.logsumexp(log_probs, 0)
    torch.testing.assert_close(total, torch.zeros_like(total), rtol=0, atol=1e-10)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_samples_follow_log_prob(model, temperature):
    torch.manual_seed(0)
    chain = NGramChain(model, 3, temperature=temperature)
    rows = support(model, 3, True)
    probs = chain.log_prob(rows).exp()
    draws = chain.sample((30000,))
    cell = {tuple(r): i for i, r in enumerate(rows.tolist())}
    cells = torch.tensor([cell[tuple(r)] for r in draws.tolist()])
    p_value, _ = cells_chi_square_p_value(cells, probs)
    assert p_value > 1e-3
    # negative control: a sampler at another temperature is rejected
    wrong = NGramChain(model, 3, temperature=temperature * 1.15).sample((30000,))
    wrong_cells = torch.tensor([cell[tuple(r)] for r in wrong.tolist()])
    assert cells_chi_square_p_value(wrong_cells, probs)[0] < 1e-6


def test_greedy_and_beam_search(model):
    v = model.vocabulary
    chain = NGramChain(model, 3, prefix=v.encode(["c", "a"]))
    rows = support(model, 3, True)
    log_probs = chain.log_prob(rows)
    sequences, scores = chain.beam_search(beam_size=len(rows))
    # an exhaustive beam finds every sequence, sorted, with its exact log-probability
    best = torch.argsort(log_probs, descending=True)
    torch.testing.assert_close(scores, log_probs[best])
    torch.testing.assert_close(chain.log_prob(sequences), scores)
    top, top_score = chain.beam_search(beam_size=3)
    assert torch.equal(top[0], rows[best[0]]) and math.isclose(top_score[0], log_probs.max())
    # greedy takes the most probable next token at every step
    greedy = chain.greedy()
    history = torch.cat([torch.tensor([v.begin_id]), v.encode(["c", "a"])])
    for token in greedy.tolist():
        assert token == torch.argmax(model.next_log_probs(history)).item()
        if token == v.end_id:
            break
        history = torch.cat([history, torch.tensor([token])])


def test_batch_shapes_expand_and_pyro(model):
    v = model.vocabulary
    prefixes = torch.stack([v.encode(["a"]), v.encode(["b"])])
    chain = NGramChain(model, 4, prefix=prefixes)
    assert chain.batch_shape == (2,) and chain.event_shape == (4,)
    assert chain.sample((5,)).shape == (5, 2, 4)
    assert chain.log_prob(chain.sample((5,))).shape == (5, 2)
    expanded = chain.expand((3, 2))
    assert type(expanded) is NGramChain and expanded.sample().shape == (3, 2, 4)

    data = NGramChain(model, 4).sample((40,))

    def generative(observed=None):
        with pyro.plate("reviews", 40, subsample_size=10) as index:
            return pyro.sample(
                "review",
                NGramChain(model, 4),
                obs=None if observed is None else observed[index],
            )

    trace = pyro.poutine.trace(generative).get_trace(data)
    site = trace.nodes["review"]
    assert site["value"].shape == (10, 4)
    expected = 4 * NGramChain(model, 4).log_prob(site["value"]).sum()
    torch.testing.assert_close(trace.log_prob_sum(), expected)
    predicted = Predictive(generative, num_samples=6)()["review"]
    assert predicted.shape == (6, 10, 4)
    assert ((predicted >= 0) & (predicted < len(v)) & (predicted != v.begin_id)).all()


def test_bad_values(model):
    v = model.vocabulary
    chain = NGramChain(model, 3, validate_args=True)
    a, end = v.stoi["a"], v.end_id
    with pytest.raises(ValueError, match="shape"):
        chain.log_prob(torch.tensor([a, a]))
    with pytest.raises(ValueError, match="out of range"):
        chain.log_prob(torch.tensor([a, a, len(v)]))
    with pytest.raises(ValueError, match="<s>"):
        chain.log_prob(torch.tensor([a, v.begin_id, a]))
    with pytest.raises(ValueError, match="padded with </s>"):
        chain.log_prob(torch.tensor([a, end, a]))
    with pytest.raises(ValueError, match="integer"):
        chain.log_prob(torch.tensor([0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match="temperature"):
        NGramChain(model, 3, temperature=0.0)
    with pytest.raises(ValueError, match="length"):
        NGramChain(model, 0)


# ------------------------------------------------------------------------------ MarkovChain
def random_transitions(num_states, order, batch_shape=(), generator=None):
    shape = batch_shape + (num_states + 1,) * order + (num_states,)
    return dist.Dirichlet(torch.ones(num_states)).sample(shape[:-1]).double()


@pytest.mark.parametrize("order", [1, 2])
def test_markov_chain_normalized_and_matches_a_loop(order, device):
    torch.manual_seed(1)
    probs = random_transitions(3, order, batch_shape=(2,)).to(device)
    chain = MarkovChain(probs, length=4, order=order)
    rows = torch.tensor(list(itertools.product(range(3), repeat=4)), device=device)
    log_probs = chain.log_prob(rows.unsqueeze(-2))
    torch.testing.assert_close(
        torch.logsumexp(log_probs, 0), torch.zeros(2, dtype=torch.float64, device=device)
    )
    # against a direct loop over positions
    start = 3
    for b in range(2):
        for row in rows[:5].tolist():
            context = [start] * order
            expected = 0.0
            for token in row:
                expected += math.log(probs[(b, *context, token)].item())
                context = context[1:] + [token]
            assert math.isclose(
                log_probs[rows.tolist().index(row), b].item(), expected, rel_tol=1e-12
            )


def test_markov_chain_samples_follow_log_prob():
    torch.manual_seed(2)
    probs = random_transitions(3, 2)
    chain = MarkovChain(probs, length=3, order=2)
    rows = torch.tensor(list(itertools.product(range(3), repeat=3)))
    weights = torch.tensor([9, 3, 1])
    draws = chain.sample((20000,))
    p_value, _ = cells_chi_square_p_value((draws * weights).sum(-1), chain.log_prob(rows).exp())
    assert p_value > 1e-3
    perturbed = MarkovChain(probs**1.3 / (probs**1.3).sum(-1, keepdim=True), length=3, order=2)
    wrong = (perturbed.sample((20000,)) * weights).sum(-1)
    assert cells_chi_square_p_value(wrong, chain.log_prob(rows).exp())[0] < 1e-6


def bayesian_chain(sequences, concentration):
    def model():
        probs = pyro.sample("probs", dist.Dirichlet(concentration).to_event(1))
        with pyro.plate("sequences", sequences.shape[0]):
            pyro.sample("x", MarkovChain(probs, sequences.shape[-1]), obs=sequences)

    return model


@pytest.fixture(scope="module")
def chain_data():
    torch.manual_seed(3)
    truth = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6]])
    sequences = MarkovChain(truth, length=12).sample((15,))
    concentration = torch.ones(4, 3)
    return sequences, concentration


def test_conjugate_posterior_counts(chain_data):
    sequences, concentration = chain_data
    counts = transition_counts(sequences, 3)
    assert counts.sum() == sequences.numel()
    assert counts[3].sum() == sequences.shape[0]  # the start row counts first words
    expected = torch.zeros(4, 3)
    for row in sequences.tolist():
        previous = 3
        for token in row:
            expected[previous, token] += 1
            previous = token
    torch.testing.assert_close(counts, expected)
    posterior = dirichlet_posterior(concentration, sequences)
    torch.testing.assert_close(posterior.base_dist.concentration, concentration + expected)


def test_nuts_agrees_with_the_conjugate_posterior(chain_data):
    sequences, concentration = chain_data
    exact = dirichlet_posterior(concentration, sequences)
    kernel = NUTS(bayesian_chain(sequences, concentration))
    mcmc = MCMC(kernel, num_samples=400, warmup_steps=200, disable_progbar=True)
    mcmc.run()
    draws = mcmc.get_samples()["probs"]
    exact_mean, exact_sd = exact.mean, exact.variance.sqrt()
    # NUTS draws are nearly independent here; 400 draws: standard error ~ sd / 20
    assert ((draws.mean(0) - exact_mean).abs() < 5 * exact_sd / 20 + 1e-3).all()
    torch.testing.assert_close(draws.std(0), exact_sd, rtol=0.25, atol=0.01)


def test_svi_recovers_the_conjugate_posterior(chain_data):
    sequences, concentration = chain_data
    exact = dirichlet_posterior(concentration, sequences).base_dist.concentration

    def guide():
        fitted = pyro.param(
            "concentration", torch.ones(4, 3), constraint=dist.constraints.positive
        )
        pyro.sample("probs", dist.Dirichlet(fitted).to_event(1))

    svi = SVI(
        bayesian_chain(sequences, concentration),
        guide,
        pyro.optim.Adam({"lr": 0.05}),
        Trace_ELBO(num_particles=8, vectorize_particles=True),
    )
    for _ in range(1500):
        svi.step()
    fitted = pyro.param("concentration").detach()
    torch.testing.assert_close(
        fitted / fitted.sum(-1, keepdim=True),
        exact / exact.sum(-1, keepdim=True),
        rtol=0,
        atol=0.03,
    )


def test_markov_chain_bad_input():
    with pytest.raises(ValueError, match="start state"):
        MarkovChain(torch.full((3, 3), 1 / 3), length=2)
    chain = MarkovChain(torch.full((4, 3), 1 / 3), length=2, validate_args=True)
    with pytest.raises(ValueError, match="0..2"):
        chain.log_prob(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        chain.log_prob(torch.tensor([0, 1, 2]))


def test_markov_chain_with_an_end_state():
    torch.manual_seed(4)
    probs = random_transitions(3, 1)
    chain = MarkovChain(probs, length=4, end_state=2, validate_args=True)
    rows = torch.tensor(list(itertools.product(range(3), repeat=4)))
    end = (rows == 2).long()
    valid = ~((torch.cumsum(end, -1) - end > 0) & (rows != 2)).any(-1)
    log_probs = chain.log_prob(rows[valid])
    torch.testing.assert_close(torch.logsumexp(log_probs, 0), torch.zeros((), dtype=torch.float64))
    # a sentence stops at its end state: [0, 2, 2, 2] scores pi[start, 0] pi[0, 2] only
    expected = math.log(probs[3, 0]) + math.log(probs[0, 2])
    assert math.isclose(chain.log_prob(torch.tensor([0, 2, 2, 2])).item(), expected, rel_tol=1e-12)
    draws = chain.sample((5000,))
    assert chain.log_prob(draws).isfinite().all()  # samples are padded correctly
    with pytest.raises(ValueError, match="after the first end state"):
        chain.log_prob(torch.tensor([0, 2, 1, 2]))
    counts = transition_counts(torch.tensor([[0, 2, 2, 2], [1, 1, 2, 2]]), 3, end_state=2)
    assert counts.sum() == 5 and counts[2].sum() == 0

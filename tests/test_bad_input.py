"""Bad input, damaged files and interrupted runs (the reliability issue): no silent wrong
answer, no lost work. Each test drives one of the reported cases through the public API or the
command line; the numbers in the test names follow the issue's list."""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import shutil
import stat

import numpy as np
import pytest
import torch

from pyro_ar.cli import main
from pyro_ar.data import DataFileError, load_binarized_digits, load_mnist, read_idx
from pyro_ar.distributions import (
    FVSBN,
    NADE,
    PPCA,
    RBM,
    BernoulliMADE,
    FactorAnalysis,
    GaussianBernoulliRBM,
    MarkovChain,
    NGramChain,
)
from pyro_ar.distributions.rbm import binary_states
from pyro_ar.infer import (
    CheckpointError,
    RBMTrainingConfig,
    TrainingConfig,
    fit_factor_analysis,
    fit_maximum_likelihood,
    fit_ppca,
    fit_rbm,
    load_checkpoint,
    save_checkpoint,
)
from pyro_ar.io import OutputLock, write_atomically
from pyro_ar.ngram import ARPAFormatError, NGramModel, read_arpa, write_arpa
from pyro_ar.nn import FVSBNModule, MaskedAutoencoder, NADEModule, RBMModule
from pyro_ar.progress import Progress


@pytest.fixture(scope="module")
def digits():
    return load_binarized_digits()


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------- silent wrong answers (1-6)


def test_1_a_checkpoint_with_damaged_tensor_bytes_is_refused(tmp_path, capsys, digits):
    module = FVSBNModule(64)
    with torch.no_grad():
        module.bias.copy_(torch.linspace(-3, 3, 64))  # a recognizable byte pattern
    path = save_checkpoint(tmp_path / "model.pt", module, data="digits", image_shape=[8, 8])
    data = bytearray(path.read_bytes())
    offset = bytes(data).find(module.bias.detach().numpy().tobytes())
    assert offset > 0
    data[offset + 17] ^= 0x40  # one flipped bit inside the bias
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)
    assert main(["score", str(path)]) == 2
    assert "damaged" in _error_line(capsys)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: FVSBN(torch.zeros(3, 3), torch.tensor([0.0, math.inf, 0.0])), "bias"),
        (
            lambda: NADE(
                torch.zeros(2, 3), torch.zeros(2), torch.zeros(3, 2), torch.full((3,), -math.inf)
            ),
            "output_bias",
        ),
        (lambda: PPCA(torch.zeros(3), torch.full((3, 1), math.inf), torch.tensor(1.0)), "weight"),
        (
            lambda: FactorAnalysis(
                torch.zeros(3), torch.ones(3, 1), torch.tensor([1.0, math.nan, 1.0])
            ),
            "noise_scale",
        ),
        (
            lambda: GaussianBernoulliRBM(
                torch.zeros(2, 3), torch.zeros(3), torch.zeros(2), math.inf
            ),
            "visible_scale",
        ),
        (
            lambda: RBM(torch.zeros(2, 3), torch.zeros(3), torch.tensor([0.0, math.inf])),
            "hidden_bias",
        ),
        (lambda: MarkovChain(torch.full((3, 2), math.nan), length=2), "transition_probs"),
    ],
)
def test_2_non_finite_parameters_are_rejected(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_2_made_with_nan_weights_names_the_parameter_and_temperature_must_be_finite():
    network = MaskedAutoencoder(4, [6])
    with torch.no_grad():
        network.hidden[0].weight[0, 0] = math.nan
    made = BernoulliMADE(network)
    with pytest.raises(ValueError, match="hidden.0.weight contains NaN"):
        made.log_prob(torch.zeros(4))
    with pytest.raises(ValueError, match="hidden.0.weight"):
        made.sample()
    model = NGramModel.fit([["a", "b"], ["b"]], order=2, smoothing="witten_bell")
    with pytest.raises(ValueError, match="finite"):
        NGramChain(model, 3, temperature=math.inf)


def test_2_a_checkpoint_with_an_infinite_bias_is_refused(tmp_path, capsys):
    module = FVSBNModule(64)
    with torch.no_grad():
        module.bias[3] = math.inf
    path = save_checkpoint(tmp_path / "inf.pt", module, data="digits")
    with pytest.raises(CheckpointError, match="'bias' contains infinite values"):
        load_checkpoint(path)
    assert main(["score", str(path)]) == 2
    err = _error_line(capsys)
    assert "inf.pt" in err and "bias" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("scale", [1e3, 1e6, 1e8])
def test_3_float32_rbm_stays_normalized_at_large_weights(scale):
    generator = torch.Generator().manual_seed(0)
    for hidden, visible in [(4, 6), (9, 5)]:  # enumerating either layer
        rbm = RBM(
            torch.randn(hidden, visible, generator=generator) * scale,
            torch.randn(visible, generator=generator) * scale,
            torch.randn(hidden, generator=generator) * scale,
        )
        log_probs = rbm.log_prob(binary_states(visible, 0, 2**visible, rbm.weight))
        assert log_probs.dtype == torch.float32
        assert abs(torch.logsumexp(log_probs.double(), 0).item()) < 1e-5


def _arpa(tmp_path, text: str):
    path = tmp_path / "model.arpa"
    path.write_text(text)
    return path


GOOD_ARPA = """
\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-0.30103\t</s>
-99\t<s>\t-0.1
-0.60206\ta\t-0.2
-0.60206\tb

\\2-grams:
-0.1\t<s> a
-0.2\ta b

\\end\\
"""


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("-0.60206\tb", "nan\tb", "line 10: log10 probability nan"),
        ("-0.60206\tb", "inf\tb", "line 10: log10 probability inf"),
        ("-0.60206\tb", "0.5\tb", "line 10: log10 probability 0.5"),
        ("-0.60206\ta\t-0.2", "-0.60206\ta\tnan", "line 9: log10 backoff nan"),
        ("-0.30103\t</s>", "0.3\t</s>", "line 7: log10 probability 0.3"),
        ("-0.60206\tb", "-0.01\tb", "sum to 1.7"),
        (
            "-0.60206\tb",
            "-0.60206\t</s>",
            "line 10: the unigram '</s>' is listed a second time \\(first at line 7\\)",
        ),
        ("ngram 2=2", "ngram 2=-4", "line 4: a negative number of 2-grams"),
        ("-0.2\ta b", "-0.2\t<s> a", "line 14: duplicate 2-grams"),
    ],
)
def test_4_arpa_values_duplicates_and_sums_are_checked_with_the_line(tmp_path, old, new, message):
    read_arpa(_arpa(tmp_path, GOOD_ARPA))  # the good file reads
    assert old in GOOD_ARPA
    with pytest.raises(ARPAFormatError, match=message):
        read_arpa(_arpa(tmp_path, GOOD_ARPA.replace(old, new)))


def test_4_kenlm_style_begin_probability_is_zero(tmp_path):
    """lmplz writes log10 p(<s>) = 0: <s> must still get probability 0 in every conditional, and
    the conditionals still sum to one."""
    sentences = [["a", "b"], ["b", "a", "a"], ["a"], ["b", "b", "a"]]
    path = write_arpa(NGramModel.fit(sentences, 3, "witten_bell"), tmp_path / "ours.arpa")
    text = path.read_text()
    assert "-99\t<s>" in text
    model = read_arpa(_arpa(tmp_path, text.replace("-99\t<s>", "0\t<s>")))
    vocabulary = model.vocabulary
    for history in ([vocabulary.begin_id], [vocabulary.begin_id, vocabulary.stoi["a"]]):
        conditional = model.next_log_probs(torch.tensor([history])).exp()
        assert conditional[0, vocabulary.begin_id] == 0
        assert conditional.sum().item() == pytest.approx(1.0, abs=1e-8)


def test_5_diverging_training_is_reported_and_bad_learning_rates_are_arguments_errors(
    tmp_path, capsys, digits, caplog
):
    """A huge but finite learning rate makes every epoch worse than the initialization."""
    module = NADEModule(64, 8, data=digits.train, seed=0)
    config = TrainingConfig(epochs=2, learning_rate=1e6, progress=False)
    with caplog.at_level(logging.WARNING):
        result = fit_maximum_likelihood(module, digits.train, digits.valid, config)
    assert not result.improved and result.best_epoch == 0
    assert "did not improve" in caplog.text
    arguments = ["fit", "nade", "--hidden", "8", "--epochs", "2", "--lr", "1e6"]
    assert main(arguments + ["--output", str(tmp_path), "--no-progress"]) == 3
    assert "did not improve" in _error_line(capsys)
    assert not (tmp_path / "nade-digits.pt").exists()  # no untrained model saved as a result
    for value in ("inf", "nan", "-1", "abc"):
        with pytest.raises(SystemExit) as raised:
            main(["fit", "nade", "--lr", value])
        assert raised.value.code == 2
        assert "positive" in _error_line(capsys)


def test_6_settings_that_would_check_nothing_or_divide_by_zero(tmp_path):
    with pytest.raises(ValueError, match="discount of 0 leaves no probability"):
        NGramModel.fit([["a", "b"], ["b", "a"]], order=2, smoothing="kneser_ney", discount=0)
    with pytest.raises(ValueError, match="max_seconds"):
        TrainingConfig(max_seconds=-1)
    with pytest.raises(ValueError, match="noise_floor"):
        fit_factor_analysis(torch.randn(20, 4), 2, noise_floor=math.nan)
    with pytest.raises(ValueError, match="max_seconds"):
        RBMTrainingConfig(max_seconds=math.nan)


def _fake_mnist(directory):
    from factories import write_fake_mnist as write

    write(directory)
    return directory


def test_6_checksum_listings_that_check_nothing_and_bad_labels(tmp_path):
    directory = _fake_mnist(tmp_path / "mnist")
    load_mnist(directory)
    (directory / "SHA256SUMS").write_text("this is not a checksum listing\n")
    with pytest.raises(DataFileError, match="line 1: expected '<64 hex digits> <file name>'"):
        load_mnist(directory)
    (directory / "SHA256SUMS").write_text("0" * 64 + "  some-other-file.gz\n")
    with pytest.raises(DataFileError, match="lists no checksum for"):
        load_mnist(directory)
    (directory / "SHA256SUMS").unlink()
    labels = directory / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[8 + 17] = 12  # label 12 at index 17
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataFileError, match="label 12 at index 17"):
        load_mnist(directory)


# ------------------------------------------------------------------------- lost work (7-11)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    output = tmp_path_factory.mktemp("runs")
    assert main(["fit", "fvsbn", "--epochs", "2", "--output", str(output), "--no-progress"]) == 0
    return output


def test_7_sampling_never_overwrites_a_checkpoint(fitted, tmp_path, capsys):
    checkpoint = fitted / "fvsbn-digits.pt"
    before = checkpoint.read_bytes()
    assert main(["sample", str(checkpoint), "--output", str(checkpoint)]) == 2
    assert "refusing to replace it" in _error_line(capsys)
    other = tmp_path / "other.pt"
    shutil.copy(checkpoint, other)
    assert main(["sample", str(checkpoint), "--output", str(other)]) == 2
    assert checkpoint.read_bytes() == before and load_checkpoint(other)


def test_8_rbm_training_is_saved_before_evaluation(tmp_path, capsys, monkeypatch):
    import pyro_ar.cli as cli

    def failing_ais(*args, **kwargs):
        raise RuntimeError("AIS failed")

    monkeypatch.setattr(cli, "annealed_importance_sampling", failing_ais)
    arguments = ["fit", "rbm", "--hidden", "24", "--epochs", "2", "--output", str(tmp_path)]
    with pytest.raises(RuntimeError, match="AIS failed"):
        main(arguments + ["--no-progress"])
    module, metadata = load_checkpoint(tmp_path / "rbm-digits.pt")  # the training survived
    assert isinstance(module, RBMModule) and metadata["training_state"]["loop"]["epoch"] >= 1
    # an output location that cannot be written fails before any training
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["fit", "rbm", "--epochs", "2", "--output", str(blocker)]) == 2
    assert "not a directory" in _error_line(capsys)


def test_9_earlier_runs_are_protected_and_outputs_locked(fitted, capsys):
    arguments = ["fit", "fvsbn", "--epochs", "1", "--output", str(fitted), "--no-progress"]
    before = (fitted / "fvsbn-digits.pt").read_bytes()
    assert main(arguments) == 2
    assert "--overwrite" in _error_line(capsys)
    assert (fitted / "fvsbn-digits.pt").read_bytes() == before
    with OutputLock(fitted / ".fvsbn-digits.lock"):  # another run holds the outputs
        assert main(arguments + ["--overwrite"]) == 2
        assert "locked" in _error_line(capsys)
    assert (fitted / "fvsbn-digits.pt").read_bytes() == before


def test_9_resume_continues_an_earlier_run(tmp_path):
    arguments = ["fit", "fvsbn", "--output", str(tmp_path), "--no-progress", "--lr", "3e-3"]
    assert main(arguments + ["--epochs", "2"]) == 0
    assert main(arguments + ["--epochs", "4", "--resume"]) == 0
    history = json.loads((tmp_path / "fvsbn-digits-history.json").read_text())["history"]
    assert [record["epoch"] for record in history] == [1, 2, 3, 4]
    assert main(arguments + ["--epochs", "2", "--resume", "--output", str(tmp_path / "new")]) == 2


def test_10_history_is_written_atomically_and_stale_temporaries_are_removed(
    fitted, tmp_path, monkeypatch
):
    history = fitted / "fvsbn-digits-history.json"
    before = history.read_bytes()
    assert json.loads(before)["best_epoch"] >= 1

    def full_disk(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_atomically(history, b"{}")
    monkeypatch.undo()
    assert history.read_bytes() == before  # the previous history is intact
    assert not list(fitted.glob(".fvsbn-digits-history.json.*.tmp"))
    # a temporary left by a writer that was killed (its process is gone) is removed next time
    stale = tmp_path / ".model.pt.999999999.abcd.tmp"
    live = tmp_path / f".model.pt.{os.getpid()}.efgh.tmp"
    stale.write_bytes(b"partial")
    live.write_bytes(b"being written")
    save_checkpoint(tmp_path / "model.pt", FVSBNModule(4))
    assert not stale.exists() and live.exists()


def test_11_fit_rbm_stops_early_restores_the_best_epoch_and_resumes(tmp_path, digits):
    train, valid = digits.train.double(), digits.valid.double()
    module = RBMModule(64, 10, data=train, seed=0).double()  # exact log Z: validated by NLL
    config = RBMTrainingConfig(
        epochs=3, learning_rate=0.1, cd_steps=1, persistent=True, progress=False, patience=2
    )
    path = tmp_path / "rbm.pt"
    result = fit_rbm(module, train, valid, config, checkpoint_path=path)
    assert result.criterion == "nll" and len(result.history) == 3
    best = min(result.history, key=lambda record: record.valid_criterion)
    assert result.best_epoch == best.epoch
    restored = -module().log_prob(valid[: config.monitor_rows]).mean().item()
    assert restored == pytest.approx(best.valid_nll, rel=1e-9)
    _, metadata = load_checkpoint(path)
    state = metadata["training_state"]
    assert state["loop"]["epoch"] == best.epoch and "v" not in state["chains"]
    assert set(state["chains"]) == {"visible"} and state["optimizer"]
    # resume: weights, momentum buffers and chains come back; training continues to epoch 5
    resumed_module = RBMModule(64, 10, data=train, seed=0).double()
    more = RBMTrainingConfig(
        epochs=5, learning_rate=0.1, cd_steps=1, persistent=True, progress=False, patience=2
    )
    resumed = fit_rbm(resumed_module, train, valid, more, checkpoint_path=path, resume_from=path)
    epochs = [record.epoch for record in resumed.history]
    assert epochs[: best.epoch] == list(range(1, best.epoch + 1))
    assert epochs[best.epoch :] == list(
        range(best.epoch + 1, best.epoch + 1 + len(epochs) - best.epoch)
    )
    assert epochs[-1] <= 5
    with pytest.raises(CheckpointError, match="cannot resume"):
        fit_rbm(RBMModule(64, 11).double(), train, valid, more, resume_from=path)


def test_11_maximum_likelihood_resumes_exactly(tmp_path, digits):
    """Two epochs, then two more from the checkpoint, equal four in one run (Adam's state, the
    learning-rate schedule and the shuffling are restored)."""

    def fresh():
        return NADEModule(64, 8, data=digits.train, seed=0)

    config = TrainingConfig(epochs=4, learning_rate=1e-2, learning_rate_decay=0.9, progress=False)
    straight = fresh()
    full = fit_maximum_likelihood(straight, digits.train, digits.valid, config)
    assert [r.epoch for r in full.history] == [1, 2, 3, 4] and full.best_epoch == 4
    first = fresh()
    half = TrainingConfig(epochs=2, learning_rate=1e-2, learning_rate_decay=0.9, progress=False)
    fit_maximum_likelihood(first, digits.train, digits.valid, half, tmp_path / "half.pt")
    second = fresh()
    result = fit_maximum_likelihood(
        second, digits.train, digits.valid, config, resume_from=tmp_path / "half.pt"
    )
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    for ours, theirs in zip(second.parameters(), straight.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)


# ------------------------------------------------------------ crashes and unclear errors (12-15)


def test_12_damaged_gzip_non_utf8_arpa_and_negative_counts(tmp_path):
    from factories import write_idx

    path = tmp_path / "images.gz"
    write_idx(path, np.arange(4000).reshape(40, 100) % 251, compress=True)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # damage inside the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="damaged gzip"):
        read_idx(path)
    arpa = tmp_path / "latin.arpa"
    arpa.write_bytes(GOOD_ARPA.replace("\ta\t", "\tcaf\xe9\t").encode("latin-1"))
    with pytest.raises(ARPAFormatError, match="line 9: not UTF-8"):
        read_arpa(arpa)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "CHECKPOINT", "--num-samples", "1000000000000"], "at most 100000"),
        (["sample", "CHECKPOINT", "--seed", str(2**80)], "2^63"),
        (["fit", "nade", "--weight-decay", "nan"], "finite"),
    ],
)
def test_13_cli_argument_errors_are_one_line(argv, message, fitted, capsys):
    argv = [str(fitted / "fvsbn-digits.pt") if a == "CHECKPOINT" else a for a in argv]
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert message in _error_line(capsys)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda payload: payload["metadata"].update(image_shape="abc"), "image_shape 'abc'"),
        (lambda payload: payload["metadata"].update(image_shape=[-8, -8]), "image_shape"),
        (lambda payload: payload.update(metadata=["not", "a", "dict"]), "'metadata' is a list"),
        (lambda payload: payload.update(format="pyro_ar.checkpoint/9"), "newer version"),
        (lambda payload: payload["state_dict"]["weight"].fill_(math.nan), "'weight' contains NaN"),
    ],
)
def test_13_bad_checkpoint_contents_are_named(edit, message, fitted, tmp_path, capsys):
    payload = torch.load(fitted / "fvsbn-digits.pt", weights_only=True)
    edit(payload)
    torch.save(payload, tmp_path / "edited.pt")
    assert main(["sample", str(tmp_path / "edited.pt"), "--output", str(tmp_path / "s.png")]) == 2
    err = _error_line(capsys)
    assert message in err and "edited.pt" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: RBM(torch.zeros(3, 4), torch.zeros(4), torch.zeros(3)).sample((-1,)), ">= 0"),
        (lambda: FVSBN(torch.zeros(4, 4), torch.zeros(4)).sample((2, -3)), ">= 0"),
        (
            lambda: NADE(torch.zeros(3, 0), torch.zeros(3), torch.zeros(0, 3), torch.zeros(0)),
            "D=0",
        ),
        (
            lambda: NADE(torch.zeros(0, 4), torch.zeros(0), torch.zeros(4, 0), torch.zeros(4)),
            "H=0",
        ),
        (
            lambda: NADE(
                *(torch.zeros(s, dtype=torch.long) for s in [(2, 3), (2,), (3, 2), (3,)])
            ),
            "int64",
        ),
        (
            lambda: NADE(
                *(torch.zeros(s, dtype=torch.cfloat) for s in [(2, 3), (2,), (3, 2), (3,)])
            ),
            "complex64",
        ),
        (lambda: RBMModule(5, -1), "num_hidden must be a positive integer"),
        (lambda: RBM(torch.zeros(2, 3, 4), torch.zeros(5, 4), torch.zeros(3)), "do not broadcast"),
        (
            lambda: RBM(torch.zeros(3, 4), torch.zeros(4), torch.zeros(3)).gibbs_chain(thinning=0),
            "thinning",
        ),
    ],
)
def test_14_edge_shapes_give_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_14_empty_results_where_they_make_sense():
    rbm = RBM(torch.zeros(3, 4), torch.zeros(4), torch.zeros(3))
    assert rbm.sample((0,)).shape == (0, 4)  # the exact path
    assert rbm.gibbs_chain((2,), num_draws=0).shape == (0, 2, 4)
    assert FVSBN(torch.zeros(4, 4), torch.zeros(4)).sample((0, 3)).shape == (0, 3, 4)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: PPCA(torch.zeros(3), torch.ones(3, 1), torch.tensor(1e-30)).log_prob(
                torch.randn(2, 3)
            ),
            "noise_scale is too small for torch.float32",
        ),
        (lambda: fit_factor_analysis(torch.ones(20, 6), 2), "constant"),
        (lambda: fit_ppca(torch.ones(20, 6), 2), "constant|noise variance is 0"),
        (lambda: fit_ppca(torch.randn(50, 6) * 1e20, 2), "overflow torch.float32"),
        (lambda: fit_factor_analysis(torch.randn(50, 6) * 1e20, 2), "overflow torch.float32"),
    ],
)
def test_15_linear_gaussian_numerics_name_the_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_15_missing_data_with_no_iterations_returns_the_starting_point():
    data = torch.randn(30, 5)
    data[0, 1] = math.nan
    fit = fit_factor_analysis(data, 2, max_iter=0)
    assert fit.iterations == 0 and math.isfinite(fit.log_likelihood)
    with pytest.raises(ValueError, match="max_iter"):
        fit_factor_analysis(data, 2, max_iter=-1)


# -------------------------------------------------------------------- files and logs (16-17)


def test_16_files_get_the_usual_permissions(fitted):
    umask = os.umask(0o022)
    os.umask(umask)
    expected = 0o666 & ~umask
    for name in ("fvsbn-digits.pt", "fvsbn-digits-samples.png", "fvsbn-digits-history.json"):
        assert stat.S_IMODE((fitted / name).stat().st_mode) == expected, name


def test_17_progress_is_plain_periodic_lines_off_a_terminal(caplog, tmp_path, capsys):
    with caplog.at_level(logging.INFO, logger="pyro_ar.progress"):
        with Progress(total=1000, description="work", terminal=False, interval=0.0) as progress:
            for _ in range(1000):
                progress.update(epoch=1)
    lines = [r.getMessage() for r in caplog.records if r.name == "pyro_ar.progress"]
    assert lines and all("\r" not in line for line in lines)
    assert lines[-1].startswith("work: 1000/1000 steps (100%)")
    with caplog.at_level(logging.INFO, logger="pyro_ar.progress"):
        with Progress(total=10, description="quiet", terminal=False, interval=3600) as progress:
            for _ in range(10):
                progress.update()
    assert [r.getMessage() for r in caplog.records if "quiet" in r.getMessage()] == [
        caplog.records[-1].getMessage()
    ]  # one line at the end, not one per step
    # the command line on a non-terminal stderr (as in a batch job's log): no bar redraws
    assert main(["fit", "fvsbn", "--epochs", "2", "--output", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err

"""The ``pyro-ar`` command: fit, sample, score, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyro_ar.cli import main


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    output = tmp_path_factory.mktemp("runs")
    status = main(["fit", "fvsbn", "--epochs", "3", "--output", str(output), "--no-progress"])
    assert status == 0
    return output


def test_fit_writes_checkpoint_history_and_samples(fitted, capsys):
    names = {path.name for path in fitted.iterdir()}
    assert {"fvsbn-digits.pt", "fvsbn-digits-samples.png", "fvsbn-digits-history.json"} <= names
    assert (fitted / "fvsbn-digits-samples.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("model", ["nade", "made"])
def test_fit_prints_the_three_nlls(model, tmp_path, capsys):
    assert (
        main(
            [
                "fit",
                model,
                "--hidden",
                "8",
                "--epochs",
                "2",
                "--ordering",
                "random",
                "--output",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "train NLL" in out and "valid NLL" in out and "test NLL" in out


def test_sample_and_score(fitted, tmp_path, capsys):
    assert (
        main(
            [
                "sample",
                str(fitted / "fvsbn-digits.pt"),
                "--num-samples",
                "9",
                "--output",
                str(tmp_path / "s.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "s.png").is_file()
    assert main(["score", str(fitted / "fvsbn-digits.pt"), "--split", "valid"]) == 0
    assert "digits valid NLL" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["score", "missing.pt"], "no such checkpoint"),
        (["fit", "nade", "--data", "mnist", "--data-dir", "/nonexistent"], "does not exist"),
    ],
)
def test_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(["sample", str(tmp_path / "bad.pt")]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_bad_arguments_exit_with_usage():
    with pytest.raises(SystemExit) as raised:
        main(["fit", "rbm-that-does-not-exist"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit):
        main(["fit", "nade", "--epochs", "0"])


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "pyro_ar", "--help"], capture_output=True, text=True, check=True
    )
    assert "fit" in result.stdout and "sample" in result.stdout and "score" in result.stdout


def test_fit_score_and_sample_an_rbm(tmp_path, capsys):
    """Exact NLL for a small hidden layer; the AIS bracket for a larger one."""
    arguments = ["fit", "rbm", "--epochs", "2", "--output", str(tmp_path), "--no-progress"]
    assert main(arguments + ["--hidden", "12", "--cd-steps", "2", "--persistent"]) == 0
    out = capsys.readouterr().out
    assert "test NLL" in out and "AIS" not in out
    checkpoint = str(tmp_path / "rbm-digits.pt")
    assert main(["score", checkpoint, "--split", "valid"]) == 0
    assert "digits valid NLL" in capsys.readouterr().out
    assert main(["sample", checkpoint, "--num-samples", "4"]) == 0
    larger = ["--hidden", "24", "--ais-betas", "300", "--ais-chains", "20", "--overwrite"]
    assert main(arguments + larger) == 0
    assert "(AIS bracket)" in capsys.readouterr().out


def test_fit_sample_and_score_a_pixelcnn(tmp_path, capsys):
    """Flat digit rows go in as 8x8 images; the checkpoint rebuilds the network."""
    argv = ["fit", "pixelcnn", "--hidden", "8", "--epochs", "1", "--num-samples", "4"]
    assert main([*argv, "--output", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test NLL" in out
    nll = float(out.split("test NLL ")[1].split()[0])
    checkpoint = tmp_path / "pixelcnn-digits.pt"
    assert main(["score", str(checkpoint), "--split", "test"]) == 0
    assert float(capsys.readouterr().out.split("NLL ")[1].split()[0]) == pytest.approx(
        nll, abs=0.01
    )
    png = tmp_path / "again.png"
    assert main(["sample", str(checkpoint), "--num-samples", "4", "--output", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")

"""models.diagnose: makemore part 3's statistics and plots, from the library API and the command line."""
import argparse
import os
import subprocess
import sys

import numpy as np
import pytest

from models import diagnose
from models.diagnose import DiagnoseConfig, train, write_figures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(layers=2, n_hidden=40, steps=6, batch_size=16)


def test_train_records_activations_gradients_and_update_ratios():
    diag = train(DiagnoseConfig(**SMALL))
    assert [n for n, _ in diag.activations] == ["layer 2 (Tanh)", "layer 5 (Tanh)"]   # Linear, BatchNorm, Tanh
    assert all(a.shape == (16, 40) and np.abs(a).max() <= 1 for _, a in diag.activations)
    assert all(g.shape == (16, 40) and np.abs(g).max() > 0 for _, g in diag.act_grads)
    assert list(diag.ud) == ["embedding.weight", "layers.0.weight", "layers.3.weight", "layers.6.weight"]
    assert all(len(u) == 6 and np.all(np.isfinite(u)) for u in diag.ud.values())
    assert len(diag.losses) == 6 and abs(diag.losses[0] - np.log(27)) < 0.2         # starts near uniform
    n, g, w = diag.weight_grads[1]
    assert n == "layers.0.weight" and g.shape == w.shape == (40, 30)


def test_saturation_shows_what_the_lecture_shows_about_the_gain():
    """Without BatchNorm a big init gain saturates the tanh layers; Kaiming's 5/3 keeps them mostly live."""
    high = dict(train(DiagnoseConfig(**SMALL, gain=5.0, batchnorm=False)).saturation())
    kaiming = dict(train(DiagnoseConfig(**SMALL, batchnorm=False)).saturation())
    assert max(kaiming.values()) < 0.2 and min(high.values()) > 0.5, (high, kaiming)


def test_the_figures_are_pngs_with_titles_and_axes(tmp_path):
    from PIL import Image
    paths = write_figures(train(DiagnoseConfig(**SMALL)), str(tmp_path / "figs"))
    names = [os.path.basename(p) for p in paths]
    assert names == ["activations.png", "gradients.png", "weight_gradients.png", "update_ratio.png"]
    titles = ["activation distribution (|tanh| > 0.97 is saturated)", "gradient distribution at each Tanh output",
              "weight gradient distribution", "update:data ratio per weight, log10(std(lr*grad) / std(weight))"]
    axes = ["x: tanh output; y: density", "x: d loss / d tanh output; y: density",
            "x: d loss / d weight; y: density", "x: step; y: log10 update:data"]
    for path, title, ax in zip(paths, titles, axes):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == (1000, 450)
            assert im.info["Title"] == title
            assert im.info["Description"] == f"2 x (Linear + BatchNorm1d + Tanh), gain 1.67, after 6 steps; {ax}"
            pixels = np.asarray(im.convert("L"), dtype=float)
        assert pixels.std() > 20 and (pixels < 100).mean() > 0.005        # drawn on, not blank
    assert sorted(os.listdir(tmp_path / "figs")) == sorted(names)         # no temp files left


def cli(argv):
    parser = argparse.ArgumentParser(prog="python -m models")
    sub = parser.add_subparsers(dest="command", required=True)
    diagnose.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_the_command_writes_the_figures_and_prints_saturation(tmp_path, capsys):
    out_dir = str(tmp_path / "run")
    assert cli(["diagnose", "--layers", "2", "--n-hidden", "30", "--steps", "4", "--out-dir", out_dir]) == 0
    out = capsys.readouterr().out
    assert "step      4/4: loss" in out and "layer 5 (Tanh):" in out and "% saturated (|tanh| > 0.97)" in out
    assert out.count("wrote ") == 4 and len(os.listdir(out_dir)) == 4


@pytest.mark.parametrize("argv, message", [
    (["--layers", "0"], "error: --layers must be at least 1, got 0"),
    (["--batch-size", "1"], "error: --batch-size must be at least 2 (BatchNorm needs a batch), got 1"),
    (["--lr", "nan"], "error: --lr and --gain must be positive numbers, got nan and 1.666"),
])
def test_bad_options_are_a_clear_error_before_any_work(tmp_path, capsys, argv, message):
    assert cli(["diagnose", *argv, "--out-dir", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith(message) and not os.path.exists(tmp_path / "x")


def test_runs_standalone_as_a_module(tmp_path):
    r = subprocess.run([sys.executable, "-m", "models.diagnose", "--layers", "1", "--n-hidden", "20", "--steps", "2",
                        "--out-dir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("wrote ") == 4


def test_without_matplotlib_the_command_says_how_to_install_it_before_training(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert cli(["diagnose", "--steps", "100000", "--out-dir", str(tmp_path / "x")]) == 1
    captured = capsys.readouterr()
    assert "plotting needs matplotlib, which is not installed: pip install 'tinygrad_mm[plot]'" in captured.err
    assert "step" not in captured.out and not os.path.exists(tmp_path / "x")


def test_the_cli_has_the_diagnose_command(capsys):
    from models.cli import main
    with pytest.raises(SystemExit) as e:
        main(["diagnose", "--help"])
    assert e.value.code == 0 and "--n-hidden" in capsys.readouterr().out

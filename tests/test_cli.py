"""End-to-end tests of the name-model command line (models/cli.py) on a small data file."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from models.cli import main
from models.dataset import load_words
from models.config import TrainConfig
from models.run import CKPT_NAME, LOSSES_NAME
from models.train import LR_FIND_NAME
import tinygrad_mm as tg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--n-hidden", "32", "--eval-every", "50", "--ckpt-every", "50", "--progress", "none"]


@pytest.fixture(scope="module")
def names_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "names.txt"
    path.write_text("\n".join(load_words()[:400]) + "\n", encoding="utf-8")
    return str(path)


def python_m(*args, **kw):
    """Run `python ARGS...` from the repository root, capturing text output."""
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, **kw)


def test_end_to_end(names_file, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--data", names_file, "--steps", "200", "--out-dir", out, *SMALL]) == 0
    text = capsys.readouterr().out
    assert "count-bigram baseline (add-1) dev loss" in text
    assert "final loss: train" in text and " dev " in text and " test " in text
    assert text.count("(new)") + text.count("(in train)") == 10  # 10 marked samples
    assert len(np.load(os.path.join(out, LOSSES_NAME))) == 200

    assert main(["eval", "--out-dir", out]) == 0
    text = capsys.readouterr().out
    assert all(f"{s} loss" in text for s in ("train", "dev  ", "test "))

    assert main(["sample", "--out-dir", out, "-n", "8", "--seed", "3", "--temperature", "0.8"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert len(first) == 8 and all(line.endswith(("(new)", "(in train)")) for line in first)
    assert main(["sample", "--ckpt", os.path.join(out, CKPT_NAME), "-n", "8", "--seed", "3",
                 "--temperature", "0.8"]) == 0
    assert capsys.readouterr().out.splitlines() == first  # reproducible with a seed

    assert main(["lr-find", "--data", names_file, "--n-hidden", "32", "--num", "50", "--out-dir", out]) == 0
    assert "suggested lr" in capsys.readouterr().out
    with np.load(os.path.join(out, LR_FIND_NAME)) as z:
        assert len(z["losses"]) == 50

    pytest.importorskip("matplotlib")
    assert main(["plot", "--out-dir", out]) == 0
    for png in ("loss.png", "lr_find.png", "embedding.png"):
        assert os.path.getsize(os.path.join(out, png)) > 1000

    assert main(["bigram", "--data", names_file, "--steps", "5"]) == 0
    text = capsys.readouterr().out
    assert "count bigram (add-1): NLL over all 400 names" in text and "neural bigram (5" in text


def test_resume_via_cli_matches_straight_run(names_file, tmp_path):
    args = ["train", "--data", names_file, "--steps", "100", "--decay-at", "70", *SMALL, "--num-samples", "0"]
    assert main([*args, "--out-dir", str(tmp_path / "a")]) == 0
    assert main([*args, "--out-dir", str(tmp_path / "b"), "--max-steps", "40"]) == 0
    assert len(np.load(tmp_path / "b" / LOSSES_NAME)) == 40
    assert main(["train", "--resume", "--out-dir", str(tmp_path / "b"), "--progress", "none"]) == 0
    assert np.array_equal(np.load(tmp_path / "a" / LOSSES_NAME), np.load(tmp_path / "b" / LOSSES_NAME))


def test_compiled_training_gives_the_eager_losses_bit_for_bit(names_file, tmp_path):
    args = ["train", "--data", names_file, "--steps", "300", "--decay-at", "150", *SMALL, "--num-samples", "0"]
    assert main([*args, "--out-dir", str(tmp_path / "compiled")]) == 0          # the default
    assert main([*args, "--out-dir", str(tmp_path / "eager"), "--eager"]) == 0
    compiled, eager = (np.load(tmp_path / d / LOSSES_NAME) for d in ("compiled", "eager"))
    assert len(compiled) == 300 and np.array_equal(compiled, eager)


def test_errors_are_clear(names_file, tmp_path, capsys):
    missing = str(tmp_path / "nope.txt")
    assert main(["train", "--data", missing, "--out-dir", str(tmp_path / "r")]) != 0
    assert "no such file" in capsys.readouterr().err and not os.path.exists(tmp_path / "r" / CKPT_NAME)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"anna\nb\xffob\n")
    assert main(["train", "--data", str(bad), "--out-dir", str(tmp_path / "r")]) == 2
    assert "not valid UTF-8: line 2" in capsys.readouterr().err
    few = tmp_path / "few.txt"
    few.write_text("ann\nbob\n")
    assert main(["train", "--data", str(few), "--out-dir", str(tmp_path / "r")]) == 2
    assert "too few" in capsys.readouterr().err
    assert main(["eval", "--out-dir", str(tmp_path / "r")]) == 2
    assert "no checkpoint" in capsys.readouterr().err

    out = str(tmp_path / "ok")
    assert main(["train", "--data", names_file, "--steps", "5", "--out-dir", out, *SMALL]) == 0
    capsys.readouterr()
    assert main(["train", "--data", names_file, "--steps", "5", "--out-dir", out, *SMALL]) == 2
    assert "--resume" in capsys.readouterr().err  # never silently overwrite a run
    assert main(["train", "--resume", "--out-dir", out, "--block-size", "5"]) == 2
    assert "cannot change" in capsys.readouterr().err


@pytest.mark.skipif(tg.cuda_available(), reason="checks the message shown without cupy")
def test_cuda_without_cupy_is_a_clear_error(names_file, tmp_path, capsys):
    assert main(["train", "--data", names_file, "--device", "cuda", "--out-dir", str(tmp_path)]) == 2
    assert "cupy" in capsys.readouterr().err


def test_plot_without_matplotlib(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert main(["plot", "--out-dir", str(tmp_path)]) == 1
    assert "pip install 'tinygrad_mm[plot]'" in capsys.readouterr().err


def test_python_dash_m_and_example_script(names_file, tmp_path):
    out = str(tmp_path / "run")
    r = python_m("-m", "models", "train", "--data", names_file, "--steps", "30", "--out-dir", out, *SMALL)
    assert r.returncode == 0, r.stderr
    assert "final loss" in r.stdout
    r = python_m("examples/train_names.py", "sample", "--out-dir", out, "-n", "3", "--seed", "1")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3, r.stderr
    r = python_m("-m", "examples.train_names", "eval", "--out-dir", out)
    assert r.returncode == 0 and "dev   loss" in r.stdout, r.stderr
    r = python_m("-m", "models", "train", "--data", str(tmp_path / "missing.txt"), "--out-dir", out)
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_saves_and_exits_cleanly(names_file, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "models", "train", "--data", names_file, "--steps", "10000000",
           "--out-dir", str(out), "--n-hidden", "16", "--eval-every", "100", "--ckpt-every", "0",
           "--progress", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # training has started once a dev loss is printed
            if line.startswith("step 100: dev loss"):
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted at step" in stdout and "Traceback" not in stderr
    losses = np.load(out / LOSSES_NAME)
    assert len(losses) >= 100
    assert main(["eval", "--out-dir", str(out)]) == 0


def test_recipes():
    from models.cli import build_parser, config_from_args
    parse = build_parser().parse_args
    assert config_from_args(parse(["train"])) == TrainConfig()
    wide = config_from_args(parse(["train", "--recipe", "wide", "--steps", "1000", "--n-hidden", "64"]))
    assert (wide.block_size, wide.n_hidden, wide.steps, wide.decay_at) == (8, 64, 1000, [500, 750])
    assert wide.weight_decay == 1e-4
    assert config_from_args(parse(["train", "--recipe", "wide", "--decay-at", "10"])).decay_at == [10]


def test_progress_log_line_shows_loss_rate_and_eta():
    from models.progress import Progress
    lines = []
    bar = Progress("log", 0, 40, log=lines.append)
    for step in range(1, 41):
        bar.update(step, 2.5)
    bar.close()
    assert lines and all(k in lines[-1] for k in ("40/40", "loss 2.5000", "steps/s", "ETA"))


def test_progress_bar_uses_tqdm_with_the_loss(capsys):
    pytest.importorskip("tqdm")
    from models.progress import Progress
    bar = Progress("tqdm", 0, 200)
    for step in range(1, 201):
        bar.update(step, 1.25)
    bar.close()
    err = capsys.readouterr().err
    assert "200/200" in err and "loss=1.2500" in err

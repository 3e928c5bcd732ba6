"""What a run writes: self-contained checkpoints (data found by content hash), atomic files,
orphaned temp files cleaned, one writer per folder, an unwritable folder refused before training."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from models.cli import main
from models.config import RunError, TrainConfig
from models.dataset import DEFAULT_DATA_PATH, load_words
from models.run import CKPT_NAME, LOSSES_NAME, checkpoint_state, load_model, new_run, read_checkpoint, resume_run
from models.rundir import LOCK_NAME, RunLock, atomic_write
from models.train import fit
from tinygrad_mm import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--n-hidden", "16", "--eval-every", "0", "--progress", "none", "--num-samples", "0"]


@pytest.fixture
def names_file(tmp_path):
    path = tmp_path / "data" / "names.txt"
    path.parent.mkdir()
    path.write_text("\n".join(load_words()[:300]) + "\n", encoding="utf-8")
    return str(path)


def tiny(data, **kw):
    return TrainConfig(**{**dict(data=data, steps=30, n_hidden=16, eval_every=0, ckpt_every=10), **kw})


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# -- self-contained checkpoints ---------------------------------------------------------------

def test_sample_needs_no_data_file_and_eval_says_which_file_it_wants(names_file, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--data", names_file, "--steps", "30", "--out-dir", out, *SMALL]) == 0
    moved = str(tmp_path / "elsewhere.txt")
    shutil.move(names_file, moved)
    capsys.readouterr()
    assert main(["sample", "--out-dir", out, "-n", "5", "--seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(line.endswith(("(new)", "(in train)")) for line in lines)
    assert main(["eval", "--out-dir", out]) == 2
    err = capsys.readouterr().err
    assert os.path.join(out, CKPT_NAME) in err and names_file in err and "--data" in err
    assert "Errno" not in err
    assert main(["eval", "--out-dir", out, "--data", moved]) == 0  # any copy, found by content
    assert "dev   loss" in capsys.readouterr().out
    assert main(["train", "--resume", "--out-dir", out, "--data", moved, "--steps", "40", *SMALL[4:]]) == 0


def test_resume_refuses_a_different_file_naming_both(names_file, tmp_path):
    fit(new_run(tiny(names_file)), tmp_path / "run")
    other = tmp_path / "other.txt"
    other.write_text("\n".join(load_words()[300:600]) + "\n", encoding="utf-8")
    with pytest.raises(RunError) as e:
        resume_run(tmp_path / "run", data=str(other))
    assert str(other) in str(e.value) and names_file in str(e.value) and "sha256" in str(e.value)


def test_a_moved_clone_finds_the_bundled_data_by_hash(tmp_path):
    run = new_run(TrainConfig(steps=2, n_hidden=8, eval_every=0))
    state = checkpoint_state(run)
    state["config"]["data"] = str(tmp_path / "old-clone" / "models" / "data" / "names.txt")  # gone
    checkpoint.save(tmp_path / CKPT_NAME, state)
    config, _, data, _ = load_model(tmp_path)
    assert config.data == DEFAULT_DATA_PATH and len(data.train_words) == len(run.data.train_words)


# -- atomic files, temp files, locks ----------------------------------------------------------

def test_a_failed_write_leaves_the_previous_file_and_no_temp_file(tmp_path):
    path = tmp_path / LOSSES_NAME
    atomic_write(path, lambda f: np.save(f, np.arange(3.0)))

    def broken(f):
        f.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    assert np.array_equal(np.load(path), np.arange(3.0)) and os.listdir(tmp_path) == [LOSSES_NAME]


def test_orphaned_temp_files_are_removed_on_the_next_start(names_file, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    orphans = [out / f".{CKPT_NAME}.k1l2m3.tmp", out / f".{LOSSES_NAME}.x9y8.tmp"]
    for p in orphans:
        p.write_bytes(b"partial")
    (out / "notes.tmp").write_text("not ours")  # not a hidden temp file: kept
    lines = []
    fit(new_run(tiny(names_file)), out, log=lines.append)
    assert not any(p.exists() for p in orphans) and (out / "notes.tmp").exists()
    assert sum("left by an interrupted save" in line for line in lines) == 2
    assert sorted(os.listdir(out)) == sorted([CKPT_NAME, LOSSES_NAME, "notes.tmp"])


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(names_file, tmp_path, capsys):
    out = tmp_path / "run"
    with RunLock(out):
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            (out / LOCK_NAME).write_text(f"{sleeper.pid}\n")  # as if that live process held it
            with pytest.raises(RunError, match=f"another run \\(pid {sleeper.pid}\\) is writing"):
                fit(new_run(tiny(names_file)), out)
            assert main(["train", "--data", names_file, "--steps", "5", "--out-dir", str(out), *SMALL]) == 2
            assert f"pid {sleeper.pid}" in capsys.readouterr().err
        finally:
            sleeper.kill()
            sleeper.wait()
    (out / LOCK_NAME).write_text(f"{dead_pid()}\n")
    lines = []
    run = fit(new_run(tiny(names_file)), out, log=lines.append)
    assert run.step == 30 and any("stale lock" in line for line in lines)
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_unwritable_out_dir_is_refused_before_training(names_file, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    steps = []
    with pytest.raises(RunError, match="cannot create the run folder"):
        fit(new_run(tiny(names_file, ckpt_every=0)), blocker / "run", callback=lambda run, loss: steps.append(1))
    assert steps == []  # not one step was trained
    assert main(["train", "--data", names_file, "--steps", "5", "--ckpt-every", "0", "--out-dir",
                 str(blocker / "run"), *SMALL]) == 2
    assert "error:" in capsys.readouterr().err


def test_plot_of_a_checkpoint_without_a_loss_history_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run = new_run(TrainConfig(steps=2, n_hidden=8, eval_every=0))
    state = checkpoint_state(run)
    del state["losses"]
    checkpoint.save(tmp_path / CKPT_NAME, state)
    assert main(["plot", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no losses" in err and "KeyError" not in err
    checkpoint.save(tmp_path / CKPT_NAME, {"weights": np.ones(2)})  # some other checkpoint
    assert main(["plot", "--out-dir", str(tmp_path)]) == 2
    assert "not of the name model" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigkill_mid_save_leaves_readable_files_and_resume_cleans_up(names_file, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "models", "train", "--data", names_file, "--steps", "100000", "--out-dir",
           str(out), "--n-hidden", "16", "--eval-every", "0", "--ckpt-every", "1", "--progress", "none",
           "--num-samples", "0"]
    for delay in (0.4, 0.25, 0.55):  # saving every step: a kill very likely lands inside a save
        proc = subprocess.Popen(cmd + (["--resume"] if (out / CKPT_NAME).exists() else []), cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (out / CKPT_NAME).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ck = read_checkpoint(out)
        losses = np.load(out / LOSSES_NAME)
        assert len(losses) >= 1 and ck["step"] >= 1
    assert main(["train", "--resume", "--out-dir", str(out), "--steps", str(ck["step"] + 2), *SMALL[4:]]) == 0
    assert not [f for f in os.listdir(out) if f.endswith(".tmp") or f == LOCK_NAME]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_two_real_runs_on_one_folder_the_second_is_refused(names_file, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "models", "train", "--data", names_file, "--out-dir", str(out), *SMALL]
    first = subprocess.Popen([*cmd, "--steps", "10000000", "--ckpt-every", "0"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (out / LOCK_NAME).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        second = subprocess.run([*cmd, "--steps", "5", "--overwrite"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2 and f"another run (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)  # the first run saves and exits cleanly
        first.wait(timeout=60)
    assert first.returncode == 130 and not (out / LOCK_NAME).exists()

"""Every CLI value is checked at parse time (error: ... and exit 2, before any work); divergence and
memory limits stop a run with a clear message; help text covers every option."""
import argparse
import math
import re

import numpy as np
import pytest

from models.cli import build_parser, main
from models.config import RunError, TrainConfig, check_memory, step_bytes
from models.dataset import load_words
from models.run import CKPT_NAME, new_run, read_checkpoint
from models.train import Diverged, fit, lr_find

SMALL = ["--n-hidden", "16", "--eval-every", "0", "--progress", "none", "--num-samples", "0"]


@pytest.fixture(scope="module")
def names_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "names.txt"
    path.write_text("\n".join(load_words()[:300]) + "\n", encoding="utf-8")
    return str(path)


BAD = [
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--lr", "abc"], "--lr"),
    (["train", "--num-samples", "-1"], "--num-samples"),
    (["train", "--decay-factor", "-0.5"], "--decay-factor"),
    (["train", "--weight-decay", "-1e-4"], "--weight-decay"),
    (["train", "--decay-at", "-5"], "--decay-at"),
    (["train", "--eval-every", "-1"], "--eval-every"),
    (["train", "--ckpt-every", "-1"], "--ckpt-every"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--max-steps", "0"], "--max-steps"),
    (["train", "--max-line-length", "0"], "--max-line-length"),
    (["sample", "-n", "0"], "-n/--num"),
    (["sample", "--temperature", "0"], "--temperature"),
    (["sample", "--temperature", "-1"], "--temperature"),
    (["sample", "--seed", "-3"], "--seed"),
    (["plot", "--chunk", "-1"], "--chunk"),
    (["lr-find", "--num", "0"], "--num"),
    (["lr-find", "--lr-min", "0"], "--lr-min"),
    (["lr-find", "--lr-min", "1", "--lr-max", "0.01"], "--lr-min 1 must be below --lr-max 0.01"),
    (["bigram", "--smoothing", "-1"], "--smoothing"),
    (["bigram", "--steps", "-1"], "--steps"),
    (["bigram", "--lr", "0"], "--lr"),
]


@pytest.mark.parametrize("argv,named", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_values_stop_at_parse_time(argv, named, tmp_path, capsys):
    # --out-dir points at a folder that must stay absent: nothing may run before the check
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as e:
        main([*argv, "--out-dir", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and named in err and "Traceback" not in err
    assert not out.exists()


def test_config_api_checks_values_too(names_file):
    for bad in ({"lr": float("nan")}, {"lr": -1.0}, {"decay_factor": -1.0}, {"weight_decay": -1.0},
                {"eval_every": -1}, {"ckpt_every": -1}, {"decay_at": [0]}, {"seed": -1}):
        with pytest.raises(RunError, match=next(iter(bad))):
            TrainConfig(data=names_file, **bad).resolved()


def test_every_option_has_help_and_lr_find_lists_only_what_it_uses():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.option_strings)
    lr_find_opts = set(sub.choices["lr-find"]._option_string_actions)
    assert not lr_find_opts & {"--steps", "--lr", "--decay-at", "--decay-factor", "--eval-every"}
    assert {"--lr-min", "--lr-max", "--num", "--batch-size", "--weight-decay"} <= lr_find_opts


def test_huge_lr_stops_with_the_step_and_keeps_the_last_good_checkpoint(names_file, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", names_file, "--steps", "200", "--out-dir", str(out), *SMALL]
    assert main([*args, "--lr", "0.1", "--ckpt-every", "5", "--max-steps", "5"]) == 0
    good = read_checkpoint(out)
    capsys.readouterr()
    assert main([*args, "--lr", "1e6", "--ckpt-every", "5", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "lower learning rate" in err and "--lr 100000" in err and "Traceback" not in err
    bad_step = int(re.search(r"diverged at step (\d+)", err).group(1))
    ck = read_checkpoint(out)  # the diverged state was not written over the last good one
    last_good = (bad_step - 1) // 5 * 5  # checkpoints every 5 steps, up to the step before
    if last_good:
        assert ck["step"] == last_good and f"last good checkpoint (step {last_good})" in err
    else:  # diverged within 5 steps: the earlier run's checkpoint is untouched
        assert ck["step"] == 5 and np.array_equal(ck["losses"], good["losses"])
        assert "from an earlier run, is left as it was" in err
    assert len(ck["losses"]) == ck["step"] and all(math.isfinite(x) for x in ck["losses"])


def test_divergence_names_the_step_through_the_api(names_file):
    with pytest.raises(Diverged, match="diverged at step") as e:
        fit(new_run(TrainConfig(data=names_file, n_hidden=16, steps=100, lr=1e6, eval_every=0)))
    assert 1 <= e.value.step < 100


def test_lr_find_ends_its_sweep_where_the_loss_diverges(names_file, tmp_path, capsys):
    res = lr_find(TrainConfig(data=names_file, n_hidden=16), 1e-3, 1e6, 200)
    assert res["diverged_at"] is not None and 10 < len(res["losses"]) < 200
    assert np.isfinite(res["losses"]).all() and res["suggested"] < res["diverged_at"]
    assert main(["lr-find", "--data", names_file, "--n-hidden", "16", "--num", "200", "--lr-max", "1e6",
                 "--out-dir", str(tmp_path)]) == 0
    assert "the loss diverged at lr" in capsys.readouterr().out


def test_batch_too_big_for_memory_is_refused_before_allocating(names_file, tmp_path, capsys):
    assert main(["train", "--data", names_file, "--batch-size", str(10**10), "--out-dir", str(tmp_path / "r"),
                 *SMALL]) == 2
    err = capsys.readouterr().err
    assert "GiB per step" in err and "available" in err and "--batch-size" in err
    assert not (tmp_path / "r" / CKPT_NAME).exists()
    cfg = TrainConfig(batch_size=1000).resolved()
    need = step_bytes(cfg, 27)
    check_memory(cfg, 27, available=need)  # fits exactly: fine
    with pytest.raises(RunError, match=r"needs about .* GiB .* only .* GiB"):
        check_memory(cfg, 27, available=need - 1)


def test_resume_with_fewer_steps_than_a_decay_says_what_happens(names_file, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--data", names_file, "--steps", "40", "--decay-at", "30", "--max-steps", "10",
                 "--out-dir", out, *SMALL]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out-dir", out, "--steps", "20", "--progress", "none",
                 "--num-samples", "0"]) == 0
    err = capsys.readouterr().err
    assert "decay at step 30" in err and "never happens" in err and "lr stays 0.1" in err


def test_divergence_keeps_the_last_periodic_checkpoint(names_file, tmp_path):
    def blow_up(run, loss):  # at step 12 the weights go wild, so step 13's loss explodes
        if run.step == 12:
            b = run.model.output.bias
            b.data = b.detach().numpy() + np.float32(1e4) * (np.arange(b.shape[0]) % 2).astype(np.float32)

    cfg = TrainConfig(data=names_file, n_hidden=16, steps=100, eval_every=0, ckpt_every=5)
    with pytest.raises(Diverged, match=r"step 13: .* last good checkpoint \(step 10\)") as e:
        fit(new_run(cfg), tmp_path, callback=blow_up)
    assert e.value.step == 13 and e.value.loss > 33
    ck = read_checkpoint(tmp_path)
    assert ck["step"] == 10 and len(ck["losses"]) == 10

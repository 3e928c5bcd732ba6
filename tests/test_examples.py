"""The examples run and print what they promise: every sweep step, an all-allclose table, fail-then-pass."""
import os
import re
import subprocess
import sys

import numpy as np

from examples import backprop_by_hand, backprop_exercise, custom_op, scalar_walkthrough, tape_walkthrough

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tape_walkthrough_prints_the_tape_and_a_step_for_every_entry(capsys):
    steps = tape_walkthrough.main()
    out = capsys.readouterr().out
    ops = ["GatherRows", "Reshape", "Affine", "Tanh", "Affine", "CrossEntropy"]
    assert [s.entry.name for s in steps] == ops[::-1]       # swept last entry first
    assert "Tape with 6 entries (6 live, 0 freed)" in out                 # the tape before the sweep
    assert "saved for backward" in out and "KiB" in out
    printed = re.findall(r"^Step\(#(\d+) (\w+), \d+ increments?\)$", out, re.M)
    assert printed == [(str(s.entry.index), s.entry.name) for s in steps]
    assert out.count("upstream gradient") == 6
    for name in ("embedding.weight", "hidden.weight", "hidden.bias", "output.weight", "output.bias"):
        assert re.search(rf"\.grad \+=\s+{re.escape(name)}\s", out), name
    assert "Tape with 6 entries (0 live, 6 freed)" in out                 # freed after the sweep


def test_tape_walkthrough_batch_is_four_examples_of_one_word():
    vocab, X, Y = tape_walkthrough.batch("emma")
    assert X.shape == (4, 3) and [vocab.decode(x) for x in X] == ["...", "..e", ".em", "emm"]
    assert vocab.decode(Y) == "emma"


def test_backprop_by_hand_matches_the_tape_everywhere(capsys):
    rows = backprop_by_hand.main(batch_size=16)
    out = capsys.readouterr().out
    assert [r.name for r in rows] == backprop_exercise.ORDER + ["logits (fused)", "hprebn (fused)"]
    assert {"bnvar_inv", "bnmeani", "counts_sum_inv", "logit_maxes"} <= {r.name for r in rows}  # BN, broken-down CE
    assert all(r.close for r in rows) and max(r.maxdiff for r in rows) < 1e-12
    assert out.count("| allclose: True") == len(rows) and "allclose: False" not in out
    assert "all allclose: True" in out


def test_scalar_walkthrough_prints_every_value_and_adjoint_and_they_match_the_hand_derivation(capsys):
    assert scalar_walkthrough.main() is True
    out = capsys.readouterr().out
    for line in ("L        =  -8.0000   (entry #2 Mul)", "#2 Mul   L: upstream dL/dL = 1", "adjoint of d        += -2",
                 ".grad of f        += 4", "#1 Add   d: upstream dL/dd = -2", ".grad of a        += 6",
                 ".grad of b        += -4", "o        =   0.7071   (entry #4 Tanh)", "adjoint of n        += 0.5",
                 ".grad of x1       += -1.5", "1  Add  #0 Mul (), leaf c () → ()"):
        assert line in out, line
    assert out.count(" ok\n") == 7 + 10 and "WRONG" not in out
    assert out.rstrip().endswith("all gradients as derived by hand: True")


def test_scalar_walkthrough_writes_its_sweep_as_a_page(tmp_path, capsys):
    path = str(tmp_path / "sweep.html")
    assert scalar_walkthrough.main(html=path)
    text = open(path, encoding="utf-8").read()
    assert '"to": "leaf a", "kind": "grad", "shape": [], "dtype": "float64", "norm": 6.0, "values": [6.0]' in text
    assert f"wrote {path}" in capsys.readouterr().out


def test_backprop_exercise_as_shipped_is_all_todo(capsys):
    results = backprop_exercise.run(batch_size=8)
    assert [name for name, _ in results] == backprop_exercise.ORDER and all(v is None for _, v in results)
    out = capsys.readouterr().out
    assert len(re.findall(r"^\w+ +TODO$", out, re.M)) == 26 and "0 of 26 gradients right, 0 wrong, 26 still TODO" in out


def test_backprop_exercise_accepts_the_solution():
    results = backprop_exercise.run(backprop_by_hand.gradients, batch_size=8, quiet=True)
    assert len(results) == 26 and all(v.ok for _, v in results)


class Tamper:
    """The `d` of the exercise, but chosen gradients are spoiled on their way in (the usual mistakes)."""

    def __init__(self, d, spoil):
        self.d, self.spoil = d, spoil

    def __getitem__(self, k):
        return self.d[k]

    def __setitem__(self, k, value):
        self.d[k] = self.spoil[k](value) if k in self.spoil else value


def test_backprop_exercise_names_each_kind_of_mistake(capsys):
    spoil = {"probs": lambda g: 2 * g, "h": lambda g: -g, "W2": lambda g: g.T,
             "b2": lambda g: np.broadcast_to(g, (8, 27)) / 8,        # forgot to sum over the batch
             "bngain": lambda g: g.reshape(-1), "counts_sum": lambda g: g * 0.5,
             "C": lambda g: np.zeros_like(g), "bnvar": lambda g: g + 1.0}

    def wrong(v, d, n, Yb):
        backprop_by_hand.gradients(v, Tamper(d, spoil), n, Yb)

    results = dict(backprop_exercise.run(wrong, batch_size=8))
    out = capsys.readouterr().out
    assert [k for k, v in results.items() if not v] == [k for k in backprop_exercise.ORDER if k in spoil]
    assert results["probs"].message.startswith("analytic ≈ 2× numeric: a contribution is counted twice")
    assert results["counts_sum"].message.startswith("analytic ≈ ½× numeric: a factor 2 is missing")
    assert results["h"].message == "analytic ≈ −numeric: the gradient has the opposite sign"
    assert results["W2"].message.startswith("transposed: shape (27, 64), the input has shape (64, 27)")
    assert results["b2"].message.startswith("missing broadcast sum: shape (8, 27) but the input has shape (27,); "
                                            "the input was broadcast in the forward, so sum its gradient over axis 0")
    assert results["bngain"].message.startswith("right values, wrong shape (64,) (the input has shape (1, 64)): "
                                                "keep the summed dimension")
    assert results["C"].message.startswith("the analytic gradient is all zeros")
    assert results["bnvar"].message.startswith("wrong values (max abs diff 1")
    assert all(results[k].ok for k in backprop_exercise.ORDER if k not in spoil)   # no cascade from a mistake
    assert "WRONG: analytic ≈ 2× numeric" in out and "18 of 26 gradients right, 8 wrong, 0 still TODO" in out


def test_custom_op_shows_the_failing_report_with_a_hint_then_a_pass(capsys):
    n = custom_op.main()
    out = capsys.readouterr().out
    first_fail = out.index("gradcheck FAILED")
    hint = out.index("hint: analytic ≈ −numeric", first_fail)
    assert "the analytic gradient is wrong" in out                        # the eps sweep's verdict
    assert "check_op(SoftplusWrongSign): this property does not hold: gradient matches finite differences" in out
    assert "gradcheck alone says: passed" in out                          # the bug gradcheck misses ...
    assert "backward modified the saved array self.s in place" in out      # ... and check_op catches
    assert out.index("gradcheck passed", hint) > hint
    assert f"check_op passed on {n} examples" in out and n > 0


def test_examples_run_as_scripts():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "tape_walkthrough.py")],
                         capture_output=True, text=True, check=True, cwd=os.path.dirname(ROOT)).stdout
    assert out.count("Step(#") == 6
    for script, last in (("scalar_walkthrough.py", "all gradients as derived by hand: True"),
                         ("backprop_exercise.py", "0 of 26 gradients right, 0 wrong, 26 still TODO"),
                         ("backprop_by_hand.py", "all allclose: True")):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script)],
                             capture_output=True, text=True, check=True, cwd=os.path.dirname(ROOT)).stdout
        assert out.rstrip().endswith(last), script

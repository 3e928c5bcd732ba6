"""The examples run and print what they promise: every sweep step, an all-allclose table, fail-then-pass."""
import os
import re
import subprocess
import sys

from examples import backprop_by_hand, custom_op, tape_walkthrough

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
    assert [r.name for r in rows] == backprop_by_hand.ORDER
    assert all(r.close for r in rows) and max(r.maxdiff for r in rows) < 1e-12
    assert out.count("| allclose: True") == len(rows) and "allclose: False" not in out
    assert "all allclose: True" in out


def test_custom_op_shows_the_failing_report_with_a_hint_then_a_pass(capsys):
    n = custom_op.main()
    out = capsys.readouterr().out
    first_fail = out.index("gradcheck FAILED")
    hint = out.index("hint: analytic ≈ −numeric", first_fail)
    assert "the analytic gradient is wrong" in out                        # the eps sweep's verdict
    assert "check_op(SoftplusWrongSign) failed: gradient matches finite differences" in out
    assert "gradcheck alone says: passed" in out                          # the bug gradcheck misses ...
    assert "backward modified the saved array self.s in place" in out      # ... and check_op catches
    assert out.index("gradcheck passed", hint) > hint
    assert f"check_op passed on {n} examples" in out and n > 0


def test_examples_run_as_scripts():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "tape_walkthrough.py")],
                         capture_output=True, text=True, check=True, cwd=os.path.dirname(ROOT)).stdout
    assert out.count("Step(#") == 6

"""print(tape) and backward_steps: what a learner reads."""

import numpy as np
from hypothesis import strategies as st

import tinygrad_mm as tg
from tinygrad_mm import Tape


def leaf(values, dtype=np.float64):
    return tg.tensor(np.array(values, dtype=dtype), requires_grad=True)


finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False)



# -- reading the tape ----------------------------------------------------------------------------

def test_print_tape_table_before_and_after_backward(capsys):
    with Tape() as tape:
        x = tg.tensor(np.linspace(-1, 1, 12).reshape(3, 4).astype(np.float32), requires_grad=True)
        w = tg.tensor(np.linspace(0, 1, 8).reshape(4, 2).astype(np.float32), requires_grad=True)
        h = (x @ w).tanh()
        loss = h.sum()
        print(tape)
        text = capsys.readouterr().out
        assert text.startswith("Tape with 3 entries (3 live, 0 freed), 104 B saved for backward")
        for word in ("#", "op", "inputs → output", "dtype", "device", "saved", "|grad out|"):
            assert word in text.splitlines()[1]
        rows = text.splitlines()[3:]
        assert rows[0].split()[:2] == ["0", "Matmul"] and "(3, 4), (4, 2) → (3, 2)" in rows[0]
        assert "float32" in rows[0] and "cpu" in rows[0] and "80 B" in rows[0]
        assert rows[1].split()[:2] == ["1", "Tanh"] and "(3, 2) → (3, 2)" in rows[1] and "24 B" in rows[1]
        assert rows[2].split()[:2] == ["2", "Sum"] and "(3, 2) → ()" in rows[2] and rows[2].endswith("—")

        loss.backward()
        text = repr(tape)
    assert text.startswith("Tape with 3 entries (0 live, 3 freed), 0 B saved for backward")
    rows = text.splitlines()[3:]
    assert all("freed" in r for r in rows)
    t = np.tanh(x.detach().numpy().astype(np.float64) @ w.detach().numpy())
    norms = [np.linalg.norm(1 - t ** 2), np.sqrt(6.0), 1.0]
    for row, n in zip(rows, norms):
        assert row.split()[-1] == f"{n:.4g}"


def test_print_empty_tape():
    with Tape() as tape:
        assert repr(tape) == "Tape with 0 entries (0 live, 0 freed), 0 B saved for backward"


def test_backward_steps_yields_one_step_per_swept_entry_in_reverse():
    with Tape() as tape:
        x, w = leaf([0.5, -1.0]), leaf([2.0, 3.0])
        unrelated = w.exp()
        h = (x * w).tanh()
        loss = h.sum()
        steps = list(tape.backward_steps(loss))
    assert [s.entry.name for s in steps] == ["Sum", "Tanh", "Mul"]
    assert [s.entry.index for s in steps] == [3, 2, 1]
    assert steps[0].grad_out == 1.0
    np.testing.assert_array_equal(steps[1].grad_out, [1.0, 1.0])
    t = np.tanh(x.detach().numpy() * w.detach().numpy())
    np.testing.assert_allclose(steps[2].grad_out, 1 - t ** 2)
    (tx, gx), (tw, gw) = steps[2].increments
    assert tx is x and tw is w
    np.testing.assert_allclose(gx, (1 - t ** 2) * w.detach().numpy())
    np.testing.assert_allclose(x.grad, gx)
    np.testing.assert_allclose(w.grad, (1 - t ** 2) * x.detach().numpy())
    assert steps[1].increments[0][0] is h.entry.inputs[0] if not h.entry.freed else True
    assert repr(steps[0]) == "Step(#3 Sum, 1 increment)"
    assert unrelated.entry.grad_out is None


def test_backward_steps_stopped_early_keeps_leaf_grads_and_leaks_no_adjoint():
    with Tape() as tape:
        x, y = leaf([1.0, 2.0]), leaf([3.0])
        loss = (x * 2.0).sum() * 1.0 + (y * 4.0).sum()
        for step in tape.backward_steps(loss, retain_graph=True):
            if any(t is y for t, _ in step.increments):
                break  # stop once y received its gradient; x's branch is still pending
        np.testing.assert_array_equal(y.grad, [4.0])
        assert x.grad is None
        assert all(e.adjoint is None for e in tape.entries)
        y.grad = None
        loss.backward()  # a full sweep afterwards is not contaminated by the abandoned one
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    np.testing.assert_array_equal(y.grad, [4.0])

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
        assert rows[0].split()[:2] == ["0", "Matmul"] and "leaf (3, 4), leaf (4, 2) → (3, 2)" in rows[0]
        assert "float32" in rows[0] and "cpu" in rows[0] and "80 B" in rows[0]
        assert rows[1].split()[:2] == ["1", "Tanh"] and "#0 Matmul (3, 2) → (3, 2)" in rows[1] and "24 B" in rows[1]
        assert rows[2].split()[:2] == ["2", "Sum"] and "#1 Tanh (3, 2) → ()" in rows[2] and rows[2].endswith("—")

        loss.backward()
        text = repr(tape)
    assert text.startswith("Tape with 3 entries (0 live, 3 freed), 0 B saved for backward")
    rows = text.splitlines()[3:]
    assert all("freed" in r for r in rows)
    t = np.tanh(x.detach().numpy().astype(np.float64) @ w.detach().numpy())
    norms = [np.linalg.norm(1 - t ** 2), np.sqrt(6.0), 1.0]
    for row, n in zip(rows, norms):
        assert row.split()[-1] == f"{n:.4g}"


def _inputs_column(text):
    """Each row's 'inputs → output' cell, read from where the header puts it."""
    lines = text.splitlines()
    start, stop = lines[1].index("inputs → output"), lines[1].index("dtype")
    return [line[start:stop].strip() for line in lines[3:]]


def test_print_names_each_inputs_source_before_and_after_backward():
    lin = tg.nn.Linear(4, 2, dtype=np.float64)
    with Tape() as tape:
        x = tg.tensor(np.ones((3, 4)))                      # a constant: no gradient wanted
        h = lin(x).tanh()
        loss = (h * h * 2.0).sum()
        expected = ["constant (3, 4), leaf weight (2, 4), leaf bias (2,) → (3, 2)",
                    "#0 Affine (3, 2) → (3, 2)",
                    "#1 Tanh (3, 2), #1 Tanh (3, 2) → (3, 2)",     # h used twice: both inputs from #1
                    "#2 Mul (3, 2), constant () → (3, 2)",
                    "#3 Mul (3, 2) → ()"]
        assert _inputs_column(tape.label(lin).__repr__()) == expected
        loss.backward()                                     # freed entries keep their sources
        assert all(e.freed for e in tape.entries)
        assert _inputs_column(repr(tape)) == expected


def test_print_names_leaves_from_a_dict_or_a_module_path_and_unnamed_leaves_stay_leaf():
    from tinygrad_mm.tape_print import format_tape
    model = tg.nn.Sequential(tg.nn.Linear(3, 2, dtype=np.float64))
    other = leaf([1.0, 2.0])
    with Tape() as tape:
        out = (model(tg.tensor(np.ones((1, 3)))) * other).sum()
        assert _inputs_column(format_tape(tape, names=model))[0] == \
            "constant (1, 3), leaf 0.weight (2, 3), leaf 0.bias (2,) → (1, 2)"
        assert _inputs_column(format_tape(tape, names={"other": other}))[1] == \
            "#0 Affine (1, 2), leaf other (2,) → (1, 2)"
        assert _inputs_column(repr(tape))[1] == "#0 Affine (1, 2), leaf (2,) → (1, 2)"   # nothing registered
        try:
            format_tape(tape, names=[other])
        except TypeError as e:
            assert "names must be a Module or a dict name -> tensor, got list" in str(e)
        else:
            raise AssertionError("a list of tensors is not a names table")
    del out


def test_a_swept_entry_holds_its_leaves_as_torch_does():
    # torch's AccumulateGrad node holds its leaf: y.grad_fn reaches x after backward too
    import gc
    import weakref
    with Tape() as tape:
        x = leaf([1.0, 2.0])
        y = (x * 2.0).sum()
        tape.label({"x": x})
        y.backward()
        assert _inputs_column(repr(tape))[0] == "leaf x (2,), constant () → (2,)"
        gone = weakref.ref(x)
        del x
        gc.collect()
        assert gone() is not None                            # the record keeps the leaf, as torch
        assert _inputs_column(repr(tape))[0] == "leaf x (2,), constant () → (2,)"
        del y
        leaf([0.0]).exp()                                    # the next op drops the sweep's records
        gc.collect()
        assert gone() is None                                # and with them the leaf


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


def test_an_op_recorded_between_steps_leaves_every_entry_listed_once():
    with Tape() as tape:
        x = leaf([1.0, 1.0, 1.0])
        z = ((x * 2.0).tanh() * 3.0).sum()
        steps = tape.backward_steps(z)
        next(steps)                    # Sum swept
        w = x * 7.0                    # recording drops the swept list and compacts the live one
        rest = [s.entry.index for s in steps]
        indices = [e.index for e in tape.entries]
        assert len(indices) == len(set(indices))              # none twice
        assert set(rest) <= set(indices) and all(e.freed for e in tape.entries if e.index in rest)
        assert w.entry in tape.entries and not w.entry.freed
    np.testing.assert_allclose(x.grad, 6.0 * (1.0 - np.tanh(2.0) ** 2) * np.ones(3))


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

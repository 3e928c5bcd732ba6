"""Tests for the Tape: the classic reverse-mode bugs, freeing, scoping, printing, memory, op contracts."""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_mm as tg
from tinygrad_mm import Function, Tape, backend, no_grad


def leaf(values, dtype=np.float64):
    return tg.tensor(np.array(values, dtype=dtype), requires_grad=True)


finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False)


# -- the classic bugs -----------------------------------------------------------------------------

@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4), elements=finite))
def test_x_times_x_gives_2x(values):
    with Tape():
        x = tg.tensor(values, requires_grad=True)
        (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * values, rtol=0, atol=0)


def test_x_times_x_in_float32_keeps_dtype():
    with Tape():
        x = leaf([1.5, -2.0], np.float32)
        (x * x).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [3.0, -4.0])


def test_diamond():
    # a -> b = 2a, a -> c = exp(a), d = b * c: dd/da = 2 exp(a) + 2a exp(a)
    with Tape():
        a = leaf([0.5, -1.0, 2.0])
        b = a * 2.0
        c = a.exp()
        (b * c).sum().backward()
    av = a.numpy()
    np.testing.assert_allclose(a.grad, 2 * np.exp(av) + 2 * av * np.exp(av), rtol=1e-12)


def test_two_tensors_with_equal_values_get_their_own_gradients():
    with Tape():
        a, b = leaf([1.0, 2.0]), leaf([1.0, 2.0])
        (a * 3.0 + b * 5.0).sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0, 3.0])
    np.testing.assert_array_equal(b.grad, [5.0, 5.0])
    with Tape():  # equal values inside one op: each gets the *other* factor
        p, q = leaf([2.0, 3.0]), leaf([2.0, 3.0])
        r = leaf([7.0, 11.0])
        (p * r + q).sum().backward()
    np.testing.assert_array_equal(p.grad, [7.0, 11.0])
    np.testing.assert_array_equal(q.grad, [1.0, 1.0])


def test_tensor_used_in_two_branches():
    with Tape():
        x = leaf([0.3, -0.7])
        y = x.tanh()
        (y * 2.0 + y.exp()).sum().backward()
    t = np.tanh(x.numpy())
    np.testing.assert_allclose(x.grad, (2 + np.exp(t)) * (1 - t ** 2), rtol=1e-12)


def test_same_tensor_as_both_inputs_of_add_and_matmul():
    with Tape():
        x = leaf([1.0, 2.0])
        (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    with Tape():
        m = leaf([[1.0, 2.0], [3.0, 4.0]])
        (m @ m).sum().backward()
    mv, ones = m.numpy(), np.ones((2, 2))
    np.testing.assert_allclose(m.grad, ones @ mv.T + mv.T @ ones)


def test_chain_of_100k_ops_backward_without_recursion():
    with Tape() as tape:
        x = leaf(1.0)
        y = x
        for _ in range(100_000):
            y = y * 1.0
        assert len(tape) == 100_000
        y.backward()
    assert x.grad == 1.0


def test_dropping_an_unbackwarded_100k_chain_does_not_crash():
    with Tape() as tape:
        x = leaf([1.0])
        y = x
        for _ in range(100_000):
            y = y + 0.0
        probe = weakref.ref(y.op)
        del y  # 100k nested Tensor -> entry -> Tensor references freed in one go
        gc.collect()
        assert probe() is None
        assert len(tape) == 0


def test_backward_does_not_mutate_inputs_or_upstream_gradient():
    with Tape():
        x = leaf(np.linspace(-1, 1, 6).reshape(2, 3))
        w = leaf(np.linspace(0.5, 2, 12).reshape(3, 4))
        x0, w0 = x.numpy().copy(), w.numpy().copy()
        out = ((x @ w).tanh() * 2.0 + (x @ w).exp() / 3.0 - x.sum(1, keepdims=True)).reshape(4, 2)
        g = np.linspace(-2, 2, 8).reshape(4, 2)
        g0 = g.copy()
        out.backward(g)
    np.testing.assert_array_equal(x.data, x0)
    np.testing.assert_array_equal(w.data, w0)
    np.testing.assert_array_equal(g, g0)
    x.grad += 100.0  # mutating a grad in place must not reach the upstream gradient either
    np.testing.assert_array_equal(g, g0)


def test_no_grad_aliases_another_array():
    g = np.array([[1.0, 2.0], [3.0, 4.0]])
    with Tape():
        a, b = leaf(np.zeros((2, 2))), leaf(np.ones((2, 2)))
        (a + b).backward(g)
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, g) and not np.shares_memory(b.grad, g)
    with Tape():  # views in backward (reshape, transpose, broadcast of a sum) must not leak either
        c = leaf(np.arange(4.0))
        d = leaf(np.arange(4.0).reshape(2, 2))
        (c.reshape(2, 2) + d.T).backward(g)
    assert not np.shares_memory(c.grad, g) and not np.shares_memory(d.grad, g)
    assert not np.shares_memory(c.grad, d.grad)
    with Tape():  # a leaf as the root: its grad is a copy of the seed
        e = leaf(np.zeros((2, 2)))
        e.backward(g)
    assert not np.shares_memory(e.grad, g)
    np.testing.assert_array_equal(e.grad, g)


def test_grad_accumulates_across_backward_calls_and_resets_with_none():
    x = leaf([1.0, 2.0])
    for expected in ([2.0, 4.0], [4.0, 8.0]):
        with Tape():
            (x * x).sum().backward()
        np.testing.assert_array_equal(x.grad, expected)
    x.grad = None
    with Tape():
        (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_backward_on_non_scalar_without_grad_names_the_shape():
    with Tape():
        y = leaf(np.ones((2, 3))) * 2.0
        with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
            y.backward()


def test_backward_with_a_badly_shaped_or_typed_upstream_gradient():
    with Tape():
        y = leaf(np.ones((2, 3))) * 2.0
        with pytest.raises(ValueError, match=r"\(3, 2\)"):
            y.backward(np.ones((3, 2)))
        with pytest.raises(ValueError, match="float32"):
            y.backward(np.ones((2, 3), dtype=np.float32))
        with pytest.raises(TypeError):
            y.backward([[1.0] * 3] * 2)


def test_backward_on_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.tensor([1.0, 2.0]).sum().backward()
    with Tape():
        x = leaf([1.0])
        with no_grad():
            y = x * 2.0
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_second_backward_through_freed_tape_raises_and_rolls_back():
    with Tape():
        x = leaf([1.0, 2.0])
        loss = (x * x).sum()
        loss.backward()
        before = x.grad.copy()
        with pytest.raises(RuntimeError, match=r"(?s)freed.*retain_graph"):
            loss.backward()
    np.testing.assert_array_equal(x.grad, before)


def test_backward_reaching_a_freed_entry_through_a_new_op_raises_and_rolls_back():
    with Tape():
        x = leaf([1.0, 2.0])
        y = x * x
        y.sum().backward()
        before = x.grad.copy()
        # x * 5 is swept (x.grad incremented) before the freed entry of y is reached
        loss = (y * 3.0).sum() + (x * 5.0).sum()
        with pytest.raises(RuntimeError, match=r"(?s)freed.*retain_graph"):
            loss.backward()
    np.testing.assert_array_equal(x.grad, before)


def test_intermediate_from_another_tape_raises():
    x = leaf([1.0, 2.0])
    with Tape():
        y = x * 2.0
    with Tape():
        loss = (y * y).sum()
        with pytest.raises(RuntimeError, match="another tape"):
            loss.backward()
    assert x.grad is None


def test_retain_graph_allows_second_backward_with_doubled_grads():
    with Tape():
        x = leaf([1.0, -2.0])
        loss = (x * x).tanh().sum()
        loss.backward(retain_graph=True)
        once = x.grad.copy()
        loss.backward()
    np.testing.assert_allclose(x.grad, 2 * once, rtol=1e-15)
    with pytest.raises(RuntimeError, match="freed"):
        loss.backward()


def test_entries_not_needed_for_the_output_are_skipped():
    with Tape() as tape:
        x, u, v = leaf([1.0, 2.0]), leaf([3.0]), leaf([4.0])
        before = u.exp()       # recorded before the output, not on its path
        loss = (x * 2.0).sum()
        after = v * 3.0        # recorded after it
        assert len(tape) == 4
        loss.backward()
        np.testing.assert_array_equal(x.grad, [2.0, 2.0])
        assert u.grad is None and v.grad is None
        assert before.op.last_grad is None and not before.op.freed  # never swept, still usable
        assert after.op.grad_out is None
        (before * 1.0).sum().backward()
    np.testing.assert_allclose(u.grad, np.exp([3.0]))


# -- recording scope ------------------------------------------------------------------------------

def test_no_grad_context_manager_records_nothing():
    with Tape() as tape:
        x = leaf([1.0, 2.0])
        with no_grad():
            assert not tg.is_grad_enabled()
            y = (x * 2.0).exp().sum()
            with no_grad():
                pass
            assert not tg.is_grad_enabled()  # nested exit restores the outer (off) state
        assert tg.is_grad_enabled()
        assert len(tape) == 0 and not y.requires_grad and y.op is None
        with pytest.raises(ZeroDivisionError):
            with no_grad():
                1 / 0
        assert tg.is_grad_enabled()


def test_no_grad_decorator_records_nothing():
    @no_grad()
    def step(t):
        """docs"""
        assert not tg.is_grad_enabled()
        return t * 3.0

    assert step.__name__ == "step" and step.__doc__ == "docs"
    with Tape() as tape:
        y = step(leaf([1.0]))
        assert len(tape) == 0 and not y.requires_grad
    assert tg.is_grad_enabled()


def test_tape_context_scopes_recording_and_restores_outer():
    outer_default = tg.default_tape()
    x = leaf([1.0])
    with Tape() as outer:
        assert tg.default_tape() is outer
        a = x * 2.0
        with Tape() as inner:
            assert tg.default_tape() is inner
            b = x * 3.0
            c = (x * 4.0).sum()
        assert tg.default_tape() is outer
        d = x * 5.0
    assert tg.default_tape() is outer_default
    assert [e.index for e in outer.entries] == [0, 1] and len(inner) == 3
    assert a.op.tape is outer and d.op.tape is outer and b.op.tape is inner and c.op.tape is inner
    c.backward()  # backward goes to the tape that recorded it, wherever it is called
    np.testing.assert_array_equal(x.grad, [4.0])
    with outer:  # a tape can be re-entered, even nested inside itself
        with outer:
            e = x * 6.0
        assert tg.default_tape() is outer
    assert e.op.tape is outer and tg.default_tape() is outer_default


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
    t = np.tanh(x.numpy().astype(np.float64) @ w.numpy())
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
    assert [type(s.entry).__name__ for s in steps] == ["Sum", "Tanh", "Mul"]
    assert [s.entry.index for s in steps] == [3, 2, 1]
    assert steps[0].grad_out == 1.0
    np.testing.assert_array_equal(steps[1].grad_out, [1.0, 1.0])
    t = np.tanh(x.numpy() * w.numpy())
    np.testing.assert_allclose(steps[2].grad_out, 1 - t ** 2)
    (tx, gx), (tw, gw) = steps[2].increments
    assert tx is x and tw is w
    np.testing.assert_allclose(gx, (1 - t ** 2) * w.numpy())
    np.testing.assert_allclose(x.grad, gx)
    np.testing.assert_allclose(w.grad, (1 - t ** 2) * x.numpy())
    assert steps[1].increments[0][0] is h.op.inputs[0] if not h.op.freed else True
    assert repr(steps[0]) == "Step(#3 Sum, 1 increments)"
    assert unrelated.op.last_grad is None


def test_backward_steps_stopped_early_keeps_leaf_grads_and_leaks_no_adjoint():
    with Tape() as tape:
        x, y = leaf([1.0, 2.0]), leaf([3.0])
        loss = (x * 2.0).sum() * 1.0 + (y * 4.0).sum()
        for step in tape.backward_steps(loss, retain_graph=True):
            if any(t is y for t, _ in step.increments):
                break  # stop once y received its gradient; x's branch is still pending
        np.testing.assert_array_equal(y.grad, [4.0])
        assert x.grad is None
        assert all(e.grad_out is None for e in tape.entries)
        y.grad = None
        loss.backward()  # a full sweep afterwards is not contaminated by the abandoned one
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    np.testing.assert_array_equal(y.grad, [4.0])


# -- memory --------------------------------------------------------------------------------------

def _mlp(x, w1, w2):
    return ((x @ w1).tanh() @ w2).exp().mean()


def test_forward_loop_without_no_grad_or_backward_stays_flat():
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((8, 4)))
    w1, w2 = leaf(rng.standard_normal((4, 16))), leaf(rng.standard_normal((16, 3)))
    with Tape() as tape:
        first = weakref.ref(_mlp(x, w1, w2).op)  # dropped at once
        for _ in range(2000):
            loss = _mlp(x, w1, w2)
            assert len(tape) <= 5
        assert first() is None
        assert len(tape) == 5  # only the last forward is alive
        assert len(tape._entries) <= 1100  # dead weak slots are compacted, not kept forever
    del loss


def test_forward_backward_loop_stays_flat():
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((8, 4)))
    w1, w2 = leaf(rng.standard_normal((4, 16))), leaf(rng.standard_normal((16, 3)))
    with Tape() as tape:
        for _ in range(2000):
            w1.grad = w2.grad = None
            loss = _mlp(x, w1, w2)
            loss.backward()
            assert len(tape) == 5 and all(e.freed for e in tape.entries)
        assert len(tape._entries) <= 1100
        loss = _mlp(x, w1, w2)  # the next op drops the previous sweep's records
        assert len(tape) == 5 and not any(e.freed for e in tape.entries)


def test_freed_entry_drops_its_saved_arrays_and_inputs():
    with Tape():
        x = leaf(np.ones(3))
        y = x.exp()
        saved = weakref.ref(y.op)
        y.sum().backward()
    assert y.op.freed and not hasattr(y.op, "out") and not hasattr(y.op, "inputs")
    assert y.op.in_shapes == ((3,),) and tg.tape_print.saved_nbytes(y.op) == 0
    assert saved() is y.op


# -- op contracts ------------------------------------------------------------------------------

class AddWrongShape(Function):
    """x + b with b broadcast over rows; backward forgets to reduce b's gradient."""

    def forward(self, x, b):
        return x + b

    def backward(self, g):
        return g, g


class AddBroadcasting(AddWrongShape):
    broadcasts = True


def test_wrong_shaped_gradient_raises_value_error_naming_op_and_shapes():
    with Tape():
        x, b = leaf(np.ones((4, 3))), leaf(np.ones((1, 3)))
        good = (x * 2.0).sum()
        loss = AddWrongShape.apply(x, b).sum() + good
        with pytest.raises(ValueError, match=r"AddWrongShape.*\(4, 3\).*\(1, 3\).*broadcasts = True"):
            loss.backward()
    assert x.grad is None and b.grad is None  # rolled back


@pytest.mark.parametrize("bshape", [(1, 3), (3,), (4, 1), ()])
def test_broadcasts_true_reduces_the_gradient(bshape):
    with Tape():
        x, b = leaf(np.ones((4, 3))), leaf(np.ones(bshape))
        AddBroadcasting.apply(x, b).backward(np.arange(12.0).reshape(4, 3))
    expected = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(x.grad, expected)
    axes = tuple(range(2 - len(bshape))) + tuple(2 - len(bshape) + i for i, n in enumerate(bshape) if n == 1)
    np.testing.assert_array_equal(b.grad, expected.sum(axis=axes, keepdims=True).reshape(bshape))
    assert b.grad.shape == bshape


def test_broadcasts_true_still_rejects_an_unreducible_shape():
    class Bad(AddBroadcasting):
        def backward(self, g):
            return g, g.T

    with Tape():
        x, b = leaf(np.ones((4, 3))), leaf(np.ones((1, 3)))
        with pytest.raises(ValueError, match=r"Bad.*\(3, 4\).*\(1, 3\)"):
            Bad.apply(x, b).sum().backward()


def test_wrong_number_of_gradients():
    class OneGrad(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, g):
            return g

    with Tape():
        a, b = leaf([1.0]), leaf([2.0])
        with pytest.raises(RuntimeError, match=r"OneGrad.*1 gradients for 2 inputs"):
            OneGrad.apply(a, b).sum().backward()
    assert a.grad is None


def test_gradient_with_wrong_dtype():
    class Float32Grad(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return (g * 2).astype(np.float32)

    with Tape():
        x = leaf([1.0, 2.0])
        with pytest.raises(TypeError, match=r"Float32Grad.*float32.*float64"):
            Float32Grad.apply(x).sum().backward()
    assert x.grad is None


def test_none_gradient_for_an_input_is_allowed():
    class Scale(Function):
        def forward(self, x, s):
            self.s = s
            return x * s

        def backward(self, g):
            return g * self.s, None

    with Tape():
        x, s = leaf([1.0, 2.0]), leaf([3.0])
        Scale.apply(x, s).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    assert s.grad is None


def test_apply_rejects_non_tensor_inputs():
    with pytest.raises(TypeError, match="keyword"):
        AddWrongShape.apply(leaf([1.0]), np.ones(1))


def test_mixing_float32_and_float64_raises_before_recording():
    with Tape() as tape:
        a = leaf([1.0, 2.0], np.float32)
        b = leaf([1.0, 2.0], np.float64)
        _ = a * 2.0  # one entry already there
        for f in (lambda: a + b, lambda: b * a, lambda: a @ b, lambda: tg.cat([a, b])):
            with pytest.raises(TypeError, match=r"(?s)float32.*float64|float64.*float32"):
                f()
            assert len(tape) == 1


@pytest.mark.skipif(not backend.cuda_available(), reason=f"no GPU: {backend.CUPY_UNAVAILABLE_REASON}")
def test_mixing_devices_raises_before_recording():
    with Tape() as tape:
        a = leaf([1.0, 2.0], np.float32)
        b = a.to("cuda").requires_grad_()
        for f in (lambda: a + b, lambda: b * a):
            with pytest.raises(TypeError, match=r"(?s)cpu.*cuda|cuda.*cpu"):
                f()
            assert len(tape) == 0

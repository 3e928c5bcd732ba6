"""Tests for the Tape: the classic reverse-mode bugs, freeing, scoping, printing, memory, op contracts."""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_mm as tg
from tinygrad_mm import Tape, no_grad


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
    av = a.detach().numpy()
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
    t = np.tanh(x.detach().numpy())
    np.testing.assert_allclose(x.grad, (2 + np.exp(t)) * (1 - t ** 2), rtol=1e-12)


def test_same_tensor_as_both_inputs_of_add_and_matmul():
    with Tape():
        x = leaf([1.0, 2.0])
        (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    with Tape():
        m = leaf([[1.0, 2.0], [3.0, 4.0]])
        (m @ m).sum().backward()
    mv, ones = m.detach().numpy(), np.ones((2, 2))
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
        probe = weakref.ref(y.entry)
        del y  # 100k nested Tensor -> entry -> Tensor references freed in one go
        gc.collect()
        assert probe() is None
        assert len(tape) == 0


def test_backward_does_not_mutate_inputs_or_upstream_gradient():
    with Tape():
        x = leaf(np.linspace(-1, 1, 6).reshape(2, 3))
        w = leaf(np.linspace(0.5, 2, 12).reshape(3, 4))
        x0, w0 = x.detach().numpy().copy(), w.detach().numpy().copy()
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
        with pytest.raises(RuntimeError, match=r"Mismatch in shape.*\(3, 2\).*\(2, 3\)"):
            y.backward(np.ones((3, 2)))
        with pytest.raises(TypeError, match="list"):
            y.backward([[1.0] * 3] * 2)
        y.backward(np.full((2, 3), 0.5, dtype=np.float32), retain_graph=True)  # cast to float64, as torch
        with pytest.raises(TypeError, match="complex"):
            y.backward(np.ones((2, 3), dtype=np.complex128))


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
        before = x.grad.array.copy()
        with pytest.raises(RuntimeError, match=r"(?s)freed.*retain_graph"):
            loss.backward()
    np.testing.assert_array_equal(x.grad, before)


def test_backward_reaching_a_freed_entry_through_a_new_op_raises_and_rolls_back():
    with Tape():
        x = leaf([1.0, 2.0])
        y = x * x
        y.sum().backward()
        before = x.grad.array.copy()
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
        once = x.grad.array.copy()
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
        assert before.entry.adjoint is None and not before.entry.freed  # never swept, still usable
        assert after.entry.adjoint is None
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
        assert len(tape) == 0 and not y.requires_grad and y.entry is None
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
    assert a.entry.tape is outer and d.entry.tape is outer and b.entry.tape is inner and c.entry.tape is inner
    c.backward()  # backward goes to the tape that recorded it, wherever it is called
    np.testing.assert_array_equal(x.grad, [4.0])
    with outer:  # a tape can be re-entered, even nested inside itself
        with outer:
            e = x * 6.0
        assert tg.default_tape() is outer
    assert e.entry.tape is outer and tg.default_tape() is outer_default

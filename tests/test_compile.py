"""tg.compile: replay equals eager; guards re-capture or refuse; print lists the captured program."""
import re

import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import compile_ops
from tinygrad_mm.nn import functional as F

from compile_helpers import assert_same, batches, step, twins


def test_replay_is_bit_identical_to_eager_and_uses_one_program():
    (ma, oa), (mb, ob) = twins()
    cstep = tg.compile(step)
    for X, Y in batches(12, 8):
        assert step(ma, oa, X, Y).item() == cstep(mb, ob, X, Y).item()
    assert_same(ma, mb)
    assert len(cstep.programs) == 1


def test_decorator_form_and_new_shapes_capture_again():
    (ma, oa), (mb, ob) = twins()

    @tg.compile
    def cstep(model, opt, X, Y):
        return step(model, opt, X, Y)
    for b in (8, 5, 8, 5, 8, 5, 8):
        for X, Y in batches(3, b, seed=b):
            assert step(ma, oa, X, Y).item() == cstep(mb, ob, X, Y).item()
    assert_same(ma, mb)
    assert len(cstep.programs) == 2 and cstep.__name__ == "cstep"


def test_the_returned_loss_is_not_overwritten_by_the_next_call():
    (_, _), (mb, ob) = twins()
    cstep = tg.compile(step)
    losses = [cstep(mb, ob, X, Y) for X, Y in batches(5, 8)]
    values = [l.item() for l in losses]
    assert len(set(values)) == 5


def test_opt_lr_is_read_on_every_replay():
    (ma, oa), (mb, ob) = twins()
    cstep = tg.compile(step)
    for i, (X, Y) in enumerate(batches(8, 8)):
        oa.lr = ob.lr = 0.5 / (i + 1)
        assert step(ma, oa, X, Y).item() == cstep(mb, ob, X, Y).item()
    assert_same(ma, mb)


@pytest.mark.parametrize("make_opt", [
    lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: tg.optim.Adam(ps, lr=1e-2),
    lambda ps: tg.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
], ids=["momentum", "nesterov-wd", "adam", "adamw"])
def test_every_optimizer_replays_bit_identically(make_opt):
    (ma, oa), (mb, ob) = twins(make_opt)
    cstep = tg.compile(step)
    for X, Y in batches(8, 8):
        assert step(ma, oa, X, Y).item() == cstep(mb, ob, X, Y).item()
    assert_same(ma, mb)
    assert oa.state_dict()["steps"] == ob.state_dict()["steps"]


def test_gradient_accumulation_without_zero_grad_and_zero_grad_at_the_end():
    def accumulate(model, opt, X, Y):
        F.cross_entropy(model(X), Y).backward()
        return model.l1.weight.grad

    def late_zero(model, opt, X, Y):
        loss = F.cross_entropy(model(X), Y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    for fn in (accumulate, late_zero):
        (ma, oa), (mb, ob) = twins()
        cfn = tg.compile(fn)
        for X, Y in batches(6, 8):
            fn(ma, oa, X, Y)
            cfn(mb, ob, X, Y)
        assert_same(ma, mb)


def test_eager_steps_between_replays_and_a_rebound_parameter():
    (ma, oa), (mb, ob) = twins()
    cstep = tg.compile(step)
    for i, (X, Y) in enumerate(batches(10, 8)):
        f = step if i == 5 else cstep  # an eager step in between changes nothing
        assert step(ma, oa, X, Y).item() == f(mb, ob, X, Y).item()
        if i == 6:  # a checkpoint load rebinds the arrays: the program must not write the old ones
            for p, q in zip(ma.parameters(), mb.parameters()):
                p.data = tg.tensor(p.array * 0.5)
                q.data = tg.tensor(q.array * 0.5)
    assert_same(ma, mb)


class Cube(tg.Function):
    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, g):
        return 3 * self.x ** 2 * g


def test_a_custom_function_replays_through_its_own_forward_and_backward():
    w0 = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    ws = [tg.tensor(w0.copy(), requires_grad=True) for _ in range(2)]
    opts = [tg.optim.SGD([w], lr=0.01) for w in ws]

    def fn(w, opt, x):
        loss = (Cube.apply(w * x) + w).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    cfn = tg.compile(fn)
    for i in range(6):
        x = tg.tensor(np.full((3, 4), 0.1 * i, np.float32))
        assert fn(ws[0], opts[0], x).item() == cfn(ws[1], opts[1], x).item()
    assert np.array_equal(ws[0].array, ws[1].array)
    assert "Cube" in repr(cfn) and "[generic]" in repr(cfn)


def test_print_lists_forward_backward_and_update_with_shapes():
    (_, _), (mb, ob) = twins()
    cstep = tg.compile(step)
    assert "not captured yet" in repr(cstep)
    for X, Y in batches(2, 8):
        cstep(mb, ob, X, Y)
    text = repr(cstep)
    for needle in ("forward:", "backward:", "update:", "GatherRows emb.weight (11, 4), idx=X (8, 2)",
                   "Affine.backward", "l1.weight.grad += ", "SGD.step: p -= lr * p.grad", "= Tanh %"):
        assert needle in text, needle
    assert text.index("forward:") < text.index("backward:") < text.index("update:")


def _expect_refusal(fn, match, n=2):
    w = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    cfn = tg.compile(fn)
    with pytest.raises(tg.CompileError, match=match):
        for i in range(n):
            cfn(w, tg.tensor(np.arange(3, dtype=np.float32) + i))


def test_reading_a_value_inside_the_function_is_refused():
    def fn(w, x):
        loss = (w * x).sum()
        if loss.item() > 0:
            loss = loss * 2
        return loss
    _expect_refusal(fn, r"Tensor.item\(\) inside a function being compiled")


def test_control_flow_that_changes_between_calls_is_refused():
    calls = []

    def fn(w, x):
        calls.append(1)
        y = w * x
        return (y.tanh() if len(calls) % 2 else y.exp()).sum()
    _expect_refusal(fn, "different program on its second call")


def test_random_numbers_drawn_inside_the_function_are_refused():
    def fn(w, x):
        return (w * x * tg.randn(3)).sum()
    _expect_refusal(fn, "afresh with different values")


def test_an_in_place_write_inside_the_function_is_refused():
    def fn(w, x):
        y = w * x
        y += 1
        return y.sum()
    _expect_refusal(fn, "in-place write", n=1)


def test_assigning_a_gradient_inside_the_function_is_refused():
    """p.grad = p.grad * 0.5 before the update: the capture would not see the new .grad, and a
    replay would update with the old one (.grad = None, zero_grad's, is replayed)."""
    def fn(w, x):
        (w * x).sum().backward()
        w.grad = None  # replayed as a reset
        (w * x).sum().backward()
        w.grad = w.grad * 0.5
        return w.grad
    _expect_refusal(fn, "assigning a tensor to .grad", n=1)


@pytest.mark.parametrize("forms", ["preallocated", "generic"])
def test_an_out_of_range_index_in_a_replayed_batch_still_raises(forms, monkeypatch):
    if forms == "generic":  # every op replayed through its own forward, as on cupy (whose ops have no form)
        monkeypatch.setattr(compile_ops, "FORMS", {})
    (_, _), (mb, ob) = twins()
    cstep = tg.compile(step)
    for X, Y in batches(3, 8):
        cstep(mb, ob, X, Y)
    bad = X.array.copy()
    bad[0, 0] = -1
    before = [p.array.copy() for p in mb.parameters()]
    with pytest.raises(IndexError, match="out of range"):
        cstep(mb, ob, tg.tensor(bad), Y)
    assert all(np.array_equal(a, p.array) for a, p in zip(before, mb.parameters()))
    badY = Y.array.copy()
    badY[1] = 11
    with pytest.raises(IndexError, match="out of bounds"):
        cstep(mb, ob, X, tg.tensor(badY))


def test_non_tensor_results_are_refused():
    def fn(w, x):
        return 3.0
    _expect_refusal(fn, "returns Tensors", n=1)


def test_numpy_arrays_as_arguments_as_the_cli_passes_them():
    (ma, oa), (mb, ob) = twins()
    cstep = tg.compile(step)
    for X, Y in batches(6, 8):
        x, y = X.array.copy(), Y.array.copy()  # fresh arrays each call, as Xtr[ix] makes
        assert step(ma, oa, x, y).item() == cstep(mb, ob, x, y).item()
    assert_same(ma, mb)
    assert len(cstep.programs) == 1


def test_the_step_after_the_first_two_is_a_replay_without_tape_entries():
    (_, _), (mb, ob) = twins()
    cstep = tg.compile(step)
    calls = batches(4, 8)
    for X, Y in calls[:2]:
        cstep(mb, ob, X, Y)
    tape = tg.default_tape()
    before = tape._count
    loss = cstep(mb, ob, *calls[2])
    assert tape._count == before and loss.entry is None and not loss.requires_grad


def test_freezing_a_parameter_captures_again():
    (ma, oa), (mb, ob) = twins()
    cstep = tg.compile(step)
    for i, (X, Y) in enumerate(batches(8, 8)):
        if i == 4:
            for m in (ma, mb):
                m.emb.weight.requires_grad_(False)
                m.emb.weight.grad = None
        assert step(ma, oa, X, Y).item() == cstep(mb, ob, X, Y).item()
    assert_same(ma, mb)


def test_a_parameter_used_twice_gets_both_gradients_under_plain_sgd():
    ws = [tg.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True) for _ in range(2)]
    opts = [tg.optim.SGD([w], lr=0.1) for w in ws]

    def fn(w, opt, x):
        loss = (w.tanh() * x).sum() + w.tanh().sum()  # two gradients for w's .grad, from hot ops
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    cfn = tg.compile(fn)
    for i in range(5):
        x = tg.tensor(np.full((2, 3), 0.3 * i, np.float32))
        assert fn(ws[0], opts[0], x).item() == cfn(ws[1], opts[1], x).item()
    assert np.array_equal(ws[0].array, ws[1].array) and np.array_equal(ws[0].grad.array, ws[1].grad.array)


@pytest.mark.parametrize("bad, kind", [(np.inf, "+inf or NaN"), (np.nan, "+inf or NaN"), (-np.inf, "all logits -inf")])
def test_replayed_cross_entropy_refuses_undefined_rows_before_any_update(bad, kind):
    (m, opt), _ = twins()
    cstep = tg.compile(step)
    data = batches(4, 8)
    for X, Y in data[:3]:
        cstep(m, opt, X, Y)
    assert len(cstep.programs) == 1  # replaying from here on
    before = [p.array.copy() for p in m.parameters()]
    with tg.no_grad():  # one output bias at ±inf/nan: every row's logit there follows it
        m.l2.bias.array[3] = bad
        if bad == -np.inf:
            m.l2.bias.array[:] = bad
    before[-1] = m.l2.bias.array.copy()
    with pytest.raises(ValueError, match=re.escape(kind)):
        cstep(m, opt, *data[3])
    for p, b in zip(m.parameters(), before):  # refused before the update ran
        assert np.array_equal(p.array, b, equal_nan=True)


@pytest.mark.parametrize("dtype", [">i8", "<i4", "u2"])
def test_replayed_gather_refuses_an_out_of_range_index_of_any_byte_order(dtype):
    (m, opt), _ = twins()
    cstep = tg.compile(step)
    data = [(X.array.astype(dtype), Y.array) for X, Y in batches(4, 8)]
    for X, Y in data[:3]:
        cstep(m, opt, X, Y)
    assert len(cstep.programs) == 1  # replaying from here on
    X, Y = data[3]
    bad = X.copy()
    bad[2, 1] = 11 if np.dtype(dtype).kind == "u" else -1  # numpy would wrap -1 to the last row
    before = [p.array.copy() for p in m.parameters()]
    with pytest.raises(IndexError, match="out of range for size 11"):
        cstep(m, opt, bad, Y)
    assert all(np.array_equal(p.array, b) for p, b in zip(m.parameters(), before))
    cstep(m, opt, X, Y)  # a good batch replays again


def test_negative_row_ids_in_c_of_x_count_from_the_end_in_a_generic_replay_too(monkeypatch):
    """C[X] wraps a negative id as torch does, inside the op: a replay through the op's own forward
    (as on cupy) wraps each call's ids too, as eager does."""
    monkeypatch.setattr(compile_ops, "FORMS", {})
    C = tg.tensor(np.arange(12.0).reshape(6, 2), requires_grad=True)

    def look(X):
        return C[X].sum(dim=1)
    clook = tg.compile(look)
    for X in (np.array([0, 1]), np.array([2, 3]), np.array([-1, 5])):
        assert np.array_equal(clook(X).array, look(X).array)
    assert np.array_equal(look(np.array([-1, 5])).array, [21.0, 21.0])

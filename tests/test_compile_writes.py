"""tg.compile and in-place writes: a write with no history (the lecture's `p.data += -lr * p.grad`,
or one under no_grad) replays as a copy, bit for bit like eager; the rest is refused clearly."""
import re

import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm.nn import functional as F

from compile_helpers import MLP, assert_same, batches


def by_hand(style, lr=0.1):
    """The makemore training step, its update written by hand (no optimizer)."""
    def step(model, X, Y):
        loss = F.cross_entropy(model(X), Y)
        for p in model.parameters():
            p.grad = None
        loss.backward()
        if style == "data":
            for p in model.parameters():
                p.data += -lr * p.grad
        else:
            with tg.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad
        return loss
    return step


@pytest.mark.parametrize("style", ["data", "no_grad"])
def test_a_hand_written_update_replays_bit_identical_to_eager(style):
    ma, mb = MLP(), MLP()
    step = by_hand(style)
    cstep = tg.compile(step)
    for X, Y in batches(12, 8):
        assert step(ma, X, Y).item() == cstep(mb, X, Y).item()
    assert_same(ma, mb)
    assert len(cstep.programs) == 1
    text = repr(cstep)
    assert "update:" in text and "l1.weight (16, 8)[...] = %" in text and "(in place)" in text


def test_a_write_into_a_computed_tensor_under_no_grad_replays():
    def fn(w, x):
        with tg.no_grad():
            y = w * x
            y += 1         # no history under no_grad: a copy on replay
        return (w * y).sum()
    w = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    cfn = tg.compile(fn)
    for i in range(4):
        x = tg.tensor(np.arange(3, dtype=np.float32) + i)
        assert cfn(w, x).item() == fn(w, x).item() == float((np.arange(3) + i + 1).sum())


def test_a_write_into_an_argument_is_refused():
    def fn(w, x):
        with tg.no_grad():
            x += 1         # the caller's array: a replay writes into its own input buffer instead
        return (w * x).sum()
    w = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    cfn = tg.compile(fn)
    with pytest.raises(tg.CompileError, match="into an argument"):
        cfn(w, tg.tensor(np.arange(3, dtype=np.float32)))


def _updater(style):
    """A training step and its optimizer for one way of updating the parameters in place."""
    if style in ("data", "no_grad"):
        return by_hand(style), lambda ps: None
    if style == "adam":
        return step_with, lambda ps: tg.optim.Adam(ps, lr=0.01)
    if style == "sgd, a parameter without a gradient":  # SGD's replay then reads each .grad per call
        return step_with, lambda ps: tg.optim.SGD(ps + [tg.zeros(3, requires_grad=True)], lr=0.1)
    return step_with, lambda ps: tg.optim.SGD(ps, lr=0.1)  # every .grad a fixed buffer: bound array calls


def step_with(opt):
    def step(model, X, Y):
        loss = F.cross_entropy(model(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


@pytest.mark.parametrize("style", ["sgd", "sgd, a parameter without a gradient", "adam", "no_grad", "data"])
def test_a_replayed_update_is_logged_like_eager_so_an_older_graph_refuses_its_backward(style):
    """A graph recorded outside the step that saved a parameter must not sweep silently after a
    replay overwrote that parameter: eager's update logs the write (torch's version counter)."""
    outcomes = []
    for compiled in (False, True):
        model = MLP()
        make_step, make_opt = _updater(style)
        opt = make_opt(list(model.parameters()))
        fn = make_step(opt) if opt is not None else make_step
        run = tg.compile(fn) if compiled else fn
        data = batches(4, 8)
        for X, Y in data[:3]:  # capture, check, and from here on replay
            run(model, X, Y)
        w = model.l1.weight
        held = (w * w).sum()  # saves l1.weight for its backward
        run(model, *data[3])
        try:
            held.backward()
            outcomes.append(None)
        except RuntimeError as e:
            outcomes.append(re.sub(r"\d+", "#", str(e)))
    eager, replayed = outcomes
    assert replayed == eager
    assert (eager is None) == (style == "data")  # .data writes are not logged, as in torch


def test_a_hand_written_update_of_a_weight_used_twice_replays_bit_identical_to_eager():
    """Its .grad is the sum of two gradients, a new array on every call, which the update reads:
    the replay reads the sum it made (this raised 'an array the function makes afresh' before)."""
    def make():
        lin = tg.nn.Linear(4, 4, generator=tg.Generator(0))

        def step(x, y):
            loss = F.cross_entropy(lin(lin(x).tanh()), y)
            for p in lin.parameters():
                p.grad = None
            loss.backward()
            with tg.no_grad():
                for p in lin.parameters():
                    p -= 0.1 * p.grad
            return loss
        return lin, step
    rng = np.random.default_rng(0)
    (la, step), (lb, cstep) = make(), make()
    cstep = tg.compile(cstep)
    for _ in range(6):
        x, y = tg.tensor(rng.standard_normal((8, 4)).astype(np.float32)), tg.tensor(rng.integers(0, 4, 8))
        assert step(x, y).item() == cstep(x, y).item()
    assert len(cstep.programs) == 1
    for p, q in zip(la.parameters(), lb.parameters()):
        assert np.array_equal(p.array, q.array) and np.array_equal(p.grad.array, q.grad.array)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_a_graph_held_across_many_steps_keeps_the_in_place_log_short_and_still_refuses(compiled):
    """An unswept graph pins the log of in-place writes; each step adds one. Only the newest write
    of each storage matters to a check, so the log stays short (and a write stays amortized O(1))."""
    from tinygrad_mm.grad_mode import _state
    model = MLP()
    opt = tg.optim.SGD(model.parameters(), lr=0.01)
    run = tg.compile(step_with(opt)) if compiled else step_with(opt)
    data = batches(2, 8)
    w = model.l1.weight
    held = (w * w).sum()  # saves l1.weight, never swept while the steps run
    lengths = []
    for i in range(1500):
        run(model, *data[i % 2])
        lengths.append(len(_state.modified))
    assert max(lengths) <= 2 * 256 + 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        held.backward()

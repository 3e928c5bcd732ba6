"""tg.compile and the helper thread: a large linear layer's weight and bias gradients run beside
the rest of the backward, and the replay waits for them exactly where something reads them, or
overwrites what they read."""
import time

import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import kernels, side_thread
from tinygrad_mm.nn import functional as F

N, D = 4096, 64  # N * D * D = 2**24 multiply-adds per half: the smallest split (kernels.SIDE_MACS)


@pytest.fixture(autouse=True)
def split(monkeypatch):
    monkeypatch.setattr(kernels, "SIDE_THREAD", True)
    monkeypatch.setattr(kernels, "PLAIN", False)  # about the fast path, in both CI passes


@pytest.fixture
def late(monkeypatch):
    """Each helper job starts late: a read (or a write) that does not wait for it meets a buffer
    it has not written yet (or that it has yet to read)."""
    real = side_thread.start_side
    monkeypatch.setattr(side_thread, "start_side", lambda side: real(lambda: (time.sleep(0.02), side())[1]))


def model(kind):
    """(parameters, forward, how many linear backwards split). `two`: the split layer's
    parameters first, so a hand-written update reads their gradients first; `tied`: one Linear
    applied twice, its weight's second gradient added to the first; `input`: a parameter fed
    straight into a Linear, which a hand-written update overwrites while the helper may still
    read it; `computed`: a weight computed from a parameter, its gradient flowing on into that
    op's backward; `shared`: such a weight used by two Linears, its two gradients summed (Acc)."""
    g = tg.Generator(0)
    inner, outer = tg.nn.Linear(D, D, generator=g), tg.nn.Linear(D, D, generator=g)
    if kind == "two":
        return list(outer.parameters()) + list(inner.parameters()), lambda x: outer(inner(x).tanh()), 1
    if kind == "tied":
        return list(inner.parameters()), lambda x: inner(inner(x).tanh()), 1
    P = tg.randn(N, D, generator=g, requires_grad=True)
    if kind == "input":
        return [P] + list(inner.parameters()) + list(outer.parameters()), lambda x: outer(inner(P).tanh()), 2
    V = inner.weight
    if kind == "computed":
        return [P, V], lambda x: F.linear(P, V * 1.5) + 0 * x, 1

    def shared(x):
        W = V * 1.5
        return F.linear(F.linear(P, W).tanh() + 0 * x, W)
    return [P, V], shared, 2


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [(tg.tensor(rng.standard_normal((N, D)).astype(np.float32)), tg.tensor(rng.integers(0, D, N)))
            for _ in range(n)]


def _train(compiled, update, kind):
    params, forward, _ = model(kind)
    opt = tg.optim.SGD(params, lr=0.1)

    def step(x, y):
        loss = F.cross_entropy(forward(x), y)
        if update == "sgd":
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:  # by hand, reading each .grad through tensor ops and writing each parameter
            for p in params:
                p.grad = None
            loss.backward()
            with tg.no_grad():
                for p in params:
                    p -= 0.1 * p.grad
        return loss
    f = tg.compile(step) if compiled else step
    losses = [f(x, y).item() for x, y in batches()]
    return losses, [p.detach().numpy().copy() for p in params], [p.grad.numpy().copy() for p in params], f


def _joins(f):
    prog, = f.programs.values()
    return sum(getattr(i, "func", None) is side_thread.join_sides for i in prog.instrs)


@pytest.mark.parametrize("update", ["sgd", "by hand"])
@pytest.mark.parametrize("kind", ["two", "tied", "input", "computed", "shared"])
def test_split_gradients_replay_bit_identical_and_are_waited_for_where_needed(kind, update, late):
    (la, pa, ga, _), (lb, pb, gb, f) = _train(False, update, kind), _train(True, update, kind)
    assert la == lb
    for a, b in zip(pa + ga, pb + gb):
        np.testing.assert_array_equal(a, b)
    assert repr(f).count("on a second thread") == model(kind)[2]
    if (kind, update) == ("input", "sgd"):
        assert _joins(f) == 1  # deferred: both layers' jobs are waited for once, before the update


class Boom(tg.Function):
    """The identity, whose backward raises while `armed`: an error on the main thread after a
    helper job has started (the sweep reaches it after the Linear above it)."""
    armed = False

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        if Boom.armed:
            raise ArithmeticError("boom")
        return g


def test_an_error_on_either_thread_reaches_the_caller_after_the_helper_finished(monkeypatch):
    params, forward, _ = model("two")
    P = tg.randn(N, D, generator=tg.Generator(3), requires_grad=True)
    opt = tg.optim.SGD(params + [P], lr=0.1)

    def step(x, y):
        loss = F.cross_entropy(forward(Boom.apply(P) + 0 * x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    f = tg.compile(step)
    data = batches()
    for x, y in data[:3]:
        f(x, y)
    real, finished = side_thread.start_side, []
    monkeypatch.setattr(side_thread, "start_side", lambda side: real(lambda: (time.sleep(0.05), side(),
                                                                           finished.append(1))[1]))
    Boom.armed = True
    try:
        with pytest.raises(ArithmeticError, match="boom"):  # the main thread's error, not a helper's
            f(*data[3])
    finally:
        Boom.armed = False
    assert finished == [1, 1]  # both layers' jobs were done before the error left the call
    monkeypatch.setattr(side_thread, "start_side", lambda side: real(lambda: (side(), 1 / 0)))
    with pytest.raises(ZeroDivisionError):  # the helper's own error
        f(*data[3])
    monkeypatch.setattr(side_thread, "start_side", real)
    assert np.isfinite(f(*data[3]).item())
    assert len(f.programs) == 1


def test_join_sides_waits_for_every_job_and_raises_the_first_error():
    done = []

    def slow():
        time.sleep(0.05)
        done.append(1)
    jobs = [side_thread.start_side(lambda: 1 / 0), side_thread.start_side(slow)]
    with pytest.raises(ZeroDivisionError):
        side_thread.join_sides(jobs)
    assert done == [1] and jobs == []
    jobs = [side_thread.start_side(lambda: 1 / 0), side_thread.start_side(slow)]
    side_thread.settle_sides(jobs)  # an error path's wait: the jobs' errors are dropped
    assert done == [1, 1] and jobs == []


class Interrupted:
    """A job whose first wait is cut short by Ctrl-C, as a KeyboardInterrupt in the main thread."""
    def __init__(self):
        self.waits = 0

    def exception(self):
        self.waits += 1
        if self.waits == 1:
            raise KeyboardInterrupt
        return None


def test_a_job_stays_listed_until_it_has_finished_even_through_a_second_interrupt():
    jobs = [Interrupted(), Interrupted()]
    with pytest.raises(KeyboardInterrupt):
        side_thread.join_sides(jobs)
    assert len(jobs) == 2  # the interrupted job was not dropped unfinished
    jobs = [Interrupted(), Interrupted()]
    side_thread.settle_sides(jobs)  # keeps waiting through the interrupts
    assert jobs == [] 


def test_the_helper_thread_keeps_the_callers_numpy_error_state():
    g = np.full((N, D), 1e30, np.float32)
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            side_thread.beside(lambda: None, lambda: g.T @ g)

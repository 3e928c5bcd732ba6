"""tg.compile and the helper thread: a large linear layer's weight and bias gradients run beside
the rest of the backward, and the replay waits for them exactly where something reads them."""
import time

import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import kernels
from tinygrad_mm.nn import functional as F

N, D = 4096, 64  # N * D * D = 2**24 multiply-adds per half: the smallest split (kernels.SIDE_MACS)


@pytest.fixture(autouse=True)
def split(monkeypatch):
    monkeypatch.setattr(kernels, "SIDE_THREAD", True)
    monkeypatch.setattr(kernels, "PLAIN", False)  # about the fast path, in both CI passes


def model(tied):
    """Two square Linears, or one applied twice (`tied`): then its weight's second gradient is
    added to the first, which the helper thread is still writing unless the replay waits for it.
    Only the outer application splits: the inner one's input needs no gradient."""
    inner = tg.nn.Linear(D, D, generator=tg.Generator(0))
    outer = inner if tied else tg.nn.Linear(D, D, generator=tg.Generator(1))
    params = list(inner.parameters()) + ([] if tied else list(outer.parameters()))
    return params, lambda x: outer(inner(x).tanh())


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [(tg.tensor(rng.standard_normal((N, D)).astype(np.float32)), tg.tensor(rng.integers(0, D, N)))
            for _ in range(n)]


def _train(compiled, update, tied=False):
    params, forward = model(tied)
    opt = tg.optim.SGD(params, lr=0.1)

    def step(x, y):
        loss = F.cross_entropy(forward(x), y)
        if update == "sgd":
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:  # by hand, reading each .grad through tensor ops
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


# by hand and tied: the update reads the sum of the weight's two gradients, a new array each call
@pytest.mark.parametrize("update, tied", [("sgd", False), ("sgd", True), ("by hand", False), ("by hand", True)],
                         ids=["sgd", "sgd-tied", "by-hand", "by-hand-tied"])
def test_split_gradients_replay_bit_identical_and_are_waited_for_where_read(update, tied, monkeypatch):
    real = kernels.start_side
    # each helper job starts late: a read that does not wait for it finds its buffer unwritten
    monkeypatch.setattr(kernels, "start_side", lambda side: real(lambda: (time.sleep(0.02), side())[1]))
    (la, pa, ga, _), (lb, pb, gb, f) = _train(False, update, tied), _train(True, update, tied)
    assert la == lb
    for a, b in zip(pa + ga, pb + gb):
        np.testing.assert_array_equal(a, b)
    assert repr(f).count("on a second thread") == 1


def test_an_error_on_the_helper_thread_reaches_the_caller_and_the_next_call_replays(monkeypatch):
    (_, _, _, f) = _train(True, "sgd", tied=True)
    x, y = batches(1, seed=1)[0]
    real = kernels.start_side
    monkeypatch.setattr(kernels, "start_side", lambda side: real(lambda: (side(), 1 / 0)))
    with pytest.raises(ZeroDivisionError):
        f(x, y)
    monkeypatch.setattr(kernels, "start_side", real)
    assert np.isfinite(f(x, y).item())
    assert len(f.programs) == 1


def test_join_sides_waits_for_every_job_and_raises_the_first_error():
    done = []

    def slow():
        time.sleep(0.05)
        done.append(1)
    jobs = [kernels.start_side(lambda: 1 / 0), kernels.start_side(slow)]
    with pytest.raises(ZeroDivisionError):
        kernels.join_sides(jobs)
    assert done == [1] and jobs == []

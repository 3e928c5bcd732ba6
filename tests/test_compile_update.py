"""tg.compile's replay of plain SGD: the gradients placed in one arena, multiplied by lr in one
call, bit-identical to eager, and what a user reads of .grad is still each parameter's own."""
import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import nn
from tinygrad_mm.nn import functional as F


class Net(nn.Module):
    """Embedding -> Linear -> tanh -> Linear, plus a broadcast bias `shift` of shape (1, 5)
    (its gradient is reduced over the batch: sweep.fit_gradient's path) and a weight `tied`
    used twice (two gradients summed: no single buffer to place)."""

    def __init__(self, dtype=np.float32):
        g = tg.Generator(0)
        self.emb = nn.Embedding(7, 3, generator=g, dtype=dtype)
        self.l1 = nn.Linear(6, 8, generator=g, dtype=dtype)
        self.l2 = nn.Linear(8, 5, generator=g, dtype=dtype)
        self.shift = tg.tensor(np.linspace(-0.5, 0.5, 5).reshape(1, 5).astype(dtype), requires_grad=True)
        self.tied = tg.tensor(np.linspace(0.5, 1.5, 5).astype(dtype), requires_grad=True)

    def forward(self, x):
        h = self.l1(self.emb(x).reshape(x.shape[0], -1)).tanh()
        return (self.l2(h) + self.shift) * self.tied + self.tied


def training(loss_of):
    """The usual step around loss_of(model, *args): forward, zero_grad, backward, SGD."""
    def step(model, opt, *args):
        loss = loss_of(model, *args)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def eager_and_compiled(step, make, calls, lr=0.1, lrs=None):
    """Two fresh models, one stepped eagerly and one compiled, over the same calls (argument
    tuples): their losses agree bit for bit; returns both models and the compiled step. `lrs`:
    an opt.lr to set before each call (read on every replay)."""
    models = [make(), make()]
    opts = [tg.optim.SGD(m.parameters(), lr=lr) for m in models]
    cstep = tg.compile(step)
    for i, args in enumerate(calls):
        if lrs is not None:
            opts[0].lr, opts[1].lr = lrs[i], lrs[i]
        assert step(models[0], opts[0], *args).item() == cstep(models[1], opts[1], *args).item()
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        assert np.array_equal(p.array, q.array) and np.array_equal(p.grad.array, q.grad.array)
    return models[0], models[1], cstep


step = training(lambda model, X, Y: F.cross_entropy(model(X), Y))


def data(n, b=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 7, (b, 2)), rng.integers(0, 5, b)) for _ in range(n)]


def test_the_fused_update_is_bit_identical_to_eager_and_reads_lr_each_call():
    _, _, cstep = eager_and_compiled(step, Net, data(8), lrs=[0.1, 0.37, 0.05] * 3)
    prog, = cstep.programs.values()
    # emb, l1 (weight, bias), l2 (weight, bias), shift: placed; tied has two gradients summed
    assert list(prog.fused.values()) == [6]
    assert "lr * p.grad in one call for 6, their gradients in one buffer" in str(cstep)


def test_each_grad_is_its_own_array_after_a_fused_replay():
    _, mb, _ = eager_and_compiled(step, Net, data(4))
    grads = [p.grad.array for p in mb.parameters()]
    for i, a in enumerate(grads):
        for b in grads[i + 1:]:
            assert not np.shares_memory(a, b)
        assert not any(np.shares_memory(a, p.array) for p in mb.parameters())
    others = [(p, p.grad.array.copy()) for p in mb.parameters() if p is not mb.l1.weight]
    mb.l1.weight.grad.array[...] = 7  # writing one .grad leaves every other as it was
    assert all(np.array_equal(p.grad.array, before) for p, before in others)


class Mixed(nn.Module):
    def __init__(self):
        self.c, self.d, self.e = (tg.tensor(np.linspace(1, 2, 3) * k, requires_grad=True) for k in (1, 2, 3))
        self.lin = nn.Linear(2, 3, generator=tg.Generator(0))  # float32, after three float64


def test_parameters_of_two_dtypes_each_take_lr_rounded_to_their_own():
    """The float32 gradients must not be multiplied by the first parameter's float64 lr (0.1 in
    float64 is another number than 0.1 in float32: a silent mismatch the bound update had).
    The three float64 gradients, the most, share the arena; lin's get a multiply each."""
    loss = training(lambda m, x: m.lin(x).tanh().sum() + (m.c.tanh() + m.d.tanh() + m.e.tanh()).sum().float())
    calls = [(tg.tensor(np.full((4, 2), 0.1 * i, np.float32)),) for i in range(5)]
    _, _, cstep = eager_and_compiled(loss, Mixed, calls)
    prog, = cstep.programs.values()
    assert list(prog.fused.values()) == [3]


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.uint64, ">i8", ">u8"])
def test_the_replayed_embedding_gradient_sums_repeats_for_every_index_dtype(dtype):
    rng = np.random.default_rng(3)
    calls = [(rng.integers(0, 7, (9, 4)).astype(dtype),  # 36 ids out of 7: every call repeats some
              tg.tensor(rng.standard_normal((9, 4, 3)).astype(np.float32))) for _ in range(5)]
    eager_and_compiled(training(lambda e, idx, w: (e(idx) * w).sum()),
                       lambda: nn.Embedding(7, 3, generator=tg.Generator(1)), calls, lr=0.5)


@pytest.mark.parametrize("case", ["Fortran-ordered ids", "transposed gradient"])
def test_the_replayed_embedding_gradient_follows_each_call_whatever_the_layouts(case):
    """ids in a Fortran-ordered input buffer, or a gradient handed back in a permuted buffer:
    neither reshapes to a view, and a reshape made once would be a copy frozen at capture."""
    rng = np.random.default_rng(0)
    shape = (9, 4, 3) if case == "transposed gradient" else (4, 9, 3)
    calls = [(np.asfortranarray(rng.integers(0, 7, (4, 9))), tg.tensor(rng.standard_normal(shape).astype(np.float32)))
             for _ in range(5)]

    def loss(e, idx, w):
        x = e(idx)                                   # (4, 9, 3)
        return ((x.transpose(0, 1) if case == "transposed gradient" else x) * w).sum()
    eager_and_compiled(training(loss), lambda: nn.Embedding(7, 3, generator=tg.Generator(1)), calls, lr=0.5)


def test_writing_one_grad_in_place_does_not_touch_a_graph_that_saved_another():
    """The arena's gradients are arrays of their own to the in-place log: after a replay, a write
    into bias.grad leaves a graph that saved weight.grad sweepable, as after an eager step."""
    x = tg.tensor(np.ones((2, 6), np.float32))
    for compiled in (False, True):
        net = nn.Linear(6, 4, generator=tg.Generator(0))
        opt = tg.optim.SGD(net.parameters(), lr=0.1)
        f = training(lambda m, x: m(x).tanh().sum())
        f = tg.compile(f) if compiled else f
        for _ in range(4):
            f(net, opt, x)
        s = tg.tensor(np.float32(2.0), requires_grad=True)
        y = (net.weight.grad * s).sum()  # saves weight.grad's array for s's gradient
        net.bias.grad.mul_(0.5)
        y.backward()
        assert s.grad.item() == net.weight.grad.sum().item()
        y = (net.weight.grad * s).sum()
        net.weight.grad.mul_(0.5)  # writing the saved one itself still counts
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()


def test_a_numpy_scalar_lr_is_taken_as_the_python_number_it_equals():
    """lr from np.linspace is a float64 scalar: numpy would compute lr * g in float64 over a float32
    model; SGD takes it as a Python number (as torch does), eager and replayed alike."""
    lrs = np.linspace(0.3, 0.05, 8)
    ma, mb, _ = eager_and_compiled(step, Net, data(8), lrs=[float(lr) for lr in lrs])
    for wrap in (np.float64, np.array):  # a numpy scalar, a 0-d array
        mc, _, _ = eager_and_compiled(step, Net, data(8), lrs=[wrap(lr) for lr in lrs])
        for p, q in zip(ma.parameters(), mc.parameters()):
            assert np.array_equal(p.array, q.array)


def test_momentum_set_after_capture_captures_again_and_matches_eager():
    ma, mb = Net(), Net()
    oa, ob = tg.optim.SGD(ma.parameters(), lr=0.1), tg.optim.SGD(mb.parameters(), lr=0.1)
    cstep = tg.compile(step)
    for i, (X, Y) in enumerate(data(10)):
        if i == 5:
            oa.momentum = ob.momentum = 0.9
        assert step(ma, oa, X, Y).item() == cstep(mb, ob, X, Y).item()
    for p, q in zip(ma.parameters(), mb.parameters()):
        assert np.array_equal(p.array, q.array)
    prog, = cstep.programs.values()
    assert list(prog.fused.values()) == [0]  # captured again: momentum's update is the optimizer's own

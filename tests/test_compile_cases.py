"""tg.compile, case by case: replays that must follow eager where a first build did not (each
found by a review or by Hypothesis), and refusals that must be clear."""
import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import nn
from tinygrad_mm.nn import functional as F

from compile_helpers import assert_same, batches, step, twins


@pytest.mark.filterwarnings("error")  # and without numpy's warning for 0 * inf, which torch does not give
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_gradient_into_a_gathered_table_stays_in_its_rows_on_replay(bad):
    """The replayed embedding backward sums by a one-hot matmul, where 0 * nan would spread a
    non-finite gradient to every row of the table: it falls back to add.at, as eager does."""
    emb = nn.Embedding(5, 3, generator=tg.Generator(0))
    idx = np.array([[0, 1]] * 8)  # rows 0 and 1, many times

    def look(idx, scale):
        loss = (emb(idx).reshape(-1) * scale).sum()
        emb.weight.grad = None
        loss.backward()
        return emb.weight.grad

    clook = tg.compile(look)
    scale = np.ones(48, np.float32)
    for _ in range(3):
        clook(idx, tg.tensor(scale))
    assert len(clook.programs) == 1  # the next call replays
    scale[0] = bad  # the gradient of the first gathered row of id 0, element 0
    got, want = clook(idx, tg.tensor(scale)).array, look(idx, tg.tensor(scale)).array
    assert np.array_equal(got, want, equal_nan=True)
    assert not np.isfinite(want[0, 0]) and np.isfinite(np.delete(want.ravel(), 0)).all()
    assert np.array_equal(clook(idx, tg.tensor(np.ones(48, np.float32))).array, look(idx, tg.tensor(np.ones(48, np.float32))).array)


def test_a_broadcast_gradient_into_a_linear_layer_sums_as_eager_sums_it():
    """mean(axis=0)'s backward hands back a broadcast view (stride 0 over the batch); the replay
    copies it into a buffer for the Linear's backward, whose bias gradient sums over the batch:
    in C order, as numpy reads the view (a Fortran-ordered copy summed pairwise: other bits)."""
    nets = [nn.Linear(48, 30, generator=tg.Generator(0)) for _ in range(2)]
    opts = [tg.optim.SGD(n.parameters(), lr=0.01) for n in nets]

    def fn(net, opt, x):
        loss = (net(x).mean(axis=0) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    cfn = tg.compile(fn)
    rng = np.random.default_rng(10)
    for _ in range(5):
        x = tg.tensor(rng.standard_normal((100, 48)).astype(np.float32))
        assert fn(nets[0], opts[0], x).item() == cfn(nets[1], opts[1], x).item()
        assert np.array_equal(nets[0].bias.grad.array, nets[1].bias.grad.array)
    assert np.array_equal(nets[0].weight.array, nets[1].weight.array)


class Doubling(nn.Module):
    """Doubles its input in training mode only: what Dropout and BatchNorm do in spirit."""

    def forward(self, x):
        return x * 2 if self.training else x


def test_train_or_eval_after_capture_captures_again():
    """The mode shaped the captured program (a Python branch on .training): switching it outside
    the function must not replay the other mode's program."""
    ws = [tg.tensor(np.linspace(-1, 1, 3, dtype=np.float32), requires_grad=True) for _ in range(2)]
    mods = [Doubling(), Doubling()]

    def fn(w, m, x):
        loss = m(w * x).sum()
        w.grad = None
        loss.backward()
        return loss
    cfn = tg.compile(fn)
    for i in range(8):
        if i in (4, 6):
            for m in mods:
                m.train(i == 6)
        x = tg.tensor(np.arange(3, dtype=np.float32) + i)
        assert fn(ws[0], mods[0], x).item() == cfn(ws[1], mods[1], x).item()
        assert np.array_equal(ws[0].grad.array, ws[1].grad.array)


def test_one_array_passed_as_two_arguments_is_its_own_signature():
    """Captured with the same array twice, the recording reads one buffer for both: a later call
    with two different arrays must capture again, not replay that."""
    w = tg.tensor(np.linspace(-1, 1, 3, dtype=np.float32), requires_grad=True)

    def fn(a, b):
        return (w * a - b).sum()
    cfn = tg.compile(fn)
    a = np.arange(3, dtype=np.float32)
    for _ in range(3):
        assert cfn(a, a).item() == fn(a, a).item()
    b = np.full(3, 5, np.float32)
    for _ in range(3):
        assert cfn(a, b).item() == fn(a, b).item()
    assert len(cfn.programs) == 2


def test_embedding_max_norm_inside_the_function_is_refused():
    emb = nn.Embedding(5, 3, max_norm=100.0, generator=tg.Generator(0))  # refused even while no row is over

    def fn(idx):
        return emb(idx).sum()
    with pytest.raises(tg.CompileError, match="max_norm"):
        tg.compile(fn)(np.array([0, 1]))


def test_scaling_grads_in_place_inside_the_function_replays():
    """p.grad *= 0.5 under no_grad hands .grad itself back to the setter: an in-place write, replayed."""
    (ma, oa), (mb, ob) = twins()

    def fn(model, opt, X, Y):
        loss = F.cross_entropy(model(X), Y)
        opt.zero_grad()
        loss.backward()
        with tg.no_grad():
            for p in model.parameters():
                p.grad *= 0.5
        opt.step()
        return loss
    cfn = tg.compile(fn)
    for X, Y in batches(5, 8):
        assert fn(ma, oa, X, Y).item() == cfn(mb, ob, X, Y).item()
    assert_same(ma, mb)


@pytest.mark.parametrize("dtype", [np.uint64, ">u8", np.uint8, np.int32])
def test_cross_entropy_targets_of_every_integer_dtype_replay(dtype):
    (ma, oa), (mb, ob) = twins()
    cstep = tg.compile(step)
    for X, Y in batches(5, 8):
        Y = Y.array.astype(dtype)
        assert step(ma, oa, X, Y).item() == cstep(mb, ob, X, Y).item()
    assert_same(ma, mb)


def test_an_ignored_target_first_seen_in_a_replay_raises_compile_error():
    (m, opt), _ = twins()
    lossf = lambda model, opt, X, Y: F.cross_entropy(model(X), Y, ignore_index=3)  # noqa: E731
    cstep = tg.compile(lossf)
    data = batches(4, 8)
    for X, Y in data[:3]:
        Y = tg.tensor(np.where(Y.array == 3, 4, Y.array))
        cstep(m, opt, X, Y)
    X, Y = data[3]
    with pytest.raises(tg.CompileError, match="ignore_index"):
        cstep(m, opt, X, tg.tensor(np.full(8, 3)))


class Boom(tg.Function):
    """The identity, whose backward raises while `fail` is set."""
    fail = False

    def forward(self, x):
        return x

    def backward(self, g):
        if Boom.fail:
            raise ValueError("boom")
        return g


def test_an_error_in_a_replayed_backward_rolls_back_the_gradients_it_delivered():
    """As the eager sweep: all or nothing. The output layer's gradients, delivered before the
    error, are rolled back to zero_grad's None, and the others were never delivered (zero_grad's
    resets replay where it made them); the next call replays as before."""
    def fn(model, opt, X, Y):
        h = Boom.apply(model.l1(model.emb(X).reshape(X.shape[0], -1)))
        loss = F.cross_entropy(model.l2(h.tanh()), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    (ma, oa), (mb, ob) = twins()
    cfn = tg.compile(fn)
    data = batches(5, 8)
    for X, Y in data[:3]:
        assert fn(ma, oa, X, Y).item() == cfn(mb, ob, X, Y).item()
    Boom.fail = True
    try:
        for f, m, o in ((fn, ma, oa), (cfn, mb, ob)):
            with pytest.raises(ValueError, match="boom"):
                f(m, o, *data[3])
            assert all(p.grad is None for p in m.parameters())
    finally:
        Boom.fail = False
    X, Y = data[4]
    assert fn(ma, oa, X, Y).item() == cfn(mb, ob, X, Y).item()
    assert_same(ma, mb)


class Masked(tg.Function):
    """x * d["m"]: an array inside a dict keyword param."""

    def forward(self, x, d=None):
        self.m = d["m"]
        return x * self.m

    def backward(self, g):
        return g * self.m


def test_an_array_inside_a_dict_param_is_read_on_every_replay():
    ws = [tg.tensor(np.linspace(-1, 1, 4, dtype=np.float32), requires_grad=True) for _ in range(2)]

    def fn(w, m):
        loss = Masked.apply(w, d={"m": m}).sum()
        w.grad = None
        loss.backward()
        return loss
    cfn = tg.compile(fn)
    for i in range(6):
        m = np.arange(4, dtype=np.float32) * (i + 1)
        assert fn(ws[0], m).item() == cfn(ws[1], m).item()
        assert np.array_equal(ws[0].grad.array, ws[1].grad.array)


def test_the_graph_the_capturing_call_returned_can_still_be_swept():
    """Building the program lets go of what the hot ops saved, except where a graph still to be
    swept holds them: a forward compiled alone, its loss backpropagated outside, on the second call."""
    (m, _), _ = twins()
    cfn = tg.compile(lambda model, X, Y: F.cross_entropy(model(X), Y))
    for X, Y in batches(2, 8):
        m.l1.weight.grad = None
        cfn(m, X, Y).backward()
        assert m.l1.weight.grad is not None


def test_print_names_keyword_arguments_after_their_own_names():
    w = tg.tensor(np.ones(3, np.float32), requires_grad=True)

    def fn(b, a):
        return (w * b).sum() + a.sum()
    cfn = tg.compile(fn)
    for _ in range(3):
        cfn(b=np.ones(3, np.float32), a=np.ones((2, 5), np.float32))
    assert "for a (2, 5) float32, b (3,) float32" in str(cfn)

"""tg.compile: replay equals eager; guards re-capture or refuse; print lists the captured program."""
import re

import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import compile_ops, nn
from tinygrad_mm.nn import functional as F


class MLP(nn.Module):
    def __init__(self, seed=0):
        g = tg.Generator(seed)
        self.emb = nn.Embedding(11, 4, generator=g)
        self.l1 = nn.Linear(8, 16, generator=g)
        self.l2 = nn.Linear(16, 11, generator=g)

    def forward(self, x):
        return self.l2(self.l1(self.emb(x).reshape(x.shape[0], -1)).tanh())


def step(model, opt, X, Y):
    loss = F.cross_entropy(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def batches(n, b, seed=0):
    rng = np.random.default_rng(seed)
    return [(tg.tensor(rng.integers(0, 11, (b, 2))), tg.tensor(rng.integers(0, 11, b))) for _ in range(n)]


def twins(make_opt=lambda ps: tg.optim.SGD(ps, lr=0.1)):
    a, b = MLP(), MLP()
    return (a, make_opt(a.parameters())), (b, make_opt(b.parameters()))


def assert_same(ma, mb):
    for p, q in zip(ma.parameters(), mb.parameters()):
        assert np.array_equal(p.array, q.array)
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            assert np.array_equal(p.grad.array, q.grad.array)


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

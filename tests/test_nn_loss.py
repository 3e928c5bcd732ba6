"""Losses beyond the fused path: cross_entropy's every form, nll_loss, mse_loss and the loss modules, vs torch."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

import tinygrad_mm as tg
from tinygrad_mm import Tape, Tensor, nn
from tinygrad_mm.nn import functional as tF

from ops_helpers import check_grad, check_torch
from nn_helpers import DTYPES, rnd

REDUCTIONS = ["mean", "sum", "none"]


def targets(shape, c, seed=0, ignore=False):
    t = np.random.default_rng(seed).integers(0, c, size=shape)
    if ignore:
        t.reshape(-1)[::3] = -100
    return t


def loss_parity(ours, theirs, x, t, dtype, w=None, **kw):
    """check_torch for a loss of (input, target[, weight]) with the target (and weight) fixed."""
    tt = torch.from_numpy(t)
    wt = None if w is None else torch.from_numpy(w)
    wo = None if w is None else Tensor(w)
    target = t if t.dtype.kind != "f" else None
    if target is None:   # probability targets are differentiable inputs, as in torch
        return check_torch(lambda a, b: ours(a, b, weight=wo, **kw), lambda a, b: theirs(a, b, weight=wt, **kw),
                           [x.astype(dtype), t.astype(dtype)])
    return check_torch(lambda a: ours(a, t, weight=wo, **kw), lambda a: theirs(a, tt, weight=wt, **kw),
                       [x.astype(dtype)])


# -- nll_loss -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5,), (6, 5), (3, 5, 4), (2, 5, 3, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nll_loss_matches_torch(shape, reduction, weighted, dtype):
    c = shape[0] if len(shape) == 1 else shape[1]
    x = rnd(*shape, seed=1)
    t = targets(() if len(shape) == 1 else shape[:1] + shape[2:], c, seed=2, ignore=len(shape) > 1)
    w = np.random.default_rng(3).uniform(0.2, 2.0, c).astype(dtype) if weighted else None
    loss_parity(tF.nll_loss, F.nll_loss, x, np.asarray(t), dtype, w, reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_gradcheck(reduction):
    t = targets((3, 2), 4, seed=5, ignore=True)
    w = Tensor(np.array([0.5, 1.0, 2.0, 1.5]))
    check_grad(lambda x: tF.nll_loss(x, t, w, reduction=reduction), [rnd(3, 4, 2, seed=6)])
    check_grad(lambda x: tF.nll_loss(x, np.array(2), reduction=reduction), [rnd(4, seed=7)])


def test_nll_loss_all_ignored_and_errors():
    x = Tensor(rnd(3, 4), requires_grad=True)
    xt = torch.tensor(rnd(3, 4), requires_grad=True)
    t = np.full(3, -100)
    out, tout = tF.nll_loss(x, t), F.nll_loss(xt, torch.from_numpy(t))
    assert np.isnan(out.item()) and np.isnan(tout.item())
    out.backward()
    tout.backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())
    with Tape() as tape:
        with pytest.raises(IndexError, match="Target 4 is out of bounds"):
            tF.nll_loss(x, np.array([0, 4, 1]))
        with pytest.raises(IndexError, match="Target -2 is out of bounds"):
            tF.nll_loss(x, np.array([0, -2, 1]))
        with pytest.raises(ValueError, match=r"shape \(3,\)"):
            tF.nll_loss(x, np.array([0, 1]))
        with pytest.raises(TypeError, match="integer"):
            tF.nll_loss(x, np.array([0.0, 1.0, 2.0]))
        with pytest.raises(ValueError, match="all 4 classes"):
            tF.nll_loss(x, np.array([0, 1, 2]), weight=Tensor(np.ones(3)))
        with pytest.raises(ValueError, match="reduction"):
            tF.nll_loss(x, np.array([0, 1, 2]), reduction="avg")
        assert len(tape) == 0


# -- cross_entropy: the forms past the fused path ---------------------------------------------------
@pytest.mark.parametrize("shape", [(5,), (6, 5), (3, 5, 4), (2, 5, 3, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_class_indices_match_torch(shape, reduction, smoothing, weighted, dtype):
    c = shape[0] if len(shape) == 1 else shape[1]
    t = targets(() if len(shape) == 1 else shape[:1] + shape[2:], c, seed=2, ignore=len(shape) > 1)
    w = np.random.default_rng(3).uniform(0.2, 2.0, c).astype(dtype) if weighted else None
    loss_parity(tF.cross_entropy, F.cross_entropy, rnd(*shape, seed=1, scale=3), np.asarray(t), dtype, w,
                reduction=reduction, label_smoothing=smoothing)


@pytest.mark.parametrize("shape", [(5,), (6, 5), (3, 5, 4)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_probability_targets_match_torch(shape, reduction, smoothing, weighted, dtype):
    c = shape[0] if len(shape) == 1 else shape[1]
    p = np.random.default_rng(4).dirichlet(np.ones(c), size=int(np.prod(shape)) // c)   # rows sum to 1
    p = np.moveaxis(p.reshape((shape[0],) + shape[2:] + (c,)), -1, 1) if len(shape) > 1 else p[0]
    w = np.random.default_rng(3).uniform(0.2, 2.0, c).astype(dtype) if weighted else None
    loss_parity(tF.cross_entropy, F.cross_entropy, rnd(*shape, seed=1, scale=3), p, dtype, w,
                reduction=reduction, label_smoothing=smoothing)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_general_gradcheck(reduction):
    t = targets((3, 2), 4, seed=5, ignore=True)
    w = Tensor(np.array([0.5, 1.0, 2.0, 1.5]))
    check_grad(lambda x: tF.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.3), [rnd(3, 4, 2)])
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=3)
    check_grad(lambda x, q: tF.cross_entropy(x, q, w, reduction=reduction, label_smoothing=0.1),
               [rnd(3, 4, seed=1), p])


@given(n=st.integers(1, 6), c=st.integers(1, 7), d=st.integers(1, 3), seed=st.integers(0, 2**31),
       smoothing=st.sampled_from([0.0, 0.05, 0.5]), reduction=st.sampled_from(REDUCTIONS),
       weighted=st.booleans(), ignore=st.booleans())
def test_cross_entropy_hypothesis_nd_vs_torch(n, c, d, seed, smoothing, reduction, weighted, ignore):
    t = targets((n, d), c, seed=seed, ignore=ignore)
    if reduction == "mean" and (t == -100).all():
        t[0, 0] = 0
    w = np.random.default_rng(seed).uniform(0.2, 2.0, c) if weighted else None
    loss_parity(tF.cross_entropy, F.cross_entropy, rnd(n, c, d, seed=seed % 1000, scale=4), t, np.float64, w,
                reduction=reduction, label_smoothing=smoothing)


def test_cross_entropy_smoothing_ignores_masked_class_and_all_ignored():
    # an impossible (-inf) class inside an ignored row must not turn the smoothed loss into NaN
    x = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -1.0]])
    t = np.array([-100, 0])
    loss_parity(tF.cross_entropy, F.cross_entropy, x, t, np.float64, label_smoothing=0.1)
    out = tF.cross_entropy(Tensor(x), np.array([-100, -100]), label_smoothing=0.1)
    assert np.isnan(out.item()) and np.isnan(F.cross_entropy(torch.from_numpy(x), torch.tensor([-100, -100]),
                                                              label_smoothing=0.1).item())


def test_cross_entropy_dispatch_keeps_the_fused_path():
    x, y = Tensor(rnd(4, 3), requires_grad=True), np.array([0, 2, 1, 0])
    for target in (y, Tensor(y), y.tolist()):
        with Tape() as tape:
            loss = tF.cross_entropy(x, target)
        assert [e.name for e in tape.entries] == ["CrossEntropy"], loss
    with Tape() as tape:
        loss = tF.cross_entropy(x, y, label_smoothing=0.1)
    assert "CrossEntropy" not in [e.name for e in tape.entries]


def test_cross_entropy_general_errors():
    x = Tensor(rnd(3, 4), requires_grad=True)
    with Tape() as tape:
        with pytest.raises(TypeError, match="floating point type for target with class probabilities"):
            tF.cross_entropy(x, np.zeros((3, 4), np.int64))
        with pytest.raises(ValueError, match="ignore_index is not supported"):
            tF.cross_entropy(x, np.full((3, 4), 0.25), ignore_index=0)
        with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
            tF.cross_entropy(x, np.array([0, 1, 2]), label_smoothing=1.5)
        with pytest.raises(ValueError, match="Expected 1 or more dimensions"):
            tF.cross_entropy(Tensor(np.float64(1.0), requires_grad=True), np.array(0))
        with pytest.raises(ValueError, match=r"shape \(\)"):
            tF.cross_entropy(Tensor(rnd(4), requires_grad=True), np.array([1]))
        assert len(tape) == 0


def test_legacy_size_average_and_reduce_map_as_torch():
    x, t = rnd(5, 3), np.array([0, 1, 2, 1, 0])
    for size_average, reduce in [(None, False), (False, None), (True, True), (False, True)]:
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            ours = tF.cross_entropy(Tensor(x), t, size_average=size_average, reduce=reduce)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t), size_average=size_average,
                                     reduce=reduce)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


# -- mse_loss ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_loss_matches_torch(reduction, dtype):
    a, b = rnd(4, 3, seed=1, dtype=dtype), rnd(4, 3, seed=2, dtype=dtype)
    check_torch(lambda x, y: tF.mse_loss(x, y, reduction=reduction),
                lambda x, y: F.mse_loss(x, y, reduction=reduction), [a, b])
    w = np.random.default_rng(0).uniform(0.1, 1, (4, 3)).astype(dtype)
    check_torch(lambda x, y: tF.mse_loss(x, y, reduction=reduction, weight=Tensor(w)),
                lambda x, y: F.mse_loss(x, y, reduction=reduction, weight=torch.from_numpy(w)), [a, b])
    check_grad(lambda x, y: tF.mse_loss(x, y, reduction=reduction), [rnd(4, 3, seed=1), rnd(4, 3, seed=2)])


def test_mse_loss_broadcast_warns_as_torch():
    a, b = rnd(3, 1, seed=1), rnd(3, seed=2)
    with pytest.warns(UserWarning, match="different to the input size"):
        out = tF.mse_loss(Tensor(a), Tensor(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = F.mse_loss(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-12)
    with pytest.raises(ValueError, match="same size"):
        tF.mse_loss(Tensor(a), Tensor(a), weight=Tensor(b))


# -- modules ----------------------------------------------------------------------------------------
def test_loss_modules_match_torch():
    x, t = rnd(6, 4, 2, scale=2), targets((6, 2), 4, seed=1, ignore=True)
    w = np.array([0.5, 1.0, 2.0, 1.5])
    cases = [(nn.CrossEntropyLoss(Tensor(w), ignore_index=-100, reduction="sum", label_smoothing=0.2),
              torch.nn.CrossEntropyLoss(torch.from_numpy(w), reduction="sum", label_smoothing=0.2), x, t),
             (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), x[:, :, 0], np.array([0, 1, 2, 3, 0, 1])),
             (nn.NLLLoss(Tensor(w), reduction="none"), torch.nn.NLLLoss(torch.from_numpy(w), reduction="none"), x, t),
             (nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum"), x, rnd(6, 4, 2, seed=3))]
    for ours, theirs, a, b in cases:
        bt = torch.from_numpy(b)
        check_torch(lambda u: ours(u, b if b.dtype.kind != "f" else Tensor(b)), lambda u: theirs(u, bt), [a])
    assert "reduction='sum'" in repr(cases[0][0]) and repr(nn.MSELoss()) == "MSELoss()"
    assert list(cases[0][0].state_dict()) == list(cases[0][1].state_dict()) == ["weight"]
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    assert tg.nn.functional.cross_entropy is tF.cross_entropy

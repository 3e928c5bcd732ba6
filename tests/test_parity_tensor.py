"""Tensor facts and conversions as torch: .grad/.data are Tensors, retain_grad, item/tolist/bool,
conversions, sum(dtype=), comparisons, and the numpy-scalar construction bug."""
import numpy as np
import pytest
import torch

import tinygrad_mm as tg
from ops_helpers import randn


def both(program):
    return program(tg), program(torch)


def test_grad_and_data_are_tensors_and_array_is_raw():
    p = tg.randn(3, 4, requires_grad=True)
    (p * p).sum().backward()
    assert isinstance(p.grad, tg.Tensor) and isinstance(p.data, tg.Tensor)
    assert type(p.array) is np.ndarray and p.data.array is p.array
    before = p.detach().numpy().copy()
    lr = 0.1
    p.data += -lr * p.grad
    np.testing.assert_allclose(p.detach().numpy(), before - lr * 2 * before, rtol=1e-6)
    assert not p.data.requires_grad and p.requires_grad and p.is_leaf


def test_retain_grad_as_torch():
    def run(lib):
        x = lib.tensor(randn(3, 4, seed=1), requires_grad=True)
        h = x.tanh()
        h.retain_grad()
        y = h * h
        y.retain_grad()
        x.retain_grad()  # a leaf: a no-op
        (y.sum(0) * lib.arange(4)).sum().backward()
        return h.grad.numpy(), y.grad.numpy(), x.grad.numpy()
    for a, b in zip(*both(run)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_item_tolist_bool_as_torch():
    for f in [lambda lib: lib.tensor([[1.5]]).item(), lambda lib: lib.tensor([1, 2]).tolist(),
              lambda lib: lib.tensor(3).item(), lambda lib: bool(lib.tensor([0.0])), lambda lib: bool(lib.tensor(2)),
              lambda lib: lib.tensor([[True, False]]).tolist(), lambda lib: float(lib.tensor(2.5)),
              lambda lib: int(lib.tensor([7])), lambda lib: [1, 2, 3][lib.tensor(1)]]:
        ours, theirs = both(f)
        assert ours == theirs and type(ours) is type(theirs)
    for bad in [lambda lib: bool(lib.tensor([1.0, 2.0])), lambda lib: lib.tensor([1.0, 2.0]).item(),
                lambda lib: [1, 2][lib.tensor(1.0)]]:
        with pytest.raises((RuntimeError, TypeError)):
            bad(torch)
        with pytest.raises((RuntimeError, TypeError)):
            bad(tg)


@pytest.mark.parametrize("conv", ["float", "double", "long", "int", "bool", "half"])
def test_conversions_as_torch(conv):
    x = np.array([[-1.5, 0.0, 2.7]])
    ours, theirs = getattr(tg.tensor(x), conv)(), getattr(torch.tensor(x), conv)()
    assert ours.dtype == theirs.numpy().dtype and ours.tolist() == theirs.tolist()


def test_float_conversion_keeps_the_gradient():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x.double() * 3
        y.float().sum().backward()
        return x.grad.numpy(), str(y.dtype)[-7:]
    (a, da), (b, db) = both(run)
    np.testing.assert_array_equal(a, b)
    assert da == db


@pytest.mark.parametrize("dtype", [None, "float64", "int64", "float32"])
def test_sum_dtype_as_torch(dtype):
    for x in [np.array([[True, False], [True, True]]), np.array([[1, 2], [3, 4]], np.int32), np.array([1.5, 2.5])]:
        ours = tg.tensor(x).sum(dtype=dtype and getattr(tg, dtype))
        theirs = torch.tensor(x).sum(dtype=dtype and getattr(torch, dtype))
        assert ours.dtype == theirs.numpy().dtype and ours.item() == theirs.item()


def test_comparisons_broadcast_and_dtypes_as_torch():
    a, b = randn(3, 1, seed=2), randn(4, seed=3)
    for f in [lambda x, y: x < y, lambda x, y: x == y, lambda x, y: x >= 0, lambda x, y: 0.5 > x,
              lambda x, y: x.long() != y.long(), lambda x, y: (x > 0) == (y > 0)]:
        ours, theirs = f(tg.tensor(a), tg.tensor(b)), f(torch.tensor(a), torch.tensor(b))
        assert ours.dtype == np.bool_ and ours.shape == tuple(theirs.shape) and ours.tolist() == theirs.tolist()
    assert (tg.tensor([1.0]) == None) is False  # noqa: E711 -- torch's answer too
    assert (torch.tensor([1.0]) == None) is False  # noqa: E711


def test_numpy_scalars_make_array_tensors():
    """The regroup's bug: tg.tensor(np.float64(2.0)) kept a numpy scalar, and the next op raised
    "input 0 is on cpu but input 1 is on cpu"."""
    for v in [np.float64(2.0), np.float32(1.5), np.int64(3), np.bool_(True)]:
        t = tg.tensor(v)
        assert type(t.array) is np.ndarray and t.shape == () and t.dtype == np.asarray(v).dtype
        assert t.dtype == torch.tensor(v).numpy().dtype
        assert (t + tg.tensor([1, 1])).tolist() == (torch.tensor(v) + torch.tensor([1, 1])).tolist()
    w = tg.tensor(np.float64(2.0), requires_grad=True)
    (w * tg.tensor([1.0, 2.0], dtype=tg.float64)).sum().backward()
    assert w.grad.item() == 3.0


def test_transpose_and_dims_of_0d():
    for f in [lambda t: t.transpose(0, -1), lambda t: t.t(), lambda t: t.T, lambda t: t.dim(), lambda t: t.numel()]:
        ours, theirs = both(lambda lib: f(lib.tensor(2.0)))
        assert (ours.tolist(), ours.shape) == (theirs.tolist(), tuple(theirs.shape)) if hasattr(ours, "shape") \
            else ours == theirs
    with pytest.raises(IndexError, match="Dimension out of range"):
        tg.tensor(2.0).transpose(0, 1)


def test_repr_as_torch():
    """Numbers print as torch prints them (4 decimals, scientific for wide ranges, whole floats as 2.)."""
    for v in [[0.873012, 1.5], 3.3377387, [1e-5, 1.0], [1, 2], [True], [True, False], [[2.0, 4.0], [6.0, 8.0]],
              [float("nan"), 1.25, float("inf")], [-1.5, 200.25], [0.0, 0.0], [1e9, 1.0], [[0.1234567, -2.5], [3.0, 4.0]],
              []]:
        assert repr(tg.tensor(v)) == repr(torch.tensor(v))
    assert repr(tg.tensor([1.5], dtype=tg.float64)) == repr(torch.tensor([1.5], dtype=torch.float64))
    assert repr(tg.tensor([2.0], requires_grad=True)) == repr(torch.tensor([2.0], requires_grad=True))


def test_zeros_like_and_ones_like_take_dtype_as_torch():
    import torch
    x = tg.tensor([1.5, 2.5])
    for ours, theirs in ((tg.zeros_like(x, dtype=tg.int64), torch.zeros_like(torch.tensor([1.5, 2.5]), dtype=torch.int64)),
                         (tg.ones_like(x, dtype=tg.float64), torch.ones_like(torch.tensor([1.5, 2.5]), dtype=torch.float64)),
                         (tg.ones_like(x), torch.ones_like(torch.tensor([1.5, 2.5])))):
        assert str(ours.dtype) == str(theirs.dtype) and ours.tolist() == theirs.tolist()

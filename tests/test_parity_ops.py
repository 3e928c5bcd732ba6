"""The ops added for PyTorch parity: gradcheck and torch (values, gradients, shapes, dtypes, errors)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import tinygrad_mm as tg
from tinygrad_mm import Tensor
from ops_helpers import away_from_zero, check_grad, check_torch, positive, randn

# name: (ours, torch's, input maker) -- the same expression works on both libraries
UNARY = {
    "abs": (lambda x: x.abs(), away_from_zero),
    "sqrt": (lambda x: x.sqrt(), positive),
    "sigmoid": (lambda x: x.sigmoid(), randn),
    "sin": (lambda x: x.sin(), randn),
    "cos": (lambda x: x.cos(), randn),
    "log2": (lambda x: x.log2(), positive),
    "log10": (lambda x: x.log10(), positive),
    "exp2": (lambda x: x.exp2(), randn),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), away_from_zero),
    "clamp_min": (lambda x: x.clamp(min=0.3), away_from_zero),
    "clamp_max": (lambda x: x.clamp(max=-0.3), away_from_zero),
    "python_abs": (lambda x: abs(x), away_from_zero),
}


@pytest.mark.parametrize("shape", [(3, 4), (), (5,)], ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary_gradcheck(name, shape):
    f, make = UNARY[name]
    check_grad(f, [make(*shape, seed=1)], mode="full")


@pytest.mark.parametrize("shape", [(3, 4), (), (0, 2)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", UNARY)
def test_unary_torch(name, dtype, shape, device):
    f, make = UNARY[name]
    check_torch(f, f, [make(*shape, seed=2, dtype=dtype)], device=device)


@pytest.mark.parametrize("name", ["sqrt", "sigmoid", "sin", "cos", "log2", "log10", "exp2", "abs"])
def test_unary_on_integers_as_torch(name):
    """Integer inputs: float32 results (abs keeps int64), as torch."""
    f = UNARY[name][0]
    x = np.array([1, 2, 3, 4])
    out, ref = f(tg.tensor(x)), f(torch.tensor(x))
    assert out.dtype == ref.numpy().dtype
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1.3e-6)


def test_sigmoid_extremes():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], np.float32)
    check_torch(lambda t: t.sigmoid(), lambda t: t.sigmoid(), [x])


def test_abs_and_clamp_at_kinks_as_torch():
    """abs'(0) = 0; clamp passes the gradient at the bounds themselves (torch's clamp_backward)."""
    x = np.array([-1.0, -0.5, 0.0, 0.5, 0.7, 1.0])
    for f in [lambda t: t.abs(), lambda t: t.clamp(-0.5, 0.7), lambda t: t.clamp(min=0.0),
              lambda t: t.clamp(max=0.0), lambda t: t.clamp(0.7, -0.5), lambda t: t.clamp(0, 1)]:
        check_torch(f, f, [x])


def test_clamp_errors_and_dtypes():
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max'"):
        tg.zeros(3).clamp()
    with pytest.raises(TypeError, match="clamp bounds must be numbers"):
        tg.zeros(3).clamp(min=tg.zeros(3))
    for lo in [0, 0.5]:
        out, ref = tg.tensor([1, 2, 3]).clamp(lo, 2), torch.tensor([1, 2, 3]).clamp(lo, 2)
        assert out.dtype == ref.numpy().dtype and out.tolist() == ref.tolist()


# -- reductions -----------------------------------------------------------------------------------
SPREAD = [  # keyword sets valid for both torch and us
    {}, {"dim": 0}, {"dim": 1, "keepdim": True}, {"dim": (0, 1)}, {"dim": -1, "unbiased": False},
    {"dim": 0, "correction": 0}, {"dim": (1,), "correction": 2, "keepdim": True}, {"unbiased": True},
]


@pytest.mark.parametrize("kw", SPREAD, ids=str)
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std(op, kw, device):
    f = lambda t: getattr(t, op)(**kw)  # noqa: E731
    check_grad(f, [randn(4, 5, seed=3)])
    for dtype in (np.float64, np.float32):
        check_torch(f, f, [randn(4, 5, seed=4, dtype=dtype)], device=device)


def test_std_is_unbiased_like_torch_and_grad_std():
    """p.grad.std() in the lectures: Bessel's correction (numpy's std would divide by n)."""
    w = tg.randn(6, 7, requires_grad=True)
    (w * w).sum().backward()
    ref = torch.tensor(w.grad.numpy()).std()
    np.testing.assert_allclose(w.grad.std().item(), ref.item(), rtol=1e-6)
    assert w.std(False).item() == pytest.approx(torch.tensor(w.detach().numpy()).std(False).item(), rel=1e-6)


def test_std_of_constant_and_single_element():
    """std of equal values is 0 with gradient 0 (masked, as torch); one element: nan (n - 1 = 0)."""
    f = lambda t: t.std()  # noqa: E731
    check_torch(f, f, [np.ones((3, 2))])
    out = tg.tensor([2.0]).std()
    assert np.isnan(out.item()) and np.isnan(torch.tensor([2.0]).std().item())
    g = lambda t: t.var(0)  # noqa: E731
    check_torch(g, g, [np.ones((1, 3))])


def test_var_refuses_integers_and_both_flags():
    with pytest.raises(RuntimeError, match="floating point"):
        tg.tensor([1, 2]).var()
    with pytest.raises(TypeError, match="unbiased or correction"):
        tg.zeros(3).var(unbiased=True, correction=1)


NORMS = [{}, {"p": 2}, {"p": 1}, {"p": 3}, {"p": 1.5}, {"p": float("inf")}, {"dim": 1}, {"p": 1, "dim": 0},
         {"dim": (0, 1), "keepdim": True}, {"p": 4, "dim": -1, "keepdim": True}, {"p": "fro"}]


@pytest.mark.parametrize("kw", NORMS, ids=str)
def test_norm(kw, device):
    f = lambda t: t.norm(**kw)  # noqa: E731
    check_grad(f, [away_from_zero(3, 4, seed=5)])
    for dtype in (np.float64, np.float32):
        check_torch(f, f, [away_from_zero(3, 4, seed=6, dtype=dtype)], device=device)


def test_norm_at_zero_has_zero_gradient():
    for p in [2, 1, 3, float("inf")]:
        f = lambda t: t.norm(p, dim=1)  # noqa: E731
        check_torch(f, f, [np.array([[0.0, 0.0], [1.0, -2.0]])])
    with pytest.raises(ValueError, match="p=0.5 is not supported"):
        tg.ones(3).norm(0.5)


@pytest.mark.parametrize("p", [2, 1.5, 3])
def test_a_nan_gradient_into_a_zero_norm_comes_through_as_in_torch(p):
    """The std of one number has a NaN gradient. torch masks x / ||x|| at a zero norm for p = 2
    and then multiplies by that gradient, so the NaN comes through; for other p it masks the
    gradient too, giving 0 (Hypothesis found the p = 2 case)."""
    grads = []
    for lib in (torch, tg):
        x = lib.tensor([[0.0, 0.0]], dtype=lib.float64, requires_grad=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            x.norm(p, dim=1).std().backward()
        grads.append(np.array(x.grad.tolist()))
    np.testing.assert_array_equal(grads[1], grads[0])
    assert np.isnan(grads[0]).all() == (p == 2)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim_ties_pick_the_first(op, dim, keepdim):
    """Ties: the index is the first one and the gradient goes there only, as torch."""
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0], [5.0, -1.0, -1.0]])
    out = check_torch(lambda t: getattr(t, op)(dim, keepdim).values,
                      lambda t: getattr(t, op)(dim, keepdim).values, [x])
    ours = getattr(tg.tensor(x), op)(dim, keepdim).indices
    theirs = getattr(torch.tensor(x), op)(dim, keepdim).indices
    assert ours.tolist() == theirs.tolist() and ours.dtype == np.int64 and out
    arg = "arg" + op
    assert getattr(tg.tensor(x), arg)(dim, keepdim).tolist() == getattr(torch.tensor(x), arg)(dim, keepdim).tolist()
    assert getattr(tg.tensor(x), arg)().item() == getattr(torch.tensor(x), arg)().item()


@pytest.mark.parametrize("op", ["amax", "amin", "max", "min"])
def test_whole_max_min_ties_share_the_gradient(op):
    x = np.array([[1.0, 3.0, 3.0], [-1.0, 2.0, -1.0]])
    for f in [lambda t: getattr(t, op)(), lambda t: getattr(t, "a" + op.lstrip("a"))(dim=(0, 1))]:
        check_torch(f, f, [x])
    check_grad(lambda t: t.amin(1), [randn(3, 4, seed=7)])


def test_argmax_shapes_and_errors():
    x = randn(2, 3)
    for kw in [{}, {"keepdim": True}, {"dim": 0, "keepdim": True}]:
        assert tg.tensor(x).argmax(**kw).shape == tuple(torch.tensor(x).argmax(**kw).shape)
    assert tg.tensor(2.0).argmax(0).item() == 0 and tg.tensor(2.0).max(0).indices.item() == 0
    with pytest.raises(IndexError, match="non-zero size"):
        tg.zeros(0, 3).max(0)
    with pytest.raises(RuntimeError, match="numel"):
        tg.zeros(0).argmax()


@given(arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=4),
              elements=st.sampled_from([-1.0, 0.0, 1.0, 2.0])), st.data())
def test_max_min_dim_hypothesis(x, data):
    """Small integer-valued floats make ties common; indices, values and gradients match torch."""
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    keep = data.draw(st.booleans())
    op = data.draw(st.sampled_from(["max", "min"]))
    if x.shape[dim] == 0:
        return
    check_torch(lambda t: getattr(t, op)(dim, keep)[0], lambda t: getattr(t, op)(dim, keep)[0], [x])
    assert getattr(tg.tensor(x), op)(dim, keep)[1].tolist() == getattr(torch.tensor(x), op)(dim, keep)[1].tolist()


# -- shape and selection ----------------------------------------------------------------------------
SHAPE = {
    "squeeze": lambda t: t.squeeze(),
    "squeeze1": lambda t: t.squeeze(1),
    "squeeze0_noop": lambda t: t.squeeze(0),
    "squeeze_tuple": lambda t: t.squeeze((1, 3)),
    "unsqueeze": lambda t: t.unsqueeze(0),
    "unsqueeze_neg": lambda t: t.unsqueeze(-1),
    "expand": lambda t: t.expand(2, 3, 2, 4, 5),
    "expand_new_dims": lambda t: t.expand(6, -1, 3, -1, 2),
    "repeat": lambda t: t.repeat(1, 2, 3, 1, 2),
    "repeat_more_dims": lambda t: t.repeat(2, 1, 1, 1, 1, 1),
    "split": lambda t: t.split(2, dim=2)[1],
    "split_sizes": lambda t: t.split([1, 3], dim=2)[1] * 2 + t.split([1, 3], dim=2)[0].sum(),
    "chunk": lambda t: t.chunk(2, 2)[-1],
    "chunk_sum": lambda t: sum(c.sum() for c in t.chunk(3, 0)),
    "clone": lambda t: t.clone() * t,
    "contiguous": lambda t: t.transpose(0, 2).contiguous(),
    "mT": lambda t: t.mT,
    "flatten": lambda t: t.flatten(1, 2),
    "flatten_all": lambda t: t.flatten(),
    "masked_fill": lambda t: t.masked_fill(t > 0, -1.5),
    "where": lambda t: torch_where(t > 0, t, t * 2),
}


def torch_where(c, a, b):
    return tg.where(c, a, b) if isinstance(a, Tensor) else torch.where(c, a, b)


@pytest.mark.parametrize("name", SHAPE)
def test_shape_ops(name, device):
    f = SHAPE[name]
    x = randn(3, 1, 4, 1, seed=8)
    check_grad(f, [x])
    for dtype in (np.float64, np.float32):
        check_torch(f, f, [x.astype(dtype)], device=device)


def test_t_and_zero_dims():
    for shape in [(), (3,), (2, 3)]:
        f = lambda t: t.t() * 1  # noqa: E731
        check_torch(f, f, [randn(*shape)])
    with pytest.raises(RuntimeError, match="<= 2 dimensions"):
        tg.zeros(2, 3, 4).t()
    for f in [lambda t: t.transpose(0, -1), lambda t: t.flatten(), lambda t: t.squeeze(), lambda t: t.unsqueeze(0)]:
        check_torch(f, f, [np.array(2.0)])
    for shape, args in [((2, 0, 3), (1,)), ((0, 3), ()), ((2, 0, 3), (0, 1)), ((3, 0), (1, 1))]:
        assert tg.zeros(*shape).flatten(*args).shape == tuple(torch.zeros(*shape).flatten(*args).shape)


def test_expand_repeat_errors():
    with pytest.raises(RuntimeError, match="must match the existing size"):
        tg.zeros(2, 3).expand(2, 4)
    with pytest.raises(RuntimeError, match="number of sizes provided"):
        tg.zeros(2, 3).expand(3)
    with pytest.raises(RuntimeError, match="can not be smaller"):
        tg.zeros(2, 3).repeat(2)
    with pytest.raises(RuntimeError, match="sum exactly to 3"):
        tg.zeros(3).split([1, 1])
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        tg.zeros(3).masked_fill(tg.zeros(3) > 0, tg.zeros(1))


def test_split_chunk_pieces_as_torch():
    x = np.arange(10.0)
    for f in [lambda t: t.split(3), lambda t: t.chunk(3), lambda t: t.chunk(4), lambda t: t.split([2, 8]),
              lambda t: t.chunk(20), lambda t: t[:0].chunk(2), lambda t: t[:0].split(2)]:
        ours, theirs = f(tg.tensor(x)), f(torch.tensor(x))
        assert [p.tolist() for p in ours] == [p.tolist() for p in theirs]


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(dim, device):
    x = randn(3, 4, seed=9)
    idx = np.random.default_rng(10).integers(0, x.shape[dim], (2, 3))  # smaller than x off the axis, repeats
    f = lambda t: t.gather(dim, tg.tensor(idx, device=device))  # noqa: E731
    g = lambda t: t.gather(dim, torch.tensor(idx))  # noqa: E731
    check_torch(f, g, [x], device=device)
    check_grad(lambda t: t.gather(dim, tg.tensor(idx)), [x])


def test_gather_errors_as_torch():
    x = tg.zeros(3, 4)
    with pytest.raises(IndexError, match="out of range"):
        x.gather(1, tg.tensor([[4]]))
    with pytest.raises(IndexError, match="out of range"):
        x.gather(1, tg.tensor([[-1]]))  # torch refuses negatives in gather too
    with pytest.raises(RuntimeError, match="int64"):
        x.gather(1, tg.tensor([[1]], dtype=np.int32))
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        x.gather(1, tg.tensor([1]))


def test_masked_fill_dtypes_and_broadcast():
    x = np.arange(6).reshape(2, 3)
    m = np.array([True, False, True])
    for v in [7, 2.5, True]:
        out, ref = tg.tensor(x).masked_fill(tg.tensor(m), v), torch.tensor(x).masked_fill(torch.tensor(m), v)
        assert out.dtype == ref.numpy().dtype and out.tolist() == ref.tolist()
    f = lambda t: t.masked_fill(t < 0, 0.0).sum(0)  # noqa: E731
    check_torch(f, f, [randn(4, 3)])


def test_new_tensors_and_type_as():
    for f in [lambda t, lib: t.new_zeros(3, 2), lambda t, lib: t.new_ones((2,)), lambda t, lib: t.new_full((1, 2), 5),
              lambda t, lib: t.new_tensor([1, 2]), lambda t, lib: t.type_as(t.long()),
              lambda t, lib: t.new_zeros(3, dtype=lib.int64)]:
        ours, theirs = f(tg.zeros(2, dtype=tg.float64), tg), f(torch.zeros(2, dtype=torch.float64), torch)
        assert ours.shape == tuple(theirs.shape) and ours.dtype == theirs.numpy().dtype
        assert ours.tolist() == theirs.tolist()


def test_numel_dim_and_friends():
    x = tg.zeros(2, 3, 4)
    assert x.nelement() == x.numel() == 24 and x.dim() == 3 and tg.numel(x) == 24
    p = [tg.randn(27, 10), tg.randn(30, 200), tg.randn(200)]
    assert sum(t.nelement() for t in p) == 270 + 6000 + 200


# -- powers: torch's kernel shortcuts, bit for bit, and the tensor exponent at 0 -------------------
SHORTCUTS = [0, 0.5, -0.5, -1, 2, 3, -2]  # torch's pow kernel computes these exactly (sqrt, rsqrt, x*x...)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", SHORTCUTS + [1.5, -1.5, 4])
def test_scalar_powers(p, dtype):
    """Bit for bit where torch takes a shortcut (forward; and backward when p - 1 is one too); elsewhere
    both call a vectorized pow() whose last bit differs between libms: within tolerance."""
    x0 = np.array([0.0, 2.0, 3.7, 0.3, 1e-3, 12.5], dtype)
    with np.errstate(all="ignore"):
        out, ref = check_torch(lambda t: t ** p, lambda t: t ** p, [x0])
        x, tx = tg.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
        (x ** p).sum().backward()
        (tx ** p).sum().backward()
    # torch's float64 sqrt is MKL's, which on some CPUs (an AVX-512 Xeon here) is one ulp off the
    # correctly rounded sqrt numpy computes (sqrt(2): ...095, not ...0951); where this process's
    # torch does that, the exponents computed by sqrt (0.5, -0.5) match torch's formula evaluated
    # with a correctly rounded sqrt bit for bit, and torch itself within that one ulp
    sqrt_exact = np.array_equal(torch.sqrt(torch.tensor(x0)).numpy(), np.sqrt(x0))
    root = {0.5: np.sqrt(x0), -0.5: 1 / np.sqrt(x0)}  # torch's sqrt and rsqrt shortcuts, rounded correctly

    def same(ours, theirs, q, scale=1):
        if sqrt_exact or q not in root:
            np.testing.assert_array_equal(ours, theirs)
        else:
            np.testing.assert_array_equal(ours, np.ones_like(x0) * (scale * root[q]))  # g * (p * x ** (p - 1))
            np.testing.assert_array_max_ulp(ours, theirs, maxulp=1)

    if p in SHORTCUTS:
        same(out.detach().numpy(), ref.detach().numpy(), p)
    if p - 1 in SHORTCUTS + [1]:
        same(x.grad.numpy(), tx.grad.numpy(), p - 1, p)


def test_tensor_exponent_gradients_at_zero_as_torch():
    a0 = np.array([0.0, 0.0, 0.0, 2.0, -1.5, 0.0, 3.7])
    b0 = np.array([0.0, 1.0, 2.0, 0.0, 2.0, -1.0, 0.5])
    with np.errstate(all="ignore"):
        check_torch(lambda a, b: a ** b, lambda a, b: a ** b, [a0, b0])
        check_torch(lambda x: 2 ** x, lambda x: 2 ** x, [a0])
        check_torch(lambda x: 0.5 ** x * x ** 2, lambda x: 0.5 ** x * x ** 2, [a0])
    check_grad(lambda a, b: a ** b, [positive(3, 4, seed=11), randn(3, 4, seed=12)])
    check_grad(lambda x: 2 ** x, [randn(5, seed=13)])


# |x| < 1e-100 squares to 0 in float64; torch then sometimes takes |x| for a one-element norm, sometimes not
@given(arrays(np.float64, array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
              elements=st.floats(-3, 3).map(lambda v: 0.0 if abs(v) < 1e-100 else v)), st.data())
def test_reductions_hypothesis(x, data):
    """var/std/norm/amin/amax over random shapes (0-d and size-0 included), dims and keepdim, vs torch."""
    nd = max(x.ndim, 1)
    dims = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                               st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple)))
    keep = data.draw(st.booleans())
    op = data.draw(st.sampled_from(["var", "std", "norm", "amin", "amax", "var0", "norm1"]))
    kw = {"keepdim": keep} if dims is None and op in ("amin", "amax") else {"dim": dims, "keepdim": keep}
    f = {"var": lambda t: t.var(**kw), "std": lambda t: t.std(**kw), "norm": lambda t: t.norm(2, **kw),
         "amin": lambda t: t.amin(**{k: v for k, v in kw.items() if v is not None}),
         "amax": lambda t: t.amax(**{k: v for k, v in kw.items() if v is not None}),
         "var0": lambda t: t.var(**kw, correction=0), "norm1": lambda t: t.norm(1, **kw)}[op]
    theirs_raises = False
    try:
        f(torch.tensor(x))
    except (RuntimeError, IndexError):
        theirs_raises = True
    if theirs_raises:
        with pytest.raises((RuntimeError, IndexError, ValueError)):
            f(tg.tensor(x))
        return
    with np.errstate(all="ignore"):
        check_torch(f, f, [x])

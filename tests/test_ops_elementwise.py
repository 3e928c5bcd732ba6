"""Elementwise ops, matmul and Linear: gradcheck, torch parity (values and gradients), dtypes, errors."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays, mutually_broadcastable_shapes

from tinygrad_mm import Tensor, compare_with_torch, ops
from ops_helpers import away_from_zero, check_grad, check_torch, positive, randn

# -- binary elementwise ---------------------------------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b),
    "sub": (lambda a, b: a - b),
    "mul": (lambda a, b: a * b),
    "div": (lambda a, b: a / b),
}
# (shape of a, shape of b): equal, broadcast both ways, a 0-d operand, size-1 dims in the middle
BINARY_SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3)),
                 ((2, 1, 3), (4, 1)), ((1,), (5,))]


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary_gradcheck(name, shapes):
    a, b = randn(*shapes[0], seed=1), positive(*shapes[1], seed=2)  # b > 0 keeps div well-conditioned
    check_grad(BINARY[name], [a, b])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary_torch(name, shapes, dtype, device):
    a, b = randn(*shapes[0], seed=3, dtype=dtype), positive(*shapes[1], seed=4, dtype=dtype)
    check_torch(BINARY[name], BINARY[name], [a, b], device=device)


@pytest.mark.parametrize("name", BINARY)
def test_binary_same_tensor_twice(name, device):
    """x op x: both uses of x must accumulate into one gradient."""
    x = positive(3, 4, seed=5)
    check_torch(lambda t: BINARY[name](t, t), lambda t: BINARY[name](t, t), [x], device=device)
    check_grad(lambda t: BINARY[name](t, t), [x])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("expr", [lambda x: 2.0 - x, lambda x: 3 / x, lambda x: 2 + x, lambda x: 0.5 * x,
                                  lambda x: x - 1, lambda x: x / 4],
                         ids=["rsub", "rdiv", "radd", "rmul", "sub", "div"])
def test_python_constants(expr, dtype, device):
    """Reflected ops with Python numbers keep the tensor's dtype (no upcast to float64)."""
    check_torch(expr, expr, [positive(2, 3, seed=6, dtype=dtype)], device=device)


def test_neg_gradcheck():
    check_grad(lambda x: -x, [randn(3, 4)], mode="full")


@pytest.mark.parametrize("name", BINARY)
def test_binary_full_jacobian(name):
    check_grad(BINARY[name], [randn(2, 3), positive(3)], mode="full")


def test_temporaries_keep_their_gradient():
    """Unnamed intermediates (each held only by the next op's entry) must survive until swept."""
    check_grad(lambda a, b: a * b / (a + 3.0), [randn(2, 3), positive(3)], mode="full")
    check_grad(lambda x: (x.tanh() * x.exp()).relu() @ x.T, [away_from_zero(8, 8)], mode="fast")
    f = lambda x: 0.5 * x - x / 4 + (x * 3).exp() * 0  # noqa: E731
    check_torch(f, f, [randn(3)])


# binary ops on random mutually-broadcastable shapes, including size-1 and empty dims
@st.composite
def broadcast_pair(draw, dtype=np.float64):
    shapes = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3))
    sa, sb = shapes.input_shapes
    a = draw(arrays(dtype, sa, elements=st.floats(-3, 3, width=np.dtype(dtype).itemsize * 8)))
    b = draw(arrays(dtype, sb, elements=st.floats(0.5, 3, width=np.dtype(dtype).itemsize * 8)))
    sign = draw(arrays(dtype, sb, elements=st.sampled_from([-1.0, 1.0])))
    return a, b * sign  # |b| >= 0.5, either sign


@pytest.mark.parametrize("name", BINARY)
@given(pair=broadcast_pair())
def test_binary_broadcast_hypothesis(name, pair):
    a, b = pair
    check_torch(BINARY[name], BINARY[name], [a, b])  # asserts each grad has its input's shape
    if a.size and b.size:
        check_grad(BINARY[name], [a, b])


@given(pair=broadcast_pair(np.float32))
def test_binary_broadcast_hypothesis_float32(pair):
    a, b = pair
    for f in BINARY.values():
        check_torch(f, f, [a, b])


# -- unary elementwise ----------------------------------------------------------------------------
UNARY = {  # name: (ours, torch, input maker)
    "exp": (lambda x: x.exp(), torch.exp, randn),
    "log": (lambda x: x.log(), torch.log, positive),
    "tanh": (lambda x: x.tanh(), torch.tanh, randn),
    "relu": (lambda x: x.relu(), torch.relu, away_from_zero),
    "neg": (lambda x: -x, torch.neg, randn),
}


@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary_gradcheck(name, shape):
    ours, _, make = UNARY[name]
    check_grad(ours, [make(*shape, seed=7)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", UNARY)
def test_unary_torch(name, dtype, device):
    ours, theirs, make = UNARY[name]
    check_torch(ours, theirs, [make(3, 4, seed=8, dtype=dtype)], device=device)


def test_matmul_fast_mode_larger():
    """mode="fast": a few random directions instead of perturbing 2 x 4096 entries."""
    check_grad(lambda a, b: a @ b, [randn(64, 64, seed=9), randn(64, 64, seed=10)], mode="fast")


def test_relu_infinities_and_zero():
    """relu(-inf) is 0 (not -inf * 0 = nan), relu(-1) is +0.0, and an inf upstream gradient
    does not leak into entries where relu is flat (as torch)."""
    x = np.array([-np.inf, -1.0, 0.0, 2.0, np.inf])
    out, _ = check_torch(lambda t: t.relu(), torch.relu, [x])
    assert not np.signbit(out.detach().numpy()).any()
    t = Tensor(x, requires_grad=True)
    t.relu().backward(np.array([np.inf, np.nan, 1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(t.grad, [0.0, 0.0, 0.0, 2.0, 3.0])


# -- pow ----------------------------------------------------------------------------------------
EXPONENTS = [2, 3, 1, -1, -2.5, 0.5, 1 / 3, 0]


@pytest.mark.parametrize("p", EXPONENTS)
def test_pow_gradcheck(p):
    check_grad(lambda x: x ** p, [positive(3, 4, seed=10)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", EXPONENTS)
def test_pow_torch(p, dtype, device):
    check_torch(lambda x: x ** p, lambda x: x ** p, [positive(3, 4, seed=11, dtype=dtype)], device=device)


@pytest.mark.parametrize("p", [2, 3])
def test_pow_integer_exponent_negative_base(p):
    check_grad(lambda x: x ** p, [randn(6, seed=12)])
    check_torch(lambda x: x ** p, lambda x: x ** p, [randn(6, seed=12)])


def test_pow_zero_exponent_at_zero():
    """d(x^0)/dx is 0 everywhere, also at x = 0 (0 * 0^-1 would be nan), as torch."""
    check_torch(lambda x: x ** 0, lambda x: x ** 0, [np.array([0.0, 1.0, -2.0])])


@pytest.mark.parametrize("exponent", [False, True])
def test_pow_bool_exponent_at_zero_as_torch(exponent):
    """torch takes a Python bool exponent as a number, but its zero-exponent shortcut misses False:
    d(x ** False)/dx is 0 * x^-1, NaN at x = 0 (Hypothesis found this one)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch makes that NaN silently
        check_torch(lambda x: x ** exponent, lambda x: x ** exponent, [np.array([0.0, 1.0, -2.0])])


def test_pow_int_tensor():
    t = Tensor([1, 2, 3])
    assert (t ** 2).dtype == np.int64 and (t ** 2).tolist() == [1, 4, 9]
    assert (t ** 0.5).dtype == np.float32  # as torch: a float exponent makes a float result
    np.testing.assert_allclose((t ** 0.5).tolist(), np.sqrt([1, 2, 3]), rtol=1e-6)
    assert (Tensor([2.0]) ** Tensor([3.0])).tolist() == [8.0]


# -- matmul -----------------------------------------------------------------------------------------
MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((1, 3, 4), (2, 4, 5)),
                 ((3, 4), (2, 4, 5))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_gradcheck(shapes):
    check_grad(lambda a, b: a @ b, [randn(*shapes[0], seed=13), randn(*shapes[1], seed=14)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_torch(shapes, dtype, device):
    a, b = randn(*shapes[0], seed=15, dtype=dtype), randn(*shapes[1], seed=16, dtype=dtype)
    check_torch(lambda x, y: x @ y, torch.matmul, [a, b], device=device)


def test_matmul_full_jacobian_and_empty_inner():
    check_grad(lambda a, b: a @ b, [randn(2, 3), randn(3, 2)], mode="full")
    check_torch(lambda a, b: a @ b, torch.matmul, [randn(2, 0), randn(0, 3)])  # k = 0: zeros out


def test_matmul_with_numpy_operand():
    w = randn(3, 2, seed=17)
    check_torch(lambda x: x @ w, lambda x: x @ torch.from_numpy(w), [randn(4, 3)])
    check_torch(lambda x: w.T @ x, lambda x: torch.from_numpy(w.T.copy()) @ x, [randn(3, 5)])


# -- Linear (x @ w.T + b in one tape entry) ------------------------------------------------------------
def _linear(x, w, b=None):
    return ops.Affine.apply(x, w) if b is None else ops.Affine.apply(x, w, b)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xshape", [(4, 3), (2, 4, 3), (3,)], ids=str)
def test_linear_gradcheck(xshape, bias):
    arrays_ = [randn(*xshape, seed=18), randn(5, 3, seed=19)] + ([randn(5, seed=20)] if bias else [])
    check_grad(_linear, arrays_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xshape", [(4, 3), (2, 4, 3), (3,)], ids=str)
def test_linear_torch(xshape, bias, dtype, device):
    arrays_ = [randn(*xshape, seed=21, dtype=dtype), randn(5, 3, seed=22, dtype=dtype)]
    arrays_ += [randn(5, seed=23, dtype=dtype)] if bias else []
    check_torch(_linear, torch.nn.functional.linear, arrays_, device=device)


def test_linear_records_one_entry():
    from tinygrad_mm import Tape
    x, w, b = (Tensor(randn(*s), requires_grad=True) for s in [(4, 3), (5, 3), (5,)])
    with Tape() as tape:
        out = _linear(x, w, b)  # noqa: F841 -- the tape holds entries weakly: keep the output alive
    assert [e.name for e in tape.entries] == ["Affine"]


def test_linear_errors():
    x, w = Tensor(randn(4, 3)), Tensor(randn(5, 2))
    with pytest.raises(ValueError, match=r"3 features.*\(5, 2\) expects 2"):
        _linear(x, w)
    with pytest.raises(ValueError, match=r"bias of shape \(4,\)"):
        _linear(x, Tensor(randn(5, 3)), Tensor(randn(4)))


# -- dtypes and errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("f", [lambda x: x * 2, lambda x: x.exp(), lambda x: x ** 2, lambda x: x.relu(),
                               lambda x: x @ x, lambda x: x / 3 - 1, lambda x: x.log(), lambda x: x.tanh(),
                               lambda x: -x, lambda x: ops.Affine.apply(x, x, x[0])],
                         ids=["mul", "exp", "pow", "relu", "matmul", "div-sub", "log", "tanh", "neg", "linear"])
def test_float32_stays_float32(f, device):
    x = Tensor(positive(3, 3, dtype=np.float32), device=device, requires_grad=True)
    y = f(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_mixed_dtypes_promote_as_torch(device):
    a = Tensor(randn(2, 3, dtype=np.float32), device=device)
    b = Tensor(randn(3, 4), device=device)
    assert (a + Tensor(randn(2, 3), device=device)).dtype == np.float64
    with pytest.raises(RuntimeError, match="same dtype"):  # torch's matmul does not promote
        torch.tensor(a.numpy()) @ torch.tensor(b.numpy())
    with pytest.raises(RuntimeError, match=r"same dtype, but got: (torch\.)?float32 != (torch\.)?float64"):
        a @ b
    with pytest.raises(TypeError, match=r"float32.*float64"):  # a Function itself never mixes dtypes
        ops.Add.apply(a, Tensor(randn(2, 3), device=device))


def test_matmul_shape_mismatch(device):
    a, b = Tensor(randn(2, 3), device=device), Tensor(randn(4, 5), device=device)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        Tensor(randn(3)) @ Tensor(randn(4))
    with pytest.raises(ValueError, match=r"at least 1-D"):
        Tensor(np.array(1.0)) @ Tensor(randn(3))


def test_int_tensor_times_float_is_float32_as_torch():
    t = Tensor([1, 2, 3])
    assert (t * 0.5).dtype == np.float32 and (t * 0.5).tolist() == [0.5, 1.0, 1.5]
    assert (t * 2).dtype == np.int64  # an int constant keeps the int dtype


def test_compare_with_torch_agrees():
    """The library's own parity tool on a few ops (random upstream gradient, float64 and float32)."""
    for dtype in (np.float64, np.float32):
        a, b = randn(2, 3, seed=24, dtype=dtype), positive(3, seed=25, dtype=dtype)
        for f, tf in [(lambda x, y: x / y, torch.div), (lambda x, y: (x * y).tanh(), lambda x, y: (x * y).tanh()),
                      (lambda x, y: x @ y, torch.matmul)]:
            rows = compare_with_torch(f, tf, [a, b])
            assert len(rows) == 3 and all(r.close for r in rows)


@pytest.mark.parametrize("f", [lambda x: x.exp(), lambda x: x * x, lambda x: -x])
def test_0d_grad_is_an_array(f):
    x = Tensor(np.array(1.5), requires_grad=True)
    f(x).backward()
    assert isinstance(x.grad.array, np.ndarray) and x.grad.shape == ()

"""Reductions, shape ops, cat/stack and indexing: gradcheck, torch parity, dtypes, errors."""
import numpy as np
import pytest
import torch
from hypothesis import assume, given, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import tinygrad_mm as tg
from tinygrad_mm import Tensor
from ops_helpers import check_grad, check_torch, randn

DTYPES = [np.float64, np.float32]


# -- reductions ---------------------------------------------------------------------------------------
def _ours(name, dim, keep, numpy_names):
    if numpy_names:
        return lambda x: getattr(x, name)(axis=dim, keepdims=keep)
    return lambda x: getattr(x, name)(dim=dim, keepdim=keep)


def _torch(name, dim, keep):
    if dim is None:  # torch.amax reduces everything with dim=(); sum/mean take dim=None
        dim = () if name == "amax" else None
    return lambda x: getattr(torch, name)(x, dim=dim, keepdim=keep)


DIMS = [None, 0, -1, (0, 2), (1,), (-1, 0, 1)]


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "amax"])
def test_reduction_gradcheck(name, dim, keep):
    check_grad(_ours(name, dim, keep, False), [randn(2, 3, 4, seed=1)])


@pytest.mark.parametrize("numpy_names", [False, True], ids=["dim-keepdim", "axis-keepdims"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "amax"])
def test_reduction_torch(name, dim, keep, dtype, numpy_names, device):
    check_torch(_ours(name, dim, keep, numpy_names), _torch(name, dim, keep),
                [randn(2, 3, 4, seed=2, dtype=dtype)], device=device)


def test_reduction_positional_and_full_jacobian():
    check_torch(lambda x: x.sum(1, True), lambda x: x.sum(1, True), [randn(3, 4)])
    check_grad(lambda x: x.mean(0), [randn(3, 2)], mode="full")
    check_grad(lambda x: x.amax(), [randn(2, 3)], mode="full")


@pytest.mark.parametrize("name", ["sum", "mean", "amax"])
@pytest.mark.parametrize("dim", [0, None, -1])
def test_reduction_of_0d(name, dim):
    """torch accepts dim 0/-1 on a scalar and reduces nothing."""
    check_torch(lambda x: getattr(x, name)(dim), _torch(name, dim, False), [np.array(1.5)])


def test_amax_ties_share_gradient():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    check_torch(lambda t: t.amax(1), lambda t: t.amax(1), [x])
    check_torch(lambda t: t.amax(), lambda t: t.amax(), [x])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_max_dim_returns_values_and_indices(dim, keep, dtype, device):
    x = randn(3, 4, 5, seed=3, dtype=dtype)
    out, tout = check_torch(lambda t: t.max(dim, keep).values, lambda t: t.max(dim, keep).values, [x],
                            device=device)
    res = Tensor(x, device=device).max(dim=dim, keepdim=keep)
    values, indices = res  # unpacks like torch's (values, indices)
    assert res.indices is indices and res.values is values
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices.detach().numpy(), torch.from_numpy(x).max(dim, keep).indices.detach().numpy())
    np.testing.assert_array_equal(Tensor(x).max(axis=dim, keepdims=keep).indices.detach().numpy(), indices.detach().numpy())
    assert Tensor(x).max().shape == ()  # no dim: just the maximum, as torch


def test_max_dim_gradcheck():
    check_grad(lambda t: t.max(1).values, [randn(3, 4, seed=4)])
    check_grad(lambda t: t.max(-1, keepdim=True)[0], [randn(2, 3, 4, seed=5)])


def test_max_dim_ties_follow_torch():
    check_torch(lambda t: t.max(1).values, lambda t: t.max(1).values, [np.array([[1.0, 3.0, 3.0]])])


@st.composite
def reduction_case(draw, dtype=np.float64):
    shape = draw(array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4))
    x = draw(arrays(dtype, shape, elements=st.floats(-3, 3, width=np.dtype(dtype).itemsize * 8)))
    axes = draw(st.none() | st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True))
    if axes is not None:  # some negative, in random order
        axes = tuple(a - len(shape) if draw(st.booleans()) else a for a in axes)
        axes = axes[0] if len(axes) == 1 and draw(st.booleans()) else axes
    return x, axes, draw(st.booleans())


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")  # nan, as torch
@pytest.mark.parametrize("name", ["sum", "mean", "amax"])
@given(case=reduction_case())
def test_reduction_hypothesis(name, case):
    x, axes, keep = case
    reduced = range(x.ndim) if axes is None else np.atleast_1d(axes)
    if name == "amax" and any(x.shape[a] == 0 for a in reduced):  # no maximum of nothing (torch: IndexError)
        with pytest.raises(ValueError, match="empty dimension"):
            Tensor(x).amax(axes, keep)
        return
    check_torch(_ours(name, axes, keep, False), _torch(name, axes, keep), [x])
    # max is not differentiable at (near-)ties: finite differences see one side only
    if x.size and x.size <= 24 and (name != "amax" or x.size == 1 or np.diff(np.sort(x, None)).min() > 1e-4):
        check_grad(_ours(name, axes, keep, True), [x])


@given(case=reduction_case(np.float32))
def test_reduction_hypothesis_float32(case):
    x, axes, keep = case
    assume(x.size)
    check_torch(_ours("sum", axes, keep, True), _torch("sum", axes, keep), [x])


# -- reshape, permute, transpose --------------------------------------------------------------------------
SHAPE_OPS = {  # name: (ours, torch); input shape (2, 3, 4)
    "reshape": (lambda x: x.reshape(6, 4), lambda x: x.reshape(6, 4)),
    "reshape-tuple": (lambda x: x.reshape((4, -1)), lambda x: x.reshape((4, -1))),
    "view-1": (lambda x: x.view(-1), lambda x: x.view(-1)),
    "view-mid": (lambda x: x.view(2, -1, 2), lambda x: x.view(2, -1, 2)),
    "flatten": (lambda x: x.flatten(1), lambda x: x.flatten(1)),
    "permute": (lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
    "permute-neg": (lambda x: x.permute((-1, 0, -2)), lambda x: x.permute((-1, 0, -2))),
    "transpose": (lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2)),
    "transpose-neg": (lambda x: x.transpose(-1, 1), lambda x: x.transpose(-1, 1)),
    "T-2d": (lambda x: x.reshape(6, 4).T, lambda x: x.reshape(6, 4).T),
    "T-1d": (lambda x: x.reshape(-1).T, lambda x: x.reshape(-1)),
    "T-3d": (lambda x: x.T, lambda x: x.permute(2, 1, 0)),
}


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_op_gradcheck(name):
    check_grad(SHAPE_OPS[name][0], [randn(2, 3, 4, seed=6)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_op_torch(name, dtype, device):
    check_torch(*SHAPE_OPS[name], [randn(2, 3, 4, seed=7, dtype=dtype)], device=device)


def test_shape_errors():
    x = Tensor(randn(2, 3))
    with pytest.raises(ValueError, match=r"shape \(2, 3\) \(6 elements\) as shape \(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"as shape \(-1, -1\)"):
        x.view(-1, -1)
    with pytest.raises(ValueError, match=r"\(0, 0\) is not a permutation"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match="not a permutation"):
        x.permute(1, 0, 2)
    with pytest.raises(IndexError, match="axis 3 is out of range"):
        x.permute(0, 3)  # 3 % 2 == 1 must not pass for axis 1


# -- cat and stack -------------------------------------------------------------------------------------------
CAT_CASES = [(0, [(2, 3), (4, 3), (1, 3)]), (1, [(2, 1), (2, 3), (2, 2)]), (-1, [(2, 3, 1), (2, 3, 2)]),
             (0, [(3, 2)])]


@pytest.mark.parametrize("dim, shapes", CAT_CASES, ids=str)
def test_cat_gradcheck(dim, shapes):
    check_grad(lambda *ts: tg.cat(ts, dim=dim), [randn(*s, seed=i) for i, s in enumerate(shapes)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim, shapes", CAT_CASES, ids=str)
def test_cat_torch(dim, shapes, dtype, device):
    check_torch(lambda *ts: tg.cat(ts, dim), lambda *ts: torch.cat(ts, dim),
                [randn(*s, seed=i, dtype=dtype) for i, s in enumerate(shapes)], device=device)


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_stack_gradcheck(dim):
    check_grad(lambda *ts: tg.stack(ts, dim=dim), [randn(2, 3, seed=i) for i in range(3)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_stack_torch(dim, dtype, device):
    check_torch(lambda *ts: tg.stack(ts, dim), lambda *ts: torch.stack(ts, dim),
                [randn(2, 3, seed=i, dtype=dtype) for i in range(3)], device=device)


def test_cat_stack_same_tensor_twice():
    check_torch(lambda t: tg.cat([t, t], 1), lambda t: torch.cat([t, t], 1), [randn(2, 3)])
    check_torch(lambda t: tg.stack([t, t, t]), lambda t: torch.stack([t, t, t]), [randn(2, 3)])


def test_cat_stack_errors():
    a, b = Tensor(randn(2, 3)), Tensor(randn(2, 4))
    with pytest.raises(ValueError, match=r"cat along axis 0 needs equal other dims.*\(2, 3\), \(2, 4\)"):
        tg.cat([a, b])
    with pytest.raises(ValueError, match="equal other dims"):
        tg.cat([a, Tensor(randn(2, 3, 1))], dim=1)
    with pytest.raises(IndexError, match="axis 2 out of range"):
        tg.cat([a, a], dim=2)
    with pytest.raises(ValueError, match=r"stack needs tensors of one shape"):
        tg.stack([a, b])
    with pytest.raises(RuntimeError, match=r"zero-dimensional tensor \(at position 1\)"):
        tg.cat([a[0], a[0, 0]])


def test_cat_stack_promote_as_torch():
    """torch.cat/stack promote mixed dtypes (int64 with float32 is float32, not numpy's float64)."""
    for da, db in [(np.int64, np.float32), (np.float32, np.float64), (np.bool_, np.int32), (np.int32, np.int64)]:
        a, b = np.ones((2, 3), da), np.zeros((2, 3), db)
        for ours, theirs in [(tg.cat, torch.cat), (tg.stack, torch.stack)]:
            out, ref = ours([Tensor(a), Tensor(b)]), theirs([torch.tensor(a), torch.tensor(b)])
            assert out.dtype == ref.numpy().dtype and out.shape == tuple(ref.shape)
            np.testing.assert_array_equal(out.numpy(), ref.numpy())


# -- indexing: basic ------------------------------------------------------------------------------------------
BASIC = {  # name: index on a (3, 4, 5) tensor; every one of them valid in torch
    "int": 1, "neg-int": -1, "slice": slice(1, 3), "step": (slice(None), slice(None, None, 2)),
    "none-ellipsis": (None, 1, Ellipsis, slice(0, 2)), "ellipsis-int": (Ellipsis, 1),
    "int-none": (1, slice(None), None), "scalar": (0, 1, 2), "mixed": (slice(1, 2), slice(-2, None), 3),
    "empty-slice": slice(2, 1), "np-int": np.int64(2),
}


@pytest.mark.parametrize("name", BASIC)
def test_basic_index_gradcheck(name):
    check_grad(lambda x: x[BASIC[name]], [randn(3, 4, 5, seed=8)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BASIC)
def test_basic_index_torch(name, dtype, device):
    idx = BASIC[name]
    check_torch(lambda x: x[idx], lambda x: x[idx], [randn(3, 4, 5, seed=9, dtype=dtype)], device=device)


def test_negative_step_slice():
    """torch has no negative steps; the gradient must still land reversed."""
    check_grad(lambda x: x[::-1, 1::-2], [randn(3, 4, seed=10)], mode="full")


def test_basic_index_errors():
    x = Tensor(randn(3, 4))
    with pytest.raises(IndexError, match=r"index 3 is out of bounds for dimension 0 with size 3"):
        x[3]
    with pytest.raises(IndexError, match=r"index -5 is out of bounds for dimension 1 with size 4"):
        x[:, -5]
    with pytest.raises(IndexError, match=r"too many indices for tensor of dimension 2 \(got 3"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="must be long, int, byte or bool"):
        x["a"]


# -- indexing: integer-array gathers (scatter-add backward) ---------------------------------------------------
def _X():
    """(B, 3) contexts into a 27-row table, with many repeated rows."""
    return np.random.default_rng(11).integers(0, 27, size=(8, 3))


def test_embedding_gradcheck():
    X = _X()
    check_grad(lambda C: C[X], [randn(27, 4, seed=12)])
    check_grad(lambda C: C[X[0, 0]], [randn(27, 2, seed=13)])  # a 0-d index picks one row


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("as_", ["numpy", "tensor", "list"])
def test_embedding_torch(as_, dtype, device):
    X = _X()
    assert len(np.unique(X)) < X.size  # repeated rows must accumulate

    def ours(C, Xt):
        idx = {"numpy": X, "tensor": Xt, "list": X.tolist()}[as_]
        return C[idx]
    check_torch(ours, lambda C, Xt: C[Xt], [randn(27, 10, seed=14, dtype=dtype), X], device=device)


def test_embedding_is_one_entry_and_accumulates():
    C = Tensor(np.zeros((5, 2)), requires_grad=True)
    out = C[np.array([[1, 1], [1, 4]])]
    assert out.entry.name == "GatherRows"
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(C.grad, [[0, 0], [3, 3], [0, 0], [0, 0], [1, 1]])


@pytest.mark.parametrize("idx_dtype", [np.int32, np.uint8, np.uint64])
def test_embedding_index_dtypes(idx_dtype):
    X = _X().astype(idx_dtype)
    check_torch(lambda C: C[X], lambda C: C[torch.from_numpy(X.astype(np.int64))], [randn(27, 3)])


def test_embedding_empty():
    check_torch(lambda C: C[np.zeros((0, 3), np.int64)], lambda C: C[torch.zeros(0, 3, dtype=torch.long)],
                [randn(5, 4)])
    check_torch(lambda C: C[np.array([0, 2, 2])], lambda C: C[torch.tensor([0, 2, 2])], [randn(5, 0)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_arange_gather(dtype, device):
    """logits[arange(n), Y]: the picked logit of each row (the cross-entropy path)."""
    Y = np.array([2, 0, 6, 2, 2])
    ours = lambda L, Yt: L[tg.arange(5, device=L.device), Yt]  # noqa: E731
    check_torch(ours, lambda L, Yt: L[torch.arange(5), Yt], [randn(5, 7, seed=15, dtype=dtype), Y],
                device=device)
    check_grad(lambda L: L[np.arange(5), Y], [randn(5, 7, seed=16)], mode="full")


def test_repeated_pairs_accumulate():
    rows, cols = np.array([0, 0, 1, 0]), np.array([2, 2, 3, 2])
    check_torch(lambda L: L[rows, cols], lambda L: L[rows, cols], [randn(2, 4)])
    L = Tensor(np.zeros((2, 4)), requires_grad=True)
    L[rows, cols].backward(np.array([1.0, 2.0, 4.0, 8.0]))
    assert L.grad[0, 2] == 11.0 and L.grad[1, 3] == 4.0 and L.grad.sum() == 15.0


ADVANCED = {  # on a (3, 4, 5) tensor: the general Index path
    "rows": lambda: np.array([0, 0, 2]),
    "rows-2d": lambda: np.array([[2, 0], [0, 0]]),
    "slice-then-array": lambda: (slice(None), np.array([3, 1, 3])),
    "array-slice-array": lambda: (np.array([0, 2, 0]), slice(1, 3), np.array([4, 4, 0])),
    "int-and-array": lambda: (1, np.array([0, 0]), slice(None)),
    "ellipsis-array": lambda: (Ellipsis, np.array([1, 1, 4])),
}


@pytest.mark.parametrize("name", ADVANCED)
def test_advanced_index_gradcheck(name):
    idx = ADVANCED[name]()
    check_grad(lambda x: x[idx], [randn(3, 4, 5, seed=17)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ADVANCED)
def test_advanced_index_torch(name, dtype, device):
    idx = ADVANCED[name]()
    tidx = tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in idx) \
        if isinstance(idx, tuple) else torch.from_numpy(idx)
    check_torch(lambda x: x[idx], lambda x: x[tidx], [randn(3, 4, 5, seed=18, dtype=dtype)], device=device)


@st.composite
def gather_case(draw):
    n, d = draw(st.integers(1, 6)), draw(st.integers(0, 4))
    table = draw(arrays(np.float64, (n, d), elements=st.floats(-3, 3)))
    idx = draw(arrays(np.int64, array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=5),
                      elements=st.integers(0, n - 1)))
    return table, idx


@given(case=gather_case())
def test_gather_hypothesis(case):
    """C[idx] for random index shapes (0-d, empty, repeats) against torch and an np.add.at reference."""
    C, idx = case
    check_torch(lambda t: t[idx], lambda t: t[torch.from_numpy(idx)], [C])
    t = Tensor(C, requires_grad=True)
    out = t[idx]
    v = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(v)
    ref = np.zeros_like(C)
    np.add.at(ref, idx, v)
    np.testing.assert_allclose(t.grad, ref, rtol=1e-12, atol=1e-12)


@given(case=gather_case(), data=st.data())
def test_gather_pairs_hypothesis(case, data):
    """x[rows, cols] with repeated (row, col) pairs: the Index path's scatter-add."""
    C, rows = case
    assume(C.shape[1] > 0)
    cols = data.draw(arrays(np.int64, rows.shape, elements=st.integers(0, C.shape[1] - 1)))
    check_torch(lambda t: t[rows, cols], lambda t: t[torch.from_numpy(rows), torch.from_numpy(cols)], [C])


# -- gather errors --------------------------------------------------------------------------------------------
def test_gather_errors(device):
    C = Tensor(randn(27, 4), device=device)
    with pytest.raises(IndexError, match=r"index 27 is out of bounds for dimension 0 with size 27"):
        C[np.array([[0, 27]])]
    with pytest.raises(IndexError, match=r"index -28 is out of bounds for dimension 0 with size 27"):
        C[np.array([3, -28])]
    L = Tensor(randn(5, 7), device=device)
    with pytest.raises(IndexError, match=r"index 7 is out of bounds for dimension 1 with size 7"):
        L[tg.arange(5, device=device), Tensor([0, 1, 7, 2, 3], device=device)]
    with pytest.raises(IndexError, match=r"index -6 is out of bounds for dimension 0 with size 5"):
        L[np.array([-6]), np.array([0])]
    with pytest.raises(IndexError, match=r"index 3 is out of bounds for dimension 0 with size 3"):
        Tensor(randn(3, 4, 5), device=device)[np.array([0, 3])]


TORCH_INDICES = [  # (shape, index builder on a module of arrays): torch's rules, negatives and masks included
    ((27, 4), lambda m: m([3, -1, -27])), ((5, 7), lambda m: (m([-1, 0]), m([2, -7]))),
    ((3, 4, 5), lambda m: (0, slice(None), m([1, -1, 1]))), ((3, 4, 5), lambda m: (m([0, 2]), slice(1, 3), 1)),
    ((3, 4), lambda m: m([True, False, True])), ((3, 4), lambda m: (slice(None), m([True, False, True, True]))),
    ((3, 4), lambda m: (m([[0, 1], [2, 2]]),)), ((2, 3, 4), lambda m: (Ellipsis, m([0, 0]))),
    ((3, 4), lambda m: (None, m([1, 2]), None)), ((4,), lambda m: range(1, 4)),
]


@pytest.mark.parametrize("shape, build", TORCH_INDICES)
def test_indexing_matches_torch_values_and_gradients(shape, build):
    import torch
    x0 = np.random.default_rng(0).standard_normal(shape)
    ours, theirs = Tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    mine = build(lambda v: np.array(v)) if not isinstance(build(list), range) else build(list)
    torch_index = build(lambda v: torch.tensor(v))
    out, tout = ours[mine], theirs[torch_index]
    assert out.shape == tuple(tout.shape)
    np.testing.assert_array_equal(out.detach().numpy(), tout.detach().numpy())
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.detach().numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_float_index_refused():
    with pytest.raises(IndexError, match="must be long, int, byte or bool tensors; got dtype float64"):
        Tensor(randn(3, 4))[np.array([0.0, 1.0])]


# -- dtype preservation through shape ops -----------------------------------------------------------------------
@pytest.mark.parametrize("f", [lambda x: x.sum(0), lambda x: x.mean(), lambda x: x.amax(1, keepdim=True),
                               lambda x: x.max(0).values, lambda x: x.reshape(-1), lambda x: x.T,
                               lambda x: tg.cat([x, x]), lambda x: tg.stack([x, x], 1), lambda x: x[1:, 0],
                               lambda x: x[np.array([0, 0, 2])], lambda x: x[np.array([1, 1]), np.array([0, 0])]],
                         ids=["sum", "mean", "amax", "max", "reshape", "T", "cat", "stack", "slice", "gather",
                              "pairs"])
def test_float32_stays_float32(f, device):
    x = Tensor(randn(3, 3, dtype=np.float32), device=device, requires_grad=True)
    y = f(x)
    assert y.dtype == np.float32
    y.backward(Tensor(np.ones(y.shape, np.float32), device=device))
    assert x.grad.dtype == np.float32 and x.grad.shape == (3, 3)

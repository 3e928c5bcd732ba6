"""Binary ops promote exactly as torch.result_type: every op x dtype pair x operand kind, vs torch.

Operand kinds: a dimensioned tensor, a 0-d tensor (ranks below dimensioned ones), a Python
number and a numpy scalar (both "wrapped numbers": they lift the category, never the precision).
Each case compares the result's dtype and values with torch's, or that both raise; float
results also backpropagate and compare the gradients (each in its input's dtype).
"""
import operator

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import tinygrad_mm as tg

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
       "pow": operator.pow, "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
       "gt": operator.gt, "ge": operator.ge}
KINDS = ["tensor", "0-d", "python", "numpy"]


@st.composite
def operand(draw, positive=False):
    kind = draw(st.sampled_from(KINDS))
    dt = np.dtype(draw(st.sampled_from(DTYPES)))
    lo = 0 if positive or dt.kind in "ub" else -3
    if dt.kind == "b":
        values = st.booleans()
    elif dt.kind == "f":
        values = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0] + ([] if positive else [-1.0, -2.5, 0.0]))
    else:
        values = st.integers(lo, 3)
    if kind in ("python", "numpy"):
        v = draw(values)
        return kind, (np.asarray(v, dt)[()] if kind == "numpy" else v)
    shape = () if kind == "0-d" else (draw(st.integers(0, 3)),)
    return kind, np.array([draw(values) for _ in range(int(np.prod(shape)))], dt).reshape(shape)


def build(lib, kind, v):
    if kind in ("python", "numpy"):
        return v
    t = lib.tensor(v)
    if v.dtype.kind == "f":
        t.requires_grad_(True)
    return t


def run(lib, name, a, b):
    x, y = build(lib, *a), build(lib, *b)
    try:
        out = OPS[name](x, y)
    except Exception as e:  # noqa: BLE001 -- which exception class differs between the libraries
        return e, x, y
    return out, x, y


def compare(name, a, b):
    ours, ox, oy = run(tg, name, a, b)
    theirs, tx, ty = run(torch, name, a, b)
    case = f"{a} {name} {b}"
    if isinstance(theirs, Exception) or isinstance(ours, Exception):
        assert isinstance(ours, Exception) and isinstance(theirs, Exception), \
            f"{case}: ours {ours!r}, torch {theirs!r}"
        return
    ref = theirs.detach().numpy()
    assert ours.dtype == ref.dtype, f"{case}: dtype {ours.dtype}, torch {ref.dtype}"
    assert ours.shape == ref.shape, f"{case}: shape {ours.shape}, torch {ref.shape}"
    rtol = 1e-3 if ref.dtype == np.float16 else 1e-6
    np.testing.assert_allclose(ours.detach().numpy(), ref, rtol=rtol, equal_nan=True, err_msg=case)
    if theirs.requires_grad:
        g = np.random.default_rng(0).uniform(0.5, 1.5, ref.shape).astype(ref.dtype)
        ours.backward(tg.tensor(g))
        try:
            theirs.backward(torch.tensor(g))
        except RuntimeError:  # torch's pow backward fails on a bool operand (b - 1 on bools): ours
            assert name == "pow" and bool_operand(a, b), case  # differentiates it (docs/pytorch.md)
            return
        for o, t in [(ox, tx), (oy, ty)]:
            if isinstance(t, torch.Tensor) and t.requires_grad:
                assert o.grad.dtype == t.grad.numpy().dtype, f"{case}: grad dtype"
                np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=max(rtol, 1e-5), atol=1e-6,
                                           equal_nan=True, err_msg=f"{case}: grad")


def bool_operand(a, b):
    return any(isinstance(v, bool) or getattr(v, "dtype", None) == np.bool_ for _, v in (a, b))


@given(st.sampled_from(sorted(OPS)), st.data())
def test_binary_promotion_hypothesis(name, data):
    a = data.draw(operand())
    b = data.draw(operand(positive=name == "pow"))  # int ** negative int: torch gives 0, numpy raises
    if a[0] in ("python", "numpy") and b[0] in ("python", "numpy"):
        return  # two numbers: neither library is involved
    compare(name, a, b)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("da", DTYPES)
@pytest.mark.parametrize("db", DTYPES)
def test_every_dtype_pair_dimensioned_and_0d(name, da, db):
    """Exhaustive over dtype pairs: dimensioned with dimensioned, and with a 0-d tensor either side."""
    a = ("tensor", np.array([1, 2, 0][: 3], dtype=da) if da != "bool" else np.array([True, False, True]))
    b = ("tensor", np.array([2, 1, 1], dtype=db) if db != "bool" else np.array([True, True, False]))
    z = ("0-d", np.array(2 if db != "bool" else True, dtype=db))
    compare(name, a, b)
    compare(name, a, z)
    compare(name, z, a)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("scalar", [True, 2, 2.5, np.int64(2), np.float64(2.5), np.float32(0.5), np.bool_(True),
                                    np.int32(-1)], ids=repr)
def test_every_dtype_with_scalars(name, dt, scalar):
    t = ("tensor", np.array([1, 2, 3], dtype=dt) if dt != "bool" else np.array([True, False, True]))
    s = ("numpy" if isinstance(scalar, np.generic) else "python", scalar)
    compare(name, t, s)
    compare(name, s, t)


def test_lecture_scalar_cases():
    """np.int64(-1) * t works; a float64 0-d tensor does not widen a float32 tensor; int + float is float32."""
    t = tg.tensor([1.0, 2.0])
    assert (np.int64(-1) * t).dtype == np.float32 and (np.int64(-1) * t).tolist() == [-1.0, -2.0]
    assert (t * tg.tensor(2.0, dtype=tg.float64)).dtype == np.float32
    assert (tg.tensor([1, 2]) + 0.5).dtype == np.float32
    assert (tg.tensor([1, 2]) / 2).dtype == np.float32
    assert (tg.tensor([True]) + tg.tensor([True])).dtype == np.bool_


def test_numpy_scalar_tensor_is_an_array():
    """tg.tensor(np.float64(2.0)) once kept a numpy scalar and every later op failed."""
    t = tg.tensor(np.float64(2.0))
    assert type(t.array) is np.ndarray and t.dtype == np.float64 and t.shape == ()
    assert (t * tg.tensor([1.0, 2.0])).tolist() == [2.0, 4.0]
    assert (t + 1).item() == 3.0 and t.exp().dtype == np.float64
    assert tg.tensor(np.int32(3)).dtype == np.int32 and tg.as_tensor(np.float32(1.5)).array.shape == ()

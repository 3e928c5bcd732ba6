"""Indexing exactly as torch, by Hypothesis: x[index] and x[index] = v for random mixes of ints,
slices, None, Ellipsis, index tensors and lists (negatives included), ranges and bool masks.

Each case runs on both libraries: the same values, shape, dtype and gradients, or both raise.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import tinygrad_mm as tg

SHAPES = [(4,), (3, 4), (2, 3, 4), (3, 0, 2), (2, 1, 3, 2)]


@st.composite
def index_case(draw):
    shape = draw(st.sampled_from(SHAPES))
    parts, dim = [], 0
    for _ in range(draw(st.integers(1, len(shape) + 1))):
        kind = draw(st.sampled_from(["int", "slice", "tensor", "list", "mask", "none", "ellipsis", "range",
                                     "int0d", "full"]))
        n = shape[dim] if dim < len(shape) else 1
        if kind == "int":
            parts.append(("int", draw(st.integers(-n - 1, n))))  # one past either end: both must raise
        elif kind == "int0d":
            parts.append(("int0d", draw(st.integers(-n, max(n - 1, -n)))))
        elif kind == "slice":
            a, b = draw(st.one_of(st.none(), st.integers(-n - 1, n + 1))), draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
            parts.append(("slice", slice(a, b, draw(st.sampled_from([None, 1, 2, 3])))))
        elif kind in ("tensor", "list"):
            k = draw(st.integers(0, 3))
            lo, hi = (-n, n - 1) if n else (-1, 0)
            vals = draw(st.lists(st.integers(lo - draw(st.sampled_from([0, 0, 0, 1])), hi), min_size=k, max_size=k))
            parts.append((kind, vals))
        elif kind == "range":
            parts.append(("range", range(draw(st.integers(0, max(n, 1))))))
        elif kind == "mask":
            size = n if draw(st.integers(0, 5)) else n + 1  # a wrong-length mask now and then
            parts.append(("mask", draw(st.lists(st.booleans(), min_size=size, max_size=size))))
        elif kind == "full":
            parts.append(("slice", slice(None)))
        elif kind == "ellipsis" and ("ellipsis", None) in parts:
            continue  # torch accepts x[..., ...] with odd results; numpy and we refuse (docs/pytorch.md)
        else:
            parts.append((kind, None))
        dim += kind not in ("none", "ellipsis")
    return shape, parts


def build(lib, parts):
    out = []
    for kind, v in parts:
        if kind in ("int", "slice", "range"):
            out.append(v)
        elif kind == "int0d":
            out.append(lib.tensor(v))
        elif kind == "tensor":
            out.append(lib.tensor(v, dtype=lib.int64))
        elif kind == "list":
            out.append(list(v))
        elif kind == "mask":
            out.append(lib.tensor(v, dtype=lib.bool))
        else:
            out.append(None if kind == "none" else Ellipsis)
    return tuple(out)


def attempt(f):
    try:
        return f(), None
    except Exception as e:  # noqa: BLE001 -- the two libraries raise different classes
        return None, e


def agree(ours, theirs, what, empty=False):
    """Both succeed or both raise. One known difference: torch checks index ranges element by
    element as it gathers, so an empty result skips the check; we always check (docs/pytorch.md)."""
    (o, oe), (t, te) = ours, theirs
    if empty and te is None and isinstance(oe, IndexError) and "out of bounds" in str(oe):
        return False
    assert (oe is None) == (te is None), f"{what}: ours raised {oe!r}, torch raised {te!r}"
    return oe is None


def same(o, t, what):
    ref = t.detach().numpy()
    assert o.shape == ref.shape, f"{what}: shape {o.shape}, torch {ref.shape}"
    assert o.dtype == ref.dtype, f"{what}: dtype {o.dtype}, torch {ref.dtype}"
    np.testing.assert_array_equal(o.detach().numpy(), ref, err_msg=what)


@given(index_case())
def test_getitem_as_torch(case):
    shape, parts = case
    x0 = np.random.default_rng(0).standard_normal(shape)
    x, tx = tg.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    what = f"x{shape}[{parts}]"
    ours = attempt(lambda: x[build(tg, parts)])
    theirs = attempt(lambda: tx[build(torch, parts)])
    if not agree(ours, theirs, what, empty=theirs[1] is None and theirs[0].numel() == 0):
        return
    out, tout = ours[0], theirs[0]
    same(out, tout, what)
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(tg.tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=what)


@given(index_case(), st.booleans(), st.booleans())
def test_setitem_as_torch(case, scalar, recorded):
    """x[index] = v on a plain tensor and on a recorded one (values and both gradients)."""
    shape, parts = case
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal(shape)
    ids = torch.arange(int(np.prod(shape))).reshape(shape)
    region = attempt(lambda: ids[build(torch, parts)])
    if region[1] is None and len(set(region[0].flatten().tolist())) < region[0].numel():
        scalar = True  # repeated positions: which tensor value lands there is unspecified in torch
    what = f"x{shape}[{parts}] = v (scalar={scalar}, recorded={recorded})"
    v0 = rng.standard_normal(tuple(region[0].shape)) if region[1] is None and not scalar else 1.5

    def run(lib):
        leaf = lib.tensor(x0, requires_grad=recorded)
        v = lib.tensor(v0, requires_grad=recorded) if not isinstance(v0, float) else v0
        x = leaf * 2 if recorded else leaf.clone()
        x[build(lib, parts)] = v
        return leaf, v, x

    ours, theirs = attempt(lambda: run(tg)), attempt(lambda: run(torch))
    if not agree(ours, theirs, what, empty=region[1] is None and region[0].numel() == 0):
        return
    (leaf, v, x), (tleaf, tv, tx) = ours[0], theirs[0]
    same(x, tx, what)
    if recorded:
        w = np.random.default_rng(3).standard_normal(shape)
        (x * tg.tensor(w)).sum().backward()
        (tx * torch.tensor(w)).sum().backward()
        for o, t in [(leaf, tleaf), (v, tv)]:
            if isinstance(t, torch.Tensor):
                np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12, err_msg=what)


def test_lecture_indexing():
    """logprobs[range(n), Yb], dlogits[range(n), Yb] -= 1, dC[ix] += demb[k, j] with a 0-d index."""
    rng = np.random.default_rng(4)
    L0, Y, E = rng.standard_normal((5, 7)), rng.integers(0, 7, 5), rng.standard_normal((5, 3, 2))
    for lib in (tg, torch):
        L = lib.tensor(L0, requires_grad=True)
        loss = -L[range(5), lib.tensor(Y)].mean()
        loss.backward()
        d = lib.tensor(L0).clone()
        d[range(5), lib.tensor(Y)] -= 1
        dC = lib.zeros((7, 2), dtype=lib.float64)
        X = lib.tensor(rng.integers(0, 7, (5, 3)) if lib is tg else X_np)
        demb = lib.tensor(E)
        for k in range(5):
            for j in range(3):
                dC[X[k, j]] += demb[k, j]
        if lib is tg:
            ours = (loss.item(), L.grad.numpy(), d.numpy(), dC.numpy())
            X_np = X.numpy()
        else:
            for a, b in zip(ours, (loss.item(), L.grad.numpy(), d.numpy(), dC.numpy())):
                np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("bad", [lambda lib: lib.zeros(3)[3], lambda lib: lib.zeros(3)[lib.tensor([0, 3])],
                                 lambda lib: lib.zeros(3)[[-4]], lambda lib: lib.zeros(2, 3)[:, lib.tensor([3])],
                                 lambda lib: lib.zeros(3)[lib.tensor([True, False])],
                                 lambda lib: lib.zeros(3)[0, 0], lambda lib: lib.zeros(3)[lib.tensor([0.0])]])
def test_out_of_range_and_bad_indices_raise_as_torch(bad):
    with pytest.raises(Exception):
        bad(torch)
    with pytest.raises((IndexError, RuntimeError, TypeError), match=r"\S"):
        bad(tg)

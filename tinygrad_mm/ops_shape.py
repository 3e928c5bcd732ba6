"""Reductions, shape ops, concatenation and indexing: forward beside local derivative."""
from collections import namedtuple

import numpy as np

from . import backend
from .backend import xp_of
from .tape import Function

MaxResult = namedtuple("MaxResult", ["values", "indices"])  # what torch's x.max(dim) returns


def _expand_reduced(g, axis, keepdims, shape):
    """Broadcast a reduction's gradient back over the reduced axes (a read-only view)."""
    xp = xp_of(g)
    if axis is not None and not keepdims:
        g = xp.expand_dims(g, axis)
    return xp.broadcast_to(g, shape)


# -- reductions ------------------------------------------------------------------------------
def _scalar_axis(x, axis):
    """A 0-d input has no axis to reduce (numpy raises); torch accepts dim 0/-1 and reduces nothing."""
    return None if x.ndim == 0 else axis


class Sum(Function):
    def forward(self, x, axis=None, keepdims=False):
        axis = _scalar_axis(x, axis)
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):          # each summed element contributes with slope 1
        return _expand_reduced(g, self.axis, self.keepdims, self.shape)


class Mean(Function):
    def forward(self, x, axis=None, keepdims=False):
        axis = _scalar_axis(x, axis)
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        n = x.size if axis is None else int(np.prod([x.shape[a] for a in axis]))
        self.n = max(n, 1)  # n == 0 means an empty input, hence an empty gradient: skip a 0/0 warning
        return x.mean(axis=axis, keepdims=keepdims)

    def backward(self, g):          # each element contributes with slope 1/n
        return _expand_reduced(g / self.n, self.axis, self.keepdims, self.shape)


class Max(Function):
    """Maximum over axes; tied maxima share the gradient equally (torch.amax semantics)."""

    def forward(self, x, axis=None, keepdims=False):
        axis = _scalar_axis(x, axis)
        if x.size == 0 and (axis is None or any(x.shape[a] == 0 for a in axis)):  # (0, 3).amax(1) is fine
            raise ValueError(f"max over an empty dimension of a tensor of shape {x.shape} has no value")
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.out = x.max(axis=axis, keepdims=True)
        return self.out if keepdims else self.out.reshape([n for i, n in enumerate(x.shape)
                                                           if axis is not None and i not in axis])

    def backward(self, g):          # slope 1 at the maximum (split among ties), 0 elsewhere
        mask = (self.x == self.out).astype(g.dtype)
        mask /= mask.sum(axis=self.axis, keepdims=True)
        if self.axis is not None and not self.keepdims:
            g = xp_of(g).expand_dims(g, self.axis)
        elif self.axis is None:
            g = g.reshape((1,) * self.x.ndim)
        return mask * g


class TakeAlong(Function):
    """x's entries at `idx` along one axis (what torch's max(dim) returns as values)."""

    def forward(self, x, idx, axis, keepdims=True):
        if x.ndim == 0:
            self.shape = ()
            return x.copy()
        xp = xp_of(x)
        self.shape, self.idx, self.axis = x.shape, idx, axis
        out = xp.take_along_axis(x, idx, axis=axis)
        return out if keepdims else out.squeeze(axis)

    def backward(self, g):          # slope 1 at the chosen entry, 0 elsewhere
        if self.shape == ():
            return g
        xp = xp_of(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        xp.put_along_axis(gx, self.idx, g.reshape(self.idx.shape), axis=self.axis)
        return gx


# -- shape -------------------------------------------------------------------------------------
class Reshape(Function):
    def forward(self, x, shape):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot view a tensor of shape {x.shape} ({x.size} elements) "
                             f"as shape {shape}") from None

    def backward(self, g):          # the same numbers, laid back out in the input's shape
        return g.reshape(self.shape)


class Permute(Function):
    def forward(self, x, axes):
        bad = [a for a in axes if not -x.ndim <= a < max(x.ndim, 1)] if len(axes) == x.ndim else []
        if bad:  # checked first: the modulo below would fold an out-of-range axis onto a valid one
            raise IndexError(f"permute: axis {bad[0]} is out of range for the {x.ndim} dims of shape {x.shape}")
        if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} dims of shape {x.shape}")
        self.axes = axes
        return x.transpose(axes)

    def backward(self, g):          # undo the permutation
        return g.transpose(np.argsort([a % g.ndim for a in self.axes]))


class Cat(Function):
    def forward(self, *xs, axis=0):
        nd = xs[0].ndim
        if not -nd <= axis < nd:
            raise IndexError(f"cat: axis {axis} out of range for {nd}-d tensors")
        axis %= nd
        others = [x.shape[:axis] + x.shape[axis + 1:] for x in xs]
        if any(x.ndim != nd for x in xs) or len(set(others)) != 1:
            raise ValueError(f"cat along axis {axis} needs equal other dims, got shapes "
                             f"{[x.shape for x in xs]}")
        self.axis = axis
        self.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1].tolist()
        return xp_of(xs[0]).concatenate(xs, axis=axis)

    def backward(self, g):          # each input gets back its own slab
        return tuple(xp_of(g).split(g, self.bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *xs, axis=0):
        if len({x.shape for x in xs}) != 1:
            raise ValueError(f"stack needs tensors of one shape, got {[x.shape for x in xs]}")
        nd = xs[0].ndim + 1
        if not -nd <= axis < nd:
            raise IndexError(f"stack: axis {axis} out of range for {nd}-d result")
        self.axis = axis % nd
        return xp_of(xs[0]).stack(xs, axis=self.axis)

    def backward(self, g):          # each input gets back its own slice
        xp = xp_of(g)
        return tuple(xp.take(g, i, axis=self.axis) for i in range(g.shape[self.axis]))


def cat(tensors, dim=0):
    """Concatenate tensors along an existing dimension (torch.cat)."""
    return Cat.apply(*tensors, axis=dim)


def stack(tensors, dim=0):
    """Stack same-shaped tensors along a new dimension (torch.stack)."""
    return Stack.apply(*tensors, axis=dim)


# -- indexing ----------------------------------------------------------------------------------
class Embedding(Function):
    """table[idx]: rows of a (num, dim) table gathered by an integer array of any shape."""

    def forward(self, table, idx):
        backend.check_index_range(idx, table.shape[0], what="index")
        self.idx, self.n = idx, table.shape[0]
        return table[idx]            # (*idx.shape, dim)

    def backward(self, g):          # scatter-add: a row picked k times receives k contributions
        return backend.scatter_add_rows(self.idx, g, self.n)


class Index(Function):
    """x[index] for basic (ints, slices, None, ...) and advanced (integer arrays) indexing."""

    def forward(self, x, index, advanced):
        self.shape, self.where, self.advanced = x.shape, index, advanced
        return x[index]

    def backward(self, g):          # route each output element back to where it was read
        if self.advanced:  # entries may repeat: accumulate
            return backend.scatter_add(self.shape, self.where, g)
        gx = xp_of(g).zeros(self.shape, dtype=g.dtype)
        gx[self.where] = g
        return gx


def _index_array(x, t, kind):
    """An integer index array on x's device from a Tensor, array or list."""
    arr = getattr(t, "data", t)
    if not hasattr(arr, "dtype"):
        arr = np.asarray(arr)
    if arr.dtype.kind == "b":
        raise TypeError(f"boolean mask indexing is not supported ({kind}); use integer indices "
                        "(e.g. x[mask.nonzero()])")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"index arrays must be integers, got dtype {arr.dtype}")
    if type(arr) is not type(x.data):
        if hasattr(t, "data") and hasattr(t, "device"):
            raise RuntimeError(f"index tensor is on {t.device} but the indexed tensor is on {x.device}")
        arr = backend.to_device(np.asarray(arr), x.device)
    return arr


def index(x, idx):
    """Tensor.__getitem__: range-check integer-array indices, then gather with one tape entry."""
    if not isinstance(idx, tuple):
        if hasattr(idx, "dtype") or isinstance(idx, list):  # x[ix]: gather whole rows (C[X])
            arr = _index_array(x, idx, "x[ix]")
            if x.ndim == 0:
                raise IndexError("cannot index a 0-d tensor with an array")
            return Embedding.apply(x, idx=arr) if x.ndim == 2 else _advanced(x, (arr,))
        idx = (idx,)
    parts, advanced, dim = [], False, 0
    n_consuming = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if n_consuming > x.ndim:
        raise IndexError(f"too many indices ({n_consuming}) for a tensor of shape {x.shape}")
    for i in idx:
        if i is None:
            parts.append(i)
        elif i is Ellipsis:
            parts.append(i)
            dim += x.ndim - n_consuming
        elif isinstance(i, slice) or isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            if not isinstance(i, slice) and not -x.shape[dim] <= i < x.shape[dim]:
                raise IndexError(f"index {i} is out of range for dimension {dim} of size {x.shape[dim]}")
            parts.append(i)
            dim += 1
        elif hasattr(i, "dtype") or isinstance(i, list):
            arr = _index_array(x, i, f"dimension {dim}")
            backend.check_index_range(arr, x.shape[dim], what=f"index into dimension {dim}:")
            parts.append(arr)
            advanced = True
            dim += 1
        else:
            raise TypeError(f"unsupported index {i!r} of type {type(i).__name__}")
    return Index.apply(x, index=tuple(parts), advanced=advanced)


def _advanced(x, idx):
    backend.check_index_range(idx[0], x.shape[0], what="index into dimension 0:")
    return Index.apply(x, index=idx, advanced=True)

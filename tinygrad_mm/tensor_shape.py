"""Tensor reductions, shape methods and indexing, each one op (or none, for a no-op)."""
import numpy as np


class TensorShape:
    """Mixed into Tensor: sum/mean/max..., reshape/permute/transpose..., and x[index]."""
    __slots__ = ()

    # -- reductions --------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        """Sum over `dim` (int, tuple, or all); torch's keepdim and numpy's keepdims both work."""
        x = self if dtype is None else self.to(dtype=dtype)
        if x.array.dtype.kind in "biu" and dtype is None:
            x = x.to(dtype=np.int64)  # torch sums bools and ints as int64
        return ops_reduce.Sum.apply(x, **reduce_axes(self, dim, axis, keepdim, keepdims))

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        x = self if dtype is None else self.to(dtype=dtype)
        if x.array.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating "
                               f"point or complex dtype. Got: {x.dtype}")
        return ops_reduce.Mean.apply(x, **reduce_axes(self, dim, axis, keepdim, keepdims))

    def amax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Maximum over axes; ties share the gradient equally (as torch.amax)."""
        return ops_reduce.Max.apply(self, **reduce_axes(self, dim, axis, keepdim, keepdims))

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As torch: with no dim the maximum (ties share the gradient); with an int dim a
        (values, indices) pair whose gradient goes to the returned index only."""
        d = dim if dim is not None else axis
        if d is None or isinstance(d, tuple):
            return self.amax(dim, keepdim, axis=axis, keepdims=keepdims)
        kw = reduce_axes(self, dim, axis, keepdim, keepdims)
        ax = kw["axis"][0]
        indices = self.argmax(ax, keepdim=True) if self.ndim else _wrap(self.array.argmax().reshape(()))
        values = ops_reduce.TakeAlong.apply(self, idx=indices.array, axis=ax, keepdims=kw["keepdims"])
        if not kw["keepdims"] and self.ndim:
            indices = _wrap(indices.array.squeeze(ax))
        return ops_reduce.MaxResult(values, indices)

    def argmax(self, dim=None, keepdim=False):
        """Indices of the maxima (an int64 tensor; not differentiable); ties pick the first, as torch."""
        out = self.array.argmax(axis=dim)
        if keepdim and dim is not None:
            out = backend.xp_of(out).expand_dims(out, dim)
        return _wrap(backend.xp_of(out).asarray(out, dtype=np.int64))

    # -- shape -------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops_shape.Reshape.apply(self, shape=tuple(int(n) for n in shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        shape = self.shape
        if not shape:
            return self.reshape(1)
        s, e = start_dim % len(shape), end_dim % len(shape)
        return self.reshape(*shape[:s], -1 if all(shape) else int(np.prod(shape[s:e + 1])), *shape[e + 1:])

    def permute(self, *dims):
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return ops_shape.Permute.apply(self, axes=tuple(dims))

    def transpose(self, dim0=-2, dim1=-1):
        """Swap two dimensions (torch semantics)."""
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return ops_shape.Permute.apply(self, axes=tuple(axes))

    @property
    def T(self):
        """All dimensions reversed (a 2-D transpose)."""
        return ops_shape.Permute.apply(self, axes=tuple(range(self.ndim - 1, -1, -1)))

    def __getitem__(self, index):
        return ops_index.getitem(self, index)

    def __setitem__(self, index, value):
        ops_index.setitem(self, index, value)


def reduce_axes(t, dim, axis, keepdim, keepdims):
    """Normalize torch-style (dim, keepdim) and numpy-style (axis, keepdims) to forward params."""
    if dim is not None and axis is not None:
        raise TypeError("pass dim or axis, not both")
    ax = dim if dim is not None else axis
    keep = bool(keepdim if keepdims is None else keepdims)
    if ax is None:
        return {"axis": None, "keepdims": keep}
    ax = (ax,) if isinstance(ax, (int, np.integer)) else tuple(ax)
    if not ax:  # dim=() reduces every dimension, as torch
        return {"axis": None, "keepdims": keep}
    nd = t.ndim
    norm = []
    for a in ax:
        if not -max(nd, 1) <= a < max(nd, 1):  # a 0-d tensor accepts dim 0 and -1, as torch
            raise IndexError(f"Dimension out of range (expected to be in range of [{-max(nd, 1)}, "
                             f"{max(nd, 1) - 1}], but got {a}) for a tensor of shape {t.shape}")
        norm.append(a % max(nd, 1))
    if len(set(norm)) != len(norm):
        raise RuntimeError(f"dim {norm[0]} appears multiple times in the list of dims {ax}")
    return {"axis": tuple(sorted(norm)), "keepdims": keep}


from . import backend, ops_index, ops_reduce, ops_shape  # noqa: E402  -- ops are built on Tensor
from . import tensor as _tensor  # noqa: E402  -- partly built while tensor.py imports this


def _wrap(array):
    return _tensor._wrap(array)

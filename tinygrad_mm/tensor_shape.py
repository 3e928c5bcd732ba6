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

    def amin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Minimum over axes; ties share the gradient equally (as torch.amin)."""
        return ops_reduce.Min.apply(self, **reduce_axes(self, dim, axis, keepdim, keepdims))

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As torch: with no dim the maximum (ties share the gradient); with an int dim a
        (values, indices) pair whose gradient goes to the returned index only (the first of ties)."""
        return self._extreme(dim, keepdim, axis, keepdims, self.amax, "argmax")

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As max, for the minimum."""
        return self._extreme(dim, keepdim, axis, keepdims, self.amin, "argmin")

    def _extreme(self, dim, keepdim, axis, keepdims, whole, arg):
        d = dim if dim is not None else axis
        if d is None or isinstance(d, tuple):
            return whole(dim, keepdim, axis=axis, keepdims=keepdims)
        kw = reduce_axes(self, dim, axis, keepdim, keepdims)
        ax = kw["axis"][0]
        if self.ndim and self.shape[ax] == 0:
            raise IndexError(f"{arg[3:]}(): Expected reduction dim {ax} to have non-zero size "
                             f"(shape {self.shape})")
        indices = getattr(self, arg)(ax, keepdim=True) if self.ndim else _wrap(self.array.argmax().reshape(()))
        values = ops_reduce.TakeAlong.apply(self, idx=indices.array, axis=ax, keepdims=kw["keepdims"])
        if not kw["keepdims"] and self.ndim:
            indices = _wrap(indices.array.squeeze(ax))
        return ops_reduce.MaxResult(values, indices)

    def argmax(self, dim=None, keepdim=False):
        """Indices of the maxima (an int64 tensor; not differentiable); ties pick the first, as torch."""
        return self._arg("argmax", dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        """Indices of the minima; ties pick the first, as torch."""
        return self._arg("argmin", dim, keepdim)

    def _arg(self, name, dim, keepdim):
        xp = backend.xp_of(self.array)
        if self.array.dtype.kind == "b":
            raise RuntimeError(f"{name}(): does not support bool input (convert with .long() or .float())")
        if dim is None:
            if self.array.size == 0:
                raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0")
            out = getattr(self.array, name)()
            return _wrap(xp.asarray(out, dtype=np.int64).reshape((1,) * self.ndim if keepdim else ()))
        ax = reduce_axes(self, dim, None, keepdim, None)["axis"][0]
        if not self.ndim:
            return _wrap(xp.zeros((), dtype=np.int64))
        if self.shape[ax] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {ax} to have non-zero size (shape {self.shape})")
        out = getattr(self.array, name)(axis=ax)
        if keepdim:
            out = xp.expand_dims(out, ax)
        return _wrap(xp.asarray(out, dtype=np.int64))

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
        """Variance with Bessel's correction by default (torch's unbiased=True, i.e. correction=1)."""
        return self._spread(ops_reduce.Var, dim, unbiased, keepdim, correction, axis, keepdims)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
        """Standard deviation with Bessel's correction by default, as torch (numpy's default is n)."""
        return self._spread(ops_reduce.Std, dim, unbiased, keepdim, correction, axis, keepdims)

    def _spread(self, op, dim, unbiased, keepdim, correction, axis, keepdims):
        if isinstance(dim, bool):  # t.std(False): the positional argument is unbiased, as torch
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise TypeError("pass unbiased or correction, not both")
        if self.array.dtype.kind != "f":
            raise RuntimeError(f"std and var only support floating point dtypes, got {self.dtype}")
        c = (1 if unbiased is None or unbiased else 0) if correction is None else correction
        return op.apply(self, correction=c, **reduce_axes(self, dim, axis, keepdim, keepdims))

    def norm(self, p="fro", dim=None, keepdim=False):
        """The vector p-norm over `dim` (all of it by default): p = 2 ("fro"), 1, 0, inf or any p >= 1."""
        p = 2.0 if p == "fro" else p
        if isinstance(p, str) or not (p in (0, float("inf")) or p >= 1):
            raise ValueError(f"norm: p={p!r} is not supported (use 'fro', 0, 1, 2, inf or a number >= 1)")
        if self.array.dtype.kind != "f":
            raise RuntimeError(f"norm(): input dtype should be floating point, got {self.dtype}")
        return ops_reduce.Norm.apply(self, p=float(p), **reduce_axes(self, dim, None, keepdim, None))

    # -- shape -------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops_shape.Reshape.apply(self, shape=tuple(int(n) for n in shape))

    def view(self, *shape):
        """reshape that shares memory, or refuses (as torch) where the layout would need a copy."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops_shape.Reshape.apply(self, shape=tuple(int(n) for n in shape), view=True)

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        shape = self.shape
        s, e = (reduce_axes(self, d, None, False, None)["axis"][0] for d in (start_dim, end_dim))
        if s > e:
            raise RuntimeError(f"flatten() has invalid args: start_dim ({start_dim}) cannot come after "
                               f"end_dim ({end_dim}) for a tensor of shape {shape}")
        if not shape:
            return self.reshape(1)
        return self.reshape(*shape[:s], -1 if all(shape) else int(np.prod(shape[s:e + 1])), *shape[e + 1:])

    def permute(self, *dims):
        if not dims:
            raise TypeError('permute() missing 1 required positional arguments: "dims"')
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return ops_shape.Permute.apply(self, axes=tuple(dims))

    def transpose(self, dim0=-2, dim1=-1):
        """Swap two dimensions (torch semantics)."""
        nd = max(self.ndim, 1)  # a 0-d tensor takes dims 0 and -1, as torch
        for d in (dim0, dim1):
            if not -nd <= d < nd:
                raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                                 f"but got {d}) for a tensor of shape {self.shape}")
        axes = list(range(self.ndim))
        if axes:
            axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return ops_shape.Permute.apply(self, axes=tuple(axes))

    @property
    def T(self):
        """All dimensions reversed (a 2-D transpose)."""
        return ops_shape.Permute.apply(self, axes=tuple(range(self.ndim - 1, -1, -1)))

    def t(self):
        """The transpose of a matrix; a 0-d or 1-d tensor is returned as is (as torch)."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self if self.ndim < 2 else self.transpose(0, 1)

    mT = property(lambda self: self.transpose(-2, -1), doc="The last two dimensions swapped.")

    def contiguous(self):
        return self

    def clone(self):
        """A copy with its own memory; gradients flow through it (as torch)."""
        return ops_select.Clone.apply(self)

    def squeeze(self, dim=None):
        """Drop size-1 dimensions (all, or those of `dim`: an int or a tuple); others stay, as torch."""
        if dim is None:
            dims = [d for d, n in enumerate(self.shape) if n == 1]
        else:
            dims = reduce_axes(self, dim, None, False, None)["axis"] or ()
            dims = [d for d in dims if self.ndim and self.shape[d] == 1]
        return self.reshape([n for d, n in enumerate(self.shape) if d not in dims])

    def unsqueeze(self, dim):
        nd = self.ndim + 1
        if not -nd <= dim < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                             f"but got {dim})")
        shape = list(self.shape)
        shape.insert(dim % nd, 1)
        return self.reshape(shape)

    def expand(self, *sizes):
        """A broadcast view to `sizes` (-1 keeps a dimension), as torch's expand."""
        sizes = _sizes(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or "
                               f"equal to the number of dimensions in the tensor ({self.ndim})")
        shape = []
        for i, n in enumerate(sizes):
            old = self.shape[i - lead] if i >= lead else None
            if n == -1:
                if old is None:
                    raise RuntimeError(f"expand: -1 is not allowed in a leading, non-existing dimension {i}")
                n = old
            if old is not None and old != 1 and old != n:
                raise RuntimeError(f"The expanded size of the tensor ({n}) must match the existing size "
                                   f"({old}) at non-singleton dimension {i}. Target sizes: {list(sizes)}. "
                                   f"Tensor sizes: {list(self.shape)}")
            shape.append(n)
        return ops_select.Expand.apply(self, shape=tuple(shape))

    def expand_as(self, other):
        return self.expand(other.shape)

    def repeat(self, *sizes):
        sizes = _sizes(sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of "
                               f"dimensions of tensor ({len(sizes)} < {self.ndim})")
        return ops_select.Repeat.apply(self, reps=sizes)

    def split(self, split_size, dim=0):
        """Pieces along `dim`: of `split_size` each (the last may be smaller), or of the listed sizes."""
        d = reduce_axes(self, dim, None, False, None)["axis"][0]
        n = self.shape[d]
        if isinstance(split_size, (list, tuple)):
            if sum(split_size) != n:
                raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                                   f"(input tensor's size at dimension {d}), but got split_sizes={list(split_size)}")
            sizes = list(split_size)
        else:
            if split_size <= 0 and n:
                raise RuntimeError(f"split expects split_size be non-negative, but got split_size={split_size}")
            sizes = [min(split_size, n - i) for i in range(0, n, split_size)] if n else [0]
        pre = (slice(None),) * d
        out, start = [], 0
        for k in sizes:
            out.append(self[pre + (slice(start, start + k),)])
            start += k
        return tuple(out)

    def unbind(self, dim=0):
        """The slices along `dim`, each without that dimension: torch.cat(torch.unbind(emb, 1), 1)."""
        d = reduce_axes(self, dim, None, False, None)["axis"][0]
        return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

    def chunk(self, chunks, dim=0):
        d = reduce_axes(self, dim, None, False, None)["axis"][0]
        if chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        n = self.shape[d]
        return self.split(-(-n // chunks), d) if n else self.split([0] * chunks, d)  # ceil(n / chunks) each

    def gather(self, dim, index):
        """out[i][j] = self[index[i][j]][j] for dim 0 (torch.gather); index is int64, never wrapped."""
        from .coerce import index_array
        d = reduce_axes(self, dim, None, False, None)["axis"]
        d = 0 if d is None else d[0]
        idx = index_array(self, index, "gather index")
        if idx.dtype != np.int64:
            raise RuntimeError(f"gather(): Expected dtype int64 for index, got {idx.dtype}")
        if idx.ndim != self.ndim and not (idx.ndim <= 1 and self.ndim <= 1):
            raise RuntimeError(f"Index tensor must have the same number of dimensions as input tensor "
                               f"({idx.ndim} vs {self.ndim})")
        x = self if self.ndim else self.reshape(1)
        idx = idx.reshape(idx.shape or (1,))
        for k, (m, n) in enumerate(zip(idx.shape, x.shape)):
            if k != d and m > n:
                raise RuntimeError(f"Size does not match at dimension {k} expected index {list(idx.shape)} "
                                   f"to be smaller than self {list(x.shape)} apart from dimension {d}")
        backend.check_index_range(idx, x.shape[d], f"gather(): index (dimension {d})")
        out = ops_select.Gather.apply(x, idx=idx, axis=d)
        return out if self.ndim or np.ndim(index) else out.reshape(())

    def __getitem__(self, index):
        return ops_index.getitem(self, index)

    def __setitem__(self, index, value):
        ops_index.setitem(self, index, value)


def _sizes(sizes):
    sizes = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    return tuple(int(n) for n in sizes)


from . import backend, ops_index, ops_reduce, ops_select, ops_shape  # noqa: E402  -- ops are built on Tensor
from . import tensor as _tensor  # noqa: E402  -- partly built while tensor.py imports this
from .coerce import reduce_axes  # noqa: E402


def _wrap(array):
    return _tensor._wrap(array)

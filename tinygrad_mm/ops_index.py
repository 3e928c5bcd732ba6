"""Indexing with torch's rules: gathering rows (C[X]), x[index], and x[index] = v.

torch applies integers and slices first (basic indexing: a view) and then the index
tensors to the dimensions that remain, so `x[0, :, idx]` has shape (x.shape[1], len(idx));
numpy would treat the 0 as a second index array and put the broadcast dimension first.
Here every index is split the same way: `basic` (ints, slices, None, ...) then `advanced`
(integer arrays, negative entries wrapped as torch wraps them, out-of-range refused on
numpy and cupy alike -- cupy would wrap silently).
"""
import numpy as np

from . import backend, kernels
from .backend import xp_of
from .coerce import index_array
from .function import Function
from .grad_mode import _state, mark_modified


class GatherRows(Function):
    """table[idx]: rows of a (num, dim) table gathered by an integer array of any shape."""
    torch_name = "IndexBackward0"

    def forward(self, table, idx, wrap=False):
        # checked here, in the op, so a compiled replay checks each call's ids too: numpy would
        # wrap a negative id and cupy wraps every out-of-range one, silently. wrap: C[X], where
        # negatives count from the end, as torch reads them (nn.Embedding refuses them)
        n = table.shape[0]
        if wrap:
            idx = wrap_negative(idx, n, "index", 0)
        else:
            backend.check_index_range(idx, n, "index")
        self.idx, self.n = idx, n
        return table[idx]            # (*idx.shape, dim)

    def backward(self, g):          # scatter-add: a row picked k times receives k contributions
        return kernels.scatter_add_rows(self.idx, g, self.n)


class Index(Function):
    """x[basic][advanced]: a view by ints and slices, then a gather by index arrays."""

    def grad_fn_name(self):  # torch names the node of the last step it applied
        if self.advanced is not None:
            return "IndexBackward0"
        steps = [i for i in self.basic if i is not Ellipsis and i != slice(None)]
        last = steps[-1] if steps else None
        return ("SliceBackward0" if isinstance(last, slice) else "UnsqueezeBackward0" if last is None and steps
                else "SelectBackward0" if steps else "AliasBackward0")

    def forward(self, x, basic, advanced):
        self.shape, self.basic, self.advanced = x.shape, basic, advanced
        v = x[basic]
        if advanced is None:
            return v
        self.view_shape = v.shape
        return v[advanced]

    def backward(self, g):          # route each output element back to where it was read
        if self.advanced is None:
            gx = xp_of(g).zeros(self.shape, dtype=g.dtype)
            gx[self.basic] = g
            return gx
        gv = kernels.scatter_add(self.view_shape, self.advanced, g)  # repeated entries accumulate
        if self.basic == ():
            return gv
        gx = xp_of(g).zeros(self.shape, dtype=g.dtype)
        gx[self.basic] = gv
        return gx


class IndexPut(Function):
    """x with v written at [basic][advanced] (out of place): x[index] = v on a recorded tensor."""
    torch_name = "CopySlices"
    broadcasts = True  # v broadcasts to the indexed region; the tape reduces its gradient

    def forward(self, x, v, basic, advanced):
        self.basic, self.advanced = basic, advanced
        out = x.copy()
        _region_assign(out, basic, advanced, v)
        return out

    def backward(self, g):          # x keeps the gradient outside the region; v gets the region's
        gx = gv = None
        if self.needs_input_grad[0]:
            gx = xp_of(g).array(g, copy=True)  # an array even when the tape hands a numpy scalar
            _region_assign(gx, self.basic, self.advanced, 0)
        if self.needs_input_grad[1]:
            gv = g[self.basic] if self.advanced is None else g[self.basic][self.advanced]
        return gx, gv


def _region_assign(out, basic, advanced, v):
    if advanced is None:
        out[basic] = v
    else:
        out[basic][advanced] = v  # out[basic] is a view, so this writes into out


def gather_rows(table, idx):
    """table[idx] for a 2-D table and an integer array: what C[X] and nn.Embedding use."""
    arr = index_array(table, idx, "row indices")
    if arr.dtype.kind == "b":
        return Index.apply(table, **split_index(table, (arr,)))
    return GatherRows.apply(table, idx=arr, wrap=True)


def getitem(x, index):
    """Tensor.__getitem__, one tape entry."""
    if x.ndim == 2 and not isinstance(index, tuple) and (hasattr(index, "dtype") or isinstance(index, list)):
        arr = index_array(x, index, "x[ix]")
        if arr.dtype.kind in "iu":  # C[X]: whole rows, the embedding gather's fast backward
            return GatherRows.apply(x, idx=arr, wrap=True)
    return Index.apply(x, **split_index(x, index))


def setitem(x, index, value):
    """Tensor.__setitem__: in place, recorded when x or value is (so gradients stay right)."""
    from .coerce import _constant, inplace_operands
    parts = split_index(x, index)
    v = _constant(value, x)
    if parts["advanced"] is None and _is_region(v.array, x.array[parts["basic"]]):
        return  # x[i] += 1 in Python: the view x[i] was already written in place; writing it back is a no-op
    if v.array.dtype != x.array.dtype:
        v = v.to(dtype=x.array.dtype)
    if _state.grad_enabled and (x.requires_grad or v.requires_grad):
        a, v = inplace_operands(x, v, "x[index] = v")
        x._write(IndexPut.apply(a, v, **parts), "x[index] = v")
        return
    _region_assign(x.array, parts["basic"], parts["advanced"], v.array)
    mark_modified(x.array, f"{x.short()} (x[index] = v)")


def _is_region(v, region):
    """Whether array v is exactly the memory of `region` (same start, shape and strides)."""
    if type(v) is not type(region) or v.shape != region.shape or v.strides != region.strides:
        return False
    ptr = (lambda a: a.ctypes.data) if isinstance(v, np.ndarray) else (lambda a: a.data.ptr)
    return ptr(v) == ptr(region)


def split_index(x, index):
    """An index as torch reads it: {"basic": ints/slices/None/Ellipsis, "advanced": arrays or None}."""
    if not isinstance(index, tuple):
        index = (index,)
    n_consuming = 0
    for i in index:
        if i is None or i is Ellipsis or _is_bool0(i):
            continue
        arr_like = hasattr(i, "dtype") and getattr(i, "ndim", 0) > 0 or isinstance(i, (list, range))
        if arr_like:
            a = index_array(x, i, "index")
            n_consuming += a.ndim if a.dtype.kind == "b" else 1
        else:
            n_consuming += 1
    if n_consuming > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim} (got {n_consuming}; shape {x.shape})")
    basic, advanced, dim, out_dim, any_adv = [], [], 0, 0, False
    for i in index:
        if i is None:
            basic.append(None)
            advanced.append(slice(None))
            out_dim += 1
        elif _is_bool0(i):  # x[True] / x[mask_0d]: a new axis of length 1 (or 0 when False), as numpy and torch
            basic.append(None)
            keep = bool(i.item() if hasattr(i, "item") else i)
            advanced.append(xp_of(x.array).arange(1 if keep else 0, dtype=np.int64))
            any_adv = True
            out_dim += 1
        elif i is Ellipsis:
            basic.append(Ellipsis)
            k = x.ndim - n_consuming
            advanced.extend([slice(None)] * k)
            dim += k
            out_dim += k
        elif isinstance(i, slice):
            basic.append(i)
            advanced.append(slice(None))
            dim += 1
            out_dim += 1
        elif _is_int(i):
            n = x.array.shape[dim]
            j = int(i)
            if not -n <= j < n:
                raise IndexError(f"index {j} is out of bounds for dimension {dim} with size {n}")
            basic.append(j)
            dim += 1
        else:
            arr = index_array(x, i, f"dimension {dim}")
            any_adv = True
            basic.append(slice(None))
            if arr.dtype.kind == "b":  # a mask covers as many dims as it has, as its nonzero() entries
                covered = x.shape[dim:dim + arr.ndim]
                if arr.shape != covered:
                    raise IndexError(f"The shape of the mask {list(arr.shape)} at index {dim} does not match "
                                     f"the shape of the indexed tensor {list(x.shape)} at index {dim}")
                advanced.extend(xp_of(arr).nonzero(arr))
                dim += arr.ndim
                out_dim += arr.ndim
            else:
                advanced.append(wrap_negative(arr, x.array.shape[dim], "index", dim))
                dim += 1
                out_dim += 1
    while advanced and isinstance(advanced[-1], slice) and advanced[-1] == slice(None):
        advanced.pop()
    if not any(b is Ellipsis for b in basic):
        basic.append(Ellipsis)  # x[0, ...] is a 0-d view where numpy's x[0] would copy a scalar out
    return {"basic": tuple(basic), "advanced": tuple(advanced) if any_adv else None}


def _is_bool0(i):
    if isinstance(i, (bool, np.bool_)):
        return True
    a = i.array if hasattr(i, "array") else i
    return hasattr(a, "dtype") and getattr(a, "ndim", 1) == 0 and a.dtype.kind == "b"


def _is_int(i):
    if isinstance(i, bool) or isinstance(i, np.bool_):
        return False
    if isinstance(i, (int, np.integer)):
        return True
    return hasattr(i, "dtype") and getattr(i, "ndim", 1) == 0 and i.dtype.kind in "iu"


def wrap_negative(arr, size, what, dim):
    """Entries in [-size, size) as torch reads them (negatives count from the end); others refused."""
    if arr.size == 0:
        return arr
    unsigned = backend.UNSIGNED.get(arr.dtype)
    if unsigned is not None and int(arr.view(unsigned).max()) < size:
        return arr  # the common case, one reduction: every entry is already in [0, size)
    bad = (arr < -size) | (arr >= size)
    if bool(bad.any()):
        first = int(arr[bad].ravel()[0])
        raise IndexError(f"{what} {first} is out of bounds for dimension {dim} with size {size}")
    return xp_of(arr).where(arr < 0, arr + size, arr)


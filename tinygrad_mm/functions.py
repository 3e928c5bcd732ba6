"""torch.* function forms (torch.tanh(x), torch.cat(...), torch.float32...) for lecture code.

Each is the Tensor method or one op; the dtype names are `dtype` objects that equal the numpy
dtypes the engine uses (`t.dtype == torch.float32` holds, and numpy accepts them anywhere).
"""
import builtins  # this module defines torch.float, torch.int, torch.max...: the builtins by name
from collections import namedtuple

import numpy as np

from . import backend
from . import dtypes as _dtypes
from .coerce import as_tensor, promote_all
from .ops_select import where  # noqa: F401 -- torch.where
from .tensor import Tensor, _wrap


float16 = half = _dtypes.float16
float32 = float = _dtypes.float32
float64 = double = _dtypes.float64
uint8, int8, int16 = _dtypes.uint8, _dtypes.int8, _dtypes.int16
int32 = int = _dtypes.int32
int64 = long = _dtypes.int64
bool = _dtypes.bool_  # noqa: A001 -- torch.bool; this module never needs the builtin
dtype, Size = _dtypes.dtype, _dtypes.Size


# -- elementwise and products: the Tensor methods --------------------------------------------
def tanh(x):
    return as_tensor(x).tanh()


def exp(x):
    return as_tensor(x).exp()


def log(x):
    return as_tensor(x).log()


def sqrt(x):
    return as_tensor(x).sqrt()


def abs(x):  # noqa: A001
    return as_tensor(x).abs()


def sigmoid(x):
    return as_tensor(x).sigmoid()


def relu(x):
    return as_tensor(x).relu()


def sin(x):
    return as_tensor(x).sin()


def cos(x):
    return as_tensor(x).cos()


def log2(x):
    return as_tensor(x).log2()


def log10(x):
    return as_tensor(x).log10()


def clamp(x, min=None, max=None):  # noqa: A002
    return x.clamp(min, max)


clip = clamp


def matmul(a, b):
    return as_tensor(a) @ b


# -- joining: dtypes promote across the inputs, as torch.cat does -----------------------------
def cat(tensors, dim=0):
    """Concatenate along an existing dimension (torch.cat); mixed dtypes promote."""
    from . import ops_shape
    tensors = promote_all(tensors, "cat")
    for i, t in enumerate(tensors):
        if not t.ndim:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    ref = next((t for t in tensors if t.shape != (0,)), None)
    if ref is not None and ref.ndim != 1:  # torch skips legacy empty (0,) tensors beside others
        d = dim % ref.ndim if -ref.ndim <= dim < ref.ndim else 0
        empty = ref.shape[:d] + (0,) + ref.shape[d + 1:]
        tensors = [t.reshape(empty) if t.shape == (0,) else t for t in tensors]
    return ops_shape.Cat.apply(*tensors, axis=dim)


def stack(tensors, dim=0):
    """Stack same-shaped tensors along a new dimension (torch.stack); mixed dtypes promote."""
    from . import ops_shape
    return ops_shape.Stack.apply(*promote_all(tensors, "stack"), axis=dim)


def unbind(x, dim=0):
    return x.unbind(dim)


# -- reductions and tests ---------------------------------------------------------------------
def all(x, dim=None, keepdim=False):  # noqa: A001
    return as_tensor(x).all(dim, keepdim)


def any(x, dim=None, keepdim=False):  # noqa: A001
    return as_tensor(x).any(dim, keepdim)


def sum(x, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    return x.sum(dim, keepdim, dtype=dtype)


def mean(x, dim=None, keepdim=False, *, dtype=None):
    return x.mean(dim, keepdim, dtype=dtype)


def max(x, dim=None, keepdim=False):  # noqa: A001
    if isinstance(dim, Tensor):
        raise TypeError("torch.max(a, b) (the elementwise maximum) is not supported; use torch.where(a > b, a, b)")
    return x.max(dim, keepdim)


def min(x, dim=None, keepdim=False):  # noqa: A001
    if isinstance(dim, Tensor):
        raise TypeError("torch.min(a, b) (the elementwise minimum) is not supported; use torch.where(a < b, a, b)")
    return x.min(dim, keepdim)


def argmax(x, dim=None, keepdim=False):
    return x.argmax(dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    return x.argmin(dim, keepdim)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return x.std(dim, unbiased, keepdim, correction=correction)


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return x.var(dim, unbiased, keepdim, correction=correction)


def norm(x, p="fro", dim=None, keepdim=False):
    return x.norm(p, dim, keepdim)


def numel(x):
    return x.numel()


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether |a - b| <= atol + rtol |b| everywhere (a Python bool); a and b must share a dtype, as torch."""
    a, b = as_tensor(a), as_tensor(b)
    if a.dtype != b.dtype:
        raise RuntimeError(f"allclose: {a.dtype} did not match {b.dtype}")
    xp = backend.xp_of(a.array)
    return builtins.bool(xp.allclose(a.array, b.array, rtol=rtol, atol=atol, equal_nan=equal_nan))



# -- making tensors -----------------------------------------------------------------------------
def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(builtins.int(n) for n in size)



def full(size, fill_value, dtype=None, device="cpu", requires_grad=False):
    """A tensor filled with one value; its dtype follows the value (float32, int64, bool), as torch."""
    if dtype is None:
        dtype = as_tensor(fill_value).dtype
    t = _wrap(backend.module_for(device).full(_shape((size,)) if isinstance(size, builtins.int) else _shape(size),
                                              fill_value, dtype=dtype))
    return t.requires_grad_(True) if requires_grad else t


def empty(*size, dtype=float32, device="cpu", requires_grad=False):
    """A new tensor (zero-filled here: an uninitialized one would make runs irreproducible)."""
    return full(_shape(size), 0, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    return full(x.shape, fill_value, dtype or x.dtype, device or x.device, requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad=False):
    return full_like(x, 0, dtype, device, requires_grad)


def eye(n, m=None, dtype=float32, device="cpu", requires_grad=False):
    t = _wrap(backend.module_for(device).eye(n, n if m is None else m, dtype=dtype))
    return t.requires_grad_(True) if requires_grad else t


def linspace(start, end, steps, dtype=float32, device="cpu", requires_grad=False):
    """`steps` values from start to end by torch's formula: each half counted from its own end.
    (torch's SIMD kernel counts each 8- or 16-wide block from its first element, so its values
    can differ from these in the last bit.)"""
    if steps < 0:
        raise RuntimeError(f"number of steps must be non-negative, got {steps}")
    dt = np.dtype(dtype)
    i = np.arange(steps)
    if dt.kind == "f":
        s, e = dt.type(start), dt.type(end)
        step = (e - s) / dt.type(builtins.max(steps - 1, 1))
        out = np.where(i < steps // 2, s + step * i.astype(dt), e - step * (steps - i - 1).astype(dt))
    else:
        step = (end - start) / builtins.max(steps - 1, 1)
        out = np.where(i < steps // 2, start + step * i, end - step * (steps - i - 1))
    out = np.asarray(out).astype(dt)
    if steps == 1:
        out[0] = start  # torch: a single step is the start
    t = _wrap(backend.to_device(out, device))
    return t.requires_grad_(True) if requires_grad else t


Histogram = namedtuple("Histogram", ["hist", "bin_edges"])  # what torch.histogram returns


def histogram(x, bins=100, *, range=None, weight=None, density=False):  # noqa: A002
    """(hist, bin_edges), both float tensors of x's dtype, as torch.histogram (CPU only in torch too)."""
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise RuntimeError(f"torch.histogram: input tensor and bins tensors should have the same dtype, "
                           f"and floating point, got {x.dtype}")
    a = backend.to_numpy(x.array).ravel()
    w = None if weight is None else backend.to_numpy(as_tensor(weight).array).ravel()
    if isinstance(bins, builtins.int):
        lo, hi = (a.min(), a.max()) if range is None and a.size else (range or (0.0, 0.0))
        lo, hi = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)  # one value: a unit-wide range, as numpy and torch
        edges = linspace(lo, hi, bins + 1, dtype=x.dtype).array
    else:
        edges = backend.to_numpy(as_tensor(bins).array).astype(x.dtype)
    hist, _ = np.histogram(a, bins=edges, weights=w)
    hist = hist.astype(x.dtype)
    if density:
        hist = hist / (hist.sum() * np.diff(edges))
    return Histogram(_wrap(hist.astype(x.dtype)), _wrap(edges))

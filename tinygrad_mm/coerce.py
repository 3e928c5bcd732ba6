"""The one place that turns "anything" into arrays and Tensors: data, operands, indices, devices.

- `to_array`: what Tensor(), tensor() and as_tensor() accept (lists, scalars, numpy and cupy arrays).
- `operands`: the two sides of a binary operator, promoted as torch.result_type promotes them.
- `index_array`: an integer index from a Tensor, array, list or range, on the indexed tensor's device.
"""
import numpy as np

from . import backend
from . import tensor as _tensor  # a partly built module while tensor.py imports its mixins

_F32, _I64, _BOOL = np.dtype("float32"), np.dtype("int64"), np.dtype("bool")
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def default_dtype(arr):
    """torch's dtype for data without one: float32 for floats, int64 for ints, bool for bools."""
    kind = arr.dtype.kind
    if kind == "f":
        return _F32
    if kind in "iu":
        return _I64
    if kind == "b":
        return _BOOL
    raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype} (numbers or bools only)")


def to_array(data, dtype=None, device=None, copy=False):
    """An array for a new tensor; lists and Python scalars take torch's default dtypes."""
    if isinstance(data, _tensor.Tensor):
        data = data.array
    if hasattr(data, "dtype") and hasattr(data, "shape") and not isinstance(data, np.generic):
        arr = backend.to_device(data, device or backend.device_of(data))
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        if copy and arr is data:
            arr = arr.copy()
        return arr
    if isinstance(data, np.generic):  # a numpy scalar keeps its dtype, as an array (not a scalar)
        arr = np.asarray(data)
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(x, _tensor.Tensor) for x in _flat(data)):
            data = [_host(x) for x in data]
        arr = np.asarray(data)
        if dtype is None:
            dtype = default_dtype(arr)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    xp = backend.module_for(device or "cpu")
    return xp.asarray(arr) if xp is not np else np.array(arr, copy=True) if copy else arr


def _flat(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _host(x):
    """Nested lists with Tensors in them, the Tensors as host arrays (for np.asarray)."""
    if isinstance(x, (list, tuple)):
        return [_host(v) for v in x]
    return host_array(x) if isinstance(x, _tensor.Tensor) else x


def host_array(x):
    """A numpy array with x's values: from a Tensor, a numpy/cupy array, a torch tensor, a list."""
    if isinstance(x, _tensor.Tensor):
        return backend.to_numpy(x.array)
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor (without importing torch)
        return x.detach().cpu().numpy()
    return backend.to_numpy(x) if hasattr(x, "dtype") and hasattr(x, "shape") else np.asarray(x)


def leaf_tensors(inputs):
    """Tensors as they are; arrays and lists as new leaves, requiring grad when floating point."""
    out = []
    for x in inputs:
        if isinstance(x, _tensor.Tensor):
            out.append(x)
        else:
            arr = np.asarray(x) if not hasattr(x, "dtype") else x
            out.append(_tensor.Tensor(arr, requires_grad=arr.dtype.kind == "f"))
    return out


def as_tensor(data, dtype=None, device=None):
    """A Tensor sharing memory with `data` when it is already an array of that dtype and device."""
    if isinstance(data, _tensor.Tensor):
        return data.to(device=device, dtype=dtype) if (device or dtype) else data
    return _tensor._wrap(to_array(data, dtype, device))


# -- binary operands ------------------------------------------------------------------------
def _scalar_dtype(x, against):
    """The dtype a Python/numpy scalar takes beside a tensor of dtype `against` (torch: 'wrapped
    numbers' do not raise the tensor's precision, only its category)."""
    if isinstance(x, bool):
        kind = "b"
    elif isinstance(x, np.bool_):  # torch reads a numpy bool as a float number (t_int + np.True_ is float32)
        kind = "f"
    elif isinstance(x, (int, np.integer)):
        kind = "i"
    elif isinstance(x, (float, np.floating)):
        kind = "f"
    else:
        raise TypeError(f"unsupported operand of type {type(x).__name__}")
    if _CATEGORY[kind] <= _CATEGORY[against.kind]:
        return against
    return {"b": _BOOL, "i": _I64, "f": _F32}[kind]


def result_type(a, b):
    """torch.result_type for two Tensors (0-d tensors rank below dimensioned ones)."""
    da, db = a.array.dtype, b.array.dtype
    if da == db:
        return da
    za, zb = a.array.ndim == 0, b.array.ndim == 0
    if za != zb:  # a 0-d tensor only lifts the category, never the precision, of a dimensioned one
        dim, zero = (db, da) if za else (da, db)
        if _CATEGORY[zero.kind] > _CATEGORY[dim.kind]:
            return zero
        return dim
    return _promote(da, db)


def _promote(da, db):
    ka, kb = _CATEGORY[da.kind], _CATEGORY[db.kind]
    if ka != kb:  # int with float: the float's dtype (numpy would widen int64 + float32 to float64)
        return da if ka > kb else db
    return np.promote_types(da, db)


def operands(a, b, true_divide=False):
    """Both operands as Tensors of one dtype (torch promotion), ready for a binary op."""
    T = _tensor.Tensor
    if type(a) is T and type(b) is T or isinstance(a, T) and isinstance(b, T):
        dt = a.array.dtype if a.array.dtype == b.array.dtype else result_type(a, b)
    elif isinstance(a, T):
        b = _constant(b, a, true_divide)
        dt = b.array.dtype if b.array.dtype == a.array.dtype else result_type(a, b)
    else:
        a = _constant(a, b, true_divide)
        dt = a.array.dtype if a.array.dtype == b.array.dtype else result_type(a, b)
    if true_divide and dt.kind != "f":
        dt = _F32  # torch: int / int is a float32 true division
    return _cast(a, dt), _cast(b, dt)


def promote_all(tensors, what):
    """Tensors for cat/stack in one dtype: torch.result_type folded over all of them."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise RuntimeError(f"{what}(): expected a non-empty list of Tensors")
    dt = tensors[0].array.dtype
    for t in tensors[1:]:
        if t.array.dtype != dt:
            dt = _promote(dt, t.array.dtype)
    return [_cast(t, dt) for t in tensors]


def _constant(x, like, true_divide=False):
    """A Python/numpy number or array as a constant tensor on `like`'s device.

    A number takes the dtype it will be computed in (torch casts wrapped numbers to the common
    dtype, wrapping integers: uint8 + (-1) is uint8 + 255), so it is converted once, here."""
    if isinstance(x, _tensor.Tensor):
        return x
    arr = like.array
    if hasattr(x, "dtype") and hasattr(x, "shape") and not isinstance(x, np.generic):  # an array
        if type(x) is not type(arr):
            x = backend.to_device(backend.to_numpy(x), backend.device_of(arr))
        return _tensor._wrap(x)
    if isinstance(x, (list, tuple)):
        return _tensor._wrap(to_array(x, device=backend.device_of(arr)))
    dt = _scalar_dtype(x, arr.dtype)
    if true_divide and dt.kind != "f":
        dt = _F32  # int / int divides in float32: convert -1 to -1.0, not to uint8's 255
    xp = backend.xp_of(arr)
    # 0-d and marked as a scalar by its dimensionality: result_type then ranks it below dimensioned tensors
    try:
        return _tensor._wrap(xp.asarray(x, dtype=dt))
    except OverflowError:  # a Python int outside the dtype's range: wrapped as C casts it, as torch does
        return _tensor._wrap(xp.asarray(np.asarray(x).astype(dt)))


def _cast(t, dtype):
    return t if t.array.dtype == dtype else t.to(dtype=dtype)


def _refuse_leaf(t, what):
    from .grad_mode import _state
    if t.requires_grad and t._entry is None and _state.grad_enabled:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation "
                           f"({what} on {t.short()}); wrap it in no_grad(), or write to .data")


def inplace_self(t, what):
    """t as the input of a one-operand in-place op (clamp_, copy_...): a snapshot keeping its
    history when recording, since the op's saved input must not be overwritten by the write."""
    from .grad_mode import _state
    _refuse_leaf(t, what)
    if not (_state.grad_enabled and t.requires_grad):
        return t
    a = _tensor._wrap(t.array.copy())
    a.requires_grad, a._entry = t.requires_grad, t._entry
    return a


def inplace_operands(t, other, what):
    """The operands of an in-place op on `t`: a snapshot of t (keeping its history) and other,
    in t's dtype. Refused before anything is written when t is a leaf that requires grad."""
    from .grad_mode import _state
    _refuse_leaf(t, what)
    a, b = operands(t, other)
    if a.array.dtype != t.array.dtype:
        if t.array.dtype.kind != "f" and a.array.dtype.kind == "f":
            raise RuntimeError(f"result type {a.array.dtype} can't be cast to the desired output type "
                               f"{t.array.dtype} ({what})")
        a, b = _cast(a, t.array.dtype), _cast(b, t.array.dtype)
    recording = _state.grad_enabled and (t.requires_grad or b.requires_grad)
    if recording and a is t:  # the op reads t's old values after they are overwritten: snapshot them
        a = _tensor._wrap(t.array.copy())
        a.requires_grad, a._entry = t.requires_grad, t._entry
    return a, b


def float_operand(t):
    """Integer tensors go to float32 for exp, log, tanh... (as torch); floats pass through."""
    return t if t.array.dtype.kind == "f" else t.to(dtype=_F32)


# -- indices and devices --------------------------------------------------------------------
def index_array(x, idx, what):
    """An integer index array on x's device from a Tensor, array, list or range."""
    arr = idx.array if isinstance(idx, _tensor.Tensor) else idx
    if isinstance(arr, range):
        arr = np.arange(arr.start, arr.stop, arr.step)
    if not hasattr(arr, "dtype"):
        arr = np.asarray(arr)
        if arr.size == 0:
            arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iub":
        raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors; "
                         f"got dtype {arr.dtype} ({what})")
    if type(arr) is not type(x.array):
        if isinstance(idx, _tensor.Tensor):
            raise RuntimeError(f"indices are on {idx.device} but the indexed tensor is on {x.device}")
        arr = backend.to_device(np.asarray(arr), x.device)
    return arr


def parse_to_args(args, device, dtype):
    """Tensor.to(device), .to(dtype), .to(tensor), .to(device, dtype), keywords too."""
    for a in args:
        if isinstance(a, _tensor.Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, str):
            device = a
        else:
            dtype = a
    if device is not None:
        device = str(device).split(":")[0]
        backend.module_for(device)
    return device, (None if dtype is None else np.dtype(dtype))


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

"""Tensor: one backend array, whether it needs a gradient, its gradient, and the entry that made it."""
import numpy as np

from . import backend
from . import ops, ops_shape
from . import tape as tape_module
from .tape import _state

_FLOATS = (np.dtype("float32"), np.dtype("float64"))


class Tensor:
    """An n-d array (numpy on "cpu", cupy on "cuda") that records the ops applied to it.

    `.data` is the raw array and `.grad` the accumulated gradient (an array of the same
    shape, or None), as in PyTorch: it accumulates across backward calls until you reset
    it with `t.grad = None` (or `module.zero_grad()`).
    """
    __slots__ = ("data", "requires_grad", "grad", "_node")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected op

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        data = _to_array(data, dtype, device)
        if requires_grad and data.dtype not in _FLOATS:
            raise TypeError(f"only float32/float64 tensors can require grad, got {data.dtype}")
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node = None

    # -- facts -------------------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape), doc="The shape, a tuple.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    dtype = property(lambda self: self.data.dtype, doc="The numpy dtype.")
    device = property(lambda self: backend.device_of(self.data), doc='"cpu" or "cuda".')
    is_leaf = property(lambda self: self._node is None, doc="Not produced by a recorded op.")
    op = property(lambda self: self._node, doc="The tape entry that produced this tensor, or None.")

    def size(self, dim=None):
        """The shape, or one dimension of it (as torch)."""
        return self.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return len(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.data.item()  # numpy and cupy both read one-element arrays of any shape

    def __float__(self):
        return float(self.item())

    def numpy(self):
        """The values as a numpy array (the array itself on cpu; a host copy from cuda)."""
        return backend.to_numpy(self.data)

    def tolist(self):
        return self.numpy().tolist()

    def short(self):
        """'tensor of shape (3, 4) float32 on cpu' -- for error messages."""
        return f"tensor of shape {self.shape} {self.dtype} on {self.device}"

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", precision=4, threshold=40, prefix="tensor(")
        extra = [f"dtype={self.dtype}"] if self.dtype not in (np.float32, np.int64) else []
        if self.device != "cpu":
            extra.append(f"device='{self.device}'")
        if self._node is not None:
            extra.append(f"op={type(self._node).__name__}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    # -- conversion --------------------------------------------------------------------
    def detach(self):
        """The same array, cut from the tape (shares memory)."""
        return _wrap(self.data)

    def requires_grad_(self, flag=True):
        """Mark a leaf as needing a gradient (in place); returns self."""
        if self._node is not None and not flag:
            raise RuntimeError("cannot clear requires_grad of a non-leaf tensor; use .detach()")
        if flag and self.data.dtype not in _FLOATS:
            raise TypeError(f"only float32/float64 tensors can require grad, got {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def to(self, device=None, dtype=None):
        """A copy on `device` and/or with `dtype` (a leaf; no history); self when neither changes."""
        data = self.data
        if device is not None:
            backend.module_for(device)
            data = backend.to_device(data, device)
        if dtype is not None:
            data = data.astype(dtype, copy=False)  # unchanged -> self, so x.float() keeps x's history
        if data is self.data:
            return self
        return Tensor(data, requires_grad=self.requires_grad and data.dtype in _FLOATS)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def long(self):
        return self.to(dtype=np.int64)

    # -- differentiation ---------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad by sweeping the tape in reverse."""
        tape = self._node.tape if self._node is not None else _state.tape
        tape.backward(self, grad, retain_graph)

    # -- arithmetic (each maps to one op; the tape reduces broadcast gradients) -----------
    def _const(self, x):
        """Wrap a Python/numpy constant in this tensor's dtype and device (never upcasts)."""
        if isinstance(x, Tensor):
            return x
        xp = backend.xp_of(self.data)
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            if isinstance(x, float) and self.data.dtype.kind != "f":
                raise TypeError(f"{self.dtype} tensor with the float {x}: the result would be truncated; "
                                "convert the tensor with .float() or .double() first")
            return _wrap(xp.asarray(x, dtype=self.data.dtype))
        arr = x if type(x) is type(self.data) else xp.asarray(x)
        return _wrap(arr)

    def __add__(self, other):
        return ops.Add.apply(self, self._const(other))

    def __radd__(self, other):
        return ops.Add.apply(self._const(other), self)

    def __sub__(self, other):
        return ops.Sub.apply(self, self._const(other))

    def __rsub__(self, other):
        return ops.Sub.apply(self._const(other), self)

    def __mul__(self, other):
        return ops.Mul.apply(self, self._const(other))

    def __rmul__(self, other):
        return ops.Mul.apply(self._const(other), self)

    def __truediv__(self, other):
        return ops.Div.apply(self, self._const(other))

    def __rtruediv__(self, other):
        return ops.Div.apply(self._const(other), self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor) or not np.isscalar(exponent):
            raise TypeError("pow takes a scalar exponent (x ** 2, x ** -0.5); "
                            f"got {type(exponent).__name__}")
        return ops.Pow.apply(self, exponent=float(exponent))

    def __matmul__(self, other):
        return ops.Matmul.apply(self, self._const(other))

    def __rmatmul__(self, other):
        return ops.Matmul.apply(self._const(other), self)

    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def tanh(self):
        return ops.Tanh.apply(self)

    def relu(self):
        return ops.Relu.apply(self)

    # -- reductions --------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Sum over `dim` (int, tuple, or all); torch's keepdim and numpy's keepdims both work."""
        return ops_shape.Sum.apply(self, **_axes(self, dim, axis, keepdim, keepdims))

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return ops_shape.Mean.apply(self, **_axes(self, dim, axis, keepdim, keepdims))

    def amax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Maximum over axes; ties share the gradient equally (as torch.amax)."""
        return ops_shape.Max.apply(self, **_axes(self, dim, axis, keepdim, keepdims))

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As torch: with no dim the maximum (ties share the gradient); with an int dim a
        (values, indices) pair whose gradient goes to the returned index only."""
        d = dim if dim is not None else axis
        if d is None or isinstance(d, tuple):
            return self.amax(dim, keepdim, axis=axis, keepdims=keepdims)
        kw = _axes(self, dim, axis, keepdim, keepdims)
        indices = self.argmax(kw["axis"][0], keepdim=True) if self.ndim else _wrap(self.data.argmax().reshape(()))
        values = ops_shape.TakeAlong.apply(self, idx=indices.data, axis=kw["axis"][0], keepdims=kw["keepdims"])
        if not kw["keepdims"] and self.ndim:
            indices = _wrap(indices.data.squeeze(kw["axis"][0]))
        return ops_shape.MaxResult(values, indices)

    def argmax(self, dim=None, keepdim=False):
        """Indices of the maxima (an int64 tensor; not differentiable)."""
        out = self.data.argmax(axis=dim)
        if keepdim and dim is not None:
            out = backend.xp_of(out).expand_dims(out, dim)
        return _wrap(out.astype(np.int64, copy=False))

    # -- shape -------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops_shape.Reshape.apply(self, shape=tuple(int(n) for n in shape))

    view = reshape

    def flatten(self, start_dim=0):
        return self.reshape(*self.shape[:start_dim], -1)

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
        return ops_shape.index(self, index)


def _axes(t, dim, axis, keepdim, keepdims):
    """Normalize torch-style (dim, keepdim) and numpy-style (axis, keepdims) to forward params."""
    if dim is not None and axis is not None:
        raise TypeError("pass dim or axis, not both")
    ax = dim if dim is not None else axis
    keep = bool(keepdim if keepdims is None else keepdims)
    if ax is None:
        return {"axis": None, "keepdims": keep}
    ax = (ax,) if isinstance(ax, (int, np.integer)) else tuple(ax)
    nd = t.ndim
    norm = []
    for a in ax:
        if not -max(nd, 1) <= a < max(nd, 1):  # a 0-d tensor accepts dim 0 and -1, as torch
            raise IndexError(f"axis {a} is out of range for a tensor of shape {t.shape}")
        norm.append(a % max(nd, 1))
    if len(set(norm)) != len(norm):
        raise ValueError(f"repeated axis in {ax}")
    return {"axis": tuple(sorted(norm)), "keepdims": keep}


def _wrap(data):
    """A Tensor around an array produced by an op (no checks, no copy): the hot path."""
    if type(data) is not np.ndarray and backend.device_of(data) == "cpu":
        data = np.asarray(data)  # numpy scalars from full reductions, Python numbers from custom ops
    t = Tensor.__new__(Tensor)
    t.data = data
    t.requires_grad = False
    t.grad = None
    t._node = None
    return t


tape_module._wrap = _wrap


def _to_array(data, dtype, device):
    """An array for Tensor(): lists and scalars default to float32 (floats) or int64 (ints)."""
    if isinstance(data, Tensor):
        data = data.data
    if device is None:
        device = backend.device_of(data) if hasattr(data, "dtype") and hasattr(data, "shape") else "cpu"
    xp = backend.module_for(device)
    if hasattr(data, "dtype") and hasattr(data, "shape"):
        arr = backend.to_device(data, device)
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return xp.array(arr, copy=True) if arr is data else arr
    arr = np.asarray(data)
    if dtype is None:
        if arr.dtype.kind == "f":
            dtype = np.float32
        elif arr.dtype.kind in "iu":
            dtype = np.int64
        elif arr.dtype.kind != "b":
            raise TypeError(f"cannot make a tensor from {type(data).__name__} with dtype {arr.dtype}")
    return xp.asarray(arr, dtype=dtype)

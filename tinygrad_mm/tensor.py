"""Tensor: one backend array, whether it needs a gradient, its gradient, and the entry that made it.

The engine works on raw arrays (`t.array`); `.data` and `.grad` are Tensors, as in torch,
so lecture code such as `p.data += -lr * p.grad` or `p.grad.std()` means what it means there.
The arithmetic, reductions and shape methods live in two mixins (tensor_math, tensor_shape).
"""
import numpy as np

from . import backend, inplace
from .dtypes import Size, torch_dtype
from .grad_mode import _state, log_modified
from .tensor_math import TensorMath
from .tensor_shape import TensorShape

_new = object.__new__
_FLOATS = (np.dtype("float16"), np.dtype("float32"), np.dtype("float64"))


class Tensor(TensorMath, TensorShape):
    """An n-d array (numpy on "cpu", cupy on "cuda") that records the ops applied to it.

    `.array` is the raw array the engine computes with (shared, not copied). `.data` is the
    same values as a Tensor without history (writing into it changes this tensor, and is not
    recorded: a gradient computed from values changed that way is silently stale, as in torch).
    `.grad` is the accumulated gradient, a Tensor or None: it accumulates across backward
    calls until reset with `t.grad = None` (or `module.zero_grad()`).
    """
    __slots__ = ("array", "requires_grad", "_grad", "_entry", "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected op

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        from .coerce import to_array  # coerce is a floor above: it knows Tensor
        array = to_array(data, dtype, device, copy=True)
        if requires_grad and array.dtype not in _FLOATS:
            raise TypeError(f"only floating point tensors can require grad, got {array.dtype}")
        self.array = array
        self.requires_grad = bool(requires_grad)
        self._grad = None
        self._entry = None

    # -- facts -------------------------------------------------------------------------
    shape = property(lambda self: Size(self.array.shape), doc="The shape, a tuple (torch.Size).")
    ndim = property(lambda self: self.array.ndim, doc="Number of dimensions.")
    dtype = property(lambda self: torch_dtype(self.array.dtype), doc="The dtype (numpy's, spelled as torch's).")
    device = property(lambda self: backend.device_of(self.array), doc='"cpu" or "cuda".')
    is_leaf = property(lambda self: self._entry is None, doc="Not produced by a recorded op.")
    entry = property(lambda self: self._entry, doc="The tape entry that produced this tensor, or None.")
    grad_fn = entry  # torch's name for the same thing
    is_cuda = property(lambda self: self.device == "cuda")

    def size(self, dim=None):
        """The shape, or one dimension of it (as torch)."""
        return self.shape if dim is None else self.array.shape[dim]

    def numel(self):
        return int(self.array.size)

    nelement = numel

    def dim(self):
        return self.array.ndim

    def element_size(self):
        return self.array.itemsize

    def __len__(self):
        if not self.array.ndim:
            raise TypeError("len() of a 0-d tensor")
        return len(self.array)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise RuntimeError(f"a Tensor with {self.array.size} elements cannot be converted to a Scalar "
                               f"(item() needs one element, got shape {tuple(self.array.shape)})")
        return self.array.item()  # numpy and cupy both read one-element arrays of any shape

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.array.dtype.kind not in "iu" or self.array.size != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an index, "
                            f"got {self.short()}")
        return int(self.item())

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous "
                               f"(shape {self.shape}); use .any() or .all()")
        return bool(self.item())

    def numpy(self):
        """The values as a numpy array (the array itself on cpu; a host copy from cuda)."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                               "instead (or .array for the raw array)")
        return backend.to_numpy(self.array)

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.array)
        return a if dtype is None else a.astype(dtype, copy=False)

    def tolist(self):
        return backend.to_numpy(self.array).tolist()

    def short(self):
        """'tensor of shape (3, 4) float32 on cpu' -- for error messages."""
        return f"tensor of shape {tuple(self.array.shape)} {self.array.dtype} on {self.device}"

    def __format__(self, spec):
        """A 0-d tensor formats as its number, as torch (f"{loss:.4f}"); others as their repr."""
        if self.array.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __repr__(self):
        from .tensor_print import format_tensor  # printing is a floor above
        return format_tensor(self)

    def _repr_html_(self):  # Jupyter: the values, then a picture of the history (None for a leaf)
        from .tape_draw import tensor_html
        return tensor_html(self)

    __hash__ = object.__hash__  # __eq__ is elementwise (as torch); tensors still key dicts by identity

    # -- data and grad, as torch --------------------------------------------------------
    @property
    def data(self):
        """The values as a Tensor without history, sharing memory with this one (writes into it
        are not version-logged: as in torch, a saved array changed that way is used as it is)."""
        t = _wrap(self.array)
        t.__class__ = _DataAlias
        return t

    @data.setter
    def data(self, value):
        """Replace the values (not recorded): a Tensor of the same kind, or an array."""
        array = value.array if isinstance(value, Tensor) else value
        if not hasattr(array, "dtype"):
            raise TypeError(f"data must be a Tensor or an array, got {type(value).__name__}")
        self.array = array

    @property
    def grad(self):
        """The accumulated gradient (a Tensor like this one), or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                if not hasattr(value, "dtype"):
                    raise TypeError(f"assigned grad expected to be a Tensor or None but got {type(value).__name__}")
                value = _wrap(value)
            if value.shape != self.shape:
                raise RuntimeError(f"assigned grad has data of a different size: {value.shape} "
                                   f"for a tensor of shape {self.shape}")
            if value.dtype != self.dtype or type(value.array) is not type(self.array):
                raise TypeError(f"assigned grad is {value.dtype} on {value.device}, the tensor is "
                                f"{self.dtype} on {self.device}")
            if _state.capture is not None and value is not self._grad:  # tg.compile replays .grad = None
                _state.capture.grad_assigned(self)  # (and p.grad *= c, which hands .grad itself back), no other
        self._grad = value
        if value is None and _state.capture is not None:  # tg.compile replays the reset here
            _state.capture.observe(self)

    # -- conversion --------------------------------------------------------------------
    def detach(self):
        """The same array, cut from the tape (shares memory)."""
        return _wrap(self.array)

    def detach_(self):
        self._entry = None
        self.requires_grad = False
        return self

    def requires_grad_(self, flag=True):
        """Mark a leaf as needing a gradient (in place); returns self."""
        if self._entry is not None and not flag:
            raise RuntimeError("you can only change requires_grad flags of leaf variables; use .detach()")
        if flag and self.array.dtype not in _FLOATS:
            raise TypeError(f"only floating point tensors can require grad, got {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self):
        """Keep this non-leaf's gradient in .grad after backward (as torch)."""
        if self._entry is None:
            return self
        self._entry.retains = self  # a cycle (tensor -> entry -> tensor) until the entry is freed
        return self

    def to(self, *args, device=None, dtype=None, copy=False):
        """A tensor on `device` and/or with `dtype`; self when neither changes.

        Changing the dtype is recorded (the gradient flows back, cast to the input's dtype);
        moving between devices makes a leaf on the new device, as in this engine no op spans two.
        """
        from .coerce import parse_to_args
        device, dtype = parse_to_args(args, device, dtype)
        out = self
        if dtype is not None and np.dtype(dtype) != self.array.dtype:
            if np.dtype(dtype).kind == "f":
                from . import ops
                out = ops.Cast.apply(self, dtype=np.dtype(dtype))
            else:  # an integer or bool result has no gradient (as torch)
                out = _wrap(self.array.astype(dtype))
        if device is not None and backend.device_of(out.array) != device:
            backend.module_for(device)
            moved = _wrap(backend.to_device(out.array, device))
            moved.requires_grad = out.requires_grad and out.is_leaf
            out = moved
        if copy and out is self:
            out = self.clone()
        return out

    def type(self, dtype=None):
        return str(self.dtype) if dtype is None else self.to(dtype=dtype)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def half(self):
        return self.to(dtype=np.float16)

    def long(self):
        return self.to(dtype=np.int64)

    def int(self):
        return self.to(dtype=np.int32)

    def bool(self):
        return self.to(dtype=np.bool_)

    # -- differentiation ---------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False, grad=None):
        """Accumulate d(self)/d(leaf) into every leaf's .grad by sweeping the tape in reverse."""
        tape = self._entry.tape if self._entry is not None else _state.tape
        tape.backward(self, gradient if grad is None else grad, retain_graph)

    # -- in place, as torch: recorded, and checked against saved arrays -----------------
    def _write(self, result, what, chain=None):
        """Write `result`'s values into this tensor's memory and take over its history.

        A recorded write into a view (x[0], x.T, x.view(...)) also rebases the base tensor's
        history, as torch's CopySlices does (inplace.py), so every gradient stays right."""
        if self.requires_grad and self._entry is None and _state.grad_enabled:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation "
                               f"({what} on {self.short()}); wrap it in no_grad(), or write to .data")
        recorded = result._entry is not None
        if recorded and chain is None:
            chain = inplace.prepare(self, what) if self._entry is not None else ()
        array = self.array
        if result.array is not array:
            if result.array.shape != array.shape:
                raise RuntimeError(f"output with shape {array.shape} doesn't match the broadcast shape "
                                   f"{tuple(result.array.shape)} ({what})")
            if result.array.dtype != array.dtype and array.dtype.kind in "iub" and result.array.dtype.kind == "f":
                raise RuntimeError(f"result type {result.array.dtype} can't be cast to the desired output "
                                   f"type {array.dtype} ({what})")
            array[...] = result.array
        logged = type(self) is not _DataAlias
        if _state.capture is not None:  # tg.compile replays an unrecorded write as a copy
            _state.capture.write(array, result.array, recorded, f"{self.short()} ({what})", logged)
        if logged:
            log_modified(array, f"{self.short()} ({what})")
        if recorded:
            if self._entry is not None:
                inplace.retarget(self)
            result._entry.out_shape = array.shape
            self._entry = result._entry
            self.requires_grad = True
            if chain:
                base, fn = chain[0]
                base._write(inplace.rebased(self, base, fn), what, chain[1:])
        return self


class _DataAlias(Tensor):
    """What `.data` returns: a Tensor whose in-place writes are not version-logged (as torch)."""
    __slots__ = ()


def _wrap(array):
    """A Tensor around an array produced by an op (no checks, no copy): the hot path."""
    if type(array) is not np.ndarray and backend.device_of(array) == "cpu":
        array = np.asarray(array)  # numpy scalars from full reductions, Python numbers from custom ops
    t = _new(Tensor)
    t.array = array
    t.requires_grad = False
    t._grad = t._entry = None
    return t

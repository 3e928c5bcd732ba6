"""Tensor arithmetic: operators, elementwise functions and their in-place forms, each one op.

Binary operators promote their operands' dtypes as torch.result_type does (coerce.operands),
then run one op on same-dtype arrays; the tape reduces broadcast gradients in one place.
"""
import numpy as np


class TensorMath:
    """Mixed into Tensor: +, -, *, /, **, @, comparisons, and elementwise functions."""
    __slots__ = ()

    def __add__(self, other):
        return ops.Add.apply(*operands(self, other))

    def __radd__(self, other):
        return ops.Add.apply(*operands(other, self))

    def __sub__(self, other):
        a, b = operands(self, other)
        if a.array.dtype.kind == "b" or self.array.dtype.kind == "b" or _is_bool(other):
            _refuse_bool_sub()
        return ops.Sub.apply(a, b)

    def __rsub__(self, other):
        a, b = operands(other, self)
        if a.array.dtype.kind == "b" or self.array.dtype.kind == "b" or _is_bool(other):
            _refuse_bool_sub()
        return ops.Sub.apply(a, b)

    def __mul__(self, other):
        return ops.Mul.apply(*operands(self, other))

    def __rmul__(self, other):
        return ops.Mul.apply(*operands(other, self))

    def __truediv__(self, other):
        return ops.Div.apply(*operands(self, other, true_divide=True))

    def __rtruediv__(self, other):
        return ops.Div.apply(*operands(other, self, true_divide=True))

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        if isinstance(exponent, (int, float, np.integer, np.floating)) and not isinstance(exponent, bool):
            p = exponent.item() if hasattr(exponent, "item") else exponent
            x = self if isinstance(p, int) else float_operand(self)  # int ** 0.5 is float32, as torch
            if x.array.dtype.kind == "b":
                x = x.to(dtype=np.int64)  # bool ** 2 is int64, as torch.result_type(bool, 2)
            return ops.Pow.apply(x, exponent=p)
        if isinstance(exponent, bool) and self.array.dtype.kind == "b":  # torch: bool ** True is bool
            return _wrap(self.array.copy() if exponent else _xp(self).ones_like(self.array))
        if isinstance(exponent, bool):  # a number to torch too, but its zero-exponent shortcut misses False
            return ops.Pow.apply(self, exponent=int(exponent), from_bool=True)
        return _pow_tensor(*operands(self, exponent))

    def __rpow__(self, base):
        return _pow_tensor(*operands(base, self))

    def __matmul__(self, other):
        _same_dtype_matmul(self, other)
        return ops.Matmul.apply(*operands(self, other))

    def __rmatmul__(self, other):
        _same_dtype_matmul(other, self)
        return ops.Matmul.apply(*operands(other, self))

    # -- in place: computed out of place and recorded, then written into this tensor's memory --
    def _inplace(self, op, other, what):
        a, b = inplace_operands(self, other, what)
        return self._write(op.apply(a, b), what)

    def __iadd__(self, other):
        return self._inplace(ops.Add, other, "+=")

    def __isub__(self, other):
        if self.array.dtype.kind == "b" or _is_bool(other):
            _refuse_bool_sub()
        return self._inplace(ops.Sub, other, "-=")

    def __imul__(self, other):
        return self._inplace(ops.Mul, other, "*=")

    def __itruediv__(self, other):
        return self._inplace(ops.Div, other, "/=")

    def add_(self, other, alpha=1):
        return self._inplace(ops.Add, other if alpha == 1 else other * alpha, "add_")

    def sub_(self, other, alpha=1):
        return self.__isub__(other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return self._inplace(ops.Mul, other, "mul_")

    def div_(self, other):
        return self._inplace(ops.Div, other, "div_")

    def add(self, other, alpha=1):
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, alpha=1):
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def pow(self, exponent):
        return self ** exponent

    def matmul(self, other):
        return self @ other

    # -- comparisons: elementwise, bool tensors, never recorded (as torch) ----------------
    def _compare(self, other, ufunc):
        a, b = operands(self, other)
        return _wrap(ufunc(a.array, b.array))

    def __eq__(self, other):
        if other is None:
            return False
        return self._compare(other, _xp(self).equal)

    def __ne__(self, other):
        if other is None:
            return True
        return self._compare(other, _xp(self).not_equal)

    def __lt__(self, other):
        return self._compare(other, _xp(self).less)

    def __le__(self, other):
        return self._compare(other, _xp(self).less_equal)

    def __gt__(self, other):
        return self._compare(other, _xp(self).greater)

    def __ge__(self, other):
        return self._compare(other, _xp(self).greater_equal)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def all(self, dim=None, keepdim=False):
        return _wrap(_xp(self).asarray(self.array.astype(bool).all(axis=dim, keepdims=keepdim)))

    def any(self, dim=None, keepdim=False):
        return _wrap(_xp(self).asarray(self.array.astype(bool).any(axis=dim, keepdims=keepdim)))

    # -- elementwise functions -----------------------------------------------------------
    def exp(self):
        return ops.Exp.apply(float_operand(self))

    def log(self):
        return ops.Log.apply(float_operand(self))

    def tanh(self):
        return ops.Tanh.apply(float_operand(self))

    def relu(self):
        return ops.Relu.apply(self)

    def abs(self):
        return ops_unary.Abs.apply(self)

    __abs__ = abs

    def sqrt(self):
        return ops_unary.Sqrt.apply(float_operand(self))

    def sigmoid(self):
        return ops_unary.Sigmoid.apply(float_operand(self))

    def sin(self):
        return ops_unary.Sin.apply(float_operand(self))

    def cos(self):
        return ops_unary.Cos.apply(float_operand(self))

    def log2(self):
        return ops_unary.Log2.apply(float_operand(self))

    def log10(self):
        return ops_unary.Log10.apply(float_operand(self))

    def exp2(self):
        return ops_unary.Exp2.apply(float_operand(self))

    def clamp(self, min=None, max=None):
        """Values limited to [min, max] (Python numbers); the gradient passes inside and at the bounds."""
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        for b in (min, max):
            if b is not None and not isinstance(b, (int, float, np.integer, np.floating)):
                raise TypeError(f"clamp bounds must be numbers here, got {type(b).__name__} "
                                "(tensor bounds: use torch.where)")
        x = self if all(b is None or isinstance(b, (int, np.integer)) for b in (min, max)) else float_operand(self)
        return ops_unary.Clamp.apply(x, lo=min, hi=max)

    clip = clamp

    def where(self, condition, other):
        """self where condition holds, else other (torch's x.where(cond, y))."""
        from .ops_select import where
        return where(condition, self, other)

    def masked_fill(self, mask, value):
        """A copy with `value` where the bool `mask` (broadcast to self) is True; self's dtype."""
        from .ops_select import where
        v = value.to(dtype=self.dtype) if isinstance(value, _tensor.Tensor) else \
            _wrap(_xp(self).asarray(value, dtype=self.dtype))
        if v.ndim:
            raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but got tensor "
                               f"with {v.ndim} dimension(s)")
        out = where(mask, v, self)
        if out.shape != self.shape:
            raise RuntimeError(f"masked_fill: the mask of shape {tuple(mask.shape)} does not broadcast "
                               f"to the tensor's shape {self.shape}")
        return out

    # -- in place, whole-tensor writes ----------------------------------------------------
    def masked_fill_(self, mask, value):
        return self._write(inplace_self(self, "masked_fill_").masked_fill(mask, value), "masked_fill_")

    def clamp_(self, min=None, max=None):
        return self._write(inplace_self(self, "clamp_").clamp(min, max), "clamp_")

    def copy_(self, src):
        """Write src's values (broadcast, converted to self's dtype) into self; recorded as torch does."""
        from . import ops_select
        src = as_tensor(src, device=self.device)
        src = src if src.dtype == self.dtype else src.to(dtype=self.dtype)
        old = inplace_self(self, "copy_")  # the old values get no gradient, src gets all of it
        return self._write(ops_select.Where.apply(src, old, cond=_xp(self).ones((), dtype=bool)), "copy_")

    def fill_(self, value):
        return self.copy_(_wrap(_xp(self).asarray(value.array if isinstance(value, _tensor.Tensor) else value)))

    def zero_(self):
        return self.fill_(0)

    # -- new tensors like this one ---------------------------------------------------------
    def type_as(self, other):
        return self.to(dtype=other.dtype)

    def new_tensor(self, data, dtype=None):
        return _tensor.Tensor(data, dtype=dtype or self.dtype, device=self.device)

    def new_full(self, size, fill_value, dtype=None):
        shape = (size,) if isinstance(size, int) else tuple(size)
        return _wrap(_xp(self).full(shape, fill_value, dtype=dtype or self.dtype))

    def new_zeros(self, *size, dtype=None):
        return self.new_full(size[0] if len(size) == 1 else size, 0, dtype)

    def new_ones(self, *size, dtype=None):
        return self.new_full(size[0] if len(size) == 1 else size, 1, dtype)

    new_empty = new_zeros


from . import ops, ops_unary  # noqa: E402  -- ops are built on Tensor, which this class is part of
from . import tensor as _tensor  # noqa: E402  -- partly built while tensor.py imports this
from .backend import xp_of  # noqa: E402


def _is_bool(x):
    return isinstance(x, bool) or isinstance(x, _tensor.Tensor) and x.array.dtype.kind == "b"


def _refuse_bool_sub():
    raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
                       "trying to invert a mask, use the `~` or `logical_not()` operator instead.")


def _same_dtype_matmul(a, b):
    """torch's matmul does not promote: float32 @ float64 is an error there, so here too."""
    da = getattr(getattr(a, "array", a), "dtype", None)  # the arrays' numpy dtypes: a cheap compare
    db = getattr(getattr(b, "array", b), "dtype", None)
    if da is not None and db is not None and da != db:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {da} != {db}")


def _pow_tensor(a, b):
    if a.array.dtype.kind == "b":
        raise NotImplementedError('"pow" not implemented for bool tensors (torch refuses bool ** bool)')
    return ops.PowTensor.apply(a, b)


def _xp(t):
    return xp_of(t.array)


def _wrap(array):
    return _tensor._wrap(array)
from .coerce import as_tensor, float_operand, inplace_operands, inplace_self, operands  # noqa: E402

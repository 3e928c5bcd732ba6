"""softmax, log_softmax and sigmoid as fused ops (forward beside its derivative); relu and tanh.

softmax and log_softmax are one tape entry each and stable for any finite input: exp() only
ever sees x - max <= 0. A -inf entry is an impossible class (probability 0, log-probability
-inf). As torch: a 0-d input is its own one-element distribution (softmax 1, log_softmax 0),
and an input with a size-0 dimension gives an empty result.
"""
import warnings

import numpy as np

from .. import ops
from ..backend import xp_of
from ..coerce import float_operand
from ..function import Function


def _stable_exp(x, axis, m=None):
    """exp(x - max) and the max: the shift keeps exp() in [0, 1], so nothing overflows."""
    xp = xp_of(x)
    if m is None:
        m = x.max(axis=axis, keepdims=True)
    e = x - m
    xp.exp(e, out=e)
    return e, m


class Softmax(Function):
    def forward(self, x, axis=-1):
        self.shape = x.shape
        if x.size == 0:                     # nothing to normalize (and max() of nothing raises)
            self.y = x
            return x.copy()
        y, _ = _stable_exp(x.reshape(-1) if x.ndim == 0 else x, axis)
        y /= y.sum(axis=axis, keepdims=True)
        self.y, self.axis = y, axis
        return y.reshape(self.shape)

    def backward(self, g):          # dy_i/dx_j = y_i (δ_ij - y_j)  =>  y * (g - <g, y>)
        if g.size == 0:
            return g.copy()
        y = self.y
        g = g.reshape(y.shape)
        return (y * (g - (g * y).sum(axis=self.axis, keepdims=True))).reshape(self.shape)


class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        self.shape = x.shape
        if x.size == 0:
            self.p = x
            return x.copy()
        x = x.reshape(-1) if x.ndim == 0 else x
        xp = xp_of(x)
        e, m = _stable_exp(x, axis)
        s = e.sum(axis=axis, keepdims=True)
        # (x - max) - log(s), in torch's order: x - (max + log s) would round max + log s to the
        # spacing of max (1e-3 at logits ~1e4 in float32) before the subtraction
        out = (x - m) - xp.log(s)
        e /= s
        self.p, self.axis = e, axis              # softmax, saved for backward
        return out.reshape(self.shape)

    def backward(self, g):          # d(x_i - lse)/dx_j = δ_ij - p_j  =>  g - p * sum(g)
        if g.size == 0:
            return g.copy()
        g = g.reshape(self.p.shape)
        return (g - self.p * g.sum(axis=self.axis, keepdims=True)).reshape(self.shape)


class Sigmoid(Function):
    def forward(self, x):
        xp = xp_of(x)
        with np.errstate(over="ignore"):         # exp(-x) = inf for x << 0 gives 1/inf = 0, as wanted
            self.y = y = 1 / (1 + xp.exp(-x))    # torch's formula, so its rounding too
        return y.astype(x.dtype, copy=False)

    def backward(self, g):          # dσ/dx = σ (1 - σ); torch's order of the products
        return g * (1 - self.y) * self.y


def softmax_dim(name, ndim, dim, stacklevel=3):
    """The dimension softmax-like functions reduce: `dim`, checked; None is torch's deprecated
    implicit choice (with its warning): dim 0 for 0-, 1- and 3-d inputs, else dim 1."""
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                      "include dim=X as an argument.", UserWarning, stacklevel=stacklevel)
        return 0 if ndim in (0, 1, 3) else 1
    n = max(ndim, 1)                    # a 0-d tensor accepts dim 0 and -1, as torch
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n if ndim else -1


def _softmax_input(x, dtype, name):
    if dtype is not None:
        x = x.to(dtype=dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"{name} needs a floating point tensor, got {x.dtype}; pass dtype= or call .float()")
    return x


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """torch.nn.functional.softmax: exp(x) / sum(exp(x)) along `dim`, one tape entry."""
    dim = softmax_dim("softmax", input.ndim, dim, _stacklevel)
    return Softmax.apply(_softmax_input(input, dtype, "softmax"), axis=dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """torch.nn.functional.log_softmax: x - logsumexp(x) along `dim`, one tape entry."""
    dim = softmax_dim("log_softmax", input.ndim, dim, _stacklevel)
    return LogSoftmax.apply(_softmax_input(input, dtype, "log_softmax"), axis=dim)


def sigmoid(input):
    """torch.sigmoid: 1 / (1 + exp(-x)), computed without overflow; integers become float32."""
    return Sigmoid.apply(float_operand(input))


def relu(input, inplace=False):
    """torch.nn.functional.relu: max(x, 0); inplace=True writes into `input` (recorded, as torch)."""
    if not inplace:
        return ops.Relu.apply(input)
    src = input.detach()                # the old values and history, without a copy: Relu saves only
    src.requires_grad, src._entry = input.requires_grad, input._entry   # its mask, never x
    return input._write(ops.Relu.apply(src), "relu_")


def tanh(input):
    """torch.tanh; integers become float32."""
    return ops.Tanh.apply(float_operand(input))

"""Elementwise ops, matmul and the fused linear layer: each forward beside its local derivative.

Every backward works on raw arrays and returns one gradient per input. Binary
elementwise ops set `broadcasts = True` and return output-shaped gradients: the tape
reduces them over broadcast dimensions in one place (sweep.fit_gradient).
Where a kernels.* call stands in for a numpy one, its docstring gives the plain version. A backward
never writes into `g` or into what forward saved; it only mutates arrays it just made.
"""
import math

import numpy as np

from . import kernels, side_thread
from .backend import xp_of
from .function import Function


# -- binary elementwise (broadcasting) -----------------------------------------------------
class Add(Function):
    broadcasts = True

    def forward(self, a, b):
        return a + b

    def backward(self, g):          # d(a+b)/da = 1, d(a+b)/db = 1
        return g, g


class Sub(Function):
    broadcasts = True

    def forward(self, a, b):
        return a - b

    def backward(self, g):          # d(a-b)/da = 1, d(a-b)/db = -1
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    broadcasts = True

    def forward(self, a, b):
        na, nb = self.needs_input_grad  # save only what backward reads (as torch): an operand
        self.a = a if nb else None      # written in place later matters only if it was saved
        self.b = b if na else None
        return a * b

    def backward(self, g):          # d(ab)/da = b, d(ab)/db = a
        na, nb = self.needs_input_grad
        return (g * self.b if na else None), (g * self.a if nb else None)


class Div(Function):
    broadcasts = True

    def forward(self, a, b):
        self.b = b
        self.out = a / b
        return self.out

    def backward(self, g):          # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -out/b
        na, nb = self.needs_input_grad
        ga = g / self.b if na else None
        gb = -(g * self.out) / self.b if nb else None
        return ga, gb


# -- unary elementwise ---------------------------------------------------------------------
class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):          # d(-x)/dx = -1
        return -g


class Pow(Function):
    def forward(self, x, exponent, from_bool=False):
        if x.dtype.kind in "iu":    # a float exponent would silently make int ** 2 a float64
            if not float(exponent).is_integer():
                raise TypeError(f"{x.dtype} tensor ** {exponent}: the result would not be an integer; "
                                "convert the tensor with .float() or .double() first")
            exponent = int(exponent)
        self.x, self.p, self.from_bool = x, exponent, from_bool
        return power(x, exponent)

    def backward(self, g):          # d(x^p)/dx = p x^(p-1)
        x, p = self.x, self.p
        if p == 0:                  # x^0 is constant; p x^-1 would give 0 * inf = nan at x = 0
            if not self.from_bool:
                return xp_of(g).zeros_like(g)
            with np.errstate(divide="ignore", invalid="ignore"):  # torch's shortcut misses x ** False:
                return g * (p * power(x, p - 1))                  # NaN at 0, silently, as there
        return g * (p * power(x, p - 1))


def power(x, p):
    """x ** p for a number p, rounded as torch rounds it: its kernel takes exact shortcuts for
    p = -0.5, 3 and -2 (numpy's ** already does for 0.5, 2 and -1), elsewhere pow()."""
    if x.dtype.kind == "f":
        if p == -0.5:
            return 1 / xp_of(x).sqrt(x)   # bnvar_inv = (bnvar + 1e-5)**-0.5 in makemore part 4
        if p == 3:
            return x * x * x
        if p == -2:
            return 1 / (x * x)
    return x ** p


class PowTensor(Function):
    """a ** b with a tensor exponent (and 2 ** t: a constant base)."""
    broadcasts = True
    torch_name = "PowBackward1"

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, g):          # d(a^b)/da = b a^(b-1), d(a^b)/db = a^b log a
        na, nb = self.needs_input_grad
        xp = xp_of(g)
        ga = None
        if na:                      # torch: slope 0 where b == 0 (not 0 * 0^-1 = nan at a == 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ga = xp.where(self.b == 0, 0, g * (self.b * self.a ** (self.b - 1))).astype(g.dtype, copy=False)
        if nb:
            with np.errstate(divide="ignore", invalid="ignore"):
                # torch: where a == 0 and b >= 0 the slope is 0, not 0 * log 0 = nan
                gb = g * xp.where((self.a == 0) & (self.b >= 0), 0, self.out * xp.log(self.a))
        return ga, (gb.astype(g.dtype, copy=False) if nb else None)


class Cast(Function):
    """x converted to another dtype; the gradient flows back converted to x's dtype."""
    torch_name = "ToCopyBackward0"

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.dtype) if self.dtype.kind == "f" else None


class Exp(Function):
    def forward(self, x):
        self.out = xp_of(x).exp(x)
        return self.out

    def backward(self, g):          # d(e^x)/dx = e^x
        return g * self.out


class Log(Function):
    def forward(self, x):
        self.x = x
        return xp_of(x).log(x)

    def backward(self, g):          # d(log x)/dx = 1/x
        return g / self.x


class Tanh(Function):
    def forward(self, x):
        self.out = kernels.tanh(x)  # xp.tanh(x), in pooled memory when large
        return self.out

    def backward(self, g):          # d(tanh x)/dx = 1 - tanh(x)^2
        return kernels.tanh_grad(self.out, g)   # g * (1 - y*y), fused into one kernel on cupy


class Relu(Function):
    def forward(self, x):
        self.mask = x > 0
        return xp_of(x).maximum(x, 0)  # not x * mask: -inf * 0 is nan, and -1 * 0 is -0.0

    def backward(self, g):          # d(relu x)/dx = 1 where x > 0, else 0
        return xp_of(g).where(self.mask, g, 0)  # not g * mask: an inf/nan g must not leak where x <= 0


# -- matrix products -----------------------------------------------------------------------
class Matmul(Function):
    """a @ b for 1-D, 2-D and batched (broadcast) operands, as numpy.matmul."""
    broadcasts = True  # batch dimensions broadcast; the tape sums their gradients

    def grad_fn_name(self):
        return {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (2, 2): "MmBackward0"}.get(
            self.ndims, "UnsafeViewBackward0")

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul needs at least 1-D operands, got shapes {a.shape} and {b.shape}")
        k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if a.shape[-1] != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are incompatible: "
                             f"inner dimensions {a.shape[-1]} and {k_b} differ")
        na, nb = self.needs_input_grad  # save only what backward reads (as torch)
        self.a, self.b, self.ndims = (a if nb else None), (b if na else None), (a.ndim, b.ndim)
        return a @ b

    def backward(self, g):          # d(ab)/da = g b^T, d(ab)/db = a^T g
        a, b = self.a, self.b
        na, nb = self.needs_input_grad
        da, db = self.ndims
        if da == 1 and db == 1:      # a dot product: g is a scalar
            return (g * b if na else None), (g * a if nb else None)
        xp = xp_of(g)
        if da == 1:                  # (k,) @ (..., k, m): treat a as a (1, k) row
            a, g = (a[None] if nb else None), xp.expand_dims(g, -2)
        if db == 1:                  # (..., n, k) @ (k,): treat b as a (k, 1) column
            b, g = (b[:, None] if na else None), xp.expand_dims(g, -1)
        ga = g @ xp.swapaxes(b, -1, -2) if na else None
        gb = xp.swapaxes(a, -1, -2) @ g if nb else None
        if da == 1 and na:
            ga = ga[..., 0, :]
        if db == 1 and nb:
            gb = gb[..., 0]
        return ga, gb


class Affine(Function):
    """x @ w.T + b in one tape entry (torch layout: w is (out_features, in_features)): nn.Linear's op."""

    def grad_fn_name(self):  # what torch's F.linear records
        if len(self.x_shape) != 2:
            return "ViewBackward0"
        return "AddmmBackward0" if len(self.needs_input_grad) == 3 else "MmBackward0"

    def forward(self, x, w, b=None):
        if x.shape[-1] != w.shape[1]:
            raise ValueError(f"linear: input of shape {x.shape} has {x.shape[-1]} features but the "
                             f"weight of shape {w.shape} expects {w.shape[1]}")
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"linear: bias of shape {b.shape} does not match weight {w.shape}")
        need = self.needs_input_grad  # save only what backward reads (as torch)
        self.x, self.w, self.x_shape = (x if need[1] else None), (w if need[0] else None), x.shape
        out = kernels.matmul(x, w.T)   # (..., out); x @ w.T, in pooled memory when large
        if b is not None:
            out += b                 # in place: `out` is ours, saves an allocation
        return out

    def backward(self, g):          # dx = g w, dw = g^T x, db = sum of g over the batch
        x, w, shape = self.x, self.w, self.x_shape
        need = self.needs_input_grad
        if len(shape) == 2:                           # the common case: already (N, in), (N, out)
            g2, x2 = g, x
        else:                                         # (..., in): rows flattened (not -1: fails on size 0)
            n = math.prod(shape[:-1])
            g2, x2 = g.reshape(n, g.shape[-1]), (None if x is None else x.reshape(n, shape[-1]))
        # large: the two halves on two cores (the size test first spares small batches a call)
        if need[0] and need[1] and g2.size * x2.shape[1] >= kernels.SIDE_MACS and kernels.on_side_thread(g2, x2):
            gx, (gw, gb) = side_thread.beside(lambda: kernels.matmul(g, w), lambda: (
                kernels.weight_grad(g2, x2), kernels.col_sum(g2) if len(need) == 3 and need[2] else None))
            return (gx, gw) if len(need) == 2 else (gx, gw, gb)
        gx = kernels.matmul(g, w) if need[0] else None   # (..., in)
        gw = kernels.weight_grad(g2, x2) if need[1] else None  # (out, in): g2.T @ x2
        if len(need) == 2:
            return gx, gw
        return gx, gw, (kernels.col_sum(g2) if need[2] else None)

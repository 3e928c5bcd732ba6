"""Reductions: sum, mean, max/min (ties share the gradient), var, std, norm, and the values of max(dim)."""
from collections import namedtuple

import numpy as np

from .backend import xp_of
from .function import Function

MaxResult = namedtuple("MaxResult", ["values", "indices"])  # what torch's x.max(dim) returns


def _expand_reduced(g, axis, keepdims, shape):
    """Broadcast a reduction's gradient back over the reduced axes (a read-only view)."""
    xp = xp_of(g)
    if axis is not None and not keepdims:
        g = xp.expand_dims(g, axis)
    return xp.broadcast_to(g, shape)


def _scalar_axis(x, axis):
    """A 0-d input has no axis to reduce (numpy raises); torch accepts dim 0/-1 and reduces nothing."""
    return None if x.ndim == 0 else axis


class Sum(Function):
    def grad_fn_name(self):  # torch: SumBackward0 for a full sum, SumBackward1 over dims
        return "SumBackward0" if self.axis is None else "SumBackward1"

    def forward(self, x, axis=None, keepdims=False):
        axis = _scalar_axis(x, axis)
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):          # each summed element contributes with slope 1
        return _expand_reduced(g, self.axis, self.keepdims, self.shape)


class Mean(Function):
    def grad_fn_name(self):
        return "MeanBackward0" if self.axis is None else "MeanBackward1"

    def forward(self, x, axis=None, keepdims=False):
        axis = _scalar_axis(x, axis)
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        n = x.size if axis is None else int(np.prod([x.shape[a] for a in axis]))
        self.n = max(n, 1)  # n == 0 means an empty input, hence an empty gradient: skip a 0/0 warning
        return x.mean(axis=axis, keepdims=keepdims)

    def backward(self, g):          # each element contributes with slope 1/n
        return _expand_reduced(g / self.n, self.axis, self.keepdims, self.shape)


class Max(Function):
    """Maximum over axes; tied maxima share the gradient equally (torch.amax semantics)."""
    name = "max"

    def grad_fn_name(self):  # torch: x.max() is MaxBackward1, amax over dims AmaxBackward0
        return f"{self.name.capitalize()}Backward1" if self.axis is None else f"A{self.name}Backward0"

    def pick(self, x, axis):
        return x.max(axis=axis, keepdims=True)

    def forward(self, x, axis=None, keepdims=False):
        axis = _scalar_axis(x, axis)
        if x.size == 0 and (axis is None or any(x.shape[a] == 0 for a in axis)):  # (0, 3).amax(1) is fine
            raise ValueError(f"{self.name} over an empty dimension of a tensor of shape {x.shape} has no value")
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.out = self.pick(x, axis)
        return self.out if keepdims else self.out.reshape([n for i, n in enumerate(x.shape)
                                                           if axis is not None and i not in axis])

    def backward(self, g):          # slope 1 at the maximum (split among ties), 0 elsewhere
        xp = xp_of(g)
        if self.axis is None:       # torch (CPU): zeros, then g / count written at the maxima only,
            out = self.out.reshape(())  # so a nan g stays off the other entries; a nan maximum picks the nans
            hit = xp.isnan(self.x) if bool(xp.isnan(out)) else self.x == out
            gx = xp.zeros(self.x.shape, dtype=g.dtype)
            gx[hit] = g.reshape(()) / hit.sum()  # g is (1, ..., 1) under keepdims
            return gx
        mask = (self.x == self.out).astype(g.dtype)  # over dims, torch multiplies: a nan g spreads
        mask /= mask.sum(axis=self.axis, keepdims=True)
        if not self.keepdims:
            g = xp.expand_dims(g, self.axis)
        return mask * g


class Min(Max):
    """Minimum over axes; tied minima share the gradient equally (torch.amin semantics)."""
    name = "min"

    def pick(self, x, axis):
        return x.min(axis=axis, keepdims=True)


def _count(x, axis):
    return x.size if axis is None else int(np.prod([x.shape[a] for a in axis]))


class Var(Function):
    """Variance over axes, divided by n - correction (torch: correction=1 is Bessel's n - 1)."""

    def forward(self, x, axis=None, keepdims=False, correction=1):
        axis = _scalar_axis(x, axis)
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.mean = x.mean(axis=axis, keepdims=True) if x.size else x.sum(axis=axis, keepdims=True)
        self.dof = max(_count(x, axis) - correction, 0)  # torch divides by max(0, n - correction)
        d = x - self.mean
        with np.errstate(divide="ignore", invalid="ignore"):  # n <= correction: inf or nan, as torch
            return (d * d).sum(axis=axis, keepdims=keepdims) / x.dtype.type(self.dof)

    def backward(self, g):          # d var/dx = 2 (x - mean) / (n - correction)
        g = _expand_reduced(g, self.axis, self.keepdims, self.x.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (2.0 / self.dof if self.dof else np.inf) * g * (self.x - self.mean)


class Std(Var):
    """Standard deviation: the square root of Var; the gradient is 0 where the std is 0 (as torch)."""

    def forward(self, x, axis=None, keepdims=False, correction=1):
        self.out = xp_of(x).sqrt(super().forward(x, axis, keepdims, correction))
        return self.out

    def backward(self, g):          # d std = d var / (2 std), masked to 0 where std == 0
        xp = xp_of(g)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = xp.where(self.out == 0, xp.zeros((), dtype=g.dtype), g / (self.out * 2))
        return super().backward(scaled)


class Norm(Function):
    """The vector p-norm over axes (torch.linalg.vector_norm); backward is torch's norm_backward."""
    torch_name = "LinalgVectorNormBackward0"

    def forward(self, x, p=2.0, axis=None, keepdims=False):
        xp = xp_of(x)
        axis = _scalar_axis(x, axis)
        self.x, self.p, self.axis, self.keepdims = x, p, axis, keepdims
        a = xp.abs(x)
        if p == np.inf:
            out = a.max(axis=axis, keepdims=True) if x.size else a.sum(axis=axis, keepdims=True)
        elif p == 0:
            out = (x != 0).sum(axis=axis, keepdims=True).astype(x.dtype)
        elif p == 1:
            out = a.sum(axis=axis, keepdims=True)
        elif p == 2:
            out = xp.sqrt((x * x).sum(axis=axis, keepdims=True))
        else:
            out = (a ** p).sum(axis=axis, keepdims=True) ** (1.0 / p)
        self.out = out
        return out if keepdims else out.reshape([n for i, n in enumerate(x.shape)
                                                 if axis is not None and i not in axis])

    def backward(self, g):
        xp, x, p, norm = xp_of(g), self.x, self.p, self.out
        g = _expand_reduced(g, self.axis, self.keepdims, norm.shape) if self.axis is not None or \
            self.keepdims else g.reshape(norm.shape)
        zero = xp.zeros((), dtype=g.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == 0:
                return xp.zeros(x.shape, dtype=g.dtype)
            if p == 1:              # d|x|/dx = sign x
                return xp.sign(x) * g
            if p == np.inf:         # the gradient is shared among the entries at the maximum
                mask = (xp.abs(x) == norm) | xp.isnan(x)
                return xp.sign(x) * ((g / mask.sum(axis=self.axis, keepdims=True).astype(g.dtype)) * mask)
            if p == 2:              # d ||x|| / dx = x / ||x||, 0 where the norm is 0 (a NaN g stays NaN)
                return g * xp.where(norm == 0, zero, x / norm)  # torch's order: grad * (x / norm)
            scale = xp.where(norm == 0, zero, g / norm ** (p - 1))
            if p < 2:
                return xp.sign(x) * xp.abs(x) ** (p - 1) * scale
            return x * xp.abs(x) ** (p - 2) * scale


class TakeAlong(Function):
    """x's entries at `idx` along one axis (what torch's max(dim) returns as values)."""
    torch_name = "MaxBackward0"

    def forward(self, x, idx, axis, keepdims=True):
        if x.ndim == 0:
            self.shape = ()
            return x.copy()
        xp = xp_of(x)
        self.shape, self.idx, self.axis = x.shape, idx, axis
        out = xp.take_along_axis(x, idx, axis=axis)
        return out if keepdims else out.squeeze(axis)

    def backward(self, g):          # slope 1 at the chosen entry, 0 elsewhere
        if self.shape == ():
            return g
        xp = xp_of(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        xp.put_along_axis(gx, self.idx, g.reshape(self.idx.shape), axis=self.axis)
        return gx



"""Reductions: sum, mean, max (ties share the gradient) and the values of max(dim)."""
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
    def forward(self, x, axis=None, keepdims=False):
        axis = _scalar_axis(x, axis)
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):          # each summed element contributes with slope 1
        return _expand_reduced(g, self.axis, self.keepdims, self.shape)


class Mean(Function):
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

    def forward(self, x, axis=None, keepdims=False):
        axis = _scalar_axis(x, axis)
        if x.size == 0 and (axis is None or any(x.shape[a] == 0 for a in axis)):  # (0, 3).amax(1) is fine
            raise ValueError(f"max over an empty dimension of a tensor of shape {x.shape} has no value")
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.out = x.max(axis=axis, keepdims=True)
        return self.out if keepdims else self.out.reshape([n for i, n in enumerate(x.shape)
                                                           if axis is not None and i not in axis])

    def backward(self, g):          # slope 1 at the maximum (split among ties), 0 elsewhere
        mask = (self.x == self.out).astype(g.dtype)
        mask /= mask.sum(axis=self.axis, keepdims=True)
        if self.axis is not None and not self.keepdims:
            g = xp_of(g).expand_dims(g, self.axis)
        elif self.axis is None:
            g = g.reshape((1,) * self.x.ndim)
        return mask * g


class TakeAlong(Function):
    """x's entries at `idx` along one axis (what torch's max(dim) returns as values)."""

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



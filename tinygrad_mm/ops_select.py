"""Selecting and copying ops: where, gather, expand, repeat, clone -- forward beside local derivative."""
import numpy as np

from . import coerce, kernels
from . import tensor as _tensor  # partly built while tensor.py imports its mixins
from .backend import xp_of
from .function import Function


class Where(Function):
    """cond ? a : b elementwise (torch.where); cond is a bool array parameter, never differentiated."""
    broadcasts = True  # a, b and cond broadcast together; the tape reduces output-shaped gradients

    def forward(self, a, b, cond):
        self.cond = cond
        return xp_of(a).where(cond, a, b)

    def backward(self, g):          # the gradient goes to the side that was picked
        xp = xp_of(g)
        na, nb = self.needs_input_grad
        zero = xp.zeros((), dtype=g.dtype)
        ga = xp.where(self.cond, g, zero) if na else None
        gb = xp.where(self.cond, zero, g) if nb else None
        return ga, gb


class Gather(Function):
    """out[i][j] = x[idx[i][j]][j] along `axis` (torch.gather); idx may be smaller than x off the axis."""

    def forward(self, x, idx, axis):
        xp = xp_of(x)
        self.shape, self.axis = x.shape, axis
        region = tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(idx.shape))
        self.index = tuple(idx if d == axis else xp.arange(n).reshape([-1 if e == d else 1 for e in range(idx.ndim)])
                           for d, n in enumerate(idx.shape))
        return xp.take_along_axis(x[region], idx, axis=axis)

    def backward(self, g):          # scatter-add: an entry gathered k times receives k contributions
        return kernels.scatter_add(self.shape, self.index, g)


class Expand(Function):
    """x broadcast to a larger shape (a read-only view, as torch's expand shares memory)."""
    broadcasts = True  # the tape sums the gradient over the expanded dimensions

    def forward(self, x, shape):
        return xp_of(x).broadcast_to(x, shape)

    def backward(self, g):
        return g


class Repeat(Function):
    """x tiled `reps` times along each dimension (torch's repeat, numpy's tile)."""

    def forward(self, x, reps):
        shape = (1,) * (len(reps) - x.ndim) + x.shape
        self.shape, self.in_shape, self.reps = x.shape, shape, reps
        return xp_of(x).tile(x.reshape(shape), reps)

    def backward(self, g):          # every copy sends its gradient back to the one original
        split = [n for pair in zip(self.reps, self.in_shape) for n in pair]  # (r0, s0, r1, s1, ...)
        return g.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(self.shape)


class Clone(Function):
    """A copy with its own memory; the gradient passes through unchanged."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


def where(condition, input, other):  # noqa: A002 -- torch's parameter names
    """input where condition holds, else other; the two promote as a binary op's operands do."""
    cond = coerce.as_tensor(condition)
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                           f"{cond.dtype}")
    if not isinstance(input, _tensor.Tensor) and not isinstance(other, _tensor.Tensor):
        input = coerce.as_tensor(input, device=cond.device)  # two numbers: torch's default dtypes
    a, b = coerce.operands(input, other)
    if type(cond.array) is not type(a.array):
        raise RuntimeError(f"where: the condition is on {cond.device} but the values are on {a.device}")
    return Where.apply(a, b, cond=cond.array)

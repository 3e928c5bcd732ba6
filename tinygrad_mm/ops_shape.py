"""Shape ops: reshape, permute, concatenation and stacking -- forward beside local derivative.

torch.cat and torch.stack (dtype promotion across inputs) are in functions.py."""
import numpy as np

from .backend import xp_of
from .function import Function
from .grad_mode import storage


class Reshape(Function):
    """x laid out in another shape; with view=True it must share x's memory (torch's view)."""
    torch_name = "ViewBackward0"

    def forward(self, x, shape, view=False):
        self.shape = x.shape
        try:
            out = x.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot view a tensor of shape {x.shape} ({x.size} elements) "
                             f"as shape {shape}") from None
        if view and out.size and storage(out) is not storage(x):
            raise RuntimeError(f"view size is not compatible with input tensor's size and stride (at least one "
                               f"dimension spans across two contiguous subspaces); shape {x.shape} to {shape}. "
                               "Use .reshape(...) instead.")
        return out

    def backward(self, g):          # the same numbers, laid back out in the input's shape
        return g.reshape(self.shape)


class Permute(Function):
    def forward(self, x, axes):
        bad = [a for a in axes if not -x.ndim <= a < max(x.ndim, 1)] if len(axes) == x.ndim else []
        if bad:  # checked first: the modulo below would fold an out-of-range axis onto a valid one
            raise IndexError(f"permute: axis {bad[0]} is out of range for the {x.ndim} dims of shape {x.shape}")
        if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} dims of shape {x.shape}")
        self.axes = axes
        return x.transpose(axes)

    def backward(self, g):          # undo the permutation
        return g.transpose(tuple(np.argsort([a % g.ndim for a in self.axes]).tolist()))


class Cat(Function):
    def forward(self, *xs, axis=0):
        nd = xs[0].ndim
        if not -nd <= axis < nd:
            raise IndexError(f"cat: axis {axis} out of range for {nd}-d tensors")
        axis %= nd
        others = [x.shape[:axis] + x.shape[axis + 1:] for x in xs]
        if any(x.ndim != nd for x in xs) or len(set(others)) != 1:
            raise ValueError(f"cat along axis {axis} needs equal other dims, got shapes "
                             f"{[x.shape for x in xs]}")
        self.axis = axis
        self.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1].tolist()
        return xp_of(xs[0]).concatenate(xs, axis=axis)

    def backward(self, g):          # each input gets back its own slab
        return tuple(xp_of(g).split(g, self.bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *xs, axis=0):
        if len({x.shape for x in xs}) != 1:
            raise ValueError(f"stack needs tensors of one shape, got {[x.shape for x in xs]}")
        nd = xs[0].ndim + 1
        if not -nd <= axis < nd:
            raise IndexError(f"stack: axis {axis} out of range for {nd}-d result")
        self.axis = axis % nd
        return xp_of(xs[0]).stack(xs, axis=self.axis)

    def backward(self, g):          # each input gets back its own slice
        xp = xp_of(g)
        return tuple(xp.take(g, i, axis=self.axis) for i in range(g.shape[self.axis]))

"""The reverse sweep's steps: seed the root's gradient, run each entry's backward, deliver
each gradient (an intermediate's adjoint, or a leaf's .grad), reduce broadcast gradients
(`fit_gradient`, the one place this happens), and roll everything back on an error.

`Tape.backward` (tape.py) walks the entries; this module does what happens at each one.
"""
import numpy as np

from . import backend
from .grad_mode import _state, check_unmodified
from .tensor import Tensor, _wrap




class Step:
    """One entry of a reverse sweep: the entry, its output gradient, and what it added to each input."""
    __slots__ = ("entry", "grad_out", "increments")

    def __init__(self, entry, grad_out, increments):
        self.entry, self.grad_out, self.increments = entry, grad_out, increments  # increments: [(tensor, array)]

    def __repr__(self):
        n = len(self.increments)
        return f"Step(#{self.entry.index} {self.entry.name}, {n} increment{'' if n == 1 else 's'})"


class _Sweep:
    """The bookkeeping of one reverse sweep: pending adjoints, and leaf increments to undo on error."""
    __slots__ = ("tape", "pending", "waiting", "undo")

    def __init__(self, tape, root, seed):
        self.tape = tape
        root.adjoint = seed
        # entries holding an adjoint, kept alive until swept: the tape refers to them weakly, and
        # freeing a swept entry's inputs may drop the last other reference to one of them
        self.pending = [root]
        self.waiting = 1  # entries holding an adjoint not yet swept: at 0 the rest is skipped
        self.undo = []    # (leaf, its .grad before, that grad's array before) per increment

    def visit(self, entry, steps):
        """Take the entry's adjoint, run its op's backward, and increment each input's adjoint
        (an intermediate) or .grad (a leaf) by its gradient. Returns (grad_out, increments)."""
        g = entry.adjoint
        entry.adjoint = None
        entry.grad_out = g
        self.waiting -= 1
        rec = _state.capture  # a tg.compile recorder, or None: checked only where a gradient moves
        if entry.retains is not None:  # retain_grad(): the output's .grad accumulates like a leaf's
            if rec is not None:
                rec.leaf(entry.retains, g, g, ())
            increment_leaf(entry.retains, g, g, (), self.undo)
        if entry.stamp != _state.version:  # something was written in place since it was recorded
            check_unmodified(entry)
        grads = entry.function.backward(g)
        inputs = entry.inputs
        if type(grads) is not tuple:
            grads = tuple(grads) if type(grads) is list else (grads,)
        n = len(grads)
        if n != len(inputs):
            raise RuntimeError(f"{entry.name}.backward returned {n} gradients for {len(inputs)} inputs")
        if rec is not None:  # tg.compile is capturing: note which backward ran on what
            rec.backward(entry, g, grads)
        if n == 1:  # most ops: no loop
            gi = self.deliver(entry, inputs[0], grads[0], g, (), rec)
            return g, None if not steps else [] if gi is None else [(inputs[0], gi)]
        # one array handed to two inputs must not become two leaves' .grad: increment_leaf looks
        # for it only when two gradients here are one object (or None twice, which is harmless)
        alias = grads if len(set(map(id, grads))) < n else ()
        incs = [] if steps else None
        for t, gi in zip(inputs, grads):
            gi = self.deliver(entry, t, gi, g, alias, rec)
            if steps and gi is not None:
                incs.append((t, gi))
        return g, incs

    def deliver(self, entry, t, gi, g, alias, rec):
        """Increment input t's adjoint (an intermediate) or .grad (a leaf) by gi, fitted to its
        shape; returns what it added (None: nothing)."""
        if gi is None or not t.requires_grad:
            return None
        a = t.array
        if type(gi) is not type(a) or gi.dtype is not a.dtype and gi.dtype != a.dtype or gi.shape != a.shape:
            fitted = fit_gradient(entry, t, gi)
            if rec is not None:
                rec.fit(gi, fitted)
            gi = fitted
        node = t._entry
        if node is None:
            if rec is not None:
                rec.leaf(t, gi, g, alias)
            increment_leaf(t, gi, g, alias, self.undo)
        elif node.adjoint is not None:  # an intermediate: its entry is further up the tape
            total = node.adjoint + gi
            if rec is not None:
                rec.accumulate(node.adjoint, gi, total)
            node.adjoint = total
        elif node.tape is self.tape and node.inputs is not None:  # live (not freed)
            node.adjoint = gi
            self.pending.append(node)
            self.waiting += 1
        else:  # first arrival only: a freed or foreign entry would never be swept
            raise RuntimeError(freed_message(node) if node.freed else
                               f"{t.short()} was recorded on another tape (inside a different "
                               "`with Tape():`); its history cannot be swept here")
        return gi

    def drop_pending(self):
        for entry in self.pending:
            entry.adjoint = None

    def roll_back(self):
        """Undo every leaf increment of this sweep and drop the pending adjoints: all or nothing."""
        for t, old, old_array in reversed(self.undo):
            if old is not None:
                old.array = old_array
            t._grad = old
        self.drop_pending()


def increment_leaf(t, gi, g, grads, undo=None):
    """t.grad += gi, out of place (so a roll-back is exact); a new .grad never shares memory.
    `grads`: the entry's gradients, where gi may be one of them twice (else empty)."""
    old = t._grad
    if undo is not None:
        undo.append((t, old, None if old is None else old.array))
    if old is None:
        # copy when gi may alias another array: the upstream grad, a view, or the same array
        # handed to two inputs -- no .grad may share memory with anything else
        if gi is g or gi.base is not None or len(grads) > 1 and _twice(gi, grads):
            gi = gi.copy()
        t._grad = _wrap(gi)
    else:
        total = old.array + gi
        old.array = total if total.ndim else backend.xp_of(gi).asarray(total)  # 0-d sums are scalars


def seed_gradient(tensor, grad):
    """The upstream gradient of the sweep's root, validated (and cast to its dtype, as torch)."""
    if not tensor.requires_grad:
        raise RuntimeError(f"{tensor.short()} does not require grad: nothing to differentiate "
                           "(create leaves with requires_grad=True, and do not compute under no_grad)")
    a = tensor.array
    if grad is None:
        if a.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs: backward() "
                               f"without a gradient needs one element, got shape {tuple(a.shape)}; pass "
                               "gradient= a tensor of that shape (or reduce first, e.g. .sum())")
        one = backend.xp_of(a).asarray(1, dtype=a.dtype)  # ones(a.shape), without its Python layers
        return one if a.ndim == 0 else one.reshape(a.shape)
    g = grad.array if isinstance(grad, Tensor) else grad
    if isinstance(g, (int, float)) or isinstance(g, np.generic):
        g = np.asarray(g)
    if not hasattr(g, "dtype"):
        raise TypeError(f"gradient must be a tensor or an array, got {type(grad).__name__}")
    if backend.device_of(g) != backend.device_of(a):
        raise TypeError(f"gradient is on {backend.device_of(g)} but the output is on {tensor.device}")
    if tuple(g.shape) != tuple(a.shape):
        raise RuntimeError(f"Mismatch in shape: gradient has shape {tuple(g.shape)} and the output has "
                           f"shape {tuple(a.shape)}")
    if g.dtype != a.dtype:
        if g.dtype.kind not in "fiub":
            raise TypeError(f"gradient has dtype {g.dtype}; the output is {a.dtype}")
        g = g.astype(a.dtype)  # torch casts the gradient to the output's dtype too
    return g


def _twice(gi, grads):
    """True when the same array object appears more than once among an entry's gradients."""
    n = 0
    for other in grads:
        n += other is gi
    return n > 1


def fit_gradient(entry, t, gi):
    """Reduce a broadcast-shaped gradient to its input's shape -- the one place this happens."""
    which = next(i for i, x in enumerate(entry.inputs) if x is t)
    where = f"{entry.name}.backward returned a gradient of"
    a = t.array
    if isinstance(gi, np.generic):  # numpy ops on 0-d arrays return scalars
        gi = np.asarray(gi)
        if gi.shape == a.shape and gi.dtype == a.dtype:
            return gi
    if type(gi) is not type(a):
        raise TypeError(f"{where} type {type(gi).__name__} for input {which}, which holds a "
                        f"{type(a).__name__}")
    if gi.dtype != a.dtype:
        raise TypeError(f"{where} dtype {gi.dtype} for input {which} of dtype {a.dtype}")
    if entry.function.broadcasts:
        shape = a.shape
        lead = gi.ndim - len(shape)
        if lead >= 0 and all(n == 1 or n == m for n, m in zip(shape, gi.shape[lead:])):
            axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                              if n == 1 and gi.shape[lead + i] != 1)
            return gi.sum(axis=axes, keepdims=True).reshape(shape)
    raise ValueError(f"{where} shape {gi.shape} for input {which} of shape {a.shape}"
                     + ("" if entry.function.broadcasts else " (if the forward broadcasts this input, reduce "
                        "the gradient over the broadcast dimensions, or set broadcasts = True on the op)"))


def freed_message(entry):
    return (f"entry #{entry.index} ({entry.name}) was already freed by an earlier backward; "
            "its saved arrays are gone. Call backward(retain_graph=True) the first time to sweep it again")

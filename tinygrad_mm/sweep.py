"""The reverse sweep: seed the root's gradient, walk the tape's entries backwards running
each one's backward, deliver each gradient (an intermediate's adjoint, or a leaf's .grad),
reduce broadcast gradients (`fit_gradient`, the one place this happens), and roll
everything back on an error.

`Tape.backward` (tape.py) checks the root and calls `run`; the tape itself only records.
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


def run(tape, root, seed, retain_graph, steps):
    """The reverse sweep from `root`, seeded with `seed`: a generator (yielding a Step per entry
    when `steps`) that walks the tape's live entries backwards, and at each one holding an
    adjoint runs its op's backward and increments each input's adjoint (an intermediate) or
    .grad (a leaf). All or nothing: on an error every leaf increment is undone.

    One loop with the common case inline: this is the backward half of every training step."""
    live = tape._live
    rec = _state.capture  # a tg.compile recorder, or None: consulted only where a gradient moves
    root.adjoint = seed
    # entries holding an adjoint, kept alive until swept: the tape refers to them weakly, and
    # freeing a swept entry's inputs may drop the last other reference to one of them
    pending = [root]
    waiting = 1  # entries holding an adjoint not yet swept: at 0 the rest of the tape is skipped
    undo = []    # (leaf, its .grad before, that grad's array before) per increment
    try:
        for pos in range(len(live) - 1, -1, -1):
            ref = live[pos]
            entry = ref() if ref is not None else None
            if entry is None or entry.adjoint is None:
                continue  # not on the path from the root: skipped
            g = entry.grad_out = entry.adjoint
            entry.adjoint = None
            waiting -= 1
            if entry.retains is not None:  # retain_grad(): the output's .grad accumulates like a leaf's
                if rec is not None:  # tg.compile is capturing: it increments and notes the result
                    rec.leaf(entry.retains, g, g, (), undo)
                else:
                    increment_leaf(entry.retains, g, g, (), undo)
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
            # one array handed to two inputs must not become two leaves' .grad: increment_leaf
            # looks for it only when two gradients here are one object (None twice does not count:
            # tg.compile would record the aliases, which can differ between calls)
            alias = ()
            if n > 1 and len(set(map(id, grads))) < n:  # two of them one object: Add's (g, g), or Nones
                if grads[0] is not None if n == 2 else _repeats(grads):
                    alias = grads
            incs = [] if steps else None
            for t, gi in zip(inputs, grads):
                if gi is None or not t.requires_grad:
                    continue
                a = t.array
                if type(gi) is not type(a) or gi.dtype is not a.dtype and gi.dtype != a.dtype or gi.shape != a.shape:
                    fitted = fit_gradient(entry, t, gi)
                    if rec is not None:
                        rec.fit(gi, fitted)
                    gi = fitted
                node = t._entry
                if node is None:  # a leaf
                    if rec is not None:
                        rec.leaf(t, gi, g, alias, undo)
                    else:
                        increment_leaf(t, gi, g, alias, undo)
                elif node.adjoint is not None:  # an intermediate already holding part of its adjoint
                    total = node.adjoint + gi
                    if rec is not None:
                        rec.accumulate(node.adjoint, gi, total)
                    node.adjoint = total
                elif node.tape is tape and node.inputs is not None:  # first arrival at a live entry
                    node.adjoint = gi
                    pending.append(node)
                    waiting += 1
                else:  # a freed or foreign entry would never be swept
                    raise RuntimeError(freed_message(node) if node.freed else
                                       f"{t.short()} was recorded on another tape (inside a different "
                                       "`with Tape():`); its history cannot be swept here")
                if steps:
                    incs.append((t, gi))
            if not retain_graph:
                entry.free()
                live[pos] = None
                tape._swept.append(entry)  # not cached: an op recorded between yields starts a new list
            if steps:
                yield Step(entry, g, incs)
            if not waiting:
                break  # nothing further up the tape can receive a gradient from the root
        if rec is not None:
            rec.swept()  # a replay's roll-back covers this sweep's deliveries only until here
    except GeneratorExit:  # backward_steps stopped early: leaves keep their grads, pending adjoints go
        for e in pending:
            e.adjoint = None
        if rec is not None:
            rec.swept()  # what was delivered stands, as here
        raise
    except BaseException:  # all or nothing: undo every leaf increment, drop the pending adjoints
        for t, old, old_array in reversed(undo):
            if old is not None:
                old.array = old_array
            t._grad = old
        for e in pending:
            e.adjoint = None
        raise


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


def _repeats(grads):
    """Whether one array object is among an entry's gradients twice (None may be, harmlessly)."""
    ids = [id(x) for x in grads if x is not None]
    return len(set(ids)) < len(ids)


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

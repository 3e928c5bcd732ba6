"""How a compiled Program replays the .grad of leaves: zero_grad's resets where they happened,
each sweep's deliveries (a Tensor around a fixed buffer where the reset came first, else eager's
increment_leaf), and the roll-back of a failing sweep's deliveries, as eager's all-or-nothing sweep.

`GradDelivery` is a part of `compile_program.Program` (its mixin): it builds those instructions.
"""
from functools import partial

from .compile_record import Leaf, Reset, Update
from .sweep import increment_leaf
from .tensor import _wrap


class GradDelivery:
    """Program's building of .grad resets and deliveries (self.instrs, self.env, self.assigned ...)."""

    def _reset_here(self, t):
        """.grad = None where eager reset it (zero_grad), so an error before the sweep's delivery
        leaves None, as eager does; consecutive resets (zero_grad's) are one instruction."""
        if not self.instrs or self.instrs[-1] is not self._clear:
            self._cleared = []
            self._clear = partial(_clear_grads, self._cleared)
            self._append_python(self._clear)
        self._cleared.append(t)
        self.assigned.pop(id(t), None)

    def _leaf(self, i, step):
        t, env = step.tensor, self.env
        if step.gi in self._pending:  # .grad may be gi's buffer itself, which a helper job writes
            self._pending.add(step.out)
        if all(s is None or self.stable[s] for s in (step.gi, step.g) + step.grads):
            gi, g = env[step.gi], env[step.g]
            grads = tuple(None if s is None else env[s] for s in step.grads)
            placed = self._placed.get(step.gi) is gi  # its part of the arena, which is the program's alone
            shared = gi is g or (gi.base is not None and not placed) or sum(x is gi for x in grads) > 1
            if i in self._after_reset and not shared:
                # .grad = None, then .grad += gi: a Tensor around gi's buffer, made once
                self._append_python(partial(_assign_grad, t, _wrap(gi), gi, self._undo))
                self.assigned[id(t)] = gi
                self._set(step.out, gi)  # what reads the .grad after it reads gi's buffer
                return
            self._join_pending()  # increment_leaf reads t's .grad too, which a helper job may write
            self.instrs.append(partial(_increment, t, gi, g, grads, self.env, step.out, self._undo))
            self.assigned.pop(id(t), None)  # its .grad is no longer that one buffer
            if not self._resets_first(t):
                self.fixes.append((t, gi))
            return
        gi, g, gs = step.gi, step.g, step.grads
        self._join_pending()
        self.assigned.pop(id(t), None)
        o = step.out
        undo = self._undo
        self.instrs.append(lambda: _increment(t, env[gi], env[g], tuple(None if s is None else env[s] for s in gs),
                                              env, o, undo))

    def _resets_first(self, t):
        """Whether the program's first event on t's .grad is a reset (so no old .grad can share a buffer)."""
        for step in self.steps:
            if type(step) in (Reset, Leaf) and step.tensor is t:
                return type(step) is Reset
            if type(step) is Update and any(p is t for p in step.opt.params):
                return False
        return False


def _clear_grads(tensors):
    for t in tensors:
        t._grad = None


def _increment(t, gi, g, grads, env, out, undo):
    increment_leaf(t, gi, g, grads, undo)
    env[out] = t._grad.array  # a sum is a new array: what reads the .grad after it reads this


def _assign_grad(t, grad, array, undo):
    """The sweep's first delivery after a reset: an error later in the sweep rolls it back to None,
    as eager's does."""
    undo.append((t, None, None))
    grad.array = array  # in case eager code rebound it since the last call
    t._grad = grad

"""What tg.compile records while it runs a step eagerly: slots (arrays) and events.

The recorder is installed as `grad_mode._state.capture`; Function.apply, the sweep
(sweep.run), Optimizer.step and mark_modified call its hooks. Each array the step reads or
makes gets a *slot*, numbered in order of appearance (so two calls of the same program number
them alike); an event (`Fwd`, `Bwd`, `Fit`, `Acc`, `Leaf`, `Swept`, `Update`, `Reset`, `Write`) names slots.
"""
import numpy as np

from . import backend
from .sweep import increment_leaf
from .tensor import Tensor


class CompileError(RuntimeError):
    """A step tg.compile cannot replay faithfully."""


INPUT, LEAF, EXT, CONST, OP = "input", "leaf", "external", "constant", "op"  # where a slot's array comes from


class _Rec:
    """One recorded event; subclasses name their fields (all slot numbers unless said otherwise)."""
    __slots__ = ()

    def __init__(self, *values):
        for name, v in zip(self.__slots__, values):
            setattr(self, name, v)


class Fwd(_Rec):
    __slots__ = ("fn", "ins", "params", "out")      # params: the keyword params, arrays as _Ref


class Bwd(_Rec):
    __slots__ = ("fn", "g", "outs")                 # outs: a slot per input gradient, None where none


class Fit(_Rec):
    __slots__ = ("src", "out", "axes", "shape")     # a broadcast gradient summed over `axes` (sweep.fit_gradient)


class Acc(_Rec):
    __slots__ = ("a", "b", "out")                   # a second gradient arriving at an intermediate: a + b


class Leaf(_Rec):
    __slots__ = ("tensor", "gi", "g", "grads", "out")  # tensor.grad += gi (sweep.increment_leaf); out: the
                                                       # array .grad holds after it (a sum is a new one)


class Update(_Rec):
    __slots__ = ("opt",)                            # opt.step()


class Reset(_Rec):
    __slots__ = ("tensor",)                         # tensor.grad = None (zero_grad, observed)


class Swept(_Rec):
    __slots__ = ()                                  # a reverse sweep finished: its .grad deliveries stand


class Write(_Rec):
    __slots__ = ("dst", "src", "what")              # dst[...] = src: an in-place write with no history (p.data += u);
                                                    # what: logged as eager logs it, or None (a write to .data)


def on_cuda(arrays):
    """Whether a recording computed on the GPU (where cuda_graph=True records CUDA graphs)."""
    return any(backend.device_of(a) == "cuda" for a in arrays if _is_array(a))


def after_reset(steps):
    """The indices of the Leaf steps that are a tensor's first .grad delivery since a reset (no
    other delivery or update between): there .grad can be assigned a buffer rather than summed."""
    found, reset = set(), set()  # reset: ids of tensors whose latest event is a reset
    for i, s in enumerate(steps):
        t = type(s)
        if t is Reset:
            reset.add(id(s.tensor))
        elif t is Update:
            reset.difference_update(id(p) for p in s.opt.params)
        elif t is Leaf:
            if id(s.tensor) in reset:
                found.add(i)
            reset.discard(id(s.tensor))
    return found


def refs(v):
    """The slots a params template (of _Ref, dicts, tuples and lists) reads."""
    if type(v) is _Ref:
        return [v.slot]
    if type(v) is dict:
        v = list(v.values())
    if type(v) in (tuple, list):
        return [s for x in v for s in refs(x)]
    return []


class _Ref:
    """A keyword param that is an array: which slot it reads."""
    __slots__ = ("slot",)

    def __init__(self, slot):
        self.slot = slot

    def __eq__(self, other):
        return type(other) is _Ref and other.slot == self.slot

    __hash__ = None

    def __repr__(self):
        return f"%{self.slot}"


class GradOf:
    """A result that is `tensor.grad`."""
    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor


def _is_array(v):
    return type(v) is np.ndarray or (backend._cp is not None and isinstance(v, backend._cp.ndarray))


class _Recorder:
    """Notes the arrays and events of one eager call; installed as `_state.capture` during it."""

    def __init__(self, input_arrays, candidates=()):
        self.arrays, self.kinds, self.ids, self.steps = [], [], {}, []
        self.tensors = {}                                       # id -> tensor whose .grad was observed
        self.modes = {}                                         # id -> (module called, its training flag)
        self.grad_none = {id(t): t._grad is None for t in candidates}
        for k, a in enumerate(input_arrays):
            self._add(a, (INPUT, k))

    def _add(self, a, kind):
        s = len(self.arrays)
        self.arrays.append(a)   # held, so no id is reused while recording
        self.kinds.append(kind)
        self.ids[id(a)] = s
        return s

    def ref(self, a, tensor=None):
        """The slot of array `a`; a new external or constant slot the first time it is seen."""
        s = self.ids.get(id(a))
        if s is not None:
            return s
        if tensor is None:
            return self._add(a, (CONST, None))
        return self._add(a, (LEAF if tensor.requires_grad and tensor._entry is None else EXT, tensor))

    def template(self, v):
        if isinstance(v, Tensor):
            return _Ref(self.ref(v.array, v))
        if _is_array(v):
            return _Ref(self.ref(v))
        if type(v) in (tuple, list):
            return type(v)(self.template(x) for x in v)
        if type(v) is dict:  # arrays inside a dict param are read each call too, not frozen
            return {k: self.template(x) for k, x in v.items()}
        return v

    # -- the hooks (called by Function.apply, the sweep, Optimizer.step, mark_modified) --------
    def forward(self, fn, inputs, params, out):
        ins = tuple([self.ref(t.array, t) for t in inputs])
        tpl = {k: self.template(v) for k, v in params.items()}
        self.steps.append(Fwd(fn, ins, tpl, self._add(out, (OP, None))))

    def backward(self, entry, g, grads):
        fn = entry.function
        if not any(type(s) is Fwd and s.fn is fn for s in self.steps):
            raise CompileError(f"the backward reaches {entry.name} (entry #{entry.index}), an op computed "
                               "before the compiled function was called; compute it inside the function")
        gs = self.ref(g)  # before the outputs: a backward may return g itself (Add does)
        outs = tuple(None if gi is None else self._add(gi, (OP, None)) for gi in grads)
        self.steps.append(Bwd(fn, gs, outs))

    def fit(self, gi, fitted):
        src = self.ref(gi)
        shape, axes = tuple(fitted.shape), None
        if _is_array(gi):  # the axes sweep.fit_gradient summed over (None: a numpy scalar made an array)
            lead = gi.ndim - len(shape)
            axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                              if n == 1 and gi.shape[lead + i] != 1)
        self.steps.append(Fit(src, self._add(fitted, (OP, None)), axes, shape))

    def accumulate(self, a, b, total):
        self.steps.append(Acc(self.ref(a), self.ref(b), self._add(total, (OP, None))))

    def leaf(self, t, gi, g, grads, undo=None):
        """t.grad += gi, made here (sweep.increment_leaf) and noted with the array .grad then holds:
        a second gradient's sum is a new array, which a hand-written update goes on to read."""
        self.observe(t)
        slots = tuple(None if x is None else self.ref(x) for x in grads)
        gs = self.ref(gi)
        increment_leaf(t, gi, g, grads, undo)
        # a slot of its own even when it is gi itself, so that a first call (no .grad yet) and a
        # second (a sum) number their slots alike
        self.steps.append(Leaf(t, gs, self.ref(g), slots, self._add(t._grad.array, (OP, None))))
        self.grad_none[id(t)] = False

    def swept(self):
        self.steps.append(Swept())

    def update(self, opt):
        for p in opt.params:
            self.observe(p)
        self.steps.append(Update(opt))

    def write(self, dst, src, recorded, what, logged):
        """An in-place write into a tensor: replayed as a copy when it took no history (the
        lecture's `p.data += -lr * p.grad`, or a write under no_grad). `logged`: eager logged
        it as a modification (not a write to .data), so a replay does too: a graph recorded
        outside the step that saved the array then refuses its backward, as after eager. A
        write from the tensor's own memory replays as a copy onto itself (into an argument it
        is refused, as every write into one)."""
        if recorded:
            raise CompileError(f"an in-place write with history inside a compiled function ({what}) is not "
                               "replayed: use out-of-place ops (x = x + 1), or write under no_grad / to .data")
        d = self.ids.get(id(dst))
        if d is None or self.kinds[d][0] == INPUT:
            raise CompileError(f"an in-place write inside a compiled function ({what}) into "
                               f"{'an argument' if d is not None else 'an array the function never read'} "
                               "is not replayed: write into a tensor the step computes or a parameter")
        self.steps.append(Write(d, self.ref(src), what if logged else None))

    def modified(self, a, what):
        raise CompileError(f"an in-place write inside a compiled function ({what}) is not captured: "
                           "use out-of-place ops (x = x + 1), and an optimizer for parameter updates")

    def unsupported(self, what):
        raise CompileError(f"{what} inside a compiled function depends on tensor values, which a replay "
                           "cannot follow: keep this function eager")

    def module(self, m):
        """A module called inside fn: its training flag (Dropout, BatchNorm) shaped the program."""
        self.modes.setdefault(id(m), (m, m.training))

    def grad_assigned(self, t):
        raise CompileError("assigning a tensor to .grad inside a compiled function is not replayed (only "
                           ".grad = None is): scale the loss instead, or write into it under no_grad "
                           "(p.grad *= 0.5), or keep this function eager")

    def observe(self, t):
        """A .grad that went from set to None since it was last seen was reset inside fn: replay that."""
        none = t._grad is None
        if none and self.grad_none.get(id(t)) is False:
            self.steps.append(Reset(t))
        self.grad_none[id(t)] = none
        self.tensors[id(t)] = t

    def candidates(self):
        """Tensors whose .grad this call touched: the next capture watches them from its start."""
        ts = dict(self.tensors)
        for s in self.steps:
            if type(s) is Update:
                ts.update((id(p), p) for p in s.opt.params)
        return list(ts.values())



"""tg.compile: capture a training step's array operations once, then replay them as flat array code.

A tape is a program: the ops the forward ran, the backward calls the sweep made, where each
gradient went, and the optimizer's update. `compile(fn)` runs `fn` eagerly while a recorder
(`grad_mode._state.capture`) notes every one of those at the few places they happen
(Function.apply, the sweep, Optimizer.step). The second call with the same argument shapes
runs eagerly again and must record the same program -- that is how a step whose control flow
depends on tensor values, or that draws random numbers, is caught. From the third call on the
program is *replayed*: a list of closures over arrays -- no Tensors, no tape, no checks per op.
The hot built-in ops replay into preallocated buffers (`out=`) by the same array calls eager
makes, so the results are bit-identical (compile_ops.py); any other Function, a user's own
included, replays through its own forward/backward on raw arrays.

What replay assumes (and refuses where it can tell):
- the same Python control flow every call (a different program on the second call raises;
  a try/except inside fn is not replayed either: an error a replay meets propagates);
- tensors that are not arguments keep their arrays: parameters are updated in place (a
  rebound `.array`, e.g. after loading a checkpoint, re-captures, as does a module called
  inside fn switched by train() / eval(), or an SGD given momentum or weight decay);
- no tensor value read inside fn (`.item()`, `bool(t)` ... raise while capturing) and no
  in-place tensor write (`x += 1`, `p.data -= ...`: raise; use an optimizer);
- Python state changed inside fn (a scheduler's step, counters, BatchNorm's running
  statistics, which are raw array code) changes only while capturing: keep it outside fn.
  Python values fn reads (a global scale, a flag) are frozen at capture: pass them as
  arguments (a number argument is part of the signature: a new value captures again).
  Hyper-parameters read by the optimizer (opt.lr) are read on every replay.
- in-place writes a replay makes (the update, a write under no_grad) are logged as eager
  logs them: a graph recorded outside fn that saved a parameter refuses its backward after.
Outputs and `.grad` of parameters live in the program's buffers: the next call overwrites
them (a 0-d output, e.g. the loss, is returned as a fresh copy). A replay records no tape, so
its outputs carry no graph: call backward inside fn.
"""
import functools
import inspect

import numpy as np

from . import backend
from .compile_record import (CONST, EXT, LEAF, Bwd, CompileError, Fwd, GradOf, Leaf, Reset, Update, _is_array,
                             _Recorder, _Ref)
from .grad_mode import _state
from .tensor import Tensor


def _refuse(name):
    def reader(self, *args, **kwargs):
        raise CompileError(f"Tensor.{name.strip('_')}() inside a function being compiled reads a tensor's "
                           "value, so the replayed program could not follow it: return the tensor and read "
                           "it outside (or keep this function eager)")
    return reader


_READERS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")


def _record(rec, fn, args, kwargs):
    """Run fn(*args) eagerly with `rec` capturing; value reads raise meanwhile."""
    saved = {n: Tensor.__dict__.get(n) for n in _READERS}
    _state.capture = rec
    try:
        for n in _READERS:
            setattr(Tensor, n, _refuse(n))
        out = fn(*args, **kwargs)
    finally:
        _state.capture = None
        for n, f in saved.items():
            if f is None:
                delattr(Tensor, n)
            else:
                setattr(Tensor, n, f)
    for t in list(rec.tensors.values()):
        rec.observe(t)  # a reset after the last delivery (zero_grad at the end of fn)
    # each module's mode as fn leaves it, which is how the next call finds it (fn may switch it
    # itself, e.g. eval() for a look at the loss, then train(): a replay does not)
    rec.modes = {k: (m, m.training) for k, (m, _) in rec.modes.items()}
    rec.result = _out_template(rec, out)
    return out


def _out_template(rec, out):
    if out is None:
        return None
    if isinstance(out, Tensor):
        for t in rec.tensors.values():
            if t._grad is out:  # a .grad: whatever that tensor's .grad is after the replay
                return GradOf(t)
        return _Ref(rec.ref(out.array, out))
    if type(out) in (tuple, list):
        return type(out)(_out_template(rec, o) for o in out)
    raise CompileError(f"a compiled function returns Tensors (or tuples of them, or None), got "
                       f"{type(out).__name__}")


class CompiledFunction:
    """fn captured per argument signature (shapes, dtypes, devices; other arguments by value or
    identity) and replayed; `print()` it to read the captured programs."""
    MAX_PROGRAMS = 8

    def __init__(self, fn, cuda_graph=False):
        functools.update_wrapper(self, fn)
        self.fn, self.cuda_graph = fn, cuda_graph
        self.programs = {}   # key -> Program (most recently made last)
        self._first = {}     # key -> the first call's recorder, compared with the second
        try:
            self._argnames = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            self._argnames = []

    def __call__(self, *args, **kwargs):
        if _state.capture is not None:  # called inside another capture: part of that program
            return self.fn(*args, **kwargs)
        key, inputs, held = _signature(args, kwargs)
        prog = self.programs.get(key)
        if prog is not None:
            if prog.valid():
                return prog.run(inputs)
            del self.programs[key]  # a tensor it reads was given a new array: capture again
        first = self._first.pop(key, None)
        rec = _Recorder(inputs, first.candidates() if first is not None else ())
        rec.held = held  # objects keyed by identity stay alive with the program, so no id is reused
        out = _record(rec, self.fn, args, kwargs)
        if first is None:
            self._first = {key: rec}  # one pending signature at a time: memory stays bounded
            return out
        _compare(first, rec)
        from .compile_program import Program
        while len(self.programs) >= self.MAX_PROGRAMS:
            self.programs.pop(next(iter(self.programs)))
        self.programs[key] = Program(rec, self._names(args, kwargs, rec), self.cuda_graph)
        return out

    def _names(self, args, kwargs, rec):
        from .compile_print import slot_names
        return slot_names(rec, self._argnames, args, kwargs, self.fn)

    def __repr__(self):
        from .compile_print import format_compiled
        return format_compiled(self)


def compile(fn=None, *, cuda_graph=False):
    """Capture `fn` (a training step taking and returning tensors) once per argument signature
    and replay its array operations; a decorator too (`@tg.compile`, `@tg.compile(cuda_graph=True)`).
    `cuda_graph=True` replays a cupy step's kernels as CUDA graphs (compile_cuda.py; untested
    without a GPU). See the module docstring."""
    if fn is None:
        return lambda f: CompiledFunction(f, cuda_graph)
    return CompiledFunction(fn, cuda_graph)


def _signature(args, kwargs):
    """The cache key of a call, the arrays of its tensor/array arguments (copied in on replay),
    and the arguments keyed by identity (a model, an optimizer, a parameter passed in)."""
    key, inputs, held = [_state.grad_enabled], [], []
    for v in (list(args) + [kwargs[k] for k in sorted(kwargs)]) if kwargs else args:
        t = type(v)
        if t is Tensor and not v.requires_grad or t is np.ndarray:
            a = v.array if t is Tensor else v
            key.append((type(a), a.shape, a.dtype, a.strides))
            inputs.append(a)
        elif v is None or t in _VALUES:
            key.append((t, v))
        # a Tensor subclass, or a cupy array (looked for only when cupy is there)
        elif isinstance(v, Tensor) and not v.requires_grad or backend._cp is not None and _is_array(v):
            a = v.array if isinstance(v, Tensor) else v
            key.append((type(a), a.shape, a.dtype, a.strides))
            inputs.append(a)
        else:  # a parameter passed in (read in place), or any other object: by identity
            key.append(id(v))
            held.append(v)
    if kwargs:
        key.append(tuple(sorted(kwargs)))
    if len(inputs) > 1 and len(set(map(id, inputs))) < len(inputs):  # one array passed twice: the
        key.append(tuple(next(j for j, b in enumerate(inputs) if b is a) for a in inputs))  # capture reads it once
    return tuple(key), inputs, held


_VALUES = (int, float, bool, str)  # keyed by value: a new value captures again


def _compare(r1, r2):
    """Both eager calls must have recorded one program, over the same external tensors and constants."""
    s1 = [s for s in r1.steps if type(s) is not Reset]
    s2 = [s for s in r2.steps if type(s) is not Reset]
    for i, (a, b) in enumerate(zip(s1, s2)):
        if _sig(a) != _sig(b):
            raise CompileError(f"the function ran a different program on its second call (step {i}: "
                               f"{_what(a)} the first time, {_what(b)} the second): its Python control "
                               "flow depends on tensor values or on state that changes between calls, "
                               "which a compiled step cannot follow")
    if len(s1) != len(s2) or len(r1.arrays) != len(r2.arrays):
        raise CompileError(f"the function ran {len(s1)} operations on its first call and {len(s2)} on its "
                           "second: its control flow changes between calls, which a compiled step cannot follow")
    for s, ((k1, t1), (k2, t2)) in enumerate(zip(r1.kinds, r2.kinds)):
        a, b = r1.arrays[s], r2.arrays[s]
        if k1 in (LEAF, EXT) and k1 == k2 and t1 is t2:
            continue
        if k1 == LEAF and k2 == LEAF:
            raise CompileError(f"the function creates a new tensor that requires grad on every call ({_used(r2, s)}); "
                               "create parameters outside it")
        if k1 != k2 and {k1, k2} != {CONST, EXT}:
            raise CompileError(f"{_used(r2, s)} comes from different places on two calls ({k1}, then {k2})")
        if k1 in (CONST, EXT) and not _equal(a, b):
            raise CompileError(f"{_used(r2, s)} is an array the function makes afresh with different values on "
                               "each call (random numbers, a mask from a comparison, raw array code): a "
                               "replay would freeze it. Pass it in as an argument (a mask from a comparison "
                               "too), or build it from differentiable tensor ops")
        if k2 == EXT:
            r2.kinds[s] = (CONST, None)  # a tensor made inside fn, the same each call: a constant


def _sig(s):
    t = type(s)
    if t is Fwd:
        out = s.out
        return (t, type(s.fn), s.ins, _plain(s.params), out)
    if t is Bwd:
        return (t, type(s.fn), s.g, s.outs)
    if t is Leaf:
        return (t, id(s.tensor), s.gi, s.g, s.grads, s.out)
    if t is Update:
        return (t, id(s.opt))
    return (t,) + tuple(getattr(s, n) for n in t.__slots__)


def _plain(tpl):
    """Params as a comparable tuple (values compared by repr where == is not a plain bool)."""
    items = []
    for k, v in sorted(tpl.items()):
        try:
            hash(v) if not isinstance(v, (list, _Ref)) else None
            items.append((k, v))
        except TypeError:
            items.append((k, repr(v)))
    return tuple(items)


def _what(s):
    if type(s) in (Fwd, Bwd):
        return f"{type(s.fn).__name__}{'.backward' if type(s) is Bwd else ''}"
    return type(s).__name__.lower()


def _used(rec, slot):
    for i, s in enumerate(rec.steps):
        if type(s) is Fwd and slot in s.ins:
            return f"input {s.ins.index(slot)} of op {i} ({type(s.fn).__name__})"
        if type(s) is Fwd and _Ref(slot) in list(s.params.values()):
            return f"a parameter of op {i} ({type(s.fn).__name__})"
    return f"array #{slot}"


def _equal(a, b):
    if type(a) is not type(b) or getattr(a, "shape", None) != getattr(b, "shape", None) \
            or getattr(a, "dtype", None) != getattr(b, "dtype", None):
        return False
    if a is b:
        return True
    xp = backend.xp_of(a)
    return bool(xp.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))

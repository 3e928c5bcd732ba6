"""The Tape: entries in execution order; backward sweeps them in reverse.

Execution order is already a valid reverse-topological order (an op's inputs exist
before it runs), so the sweep needs no graph search and no recursion: walk the list
backwards, and for each entry whose output received a gradient, call its op's backward
and *increment* the adjoint of each input. Incrementing (never overwriting) is what
makes a tensor used twice (x * x, a diamond, two branches) get the sum of its parts.

What keeps what alive (why memory stays flat in a loop that never uses no_grad):
- an op's output tensor owns its `Entry`; the entry owns the op (with the arrays its
  forward saved) and the input tensors;
- the tape holds its live entries only *weakly*, so an output nobody references takes
  its entry with it, and dead slots are compacted as the tape grows;
- a backward frees each entry it sweeps (drops the op and the inputs) and moves it to
  the tape's swept list, a small record (shapes, the output gradient) for `print(tape)`
  that is dropped when the next op is recorded.
"""
import weakref

import numpy as np

from . import backend
from .grad_mode import _state, check_unmodified, no_grad, enable_grad, is_grad_enabled  # noqa: F401
from .tensor import Tensor, _wrap

_ref = weakref.ref
_tapes = weakref.WeakSet()  # every tape, for trimming the in-place log


class Entry:
    """One recorded op: the op itself (`function`, with what its forward saved), its input
    tensors, its place on the tape, and the adjoint its output accumulates during a sweep."""
    __slots__ = ("function", "inputs", "index", "tape", "adjoint", "grad_out", "out_shape",
                 "out_dtype", "stamp", "in_shapes", "sources", "device", "_name", "_torch_name", "retains", "__weakref__")

    def __init__(self, function, inputs, index, tape, out):
        self.function, self.inputs, self.index, self.tape = function, inputs, index, tape
        self.adjoint = None    # the output gradient being accumulated during a sweep
        self.grad_out = None   # the output gradient of the latest sweep (shown by print(tape))
        self.out_shape, self.out_dtype = out.shape, out.dtype
        self.stamp = _state.version  # in-place modifications after this one are checked at backward
        self.in_shapes = self.sources = self.device = self._name = None  # filled in by free()
        self.retains = None    # the output tensor, once retain_grad() asked for its gradient

    name = property(lambda self: self._name or type(self.function).__name__, doc="The op's name, e.g. 'Tanh'.")
    torch_name = property(lambda self: self._torch_name if self.function is None else self.function.grad_fn_name(),
                          doc="torch's name for the same backward node (AddBackward0), as repr(tensor) shows it.")
    freed = property(lambda self: self.inputs is None, doc="Swept: the op's saved arrays are gone.")

    def free(self):
        """Drop the op (and so what its forward saved) and the inputs; keep a printable record."""
        inputs = self.inputs
        if inputs is None:
            return
        self.in_shapes = tuple([t.array.shape for t in inputs])
        # each input's source, for the picture after a sweep: the index of the entry that made it, a
        # weak reference to a leaf that requires grad (to find its parameter name), or None (a constant)
        self.sources = tuple([t._entry.index if t._entry is not None else _ref(t) if t.requires_grad else None
                              for t in inputs])
        first = inputs[0].array if inputs else None
        self.device = "cpu" if first is None or type(first) is np.ndarray else backend.device_of(first)
        self._name = type(self.function).__name__
        self._torch_name = self.function.grad_fn_name()
        self.function = self.inputs = self.retains = None

    def __repr__(self):
        return f"<entry #{self.index} {self.name}{' (freed)' if self.freed else ''}>"


class Step:
    """One entry of a reverse sweep: the entry, its output gradient, and what it added to each input."""
    __slots__ = ("entry", "grad_out", "increments")

    def __init__(self, entry, grad_out, increments):
        self.entry, self.grad_out, self.increments = entry, grad_out, increments  # increments: [(tensor, array)]

    def __repr__(self):
        n = len(self.increments)
        return f"Step(#{self.entry.index} {self.entry.name}, {n} increment{'' if n == 1 else 's'})"


class Tape:
    """An append-only record of the ops applied to tensors that require a gradient."""

    def __init__(self):
        self._live = []      # weak references to entries not yet swept (None: swept since)
        self._swept = []     # entries freed by the latest backward, kept for print until the next op
        self._limit = 1024   # compact dead slots when the live list grows past this
        self._count = 0      # entries ever recorded: each entry's stable index
        self._outer = []
        _tapes.add(self)

    # -- recording ------------------------------------------------------------------
    def __enter__(self):
        self._outer.append(_state.tape)
        _state.tape = self
        return self

    def __exit__(self, *exc):
        _state.tape = self._outer.pop()

    def record(self, function, inputs, out):
        """Append an entry for `function` applied to `inputs`, giving `out` its history."""
        if self._swept:
            self._swept = []
            self._compact()
        entry = Entry(function, inputs, self._count, self, out.array)
        self._count += 1
        self._live.append(_ref(entry))
        out.requires_grad = True
        out._entry = entry
        if len(self._live) > self._limit:
            self._compact()
        return entry

    def _compact(self):
        self._live = [r for r in self._live if r is not None and r() is not None]
        self._limit = max(1024, 2 * len(self._live))

    def clear(self):
        """Forget every entry (tensors already computed keep their values, but lose their history)."""
        for entry in self.entries:
            entry.free()
        self._live, self._swept = [], []

    @property
    def entries(self):
        """The entries on the tape in execution order: live ones, and those the latest sweep freed."""
        live = [e for e in (r() for r in self._live if r is not None) if e is not None]
        if not self._swept:
            return live
        return sorted(live + self._swept, key=lambda e: e.index)

    def __len__(self):
        return len(self.entries)

    # -- the reverse sweep ----------------------------------------------------------
    def backward(self, tensor, grad=None, retain_graph=False):
        """Sweep the tape in reverse from `tensor`, incrementing adjoints; leaves get `.grad`."""
        for _ in self._sweep(tensor, grad, retain_graph, False):
            pass

    def backward_steps(self, tensor, grad=None, retain_graph=False):
        """Like backward, but yield a Step after each entry so a reader can watch the chain rule.

        The gradients of leaves are updated as the sweep goes; stop iterating early (close the
        generator) and the leaves keep what they received, while the pending adjoints of the
        entries not yet reached are dropped (so they cannot leak into a later backward).
        """
        return self._sweep(tensor, grad, retain_graph, True)

    def _sweep(self, tensor, grad, retain_graph, steps):
        seed = _seed_grad(tensor, grad)
        root = tensor._entry
        if root is None:  # a leaf: its gradient is the seed itself
            if _state.capture is not None:
                _state.capture.leaf(tensor, seed, seed, ())
            _increment_leaf(tensor, seed, seed, [])
            return
        _check_sweepable(self, root, tensor)
        live = self._live
        sweep = _Sweep(self, root, seed)
        try:
            for pos in range(len(live) - 1, -1, -1):
                ref = live[pos]
                entry = ref() if ref is not None else None
                if entry is None or entry.adjoint is None:
                    continue  # not on the path to `tensor`: skipped
                g, grads = sweep.take(entry)
                incs = sweep.deliver_all(entry, g, grads, steps)
                if not retain_graph:
                    entry.free()
                    live[pos] = None
                    self._swept.append(entry)
                if steps:
                    yield Step(entry, g, incs)
                if not sweep.waiting:
                    break  # nothing further up the tape can receive a gradient from `tensor`
        except GeneratorExit:  # backward_steps stopped early: leaves keep their grads, pending adjoints go
            sweep.drop_pending()
            raise
        except BaseException:
            sweep.roll_back()
            raise

    # -- reading the tape -----------------------------------------------------------
    def __repr__(self):
        from .tape_print import format_tape  # printing is a floor above the tape
        return format_tape(self)

    def label(self, model):
        """Name leaves after a Module's parameters (or a dict name -> tensor) in print and pictures."""
        from .tape_graph import label
        return label(self, model)

    def draw(self, names=None, max_entries=40):
        """The tape as an SVG picture (text); see docs/tape.md."""
        from .tape_draw import draw
        return draw(self, names, max_entries)

    def save_html(self, path, loss=None, names=None):
        """A self-contained page: the picture and a Step button for the reverse sweep from `loss`."""
        from .tape_html import save_html
        return save_html(self, path, loss, names)

    def _repr_svg_(self):
        from .tape_draw import draw
        return draw(self)

    def _repr_html_(self):
        from .tape_draw import tape_html
        return tape_html(self)


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

    def take(self, entry):
        """Take the entry's adjoint and run its op's backward: one gradient per input."""
        g = entry.adjoint
        entry.adjoint = None
        entry.grad_out = g
        self.waiting -= 1
        if entry.retains is not None:  # retain_grad(): the output's .grad accumulates like a leaf's
            if _state.capture is not None:
                _state.capture.leaf(entry.retains, g, g, ())
            _increment_leaf(entry.retains, g, g, (), self.undo)
        if entry.stamp != _state.version:  # something was written in place since it was recorded
            check_unmodified(entry)
        grads = entry.function.backward(g)
        if type(grads) is not tuple:
            grads = tuple(grads) if type(grads) is list else (grads,)
        if len(grads) != len(entry.inputs):
            raise RuntimeError(f"{entry.name}.backward returned {len(grads)} gradients "
                               f"for {len(entry.inputs)} inputs")
        if _state.capture is not None:  # tg.compile is capturing: note which backward ran on what
            _state.capture.backward(entry, g, grads)
        return g, grads

    def deliver_all(self, entry, g, grads, steps):
        """Increment each input's adjoint (an intermediate) or .grad (a leaf) by its gradient."""
        incs = [] if steps else None
        rec = _state.capture  # a tg.compile recorder, or None: checked only where a gradient moves
        for t, gi in zip(entry.inputs, grads):
            if gi is None or not t.requires_grad:
                continue
            a = t.array
            if gi.shape != a.shape or type(gi) is not type(a) or gi.dtype != a.dtype:
                fitted = _fit_gradient(entry, t, gi)
                if rec is not None:
                    rec.fit(gi, fitted)
                gi = fitted
            node = t._entry
            if node is None:
                if rec is not None:
                    rec.leaf(t, gi, g, grads)
                _increment_leaf(t, gi, g, grads, self.undo)
            elif node.adjoint is not None:  # an intermediate: its entry is further up the tape
                total = node.adjoint + gi
                if rec is not None:
                    rec.accumulate(node.adjoint, gi, total)
                node.adjoint = total
            elif node.tape is self.tape and not node.freed:
                node.adjoint = gi
                self.pending.append(node)
                self.waiting += 1
            else:  # first arrival only: a freed or foreign entry would never be swept
                raise RuntimeError(_freed_message(node) if node.freed else
                                   f"{t.short()} was recorded on another tape (inside a different "
                                   "`with Tape():`); its history cannot be swept here")
            if steps:
                incs.append((t, gi))
        return incs

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


def _increment_leaf(t, gi, g, grads, undo=None):
    """t.grad += gi, out of place (so a roll-back is exact); a new .grad never shares memory."""
    old = t._grad
    if undo is not None:
        undo.append((t, old, None if old is None else old.array))
    if old is None:
        # copy when gi may alias another array: the upstream grad, a view, or the same array
        # handed to two inputs -- no .grad may share memory with anything else
        shared = gi is g or gi.base is not None or len(grads) > 1 and _twice(gi, grads)
        t._grad = _wrap(gi.copy() if shared else gi)
    else:
        total = old.array + gi
        old.array = total if total.ndim else backend.xp_of(gi).asarray(total)  # 0-d sums are scalars


def _check_sweepable(tape, root, tensor):
    if root.tape is not tape:
        raise RuntimeError(f"{tensor.short()} was recorded on another tape; call backward on that tape")
    if root.freed:
        raise RuntimeError(_freed_message(root))


def _seed_grad(tensor, grad):
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
        return backend.xp_of(a).ones(a.shape, dtype=a.dtype)
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


def _fit_gradient(entry, t, gi):
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


def _freed_message(entry):
    return (f"entry #{entry.index} ({entry.name}) was already freed by an earlier backward; "
            "its saved arrays are gone. Call backward(retain_graph=True) the first time to sweep it again")


def oldest_live_stamp():
    """The in-place version at which the oldest unswept entry on any tape was recorded."""
    oldest = _state.version
    for tape in list(_tapes):
        for r in tape._live:
            e = r() if r is not None else None
            if e is not None:
                oldest = min(oldest, e.stamp)
                break  # entries are in recording order: the first live one is the oldest
    return oldest


def default_tape():
    """The tape ops record on outside any `with Tape():` block."""
    return _state.tape


_state.tape = Tape()

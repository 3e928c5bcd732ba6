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
from .grad_mode import _state, tapes as _tapes
from .function import Function
from . import sweep
from .sweep import freed_message, increment_leaf, seed_gradient

Step = sweep.Step  # also tinygrad_mm.tape.Step: what backward_steps yields

_ref = weakref.ref
_new = object.__new__
_BASE_GRAD_FN_NAME = Function.grad_fn_name


def _input_record(t):
    """What a freed entry keeps of one input: its shape, and its source for the picture after a
    sweep -- the index of the entry that made it, the leaf itself if it requires grad (as torch's
    AccumulateGrad node holds it), or None for a constant."""
    e = t._entry
    return t.array.shape, (e.index if e is not None else t if t.requires_grad else None)


class Entry:
    """One recorded op: the op itself (`function`, with what its forward saved), its input
    tensors, its place on the tape, and the adjoint its output accumulates during a sweep."""
    __slots__ = ("function", "inputs", "index", "tape", "adjoint", "grad_out", "out_shape",
                 "out_dtype", "stamp", "retains", "_freed", "__weakref__")

    # Built field by field in Tape.record (no __init__ frame: recording is the hot path):
    #   function, inputs, index, tape: the op, its input tensors, its place on the tape, the tape;
    #   out_shape, out_dtype: the output's (print shows them; an in-place write updates them);
    #   stamp: the in-place version when recorded (later modifications are checked at backward);
    #   adjoint: the output gradient being accumulated during a sweep; grad_out: that of the
    #   latest sweep (print(tape) shows it); retains: the output tensor, once retain_grad() asked
    #   for its gradient; _freed: once swept, what print and the pictures still show (see free).

    freed = property(lambda self: self.inputs is None, doc="Swept: the op's saved arrays are gone.")
    name = property(lambda self: type(self.function).__name__ if self._freed is None else self._freed[0].__name__,
                    doc="The op's name, e.g. 'Tanh'.")
    torch_name = property(lambda self: self.function.grad_fn_name() if self._freed is None else
                          self._freed[3] or self._freed[0].torch_name or self._freed[0].__name__ + "Backward0",
                          doc="torch's name for the same backward node (AddBackward0), as repr(tensor) shows it.")
    in_shapes = property(lambda self: None if self._freed is None else tuple(s for s, _ in self._freed[1]),
                         doc="Once freed: the inputs' shapes (a live entry has its inputs).")
    sources = property(lambda self: None if self._freed is None else tuple(r for _, r in self._freed[1]),
                       doc="Once freed: per input, the index of the entry that made it, the leaf "
                           "tensor if it requires grad, or None.")
    device = property(lambda self: None if self._freed is None else self._freed[2],
                      doc='Once freed: "cpu" or "cuda".')

    def free(self):
        """Drop the op (and so what its forward saved) and the inputs; keep a printable record:
        (op class, per input (shape, source), device, torch's name when the instance decides it)."""
        inputs = self.inputs
        if inputs is None:
            return
        function = self.function
        cls = type(function)
        first = inputs[0].array  # one device per op
        sources = (_input_record(inputs[0]),) if len(inputs) == 1 else tuple(map(_input_record, inputs))
        self._freed = (cls, sources, "cpu" if type(first) is np.ndarray else backend.device_of(first),
                       # torch's name, computed now only for ops whose name depends on the instance
                       function.grad_fn_name() if cls.grad_fn_name is not _BASE_GRAD_FN_NAME else None)
        self.function = self.inputs = self.retains = None

    def __repr__(self):
        return f"<entry #{self.index} {self.name}{' (freed)' if self.freed else ''}>"


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
        entry = _new(Entry)  # the fields Entry documents, set one by one
        entry.function = function
        entry.inputs = inputs
        entry.index = self._count
        entry.tape = self
        array = out.array
        entry.out_shape = array.shape
        entry.out_dtype = array.dtype
        entry.stamp = _state.version
        entry.adjoint = entry.grad_out = entry.retains = entry._freed = None
        self._count += 1
        live = self._live
        live.append(_ref(entry))
        out.requires_grad = True
        out._entry = entry
        if len(live) > self._limit:
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
        # not freed: an op recorded between backward_steps' yields compacts the live list while the
        # sweep still frees entries through the old one, and those are listed once, as swept
        live = [e for e in (r() for r in self._live if r is not None) if e is not None and e.inputs is not None]
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
        yield from self._sweep(tensor, grad, retain_graph, True)  # lazy: nothing runs before the first next()

    def _sweep(self, tensor, grad, retain_graph, steps):
        """Check the root and return the sweep (sweep.run, a generator) to iterate."""
        seed = seed_gradient(tensor, grad)
        root = tensor._entry
        if root is None:  # a leaf: its gradient is the seed itself
            if _state.capture is not None:  # tg.compile increments and notes the result
                _state.capture.leaf(tensor, seed, seed, ())
                _state.capture.swept()  # a sweep of one delivery, which stands
            else:
                increment_leaf(tensor, seed, seed, [])
            return iter(())
        _check_sweepable(self, root, tensor)
        return sweep.run(self, root, seed, retain_graph, steps)

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


def _check_sweepable(tape, root, tensor):
    if root.tape is not tape:
        raise RuntimeError(f"{tensor.short()} was recorded on another tape; call backward on that tape")
    if root.freed:
        raise RuntimeError(freed_message(root))


def default_tape():
    """The tape ops record on outside any `with Tape():` block."""
    return _state.tape


_state.tape = Tape()

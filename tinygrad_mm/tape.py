"""The Tape: ops append themselves in execution order; backward sweeps them in reverse.

Execution order is already a valid reverse-topological order (an op's inputs exist
before it runs), so the sweep needs no graph search and no recursion: walk the list
backwards, and for each entry whose output received a gradient, call its backward and
*increment* the adjoint of each input. Incrementing (never overwriting) is what makes
a tensor used twice (x * x, a diamond, two branches) get the sum of its contributions.

What keeps what alive (why memory stays flat in a loop that never uses no_grad):
- an op's output tensor owns its entry, and the entry owns its input tensors;
- the tape holds its entries only *weakly*, so an output nobody references takes its
  entry with it, and dead slots are compacted as the tape grows;
- after a backward each swept entry is *freed*: the arrays it saved for backward and
  its references to its inputs are dropped; the tape keeps a small record (op, shapes,
  the output gradient for `print(tape)`) until the next op is recorded on it.
"""
import weakref

import numpy as np

from . import backend

_ref = weakref.ref


class _State:
    """Which tape records, and whether recording is on (module-global, single-threaded)."""
    tape = None
    grad_enabled = True


_state = _State()


class no_grad:
    """Context manager (and decorator) under which no op is recorded."""

    def __enter__(self):
        self._prev = _state.grad_enabled
        _state.grad_enabled = False

    def __exit__(self, *exc):
        _state.grad_enabled = self._prev

    def __call__(self, f):
        def wrapper(*args, **kwargs):
            with no_grad():
                return f(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = f.__name__, f.__doc__
        return wrapper


def is_grad_enabled():
    """Whether ops on tensors that require grad are being recorded."""
    return _state.grad_enabled


class Step:
    """One entry of a reverse sweep: the entry, its output gradient, and what it added to each input."""
    __slots__ = ("entry", "grad_out", "increments")

    def __init__(self, entry, grad_out, increments):
        self.entry, self.grad_out, self.increments = entry, grad_out, increments  # increments: [(tensor, array)]

    def __repr__(self):
        return f"Step(#{self.entry.index} {type(self.entry).__name__}, {len(self.increments)} increments)"


class Tape:
    """An append-only record of the ops applied to tensors that require a gradient."""

    def __init__(self):
        self._entries = []   # weakref to a live entry, or the entry itself once swept and freed
        self._limit = 1024   # compact dead slots when the list grows past this
        self._count = 0      # entries ever recorded: each entry's stable index
        self._swept = False  # a non-retaining backward ran; drop its records at the next op
        self._outer = []

    # -- recording ------------------------------------------------------------------
    def __enter__(self):
        self._outer.append(_state.tape)
        _state.tape = self
        return self

    def __exit__(self, *exc):
        _state.tape = self._outer.pop()

    def record(self, fn):
        """Append entry `fn` (called by Function.apply)."""
        if self._swept:
            self._drop_freed()
        fn.tape = self
        fn.index = self._count
        self._count += 1
        self._entries.append(_ref(fn))
        if len(self._entries) > self._limit:
            self._compact()

    def _compact(self):
        self._entries = [e for e in self._entries if type(e) is not _ref or e() is not None]
        self._limit = max(1024, 2 * len(self._entries))

    def _drop_freed(self):
        self._entries = [e for e in self._entries if type(e) is _ref and e() is not None]
        self._swept = False

    def clear(self):
        """Forget every entry (tensors already computed keep their values, but lose their history)."""
        for fn in self.entries:
            fn.free()
        self._entries = []
        self._swept = False

    @property
    def entries(self):
        """The entries still on the tape, in execution order (freed ones included until the next op)."""
        out = []
        for e in self._entries:
            fn = e() if type(e) is _ref else e
            if fn is not None:
                out.append(fn)
        return out

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
        root = tensor._node
        seed = _seed_grad(tensor, grad)
        if root is None:  # a leaf: its gradient is the seed itself
            tensor.grad = seed.copy() if tensor.grad is None else backend.xp_of(seed).asarray(tensor.grad + seed)
            return
        if root.tape is not self:
            raise RuntimeError(f"{tensor.short()} was recorded on another tape; call backward on that tape")
        if root.freed:
            raise RuntimeError(_freed_message(root))
        entries = self._entries
        undo = []  # (leaf, its .grad before) for each increment, to roll back on error
        # entries holding an adjoint, kept alive until swept: the tape refers to them weakly, and
        # freeing a swept entry's inputs may drop the last other reference to one of them
        pending = [root]
        waiting = 1  # entries holding an adjoint not yet swept: at 0 the rest of the tape is skipped
        root.grad_out = seed
        try:
            for pos in range(len(entries) - 1, -1, -1):
                e = entries[pos]
                fn = e() if type(e) is _ref else e
                if fn is None or fn.grad_out is None:
                    continue  # not on the path to `tensor`: skipped
                g = fn.grad_out
                fn.grad_out = None
                fn.last_grad = g
                waiting -= 1
                grads = fn.backward(g)
                inputs = fn.inputs
                if type(grads) is not tuple:
                    grads = tuple(grads) if type(grads) is list else (grads,)
                if len(grads) != len(inputs):
                    raise RuntimeError(f"{type(fn).__name__}.backward returned {len(grads)} gradients "
                                       f"for {len(inputs)} inputs")
                incs = [] if steps else None
                for t, gi in zip(inputs, grads):
                    if gi is None or not t.requires_grad:
                        continue
                    d = t.data
                    if gi.shape != d.shape or type(gi) is not type(d) or gi.dtype != d.dtype:
                        gi = _fit_gradient(fn, t, gi)
                    node = t._node
                    if node is not None:  # an intermediate: its entry is further up the tape
                        if node.grad_out is not None:
                            node.grad_out = node.grad_out + gi
                        elif node.tape is self and not node.freed:
                            node.grad_out = gi
                            pending.append(node)
                            waiting += 1
                        else:  # first arrival only: a freed or foreign entry would never be swept
                            raise RuntimeError(_freed_message(node) if node.freed else
                                               f"{t.short()} was recorded on another tape (inside a "
                                               "different `with Tape():`); its history cannot be swept here")
                    else:                 # a leaf: increment .grad (out of place, so rollback is exact)
                        old = t.grad
                        undo.append((t, old))
                        if old is None:
                            # copy when gi may alias another array: the upstream grad, a view, or
                            # the same array handed to two inputs -- no .grad may share memory
                            shared = gi is g or gi.base is not None or len(grads) > 1 and _twice(gi, grads)
                            t.grad = gi.copy() if shared else gi
                        else:
                            t.grad = old + gi
                            if not t.grad.ndim:  # 0-d arithmetic returns a numpy scalar
                                t.grad = backend.xp_of(gi).asarray(t.grad)
                    if steps:
                        incs.append((t, gi))
                if not retain_graph:
                    fn.free()
                    entries[pos] = fn  # keep the small record (for print) until the next op
                if steps:
                    yield Step(fn, g, incs)
                if not waiting:
                    break  # nothing further up the tape can receive a gradient from `tensor`
        except GeneratorExit:  # backward_steps stopped early: leaves keep their grads, pending adjoints go
            for fn in pending:
                fn.grad_out = None
            raise
        except BaseException:
            for t, old in reversed(undo):
                t.grad = old
            for fn in pending:
                fn.grad_out = None
            raise
        finally:
            if not retain_graph:  # entries freed so far are kept strongly: drop them at the next op
                self._swept = True

    # -- reading the tape -----------------------------------------------------------
    def __repr__(self):
        from .tape_print import format_tape
        return format_tape(self)


def _seed_grad(tensor, grad):
    """The upstream gradient of the sweep's root, validated."""
    if not tensor.requires_grad:
        raise RuntimeError(f"{tensor.short()} does not require grad: nothing to differentiate "
                           "(create leaves with requires_grad=True, and do not compute under no_grad)")
    if grad is None:
        if tensor.data.size != 1:
            raise RuntimeError(f"backward() without a gradient needs a scalar output, got shape "
                               f"{tensor.shape}; pass grad= an array of that shape (or reduce, e.g. .sum())")
        return backend.xp_of(tensor.data).ones(tensor.data.shape, dtype=tensor.data.dtype)
    from .tensor import Tensor
    if isinstance(grad, Tensor):
        grad = grad.data
    if type(grad) is not type(tensor.data):
        raise TypeError(f"gradient is a {type(grad).__name__} but the output lives on {tensor.device}")
    if grad.shape != tensor.data.shape or grad.dtype != tensor.data.dtype:
        raise ValueError(f"gradient has shape {grad.shape} and dtype {grad.dtype}; the output has "
                         f"shape {tensor.shape} and dtype {tensor.dtype}")
    return grad


def _twice(gi, grads):
    """True when the same array object appears more than once among an entry's gradients."""
    n = 0
    for other in grads:
        n += other is gi
    return n > 1


def _fit_gradient(fn, t, gi):
    """Reduce a broadcast-shaped gradient to its input's shape -- the one place this happens."""
    which = next(i for i, x in enumerate(fn.inputs) if x is t)
    where = f"{type(fn).__name__}.backward returned a gradient of"
    if isinstance(gi, np.generic):  # numpy ops on 0-d arrays return scalars
        gi = np.asarray(gi)
        if gi.shape == t.data.shape and gi.dtype == t.data.dtype:
            return gi
    if type(gi) is not type(t.data):
        raise TypeError(f"{where} type {type(gi).__name__} for input {which}, which holds a "
                        f"{type(t.data).__name__}")
    if gi.dtype != t.data.dtype:
        raise TypeError(f"{where} dtype {gi.dtype} for input {which} of dtype {t.data.dtype}")
    if fn.broadcasts:
        shape = t.data.shape
        lead = gi.ndim - len(shape)
        if lead >= 0 and all(n == 1 or n == m for n, m in zip(shape, gi.shape[lead:])):
            axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                              if n == 1 and gi.shape[lead + i] != 1)
            return gi.sum(axis=axes, keepdims=True).reshape(shape)
    raise ValueError(f"{where} shape {gi.shape} for input {which} of shape {t.data.shape}"
                     + ("" if fn.broadcasts else " (if the forward broadcasts this input, reduce the "
                        "gradient over the broadcast dimensions, or set broadcasts = True on the op)"))


def _freed_message(fn):
    return (f"entry #{fn.index} ({type(fn).__name__}) was already freed by an earlier backward; "
            "its saved arrays are gone. Call backward(retain_graph=True) the first time to sweep it again")


def default_tape():
    """The tape ops record on outside any `with Tape():` block."""
    return _state.tape


_state.tape = Tape()


class Function:
    """One op: `forward` and `backward` on raw arrays; the instance is its tape entry and context.

    Subclass it, then call `MyOp.apply(*tensors, **params)`. `forward(*arrays, **params)`
    returns the output array and stores on `self` what backward needs. `backward(grad)`
    returns one gradient per tensor input (None where not needed; see
    `self.needs_input_grad`), each shaped like that input -- or, with `broadcasts = True`,
    shaped like the output, and the tape reduces it over the broadcast dimensions.
    Positional inputs are the differentiable tensors and must share one device and dtype;
    pass anything else (index arrays, axes, flags) as keyword parameters.
    """
    broadcasts = False
    # defaults as class attributes keep apply() from setting them on every instance
    grad_out = None    # the adjoint being accumulated during a sweep
    last_grad = None   # the output gradient of the latest sweep (shown by print(tape))
    freed = False
    tape = None
    index = -1

    _META = frozenset(("inputs", "needs_input_grad", "out_shape", "out_dtype", "array_type", "tape", "index",
                       "grad_out", "last_grad", "freed", "in_shapes"))

    def forward(self, *arrays, **params):
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, *arrays)")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__} must define backward(self, grad)")

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays and, if any input requires grad, record the entry."""
        fn = cls()
        try:
            fn.needs_input_grad = needs = tuple([t.requires_grad for t in inputs])
        except AttributeError:
            bad = next(x for x in inputs if not hasattr(x, "requires_grad"))
            raise TypeError(f"{cls.__name__}.apply takes Tensors as positional inputs, got "
                            f"{type(bad).__name__}; pass constants as keyword parameters") from None
        if len(inputs) == 1:
            out = _wrap(fn.forward(inputs[0].data, **params))
        else:
            datas = [t.data for t in inputs]
            a = datas[0]
            for d in datas:  # one device and one dtype per op: no silent transfers or upcasts
                if type(d) is not type(a) or d.dtype is not a.dtype and d.dtype != a.dtype:
                    _check_compatible(cls, inputs)
            out = _wrap(fn.forward(*datas, **params))
        if True in needs and _state.grad_enabled:
            fn.inputs = inputs
            fn.out_shape = out.data.shape
            fn.out_dtype = out.data.dtype
            out.requires_grad = True
            out._node = fn
            _state.tape.record(fn)
        return out

    def free(self):
        """Drop what forward saved and the references to the inputs; keep a printable record."""
        d = self.__dict__
        if "inputs" not in d:
            return
        # swapping the whole __dict__ drops every saved array at once (cheap on the hot path)
        self.__dict__ = {"in_shapes": tuple([t.data.shape for t in d["inputs"]]), "freed": True,
                         "out_shape": d["out_shape"], "out_dtype": d["out_dtype"],
                         "array_type": type(d["inputs"][0].data), "tape": d["tape"], "index": d["index"],
                         "last_grad": d.get("last_grad")}


_wrap = None  # tensor._wrap, bound by tensor.py once Tensor exists (tensor.py imports this module)


def _check_compatible(cls, inputs):
    """All inputs of one op must share a device and a dtype: no silent transfers or upcasts."""
    first = inputs[0].data
    for i, t in enumerate(inputs[1:], 1):
        d = t.data
        if type(d) is not type(first):
            raise TypeError(f"{cls.__name__}: input 0 is on {inputs[0].device} but input {i} is on "
                               f"{t.device}; move one with .to(device)")
        if d.dtype != first.dtype:
            raise TypeError(f"{cls.__name__}: input 0 is {first.dtype} {tuple(first.shape)} but input {i} is "
                            f"{d.dtype} {tuple(d.shape)}; convert one explicitly (.float(), .double()) "
                            "-- mixing would silently upcast")

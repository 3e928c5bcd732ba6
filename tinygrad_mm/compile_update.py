"""The replay of an optimizer's step, for tg.compile, and the gradient arena that fuses plain SGD.

Plain SGD replays as out= ufuncs on fixed buffers: `tmp = lr * g; w -= tmp` per parameter, the
calls eager's `w -= lr * g` makes. Where the parameters' gradients are assigned buffers the
program writes (zero_grad, then the sweep's first delivery: the usual step), those buffers are
carved out of one zeroed *arena*, and the multiply runs once over the whole arena instead of
once per parameter: elementwise, so the bits are the same; a call fewer per parameter after
the first (at batch 32 a call is per-call overhead, not arithmetic). One difference remains:
the products are all made before the first subtraction, so under np.errstate(over="raise") an
overflowing lr * g raises before any parameter is updated (eager: after those before it), and
numpy warns once for the arena where eager warns per parameter.
Any other optimizer replays through its own step(), which updates in place.
"""
from functools import partial

import numpy as np

from . import backend, optim
from .compile_ops import FORMS
from .compile_record import Bwd, Fit, Update, after_reset
from .grad_mode import log_storages, log_writes, storage

SGD_WRITE = "a parameter (SGD.step)"  # what the in-place log names, as eager's step logs it: a graph
# recorded outside the step that saved a parameter then refuses its backward after a replay too


def plain_sgd(opt):
    return type(opt) is optim.SGD and not opt.weight_decay and not opt.momentum


class Arena:
    """One zeroed 1-D buffer, packed without gaps, holding several gradients (`views`: slot ->
    array). Each view is an array of its own over its part of the buffer, not a view of the
    buffer: the in-place log keys a write by the array that owns the memory (grad_mode.storage),
    and views of one buffer would make a write to one gradient a write to all of them."""

    def __init__(self, dtype, slots, shapes):
        sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
        self.buffer = np.zeros(sum(sizes), dtype)
        memory, start = memoryview(self.buffer), 0
        self.views, self.offsets = {}, {}  # slot -> gradient array; id(gradient array) -> its start
        for slot, shape, size in zip(slots, shapes, sizes):
            view = np.frombuffer(memory[start:start + size], dtype).reshape(shape)
            self.views[slot], self.offsets[id(view)] = view, start
            start += size

    def part(self, other, g):
        """The part of `other` (shaped as the buffer) where gradient `g` sits."""
        start = self.offsets[id(g)]
        return other[start:start + g.size].reshape(g.shape)


def grad_arena(steps, arrays):
    """The Arena for the gradients that become plain-SGD parameters' .grad by assignment: a hot
    op's backward output (or a broadcast reduction) delivered to a parameter whose .grad was just
    reset. None unless the program has one update, plain SGD on numpy, and two or more such
    gradients of one dtype (of the most common, where there are several)."""
    updates = [s for s in steps if type(s) is Update]
    if len(updates) != 1 or not plain_sgd(updates[0].opt):
        return None
    params = {id(p) for p in updates[0].opt.params}
    # a hot op's backward writes the buffers it is given (compile_ops); a generic one makes arrays
    made = {o for s in steps if type(s) is Bwd and type(s.fn) in FORMS for o in s.outs if o is not None}
    made |= {s.out for s in steps if type(s) is Fit and s.axes is not None}
    slots = []
    for i in sorted(after_reset(steps)):
        s = steps[i]
        if id(s.tensor) in params and s.gi in made and s.gi not in slots and type(arrays[s.gi]) is np.ndarray:
            slots.append(s.gi)
    dtypes = [arrays[s].dtype for s in slots]
    dtype = max(dtypes, key=dtypes.count, default=None)
    slots = [s for s in slots if arrays[s].dtype == dtype]
    return Arena(dtype, slots, [arrays[s].shape for s in slots]) if len(slots) >= 2 else None


def update(opt, grads=None, arena=None):
    """The replay of opt.step(), as (instructions, the graph-safe ones among them, how many
    gradients one fused multiply covers): plain SGD as out= ufuncs, any other optimizer through
    its own step(). `grads`: parameter id -> the fixed buffer its .grad wraps at this point. Where
    every parameter has one, SGD's array calls are bound once (and can go into a CUDA graph,
    apart from its Python counter); otherwise each call reads .grad. Either way the gradients
    held in `arena` are multiplied by lr in one call."""
    if not plain_sgd(opt):
        return [opt.step], set(), 0
    gs = [(grads or {}).get(id(p)) for p in opt.params]
    work = [(p, p.array, backend.xp_of(p.array).empty_like(p.array)) for p in opt.params]
    held = [arena is not None and g is not None and id(g) in arena.offsets for g in gs]
    if sum(held) < 2:
        arena, held = None, [False] * len(gs)
    scaled = np.empty_like(arena.buffer) if arena is not None else None  # lr * each gradient, in place
    products = [arena.part(scaled, g) if h else None for g, h in zip(gs, held)]
    if all(g is not None for g in gs):
        fns, safe = _bound_sgd(opt, work, gs, arena, scaled, products)
    else:
        fns, safe = [_loose_sgd(opt, work, arena, scaled, products)], set()
    return fns, safe, sum(held)


def _bound_sgd(opt, work, gs, arena, scaled, products):
    """Plain SGD over gradients that are fixed buffers: every array call bound once."""
    xp = backend.xp_of(work[0][1])
    # lr as eager's SGD takes it, a Python number: rounded to each parameter's own dtype (one 0-d
    # array per dtype: a float64 lr multiplying a float32 gradient would round otherwise)
    lrs = {w.dtype: np.empty((), w.dtype) for _, w, _ in work} if xp is np else {}
    owners = tuple(storage(w) for _, w, _ in work)

    def count():  # (Program.valid re-captures the step once momentum or weight decay is set)
        opt.steps += 1
        for lr in lrs.values():
            lr[...] = opt.lr
        log_storages(owners, SGD_WRITE)
    device = []
    if arena is not None:
        device.append(partial(np.multiply, arena.buffer, lrs[arena.buffer.dtype], scaled))
    for (p, w, tmp), g, product in zip(work, gs, products):
        if product is not None:
            device.append(partial(np.subtract, w, product, w))
        elif lrs:
            device += [partial(np.multiply, g, lrs[w.dtype], tmp), partial(np.subtract, w, tmp, w)]
        else:  # a CUDA graph: opt.lr is read when the graph is recorded (again when it changes)
            device += [lambda g=g, tmp=tmp: xp.multiply(g, optim.python_number(opt.lr), out=tmp),
                       partial(xp.subtract, w, tmp, out=w)]
    return [count] + device, {id(f) for f in device}


def _loose_sgd(opt, work, arena, scaled, products):
    """Plain SGD reading each .grad per call (some are sums made afresh): eager's loop, except
    that a gradient held in the arena (the program assigns it there on every call, as the bound
    form relies on too) takes its product from the one multiply."""
    entries = list(zip(work, products))

    def sgd():
        opt.steps += 1
        lr = optim.python_number(opt.lr)       # as SGD.step takes it
        if arena is not None:
            np.multiply(arena.buffer, lr, scaled)
        written = []
        for (p, w, tmp), product in entries:
            g = p._grad
            if g is not None:
                xp = np if type(w) is np.ndarray else backend.xp_of(w)
                if product is not None:
                    xp.subtract(w, product, w)
                else:
                    xp.multiply(g.array, lr, tmp)
                    xp.subtract(w, tmp, w)
                written.append(w)
        log_writes(written, SGD_WRITE)
    return sgd

"""The replay of an optimizer's step, for tg.compile, and the gradient arena that fuses plain SGD.

Plain SGD replays as out= ufuncs on fixed buffers: `tmp = lr * g; w -= tmp` per parameter, the
calls eager's `w -= lr * g` makes. Where the parameters' gradients are assigned buffers the
program writes (zero_grad, then the sweep's first delivery: the usual step), those buffers are
carved out of one zeroed *arena*, and the multiply runs once over the whole arena instead of
once per parameter: elementwise, so the bits are the same; a call fewer per parameter after
the first (at batch 32 a call is per-call overhead, not arithmetic). Any other optimizer
replays through its own step(), which updates in place.
"""
from functools import partial

import numpy as np

from . import backend, optim
from .compile_ops import FORMS
from .compile_record import Bwd, Fit, Leaf, Reset, Update
from .grad_mode import log_storages, log_writes, storage

ALIGN = 64  # bytes: each gradient starts on a cache line (and a SIMD-aligned address), as np.empty gives
WHAT = "a parameter (SGD.step)"  # logged as eager's step logs it: a graph recorded outside the step
# that saved a parameter then refuses its backward after a replay too


def plain_sgd(opt):
    return type(opt) is optim.SGD and not opt.weight_decay and not opt.momentum


def grad_arena(steps, arrays):
    """{slot: a view of one zeroed array} for each gradient that becomes a plain-SGD parameter's
    .grad by assignment: a backward's output (or a broadcast reduction) delivered to a parameter
    whose .grad was just reset. Empty unless the program has one update, plain SGD on numpy,
    and two or more such gradients of one dtype (of the most common, where there are several)."""
    updates = [s for s in steps if type(s) is Update]
    if len(updates) != 1 or not plain_sgd(updates[0].opt):
        return {}
    params = {id(p) for p in updates[0].opt.params}
    # a hot op's backward writes the buffers it is given (compile_ops); a generic one makes arrays
    made = {o for s in steps if type(s) is Bwd and type(s.fn) in FORMS for o in s.outs if o is not None}
    made |= {s.out for s in steps if type(s) is Fit and s.axes is not None}
    slots = []
    for before, s in zip(steps, steps[1:]):
        if (type(s) is Leaf and type(before) is Reset and before.tensor is s.tensor and id(s.tensor) in params
                and s.gi in made and s.gi not in slots and type(arrays[s.gi]) is np.ndarray):
            slots.append(s.gi)
    dtypes = [arrays[s].dtype for s in slots]
    dtype = max(dtypes, key=dtypes.count, default=None)  # one arena, of the most common dtype
    slots = [s for s in slots if arrays[s].dtype == dtype]
    if len(slots) < 2:
        return {}
    step = max(1, ALIGN // dtype.itemsize)
    offsets, n = [], 0
    for s in slots:
        offsets.append(n)
        n += -(-arrays[s].size // step) * step
    arena = np.zeros(n, dtype)  # the gaps stay zero: the fused multiply reads them harmlessly
    return {s: arena[o:o + arrays[s].size].reshape(arrays[s].shape) for s, o in zip(slots, offsets)}


def update(opt, grads=None, arena=None):
    """The replay of opt.step(), as (instructions, the graph-safe ones among them, how many
    gradients one fused multiply covers): plain SGD as out= ufuncs, any other optimizer through
    its own step(). `grads`: parameter id -> the fixed buffer its .grad wraps at this point. Where
    every parameter has one, SGD's array calls are bound once (and can go into a CUDA graph,
    apart from its Python counter); otherwise each call reads .grad. Either way the gradients
    that are views of `arena` (the array grad_arena carved) are multiplied by lr in one call."""
    if not plain_sgd(opt):
        return [opt.step], set(), 0
    gs = [(grads or {}).get(id(p)) for p in opt.params]
    work = [(p, p.array, backend.xp_of(p.array).empty_like(p.array)) for p in opt.params]
    if arena is None or sum(g is not None and g.base is arena for g in gs) < 2:
        arena = scaled = None
    else:
        scaled = np.empty_like(arena)  # lr * arena: each gradient's product sits at its offset
    products = [_at_offset(scaled, arena, g) if arena is not None and g is not None and g.base is arena else None
                for g in gs]
    fused = sum(p is not None for p in products)
    if all(g is not None for g in gs):
        fns, safe = _bound_sgd(opt, work, gs, arena, scaled, products)
    else:
        fns, safe = [_loose_sgd(opt, work, arena, scaled, products)], set()
    return fns, safe, fused


def _at_offset(scaled, arena, g):
    """The view of `scaled` where `g` sits in `arena`."""
    start = (g.__array_interface__["data"][0] - arena.__array_interface__["data"][0]) // arena.itemsize
    return scaled[start:start + g.size].reshape(g.shape)


def _bound_sgd(opt, work, gs, arena, scaled, products):
    """Plain SGD over gradients that are fixed buffers: every array call bound once."""
    xp = backend.xp_of(work[0][1])
    # lr as eager's weak scalar becomes: rounded to each parameter's own dtype (one 0-d array per
    # dtype: a float64 lr multiplying a float32 gradient would round differently)
    lrs = {w.dtype: np.empty((), w.dtype) for _, w, _ in work} if xp is np else {}
    owners = tuple(storage(w) for _, w, _ in work)

    def count():
        if opt.weight_decay or opt.momentum:
            raise RuntimeError("SGD's momentum or weight_decay changed after capture; compile the step again")
        opt.steps += 1
        for lr in lrs.values():
            lr[...] = opt.lr
        log_storages(owners, WHAT)
    device = []
    if arena is not None:
        device.append(partial(np.multiply, arena, lrs[arena.dtype], scaled))
    for (p, w, tmp), g, product in zip(work, gs, products):
        if product is not None:
            device.append(partial(np.subtract, w, product, w))
        elif lrs:
            device += [partial(np.multiply, g, lrs[w.dtype], tmp), partial(np.subtract, w, tmp, w)]
        else:  # a CUDA graph: opt.lr is read when the graph is recorded (again when it changes)
            device += [lambda g=g, tmp=tmp: xp.multiply(g, opt.lr, out=tmp), partial(xp.subtract, w, tmp, out=w)]
    return [count] + device, {id(f) for f in device}


def _loose_sgd(opt, work, arena, scaled, products):
    """Plain SGD reading each .grad per call (some are sums made afresh): eager's loop, except
    that a gradient placed in the arena (the program assigns it there on every call, as the
    bound form relies on too) takes its product from the one multiply."""
    entries = list(zip(work, products))

    def sgd():
        if opt.weight_decay or opt.momentum:   # changed since capture: the general step
            return opt.step()
        opt.steps += 1
        lr = opt.lr
        if arena is not None:
            np.multiply(arena, lr, scaled)     # lr as eager's lr * g takes it: a weak scalar
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
        log_writes(written, WHAT)
    return sgd

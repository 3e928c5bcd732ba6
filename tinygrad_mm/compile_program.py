"""A captured program made runnable: buffers allocated once, one closure per array operation.

Every slot of the recording (an array the step read or made) becomes either a *stable* array
-- an input buffer the arguments are copied into, a parameter's own array, a constant, a
buffer a hot op writes with `out=`, or a view of one made once -- or an `env` entry that a
generic op (any Function, through its own forward/backward) fills on each run. A hot op
needs stable inputs; where one comes from a generic op it is first copied into a buffer.
"""
from functools import partial

import numpy as np

from . import backend, compile_ops, compile_update, side_thread
from .compile_grads import GradDelivery
from .compile_record import (CONST, EXT, INPUT, LEAF, Acc, Bwd, Fit, Fwd, GradOf, Leaf, Reset, Swept, Update,
                             Write, _is_array, _Ref, after_reset, on_cuda, refs)
from .grad_mode import log_modified, tapes
from .tensor import _wrap


class Program(GradDelivery):
    """The replayable form of one recording: `run(input_arrays)` returns the step's outputs."""

    def __init__(self, rec, names, cuda_graph=False):
        self.names, self.held = names, rec.held
        self.graph = cuda_graph and on_cuda(rec.arrays)
        self.safe, self.python = set(), set()  # for CUDA graphs: see compile_cuda
        self.assigned = {}                     # tensor id -> the buffer its .grad wraps at this point
        self.steps = rec.steps
        self.meta = [(tuple(np.shape(a)), getattr(a, "dtype", None)) for a in rec.arrays]
        self.result = rec.result
        self._capture = rec.arrays            # dropped once built: the buffers below replace it
        n = len(rec.arrays)
        self.env, self.stable = [None] * n, [False] * n
        self.guards, self.inputs, self.fixes, self.instrs = [], [], [], []
        self.hot = set()                      # step indices replayed by a preallocated form
        self.split = set()                    # ... whose backward runs on two threads
        self.fused = {}                       # update step index -> gradients its one multiply covers
        self._jobs = []                       # helper-thread jobs started and not yet joined (run)
        self._undo = []                       # (tensor, .grad, its array) before each delivery of this sweep
        self._after_reset = after_reset(rec.steps)  # Leaf step indices that may assign .grad a buffer
        self._cleared, self._clear = [], None  # ... the tensors the latest reset instruction clears, and it
        self._pending = set()                 # while building: slots such jobs write
        self.arena = compile_update.grad_arena(rec.steps, rec.arrays)  # the SGD gradients' one buffer, or None
        self._placed = self.arena.views if self.arena is not None else {}  # slot -> its array in the arena
        self.plain_sgd = [s.opt for s in rec.steps if type(s) is Update and compile_update.plain_sgd(s.opt)]
        self.modes = list(rec.modes.values())  # (module, training flag) for every module fn called
        for s, (kind, t) in enumerate(rec.kinds):
            a = rec.arrays[s]
            if kind == INPUT:
                a = backend.xp_of(a).empty_like(a)
                self.inputs.append(a)
            elif kind in (LEAF, EXT):
                self.guards.append((t, a, t.requires_grad))
            if kind in (INPUT, LEAF, EXT, CONST):
                self.env[s], self.stable[s] = a, True
        forms = {}
        for i, step in enumerate(rec.steps):
            t = type(step)
            if t is Fwd:
                self._forward(i, step, forms)
            elif t is Bwd:
                self._backward(i, step, forms)
            elif t is Fit:
                self._fit(i, step)
            elif t is Acc:
                self._accumulate(i, step)
            elif t is Leaf:
                self._leaf(i, step)
            elif t is Update:
                self._join_pending()          # it reads every .grad
                fns, safe, self.fused[i] = compile_update.update(step.opt, self.assigned, self.arena)
                self.instrs.extend(fns)
                self.safe |= safe
                if safe:
                    self.python.add(id(fns[0]))
                if fns[0] != step.opt.step:  # plain SGD's out= form
                    self.hot.add(i)
            elif t is Reset:
                self._reset_here(step.tensor)
            elif t is Write:
                self._write(step)
            elif t is Swept:  # as the eager sweep: its deliveries stand from here (an error later keeps them)
                self._append_python(self._undo.clear)
        kinds = [type(s) for s in rec.steps]
        if Leaf in kinds and (Swept not in kinds or kinds[::-1].index(Leaf) < kinds[::-1].index(Swept)):
            self._append_python(self._undo.clear)  # deliveries no sweep's end covers (a sweep left open)
        self._join_pending()
        del self._capture
        # a hot op's instance still holds the arrays the capture saved: let them go, unless the
        # op is on a graph still to be swept (a loss the function returned for a backward outside)
        live = {id(e.function) for tape in tapes for r in tape._live if r is not None
                for e in (r(),) if e is not None and e.inputs is not None}
        for form in forms.values():
            if id(form.fn) not in live:
                needs = form.fn.needs_input_grad
                vars(form.fn).clear()
                form.fn.needs_input_grad = needs
        self.runner = None
        if self.graph:
            from .compile_cuda import Segments, cupy_recorder
            opts = [s.opt for s in self.steps if type(s) is Update]
            self.runner = Segments(self.instrs, self.safe, self.python, cupy_recorder(),
                                   key=lambda: tuple(o.lr for o in opts))

    def _append_python(self, f):
        self.instrs.append(f)
        self.python.add(id(f))

    def _reads(self, *slots):
        """Before an instruction reading these slots: wait for a helper-thread job writing one."""
        if self._pending and any(s in self._pending for s in slots):
            self._join_pending()

    def _join_pending(self):
        if self._pending:
            self._append_python(partial(side_thread.join_sides, self._jobs))
            self._pending.clear()

    def _append_kernels(self, fns):
        """Array calls on fixed buffers only: graph-safe."""
        self.instrs.extend(fns)
        self.safe.update(id(f) for f in fns)

    # -- building ------------------------------------------------------------------------
    def _like(self, s):
        a = self._capture[s]
        return a if _is_array(a) else np.asarray(a)

    def _set(self, s, array):
        self.env[s], self.stable[s] = array, True

    def _staged(self, s):
        """Slot s as a stable array: itself, or a buffer a generic op's result is copied into."""
        if self.stable[s]:
            return self.env[s]
        like, env = self._like(s), self.env
        xp = backend.xp_of(like)
        # its layout, where it has one (a reduction's order follows it); a broadcast view (a zero
        # stride, as mean's backward hands back) is read in C order, as a C buffer reads
        buf = xp.empty_like(like) if 0 not in like.strides else xp.empty(like.shape, like.dtype)
        self.instrs.append(lambda: xp.copyto(buf, env[s]))
        self._set(s, buf)
        return buf

    def _fill(self, v, staged):
        if type(v) is _Ref:
            return self._staged(v.slot) if staged else self.env[v.slot]
        if type(v) in (tuple, list):
            return type(v)(self._fill(x, staged) for x in v)
        if type(v) is dict:
            return {k: self._fill(x, staged) for k, x in v.items()}
        return v

    def _write(self, step):
        """dst[...] = src, as the eager write does it (a cast included), then logged as eager logs it."""
        env, d, s = self.env, step.dst, step.src
        self._join_pending()  # a helper job may read what this overwrites (a parameter fed to a Linear)
        xp = backend.xp_of(self._like(d))
        if self.stable[d] and self.stable[s]:
            self._append_kernels([partial(xp.copyto, env[d], env[s], casting="unsafe")])
        else:
            self._append_python(lambda: xp.copyto(env[d], env[s], casting="unsafe"))
        if step.what is not None:
            what = step.what
            self._append_python(lambda: log_modified(env[d], what))

    def _forward(self, i, step, forms):
        fn, env = step.fn, self.env
        self._reads(*step.ins, *refs(step.params))
        if type(fn) in compile_ops.FORMS:
            ins = [self._staged(s) for s in step.ins]
            params = {k: self._fill(v, True) for k, v in step.params.items()}
            form = compile_ops.FORMS[type(fn)].plan(fn, ins, params, self._like(step.out), cuda=self.graph)
            if form is not None:
                forms[id(fn)] = form
                self._set(step.out, form.out)
                self._append_kernels(form.forward)
                self.hot.add(i)
                return
        stable = all(self.stable[s] for s in refs(step.params))
        fixed = {k: self._fill(v, False) for k, v in step.params.items()} if stable else None
        ins, o, f = step.ins, step.out, fn.forward
        dtype = self._like(o).dtype

        def forward():
            params = fixed if fixed is not None else {k: self._fill(v, False) for k, v in step.params.items()}
            out = f(*[env[s] for s in ins], **params)
            # as Function.apply: a numpy scalar (or a custom op's Python number) becomes a 0-d array
            env[o] = out if _is_array(out) else np.asarray(out, dtype=dtype)
        self.instrs.append(forward)

    def _backward(self, i, step, forms):
        self._reads(step.g)
        form = forms.get(id(step.fn))
        if form is not None:  # the forward was hot: so is its backward (the op's saved state is not)
            fns, outs = form.backward(self._staged(step.g), [self._placed.get(o) for o in step.outs])
            for o, a in zip(step.outs, outs):
                if o is not None:
                    self._set(o, a)
            if form.side is not None and self.graph:  # a CUDA graph keeps to one thread
                fns = fns + form.side
            elif form.side is not None:  # as eager's side_thread.beside, but joined only where read
                self._append_python(partial(side_thread.start_into, self._jobs, form.side))
                self._pending.update(o for o in step.outs[1:] if o is not None)
                self.split.add(i)
            self._append_kernels(fns)
            self.hot.add(i)
            return
        env, g, outs, f = self.env, step.g, step.outs, step.fn.backward

        def backward():
            grads = f(env[g])
            if type(grads) is not tuple:
                grads = tuple(grads) if type(grads) is list else (grads,)
            for s, gi in zip(outs, grads):
                if s is not None:
                    env[s] = gi
        self.instrs.append(backward)

    def _fit(self, i, step):
        self._reads(step.src)
        if step.axes is None:  # a numpy scalar gradient made a 0-d array, as sweep.fit_gradient does
            env, src, o = self.env, step.src, step.out
            self.instrs.append(lambda: env.__setitem__(o, np.asarray(env[src])))
            return
        src = self._staged(step.src)
        xp = backend.xp_of(src)
        keep = tuple(1 if a in step.axes else n for a, n in enumerate(src.shape))
        placed = self._placed.get(step.out)
        buf = placed.reshape(keep) if placed is not None else xp.empty(keep, dtype=src.dtype)
        self._append_kernels([partial(xp.sum, src, axis=step.axes, keepdims=True, out=buf)])
        self._set(step.out, placed if placed is not None else buf.reshape(step.shape))  # a view, made once
        self.hot.add(i)

    def _accumulate(self, i, step):
        self._reads(step.a, step.b)
        a, b = self._staged(step.a), self._staged(step.b)
        xp = backend.xp_of(a)
        buf = xp.empty_like(self._like(step.out))
        self._append_kernels([partial(xp.add, a, b, out=buf)])
        self._set(step.out, buf)
        self.hot.add(i)

    # -- running -------------------------------------------------------------------------
    def valid(self):
        """Every tensor read in place still holds the array (and requires_grad) it was captured with,
        every module called is still in the mode it was (train() / eval()), and an SGD replayed
        as plain SGD still has no momentum and no weight decay."""
        for t, a, rg in self.guards:
            if t.array is not a or t.requires_grad is not rg:
                return False
        for m, training in self.modes:
            if m.training != training:
                return False
        for opt in self.plain_sgd:
            if opt.momentum or opt.weight_decay:
                return False
        return True

    def run(self, inputs):
        for buf, a in zip(self.inputs, inputs):
            buf[...] = a  # the signature matched: the same type, shape and dtype, so a plain copy
        for t, buf in self.fixes:  # a .grad kept from the last call still shares a buffer: detach it
            g = t._grad
            if g is not None and g.array is buf:
                g.array = buf.copy()
        try:
            if self.runner is not None:
                self.runner()
            else:
                for f in self.instrs:
                    f()
        except BaseException:  # raised before the join: the helper still writes buffers; this error wins
            side_thread.settle_sides(self._jobs)
            for t, old, old_array in reversed(self._undo):  # as the eager sweep's roll-back
                if old is not None:
                    old.array = old_array
                t._grad = old
            self._undo.clear()  # (a run that completes leaves it empty: each sweep's end clears it)
            raise
        return self._output(self.result)

    def _output(self, v):
        if v is None:
            return None
        if type(v) is _Ref:
            a = self.env[v.slot]
            return _wrap(a.copy() if a.ndim == 0 else a)
        if type(v) is GradOf:
            return v.tensor.grad
        return type(v)(self._output(x) for x in v)

"""Preallocated replay forms of the hot ops, for tg.compile: the same array calls, into `out=` buffers.

Each form mirrors its op's forward and backward (and the kernels.* paths they take at these
shapes) call for call, writing into buffers allocated once, so a replay is bit-identical to
the eager step: `np.matmul(a, b, out=buf)` is the BLAS call `a @ b` makes, `np.sum(x, axis,
out=buf)` the reduction `x.sum(axis)` runs. `plan(fn, ins, params, out)` is handed the
captured op instance, its (stable) input arrays and params, and the captured output as a
template; it returns None where it does not cover the case, and the op replays generically.
Forms are numpy-only, except under `tg.compile(fn, cuda_graph=True)`, where those with
`cuda = True` also take cupy arrays (the same cupy calls eager makes; untested: no GPU yet).
The table FORMS maps an op class to its form; the optimizer's step is compile_update.py.
"""
from functools import partial

import numpy as np

from . import backend, kernels, ops, ops_index, ops_shape
from .compile_record import CompileError
from .nn.cross_entropy import CrossEntropy, _bad_rows_message, _check_targets


class Form:
    """A hot op's replay: `forward` (closures writing `out`) and `backward(g, bufs)`, which
    returns (closures, one gradient buffer per input); `bufs` gives, per input, a buffer the
    program has already placed that gradient in (the SGD arena, compile_update.py), or None."""
    forward = ()
    cuda = False      # also replays cupy arrays (under cuda_graph=True)
    side = None       # backward calls that may run on the helper thread, as eager's side_thread.beside
                      # runs them: they write the gradients of the op's inputs 1 and up

    def _buffer(self, bufs, i, shape, dtype):
        """Input i's gradient buffer: the one the program placed, or a new one."""
        b = bufs[i] if i < len(bufs) else None
        return b if b is not None else self.xp.empty(shape, dtype)

    @classmethod
    def plan(cls, fn, ins, params, out, cuda=False):
        numpy = all(type(a) is np.ndarray for a in ins) and type(out) is np.ndarray
        if not numpy and not (cuda and cls.cuda and backend.device_of(out) == "cuda"):
            return None
        self = cls.__new__(cls)
        self.fn, self.ins, self.params, self.xp = fn, ins, params, backend.xp_of(out)
        return self if self.setup(out) is not False else None


def _call(f, *args):
    """f(*args[:-1], out=args[-1]) as a partial: positionally on numpy (cheaper to parse)."""
    if type(args[-1]) is np.ndarray:
        return partial(f, *args)
    return partial(f, *args[:-1], out=args[-1])


def _view(a, shape):
    """a.reshape(shape) if that is a view of a (made once), else None."""
    v = a.reshape(shape)
    if type(a) is np.ndarray:
        return v if np.shares_memory(v, a) else None
    return v if v.data.ptr == a.data.ptr else None


class TanhForm(Form):
    cuda = True

    def setup(self, out):
        x, = self.ins
        self.out = self.xp.empty_like(out)
        self.forward = [_call(self.xp.tanh, x, self.out)]

    def backward(self, g, bufs):    # kernels.tanh_grad: d = y*y; d = 1 - d; d *= g
        y = self.out
        d = self._buffer(bufs, 0, y.shape, y.dtype)
        if self.xp is not np:       # the fused cupy kernel eager runs, writing d
            return [partial(kernels._kernels()["tanh_grad"], y, g, d)], (d,)
        return [partial(np.multiply, y, y, d), partial(np.subtract, 1, d, d),
                partial(np.multiply, d, g, d)], (d,)


class AffineForm(Form):
    cuda = True

    def setup(self, out):
        x, w = self.ins[:2]
        if x.ndim != 2:
            return False
        xp = self.xp
        self.out = xp.empty_like(out)
        self.forward = [_call(xp.matmul, x, w.T, self.out)]   # kernels.matmul(x, w.T)
        if len(self.ins) == 3:
            self.forward.append(_call(xp.add, self.out, self.ins[2], self.out))  # out += b

    def backward(self, g, bufs):
        x, w = self.ins[:2]
        xp, need, fns, outs = self.xp, self.fn.needs_input_grad, [], []
        if need[0]:                                  # gx = kernels.matmul(g, w)
            outs.append(self._buffer(bufs, 0, x.shape, x.dtype))
            fns.append(_call(xp.matmul, g, w, outs[-1]))
        else:
            outs.append(None)
        split = need[0] and need[1] and kernels.on_side_thread(g, x)
        if split:  # as eager: gw and gb on the helper thread while gx is made here (see self.side)
            main, fns = fns, []
        if need[1]:                                  # gw = kernels.weight_grad(g, x)
            outs.append(self._buffer(bufs, 1, w.shape, w.dtype))
            if kernels.wide_weight_grad(g, x):       # (x.T @ g).T: into a wide buffer, copied out
                wide = np.empty((x.shape[1], g.shape[1]), g.dtype)
                fns += [partial(np.matmul, x.T, g, wide), partial(np.copyto, outs[-1], wide.T)]
            else:
                fns.append(_call(xp.matmul, g.T, x, outs[-1]))
        else:
            outs.append(None)
        if len(need) == 3:
            if need[2]:                              # gb = kernels.col_sum(g)
                gb = self._buffer(bufs, 2, (w.shape[0],), w.dtype)
                if kernels.col_sum_by_matmul(g):
                    fns.append(_call(xp.matmul, xp.ones(g.shape[0], g.dtype), g, gb))
                else:
                    reduce = np.add.reduce if xp is np else xp.sum
                    fns.append(partial(reduce, g, 0, None, gb))  # g.sum(axis=0); positional: faster
                outs.append(gb)
            else:
                outs.append(None)
        if split:
            self.side, fns = fns, main
        return fns, tuple(outs)


class ReshapeForm(Form):
    """Views, made once over stable buffers: nothing runs."""
    cuda = True

    def setup(self, out):
        self.out = _view(self.ins[0], self.params["shape"])
        if self.out is None or self.out.shape != out.shape:
            return False

    def backward(self, g, bufs):    # a view of g, made once, where g's layout allows
        v = _view(g, self.fn.shape)
        if v is None:  # g's layout does not allow a view: copy it, as g.reshape would
            v, xp = self._buffer(bufs, 0, self.fn.shape, g.dtype), self.xp
            return [lambda: xp.copyto(v, g.reshape(v.shape))], (v,)
        return [], (v,)


class GatherRowsForm(Form):
    def setup(self, out):
        table, = self.ins
        idx = self.params["idx"]
        if type(idx) is not np.ndarray or idx.dtype.kind not in "iu" or table.ndim != 2:
            return False
        self.flat = _view(idx, (-1,))  # the backward's ids: a view, made once, that sees each call's
        if self.flat is None:          # ids (not in a Fortran-ordered input buffer: replayed generically)
            return False
        self.n, self.idx = n, idx = table.shape[0], idx
        self.out = out = np.empty_like(out)
        # a view made once sees each call's ids; None: unsigned, or a non-native byte order
        u = idx.view(backend.UNSIGNED[idx.dtype]) if idx.dtype in backend.UNSIGNED else None
        take = table.take

        def gather():
            # the range check nn.Embedding makes before the op (numpy would wrap a negative index):
            # viewed as unsigned, a negative index is huge, so one pass checks both ends
            if idx.size and (u.item(u.argmax()) if u is not None else backend.largest_unsigned(idx)) >= n:
                backend.check_index_range(idx, n, "index")
            take(idx, 0, out, "clip")                    # table[idx]; positional: faster to parse
        self.forward = [gather]

    def backward(self, g, bufs):    # kernels.scatter_add_rows(idx, g, n), the same path at this size
        flat, k, d, n = self.flat, self.idx.size, g.shape[-1], self.n
        rows, first = _view(g, (k, d)), []
        if rows is None:  # g's layout allows no view (a transposed buffer): copied in, C-ordered, each call
            c = np.empty(g.shape, g.dtype)
            rows, first = c.reshape(k, d), [partial(np.copyto, c, g)]
        out = self._buffer(bufs, 0, (n, d), g.dtype)
        if kernels.PLAIN:
            return first + [partial(out.fill, 0), partial(np.add.at, out, flat, rows)], (out,)
        if k * n <= kernels.ONEHOT_MAX and (d > kernels.NARROW or k < kernels.MANY_ROWS):
            # eager's one-hot matrix, onehot[flat, cols] = 1, set through flat positions flat * k + cols:
            # the same matrix at a third of the cost of indexing by two arrays (27 x 96: 1.5 µs, not 4.2)
            onehot = np.zeros((n, k), g.dtype)
            dt = np.uint64 if flat.dtype.kind == "u" and flat.dtype.itemsize == 8 else np.int64  # (uint64
            # with int64 would make floats; >u8, byte-swapped, too)
            cells, cols, ks, pos = onehot.reshape(-1), np.arange(k, dtype=dt), np.full(k, k, dt), np.zeros(k, dt)
            one, zero = np.ones((), g.dtype), np.zeros((), g.dtype)

            def scatter():
                if not kernels.all_finite(rows):  # as eager: 0 * nan would reach every row of out
                    out.fill(0)
                    np.add.at(out, flat, rows)
                    return
                cells[pos] = zero             # clear the last call's ones (k cells, not all n * k)
                np.multiply(flat, ks, pos)    # the forward's range check keeps flat in [0, n)
                np.add(pos, cols, pos)
                cells[pos] = one
                np.matmul(onehot, rows, out)
            return first + [scatter], (out,)

        def columns():
            for j in range(d):
                out[:, j] = np.bincount(flat, weights=rows[:, j], minlength=n)
        return first + [columns], (out,)


class CrossEntropyForm(Form):
    """The fused cross-entropy, 'mean' over rows that all count (no ignore_index target)."""

    def setup(self, out):
        x, = self.ins
        t = self.params["target"]
        if (self.params.get("reduction", "mean") != "mean" or x.ndim != 2 or self.fn.valid is not None
                or type(t) is not np.ndarray or t.dtype.kind not in "iu"):
            return False
        n, c = x.shape
        ignore = self.params.get("ignore_index", -100)
        u = backend.UNSIGNED.get(t.dtype)  # _check_targets' fast path: one max
        fast = n and u is not None and (ignore is None or not 0 <= ignore < c)
        tu = t.view(u) if fast else None
        self.t, self.rows, self.count = t, np.arange(n), n
        self.p, self.out = e, res = np.empty_like(x), np.empty((), x.dtype)
        m, s, lb = np.empty((n, 1), x.dtype), np.empty((n, 1), x.dtype), np.empty(n, x.dtype)
        m0, s0, rows = m[:, 0], s[:, 0], self.rows
        tall = not kernels.PLAIN and n >= kernels.TALL and 0 < c <= kernels.SHORT
        bigsum = not (kernels.PLAIN or x.size < kernels.SMALL)
        ones = np.ones(c, x.dtype)
        add, sub, div, maximum, exp, log = np.add.reduce, np.subtract, np.divide, np.maximum, np.exp, np.log
        # x[rows, t] as x.flat[rows * c + t]: the same values, at half the cost of two index arrays
        # (32 x 27: 0.8 µs, not 1.5); the target check above keeps every t in [0, c)
        self.first, self.idx, xf = rows * c, np.empty(n, np.int64), _view(x, (-1,))
        if xf is None:  # x is always a contiguous buffer here; otherwise the op replays generically
            return False
        plus, first, idx, picked = np.add, self.first, self.idx, np.empty(n, x.dtype)
        # uint64 targets as int64 of their byte order (int64 + uint64 would make floats): the
        # target check below keeps every one in [0, c), where the two read alike
        ti = t.view(t.dtype.byteorder + "i8") if t.dtype.kind == "u" and t.dtype.itemsize == 8 else t
        take = xf.take  # the method: np.take goes through a Python wrapper first

        def forward():                  # CrossEntropy.forward, call for call, into the buffers
            if not fast or tu.item(tu.argmax()) >= c:  # backend.largest_unsigned, on the view made once
                if _check_targets(x, t, ignore) is not None:
                    raise CompileError("this batch has targets equal to ignore_index and the captured "
                                       "step had none: call the step eagerly for it")
            if tall:                    # kernels.row_max: a maximum per column
                m0[...] = x[:, 0]
                for j in range(1, c):
                    maximum(m0, x[:, j], out=m0)  # (np.maximum refuses a positional out)
            else:                       # x.max(axis=1); outputs passed positionally: faster
                maximum.reduce(x, 1, None, m0)
            if not kernels.all_finite(m0):
                raise ValueError(_bad_rows_message(m))
            sub(x, m, e)
            exp(e, e)
            if bigsum:                  # kernels.row_sum
                np.matmul(e, ones, s0)
            else:
                add(e, 1, None, s0)
            div(e, s, e)
            plus(first, ti, idx)
            take(idx, None, picked)     # x[rows, t]
            sub(picked, m0, picked)
            log(s0, lb)
            sub(lb, picked, lb)         # loss per row = log(s) - (x[t] - max)
            res[...] = add(lb) / n      # the mean: loss.sum() / count, a float32 scalar
        self.forward = [forward]

    def backward(self, g, bufs):    # kernels.softmax_xent_grad(p, t, rows, g / count)
        p, count = self.p, self.count
        d = self._buffer(bufs, 0, p.shape, p.dtype)
        df, idx = d.reshape(-1), self.idx  # d[rows, t] as df[rows * c + t]: unique rows; idx is
        # this call's, from the forward above (a hot backward is replayed only after its hot forward)

        def run():
            scale = g / count
            np.multiply(p, scale, d)
            df[idx] -= scale
        return [run], (d,)


FORMS = {ops.Tanh: TanhForm, ops.Affine: AffineForm, ops_shape.Reshape: ReshapeForm,
         ops_index.GatherRows: GatherRowsForm, CrossEntropy: CrossEntropyForm}

"""Fast paths where plain numpy is measurably slow on the shapes training makes, and the cupy kernels.

Each function's docstring starts with the plain one-liner it stands for; each threshold is a
named constant with the measurement behind it (2-core CPU, float32, the name model's shapes).
Set TINYGRAD_MM_PLAIN_KERNELS=1 to run every function as its plain one-liner: the test suite
runs once that way too, so a fast path can never be the only thing that is right.
This is the only module with cupy-specific code; ops call it and never branch on the device.
"""
import math
import os

import numpy as np

from .backend import _cp, _cpx, xp_of
from .host_pool import host_pool

PLAIN = os.environ.get("TINYGRAD_MM_PLAIN_KERNELS") == "1"

# (the choices below were rechecked on one and on two BLAS threads: only WIDE_BATCH and col_sum
# depend on the count)
# elements: under this a call's fixed overhead dominates whatever the method (a 32 x 200 step
# array, 6400 elements, gains nothing from any path below; 16384 x 27 = 442k elements gains 4x)
SMALL = 1 << 14
# one-hot entries: past this the (n, K) one-hot matrix itself (32 MiB in float32) costs more
# than the bincount it replaces (K=228146, D=27: one-hot 10 ms, flattened bincount 37 ms, but
# the matrix is 24 MiB there; at 2^24 entries bincount per column wins)
ONEHOT_MAX = 1 << 23
# gathered rows: with at least this many rows of at most NARROW columns, one bincount per
# column beats the one-hot matmul (K=49152, D=10, inside a training step: 1.4 ms vs 2.0 ms)
MANY_ROWS, NARROW = 1 << 14, 16
# row maxima: on at least TALL rows of at most SHORT columns, a maximum per column is ~4x
# faster than numpy's per-row reduction (16384 x 27: 260 µs, not 1,000)
TALL, SHORT = 512, 64
# weight-gradient rows: from this batch on, g.T @ x with more output rows than columns is
# faster computed as (x.T @ g).T on one BLAS thread ((200, 30) from 16384 rows: 4.6 ms, not 6.5;
# 1024 rows: 170 µs, not 209; at 256 rows the gain is within noise)
WIDE_BATCH = 1 << 10
# One BLAS thread (as OpenBLAS reads its environment at start-up; the CLI and the benchmarks
# set it) flips two choices below. On two threads OpenBLAS splits the tall g.T @ x well and the
# wide form loses (1024 rows, (200, 30): 123 µs plain, 142 wide), and ones @ x stays the faster
# column sum up to 200 columns (16384 x 200: 363 µs, numpy's sum 629).
ONE_BLAS_THREAD = ((os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")) == "1"
                   or os.cpu_count() == 1)
# multiply-adds in each half of a linear layer's backward (N * out * in): from here on, on one
# BLAS thread and a second core, the weight and bias gradients are made on a helper thread while
# this one makes the input gradient. The name model's step against one thread, interleaved A/B:
# batch 4096 (22 and 25 M) eager 0.91x, compiled 0.81x; 16384 eager 0.87x, compiled 0.77x (a
# compiled step waits only where a gradient is read, so it overlaps more). At batch 1024 (5.5
# and 6.1 M, where the two halves alone gain 0.8-0.9x) the step gained nothing compiled and lost
# 1.09x eager: the hand-off (~60 µs) and the other core's cold cache. TINYGRAD_MM_SIDE_THREAD=0
# (or SIDE_THREAD = False) keeps to one core, e.g. with one process per core.
SIDE_MACS = 1 << 24
SIDE_THREAD = (ONE_BLAS_THREAD and os.environ.get("TINYGRAD_MM_SIDE_THREAD") != "0"
               and len(os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)) > 1)


def all_finite(a):
    """Whether every entry of float array `a` is finite. On numpy by argmax and argmin (a NaN
    wins both): no temporary, no overflow warning (a sum would warn on huge finite values), and
    at batch sizes under half the instructions of isfinite(a).all() (callgrind, a (27, 10) table)."""
    if type(a) is not np.ndarray:
        return bool(xp_of(a).isfinite(a).all())
    return not a.size or math.isfinite(a.item(a.argmax())) and math.isfinite(a.item(a.argmin()))


def scatter_add_rows(idx, rows, n):
    """np.add.at(out := zeros((n, D)), idx.ravel(), rows.reshape(-1, D)); return out.

    `g[idx] += v` keeps only one of repeated indices, so this must accumulate. On numpy,
    np.add.at is slow; a one-hot (n, K) matrix times rows (K, D) lets BLAS do the sums
    (27-row table, K=96, D=10: 4 µs, add.at 8). On cupy the one-hot matmul is also what keeps
    the result the same bits on every run: cupyx.scatter_add adds repeated rows by atomics, in
    whatever order the threads run (it is left for tables past ONEHOT_MAX).
    """
    idx = idx.ravel()
    d = rows.shape[-1]
    rows = rows.reshape(idx.size, d)  # not (-1, d): -1 is ambiguous when d == 0
    if PLAIN:
        return scatter_add((n, d), idx, rows)
    xp = xp_of(rows)
    if idx.size * n <= ONEHOT_MAX and (d > NARROW or idx.size < MANY_ROWS or xp is not np):
        if not all_finite(rows):
            # a nan or inf in rows would reach every row through 0 * nan (and warn, for 0 * inf):
            # only add.at keeps it to the rows it was gathered from (as torch's index backward does)
            return scatter_add((n, d), idx, rows)
        onehot = xp.zeros((n, idx.size), dtype=rows.dtype)   # (n, K)
        onehot[idx, xp.arange(idx.size)] = 1
        return onehot @ rows                                  # (n, D)
    if xp is not np:
        return scatter_add((n, d), idx, rows)
    out = np.empty((n, d), dtype=rows.dtype)
    for j in range(d):  # float64 accumulation inside bincount, one pass per column
        out[:, j] = np.bincount(idx, weights=rows[:, j], minlength=n)
    return out


def scatter_add(shape, index, values):
    """np.add.at(out := zeros(shape), index, values); return out -- for any numpy-style index."""
    xp = xp_of(values)
    out = xp.zeros(shape, dtype=values.dtype)
    if xp is np:
        np.add.at(out, index, values)
    else:
        _cpx.scatter_add(out, index, values)
    return out


def matmul(a, b):
    """a @ b for a 2-D b; a large host result lands in pooled memory."""
    if PLAIN or type(a) is not np.ndarray or a.size < SMALL:
        return a @ b
    return np.matmul(a, b, out=host_pool.empty(a.shape[:-1] + b.shape[1:], a.dtype))


def weight_grad(g, x):
    """g.T @ x for 2-D g (N, out) and x (N, in): a weight's gradient. On many rows with out > in,
    one BLAS thread is faster making the transpose ((in, out), wide) than the tall result:
    compute that and copy it out transposed. Its last bits may differ from g.T @ x (they agree
    at the name model's shapes, not in float64 at (64 -> 100)); eager and tg.compile always
    take the same form."""
    if g.shape[0] >= WIDE_BATCH and wide_weight_grad(g, x):  # the first test spares small batches a call
        return np.ascontiguousarray((x.T @ g).T)
    return g.T @ x


def wide_weight_grad(g, x):
    """Whether weight_grad computes through the wide transpose (tg.compile replays the same)."""
    return (not PLAIN and ONE_BLAS_THREAD and type(g) is np.ndarray and g.shape[0] >= WIDE_BATCH
            and g.shape[1] > x.shape[1])


def on_side_thread(g, x):
    """Whether a linear layer's backward from g (N, out) and x (N, in) splits across two threads
    (`side_thread.beside`); tg.compile replays the same split. The calls are the same either
    way, so the bits are."""
    return (SIDE_THREAD and not PLAIN and type(g) is np.ndarray and type(x) is np.ndarray
            and g.shape[0] * g.shape[1] * x.shape[1] >= SIDE_MACS)


def tanh(x):
    """xp.tanh(x); a large host result lands in pooled memory."""
    if type(x) is not np.ndarray:
        return xp_of(x).tanh(x)
    if PLAIN or x.size < SMALL:
        return np.tanh(x)
    return np.tanh(x, out=host_pool.empty(x.shape, x.dtype))


def row_max(x):
    """x.max(axis=1, keepdims=True) for a 2-D x."""
    n, c = x.shape
    if PLAIN or type(x) is not np.ndarray or n < TALL or not 0 < c <= SHORT:
        return x.max(axis=1, keepdims=True)
    m = x[:, 0].copy()  # one vectorized maximum per column; NaN propagates the same way
    for j in range(1, c):
        np.maximum(m, x[:, j], out=m)
    return m[:, None]


def row_sum(x):
    """x.sum(axis=1, keepdims=True) for a 2-D x; on large x as x @ ones, which BLAS does ~5x
    faster than numpy's reduction over short rows (16384 x 27: 60 µs, not 320)."""
    if PLAIN or x.size < SMALL:
        return x.sum(axis=1, keepdims=True)
    return (x @ xp_of(x).ones(x.shape[1], dtype=x.dtype))[:, None]


def col_sum(x):
    """x.sum(axis=0) for a 2-D x (a bias gradient); on large x as ones @ x, which BLAS does
    faster (16384 x 27, cold caches, one thread: 120 µs, not 500) and with a smaller rounding
    error. On one BLAS thread, from 128 columns on, numpy's own sum is the faster (16384 x 200:
    740 µs, ones @ x 1,210), so there ones @ x is kept to at most SHORT columns."""
    if x.size >= SMALL and col_sum_by_matmul(x):  # the first test spares small arrays a call
        return xp_of(x).ones(x.shape[0], dtype=x.dtype) @ x
    return x.sum(axis=0)


def col_sum_by_matmul(x):
    """Whether col_sum takes the ones @ x path (tg.compile replays the same); on cupy always,
    when large: the thread count is the host BLAS's."""
    return not PLAIN and x.size >= SMALL and (x.shape[1] <= SHORT or not ONE_BLAS_THREAD
                                              or type(x) is not np.ndarray)


def tanh_grad(y, g):
    """g * (1 - y * y), the tanh backward: one fused kernel on cupy, one temporary on numpy."""
    if type(y) is not np.ndarray and _cp is not None and isinstance(y, _cp.ndarray):
        return _kernels()["tanh_grad"](y, g)
    if type(y) is not np.ndarray:
        y = np.asarray(y)  # numpy returns a scalar for tanh of a 0-d array
    if PLAIN:
        return np.asarray(g * (1 - y * y))
    if y.ndim and y.size < SMALL:
        d = np.multiply(y, y)      # allocates d itself: one numpy call fewer than empty + out=
    else:                          # out=: a 0-d y*y would be an immutable scalar
        d = np.multiply(y, y, out=np.empty_like(y) if y.size < SMALL else host_pool.empty(y.shape, y.dtype))
    np.subtract(1, d, out=d)       # in place on our own temporary: one allocation, not three
    d *= g
    return d


def softmax_xent_grad(p, t, rows, scale):
    """(p - onehot(t)) * scale for probabilities p (N, C), targets t (N,) and a scale that is a
    scalar or per row (N, 1): the cross-entropy backward, one fused kernel on cupy."""
    if type(p) is np.ndarray:
        d = p * scale                  # fresh array: p itself stays intact
        d[rows, t] -= scale[:, 0] if getattr(scale, "ndim", 0) == 2 else scale
        return d
    d = _cp.empty_like(p)              # passed explicitly: its (N, C) shape sets the kernel's size
    _kernels()["xent_grad"](p, t, scale, p.shape[1], d)  # scale broadcasts against d
    return d


_KERNELS = {}


def _kernels():
    """cupy ElementwiseKernels, compiled on first use (cupy caches the binaries on disk)."""
    if not _KERNELS:
        _KERNELS["tanh_grad"] = _cp.ElementwiseKernel(
            "T y, T g", "T d", "d = g * (1 - y * y)", "tinygrad_mm_tanh_grad")
        _KERNELS["xent_grad"] = _cp.ElementwiseKernel(  # i runs over the N*C entries of p, row-major
            "raw T p, raw I t, T scale, int64 C", "T d",
            "d = (p[i] - (i % C == t[i / C] ? 1 : 0)) * scale", "tinygrad_mm_xent_grad")
    return _KERNELS

"""The array backends: numpy (CPU) and, when installed with a GPU, cupy (CUDA).

Ops never branch on the device: they ask `xp_of(array)` for the array module and
call it. The few places where numpy and cupy genuinely differ live here and only here.
"""
import math
import sys
import threading

import numpy as np

try:  # cupy is optional; a missing or GPU-less install leaves it None
    import cupy as _cp
    import cupyx as _cpx
    _cp.cuda.runtime.getDeviceCount()
except Exception as _err:  # ImportError, or CUDARuntimeError when no GPU/driver
    _cp = _cpx = None
    CUPY_UNAVAILABLE_REASON = f"cupy unavailable: {type(_err).__name__}: {_err}"
else:
    CUPY_UNAVAILABLE_REASON = None

DEVICES = ("cpu", "cuda")


def cuda_available():
    """True when cupy imported and sees at least one GPU."""
    return _cp is not None


def xp_of(a):
    """The array module (numpy or cupy) that owns array `a`."""
    return np if type(a) is np.ndarray else _cupy_for(a)


def _cupy_for(a):
    if _cp is not None and isinstance(a, _cp.ndarray):
        return _cp
    return np  # numpy scalars and 0-d results of numpy reductions


def module_for(device):
    """The array module for a device name ("cpu" or "cuda")."""
    if device == "cpu":
        return np
    if device == "cuda":
        if _cp is None:
            raise RuntimeError(f"device 'cuda' requested but {CUPY_UNAVAILABLE_REASON}; "
                               "install the gpu extra (pip install 'tinygrad_mm[gpu]') on a machine with a CUDA GPU")
        return _cp
    raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")


def device_of(a):
    """'cpu' for numpy arrays, 'cuda' for cupy arrays."""
    return "cpu" if type(a) is np.ndarray or _cp is None or not isinstance(a, _cp.ndarray) else "cuda"


def to_device(a, device):
    """Copy array `a` to `device` (no copy when it is already there)."""
    if device_of(a) == device:
        return a
    if device == "cpu":
        return _cp.asnumpy(a)
    return module_for("cuda").asarray(a)


def to_numpy(a):
    """A numpy array with the contents of `a` (a host copy for cupy arrays)."""
    return a if type(a) is np.ndarray else (_cp.asnumpy(a) if device_of(a) == "cuda" else np.asarray(a))


# signed -> unsigned of the same width: viewing an index array this way maps negatives to huge values
UNSIGNED = {np.dtype(f"int{b}"): np.dtype(f"uint{b}") for b in (8, 16, 32, 64)}


def check_index_range(idx, size, what="index"):
    """Raise IndexError unless every entry of integer array `idx` lies in [0, size).

    numpy wraps negative indices and cupy wraps *every* out-of-range index silently,
    so a gather must check explicitly. Viewing as unsigned maps negatives to huge
    values, so one max() reduction checks both ends.
    """
    if idx.size == 0:
        return
    top = int(idx.view(UNSIGNED[idx.dtype]).max()) if idx.dtype in UNSIGNED else int(idx.max())
    if top >= size:
        bad = idx[(idx < 0) | (idx >= size)]
        first = int(bad.ravel()[0])
        raise IndexError(f"{what} {first} is out of range for size {size} "
                         f"(valid: 0..{size - 1}; {int(bad.size)} bad entr{'y' if bad.size == 1 else 'ies'})")


def scatter_add_rows(idx, rows, n):
    """Return T of shape (n, D) with T[i] = sum of rows[k] over k where idx[k] == i.

    `g[idx] += v` would keep only one of repeated indices, so this must accumulate.
    On numpy, np.add.at is slow; a one-hot (n, K) matrix times rows (K, D) lets BLAS do the
    sums. Measured (27-row table): 4 µs at K=96, D=10 (add.at: 8), 1.6 ms at K=49152, D=24
    (one bincount per column: 4.9), 10 ms at K=228146, D=27 (flattened bincount: 37). Narrow
    rows in bulk go to one bincount per column instead (K=49152, D=10, inside a training
    step: 1.4 ms, one-hot 2.0), as does anything past 2^23 one-hot entries (32 MiB).
    """
    idx = idx.ravel()
    d = rows.shape[-1]
    rows = rows.reshape(idx.size, d)  # not (-1, d): -1 is ambiguous when d == 0
    if type(rows) is np.ndarray:
        if idx.size * n <= 1 << 23 and (d > 16 or idx.size < 1 << 14):
            onehot = np.zeros((n, idx.size), dtype=rows.dtype)   # (n, K)
            onehot[idx, np.arange(idx.size)] = 1
            return onehot @ rows                                  # (n, D)
        out = np.empty((n, d), dtype=rows.dtype)
        for j in range(d):  # float64 accumulation inside bincount, one pass per column
            out[:, j] = np.bincount(idx, weights=rows[:, j], minlength=n)
        return out
    out = _cp.zeros((n, d), dtype=rows.dtype)
    _cpx.scatter_add(out, idx, rows)
    return out


def _refs(buf):
    return sys.getrefcount(buf)


def _idle_refs():
    """_refs() of a list item seen from a loop over that list, with nothing else holding it."""
    for buf in [np.empty(1)]:
        return _refs(buf)


class HostPool:
    """Hands out large numpy buffers again once nothing refers to them (cupy has such a pool already).

    A fresh multi-MiB array is fresh memory from the OS, which the kernel zero-fills page by page
    on first touch: at batch 16384 that was ~5 ms of a 27 ms training step. Every view of a buffer
    holds a reference to it, so a buffer whose reference count is back to the pool's own is idle.
    """
    MIN_BYTES = 1 << 20   # smaller arrays come from malloc's free lists, already mapped
    MAX_BUFFERS = 16      # past this, idle buffers are released before a new one is made
    _IDLE = _idle_refs()  # measured, not assumed: reference counting details vary across Pythons

    def __init__(self):
        self._buffers = []  # flat uint8 arrays
        self._lock = threading.Lock()  # two threads must not both claim one idle buffer

    def empty(self, shape, dtype):
        """An uninitialized array of `shape` and `dtype`, in an idle pooled buffer of its size if any."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.MIN_BYTES:
            return np.empty(shape, dtype)
        with self._lock:
            for buf in self._buffers:
                if buf.nbytes == nbytes and _refs(buf) == self._IDLE:
                    return buf.view(dtype).reshape(shape)  # the view's reference claims the buffer
            if len(self._buffers) >= self.MAX_BUFFERS:
                busy = []
                for buf in self._buffers:
                    if _refs(buf) != self._IDLE:
                        busy.append(buf)
                self._buffers = busy
            buf = np.empty(nbytes, np.uint8)
            self._buffers.append(buf)
            return buf.view(dtype).reshape(shape)

    def held_bytes(self):
        """Bytes of all pooled buffers, idle or in use."""
        return sum(b.nbytes for b in self._buffers)

    def clear(self):
        """Let go of every pooled buffer (one still in use lives on with its arrays)."""
        self._buffers = []


host_pool = HostPool()


# Below: where plain numpy is measurably slow on the shapes training produces. Each helper checks
# first, and cheaply, for a small or device array and then makes the plain call, fastest there
# (cupy pools device memory itself).
_SMALL = 1 << 14  # elements: under this, per-call overhead dominates whatever the method


def matmul(a, b):
    """a @ b for a 2-D b; a large host result lands in pooled memory."""
    if type(a) is not np.ndarray or a.size < _SMALL:
        return a @ b
    return np.matmul(a, b, out=host_pool.empty(a.shape[:-1] + b.shape[1:], a.dtype))


def tanh(x):
    """tanh(x); a large host result lands in pooled memory."""
    if type(x) is not np.ndarray or x.size < _SMALL:
        return xp_of(x).tanh(x)
    return np.tanh(x, out=host_pool.empty(x.shape, x.dtype))


def row_max(x):
    """x.max(axis=1, keepdims=True) for a 2-D x."""
    n, c = x.shape
    if type(x) is not np.ndarray or n < 512 or not 0 < c <= 64:
        return x.max(axis=1, keepdims=True)
    # numpy reduces each short contiguous row on its own; one vectorized maximum per column is
    # ~4x faster on tall arrays (16384 x 27: 260 µs, not 1,000). NaN propagates the same way.
    m = x[:, 0].copy()
    for j in range(1, c):
        np.maximum(m, x[:, j], out=m)
    return m[:, None]


def row_sum(x):
    """x.sum(axis=1, keepdims=True) for a 2-D x; on large x as x @ ones, which BLAS does ~5x
    faster than numpy's reduction over short rows (16384 x 27: 60 µs, not 320)."""
    if x.size < _SMALL:
        return x.sum(axis=1, keepdims=True)
    return (x @ xp_of(x).ones(x.shape[1], dtype=x.dtype))[:, None]


def col_sum(x):
    """x.sum(axis=0) for a 2-D x (a bias gradient); on large x as ones @ x, which BLAS does
    ~1.6x faster (16384 x 200: 390 µs, not 620)."""
    if x.size < _SMALL:
        return x.sum(axis=0)
    return xp_of(x).ones(x.shape[0], dtype=x.dtype) @ x


def tanh_grad(y, g):
    """g * (1 - y*y), the tanh backward: one fused kernel launch on cupy instead of three."""
    if type(y) is not np.ndarray and device_of(y) == "cuda":
        return _kernels()["tanh_grad"](y, g)
    y = np.asarray(y)  # numpy returns a scalar for tanh of a 0-d array
    d = np.empty_like(y) if y.size < _SMALL else host_pool.empty(y.shape, y.dtype)
    np.multiply(y, y, out=d)       # out=: a 0-d y*y would be an immutable scalar
    np.subtract(1, d, out=d)       # in place on our own temporary: one allocation, not three
    d *= g
    return d


def softmax_xent_grad(p, t, rows, scale):
    """(p - onehot(t)) * scale for probabilities p (N, C), targets t (N,) and a scale that is a
    scalar or per row (N, 1): the cross-entropy backward, one fused kernel on cupy."""
    if type(p) is np.ndarray:
        d = p * scale                  # fresh array: p itself stays intact
        d[rows, t] -= scale if np.ndim(scale) < 2 else scale[:, 0]
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


def scatter_add(shape, index, values):
    """Return zeros(shape) with `values` added at `index` (any numpy-style index), repeats accumulating."""
    xp = xp_of(values)
    out = xp.zeros(shape, dtype=values.dtype)
    if xp is np:
        np.add.at(out, index, values)
    else:
        _cpx.scatter_add(out, index, values)
    return out

"""The array backends: numpy (CPU) and, when installed with a GPU, cupy (CUDA).

Ops never branch on the device: they ask `xp_of(array)` for the array module and
call it. This module is the device plumbing (which module, moving arrays, range checks);
the fast paths and cupy kernels are in kernels.py, the host buffer pool in host_pool.py.
"""
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


def largest_unsigned(idx):
    """The largest entry of a non-empty integer array viewed as unsigned, as a Python int:
    negatives become huge, so one pass checks both ends of a range. On numpy by argmax, whose
    direct loop costs under half the instructions of max()'s ufunc reduction at batch sizes
    (callgrind, a (32, 3) int64 batch)."""
    u = idx
    if idx.dtype.kind == "i":
        unsigned = UNSIGNED.get(idx.dtype)  # None for a non-native byte order: made native first
        u = idx.view(unsigned) if unsigned is not None else idx.astype(np.int64).view(np.uint64)
    return u.item(u.argmax()) if type(u) is np.ndarray else int(u.max())


def check_index_range(idx, size, what="index"):
    """Raise IndexError unless every entry of integer array `idx` lies in [0, size).

    numpy wraps negative indices and cupy wraps *every* out-of-range index silently,
    so a gather must check explicitly. Viewing as unsigned maps negatives to huge
    values, so one max() reduction checks both ends.
    """
    if idx.size == 0:
        return
    if largest_unsigned(idx) >= size:
        bad = idx[(idx < 0) | (idx >= size)]
        first = int(bad.ravel()[0])
        raise IndexError(f"{what} {first} is out of range for size {size} "
                         f"(valid: 0..{size - 1}; {int(bad.size)} bad entr{'y' if bad.size == 1 else 'ies'})")

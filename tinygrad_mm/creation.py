"""Making tensors: tensor, zeros, ones, randn, rand, arange, and a seedable Generator.

Random numbers are always drawn on the host with numpy's PCG64 and then moved to the
device, so a seed gives the same values on "cpu" and "cuda".
"""
import json

import numpy as np

from . import backend
from .tensor import Tensor, _wrap


class Generator:
    """A seedable source of random numbers (numpy's PCG64) whose state can be saved and restored."""

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def manual_seed(self, seed):
        """Restart the stream from `seed`; returns self."""
        self.rng = np.random.default_rng(seed)
        return self

    def get_state(self):
        """The state as a JSON string (PCG64's state is 128-bit integers, too wide for arrays)."""
        return json.dumps(self.rng.bit_generator.state)

    def set_state(self, state):
        """Restore a state from get_state()."""
        self.rng.bit_generator.state = json.loads(state) if isinstance(state, str) else state


default_generator = Generator(0)


def manual_seed(seed):
    """Seed the default generator (used when no generator= is passed); returns it."""
    return default_generator.manual_seed(seed)


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def _make(host_or_xp_array, device, requires_grad):
    data = backend.to_device(host_or_xp_array, device) if device != "cpu" else host_or_xp_array
    t = _wrap(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A leaf tensor holding a copy of `data`; Python floats become float32, ints int64."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros(*shape, dtype=np.float32, device="cpu", requires_grad=False):
    return _make(backend.module_for(device).zeros(_shape(shape), dtype=dtype), "cpu", requires_grad)


def ones(*shape, dtype=np.float32, device="cpu", requires_grad=False):
    return _make(backend.module_for(device).ones(_shape(shape), dtype=dtype), "cpu", requires_grad)


def zeros_like(t, requires_grad=False):
    return zeros(t.shape, dtype=t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t, requires_grad=False):
    return ones(t.shape, dtype=t.dtype, device=t.device, requires_grad=requires_grad)


def randn(*shape, generator=None, dtype=np.float32, device="cpu", requires_grad=False):
    """Standard normal samples."""
    backend.module_for(device)
    rng = (generator or default_generator).rng
    return _make(rng.standard_normal(_shape(shape)).astype(dtype), device, requires_grad)


def rand(*shape, generator=None, dtype=np.float32, device="cpu", requires_grad=False):
    """Uniform samples in [0, 1)."""
    backend.module_for(device)
    rng = (generator or default_generator).rng
    return _make(rng.random(_shape(shape)).astype(dtype), device, requires_grad)


def randint(low, high, shape, generator=None, device="cpu"):
    """Integers uniform in [low, high), as int64."""
    backend.module_for(device)
    rng = (generator or default_generator).rng
    return _make(rng.integers(low, high, size=_shape((shape,))), device, False)


def arange(start, end=None, step=1, dtype=None, device="cpu"):
    """Evenly spaced values in [start, end); int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else np.float32
    return _make(backend.module_for(device).arange(start, end, step, dtype=dtype), "cpu", False)

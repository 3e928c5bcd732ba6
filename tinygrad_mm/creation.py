"""Making tensors: tensor, zeros, ones, arange and the random ones (randn, rand, randint, ...).

Random numbers come from `tinygrad_mm.random`, which draws exactly what torch's CPU generator
draws; they are made on the host and then copied to the device, so a seed gives the same
values on "cpu" and "cuda" (see docs/random.md for the cost of that copy).
"""
import numpy as np

from . import backend
from . import random as _random
from .random import Generator, default_generator, manual_seed, seed, initial_seed  # re-exported
from .coerce import host_array
from .tensor import Tensor, _wrap


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


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return zeros(t.shape, dtype=t.array.dtype if dtype is None else dtype, device=device or t.device,
                 requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return ones(t.shape, dtype=t.array.dtype if dtype is None else dtype, device=device or t.device,
                requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu"):
    """Evenly spaced values in [start, end); int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else np.float32
    return _make(backend.module_for(device).arange(start, end, step, dtype=dtype), "cpu", False)


# ------------------------------------------------------------------ random tensors (torch's stream)
def _device(device):
    backend.module_for(device)  # a clear error for "cuda" without a GPU, before anything is drawn
    return device




def randn(*size, generator=None, dtype=np.float32, device="cpu", requires_grad=False):
    """torch.randn: N(0, 1) samples, float32 unless dtype says otherwise."""
    device = _device(device)
    return _make(_random.normal_array(_shape(size), dtype, generator), device, requires_grad)


def rand(*size, generator=None, dtype=np.float32, device="cpu", requires_grad=False):
    """torch.rand: U[0, 1) samples."""
    device = _device(device)
    return _make(_random.uniform_array(_shape(size), dtype, generator), device, requires_grad)


def randint(low=0, high=None, size=None, generator=None, dtype=np.int64, device="cpu",
            requires_grad=False):
    """torch.randint(low=0, high, size): integers in [low, high); randint(high, size) works too."""
    if size is None:                      # randint(high, size)
        low, high, size = 0, low, high
    if high is None or size is None:
        raise TypeError("randint() needs high and size: randint(high, size) or randint(low, high, size)")
    size = (size,) if isinstance(size, (int, np.integer)) else size
    device = _device(device)
    return _make(_random.randint_array(low, high, _shape((size,)), generator, dtype), device,
                 requires_grad)


def randperm(n, generator=None, dtype=np.int64, device="cpu", requires_grad=False):
    """torch.randperm: a random permutation of 0..n-1."""
    device = _device(device)
    return _make(_random.randperm_array(n, generator, dtype), device, requires_grad)


def multinomial(input, num_samples, replacement=False, generator=None):
    """torch.multinomial: num_samples category indices per row of the (unnormalized) weights
    `input` (1-d or 2-d), as int64 on input's device."""
    device = input.device if isinstance(input, Tensor) else "cpu"
    return _make(_random.multinomial_array(host_array(input), num_samples, replacement, generator),
                 device, False)


def normal(mean=0.0, std=1.0, size=None, generator=None, dtype=None, device="cpu",
           requires_grad=False):
    """torch.normal: with float mean and std a new `size` tensor (normal_(mean, std)); with a
    tensor mean or std, one sample per broadcast element (normal_(0, 1) * std + mean, as torch)."""
    tensors = [x for x in (mean, std) if isinstance(x, (Tensor, np.ndarray))]
    if not tensors:
        if size is None:
            raise TypeError("normal(mean, std) with float mean and std needs size=")
        device = _device(device)
        return _make(_random.normal_array(_shape((size,)), dtype or np.float32, generator, mean, std),
                     device, requires_grad)
    m, s = (host_array(x) if isinstance(x, (Tensor, np.ndarray)) else x for x in (mean, std))
    if isinstance(std, (Tensor, np.ndarray)) and not (s >= 0).all():
        raise ValueError("normal expects all elements of std >= 0.0")
    device = tensors[0].device if isinstance(tensors[0], Tensor) else device
    out_dtype = dtype or host_array(tensors[0]).dtype
    out = np.empty(np.broadcast_shapes(np.shape(m), np.shape(s)), out_dtype)
    if isinstance(std, (Tensor, np.ndarray)):
        _random.normal_(out, 0.0, 1.0, generator)
        out = (out * s.astype(out_dtype, copy=False)).astype(out_dtype, copy=False)
    else:
        _random.normal_(out, 0.0, std, generator)
    out = (out + np.asarray(m, out_dtype)).astype(out_dtype, copy=False)
    return _make(out, _device(device), requires_grad)


def randn_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    """torch.randn_like: randn with t's shape, dtype and device unless told otherwise."""
    return randn(t.shape, generator=generator, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad)


def rand_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    """torch.rand_like: rand with t's shape, dtype and device unless told otherwise."""
    return rand(t.shape, generator=generator, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def randint_like(t, low=0, high=None, generator=None, dtype=None, device=None, requires_grad=False):
    """torch.randint_like(t, high) or (t, low, high): randint with t's shape, dtype and device."""
    if high is None:
        low, high = 0, low
    return randint(low, high, t.shape, generator=generator, dtype=dtype or t.dtype,
                   device=device or t.device, requires_grad=requires_grad)

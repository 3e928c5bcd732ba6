"""A random number generator that draws what torch's CPU generator draws, bit for bit.

`Generator` is torch's CPU generator: a 32-bit Mersenne Twister (mt19937, seeded with
init_genrand on the low 32 bits of the seed) plus the cached second Box-Muller normal. The
words come from numpy's vectorized `np.random.MT19937` bit generator, whose 624-word state
and position are set to torch's; the samplers turn them into torch's floats and integers
(random_torch.py, random_discrete.py). The functions here work on numpy arrays and shapes;
creation.py wraps them in Tensors. docs/random.md explains the algorithms.

On "cuda" the draws still happen here, on the host, and the result is copied to the GPU, so a
seed gives the same numbers on both devices.
"""
import math
import os
import struct

import numpy as np

from . import random_discrete as _disc
from . import random_torch as _rt

DEFAULT_SEED = 67280421310721        # c10::detail::default_rng_seed_val: torch.Generator()'s seed
STATE_SIZE = 5056                    # sizeof(CPUGeneratorImplState), the bytes of get_state()
_N = 624                             # MERSENNE_STATE_N
_HEAD, _WORDS = struct.Struct("<QiiQ"), 24          # the_initial_seed, left, seeded, next
_TAIL = struct.Struct("<dddi4xf?3x")                # normal_x, normal_y, normal_rho, valid, float
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)


def _init_genrand(seed32):
    """mt19937_engine::init_with_uint32: the 624 state words for a 32-bit seed."""
    key, x = [0] * _N, seed32
    for j in range(_N):
        key[j] = x
        x = (1812433253 * (x ^ (x >> 30)) + j + 1) & 0xFFFFFFFF
    return np.array(key, np.uint32)


def _seed_value(seed):
    """torch's unpack_uint64: a Python int in [-2**63, 2**64) as an unsigned 64-bit seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed expected a long, but got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not -(1 << 63) <= seed < 1 << 64:
        raise ValueError(f"seed {seed} is out of range: torch accepts [-2**63, 2**64)")
    return seed & 0xFFFFFFFFFFFFFFFF


class Generator:
    """torch.Generator for the CPU: manual_seed, seed, initial_seed, get_state, set_state.

    `Generator(device="cpu")` starts from torch's default seed 67280421310721. `device="cuda"`
    gives the same stream (draws are made on the host and copied). As a tinygrad_mm extension
    (older code does this) an int in place of the device seeds it: Generator(42).
    """

    def __init__(self, device="cpu"):
        seed = DEFAULT_SEED
        if isinstance(device, (int, np.integer)) and not isinstance(device, bool):
            seed, device = device, "cpu"
        if device not in ("cpu", "cuda"):
            raise ValueError(f"Generator device must be 'cpu' or 'cuda', got {device!r}")
        self.device = device
        self._bg = np.random.MT19937()
        self.manual_seed(seed)

    def manual_seed(self, seed):
        """Restart from `seed` (torch: the low 32 bits seed the twister); returns self."""
        self._seed = _seed_value(seed)
        self._bg.state = {"bit_generator": "MT19937",
                          "state": {"key": _init_genrand(self._seed & 0xFFFFFFFF), "pos": _N}}
        self._next_double = self._next_float = None   # the cached Box-Muller normals
        self._untouched = True                        # torch reports next=0 until the first draw
        return self

    def seed(self):
        """Seed from the OS's randomness (53 bits, as c10::detail::getNonDeterministicRandom)."""
        seed = int.from_bytes(os.urandom(8), "little") & ((1 << 53) - 1)
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        """The seed last given to manual_seed/seed (as an unsigned 64-bit int, like torch)."""
        return self._seed

    def get_state(self):
        """The whole state as 5056 uint8 values, byte-identical to torch's Generator.get_state()."""
        st = self._bg.state["state"]
        pos = int(st["pos"])
        out = bytearray(STATE_SIZE)
        _HEAD.pack_into(out, 0, self._seed, _N + 1 - pos, 1, 0 if self._untouched else pos)
        out[_WORDS:_WORDS + 8 * _N] = np.asarray(st["key"], "<u8").tobytes()
        normal, flt = self._next_double, self._next_float
        _TAIL.pack_into(out, _WORDS + 8 * _N, 0.0, normal or 0.0, 0.0, normal is not None,
                        flt or 0.0, flt is not None)
        return np.frombuffer(bytes(out), np.uint8).copy()

    def set_state(self, state):
        """Restore a state from get_state() (or from torch's Generator.get_state())."""
        if isinstance(state, (str, dict)):
            raise TypeError("this generator state is a PCG64 state from an older tinygrad_mm; the "
                            "generator is now torch's Mersenne Twister and cannot resume it")
        arr = np.asarray(state)
        if arr.dtype != np.uint8 or arr.ndim != 1 or arr.size != STATE_SIZE:
            raise ValueError(f"expected a generator state of {STATE_SIZE} uint8 values, got "
                             f"dtype {arr.dtype} and shape {arr.shape}")
        raw = arr.tobytes()
        seed, left, seeded, nxt = _HEAD.unpack_from(raw, 0)
        words = np.frombuffer(raw, "<u8", _N, _WORDS)
        _, normal, _, valid, flt, flt_valid = _TAIL.unpack_from(raw, _WORDS + 8 * _N)
        if seeded != 1 or not 1 <= left <= _N or not 0 <= nxt <= _N or (words >> 32).any():
            raise ValueError(f"invalid mt19937 state (seeded={seeded}, left={left}, next={nxt}, "
                             f"max word {int(words.max())})")
        if left != 1 and left + nxt != _N + 1:
            raise ValueError(f"inconsistent mt19937 state: left={left} and next={nxt} must add up "
                             f"to {_N + 1} (torch never writes other pairs)")
        self._seed = seed
        self._bg.state = {"bit_generator": "MT19937",
                          "state": {"key": words.astype(np.uint32), "pos": _N + 1 - left}}
        self._untouched = left == 1 and nxt == 0
        self._next_double = normal if valid else None
        self._next_float = np.float32(flt) if flt_valid else None

    # the words: torch's random() and random64()
    def _random(self, n):
        self._untouched = self._untouched and not n
        return self._bg.random_raw(n)

    def _random64(self, n):
        self._untouched = self._untouched and not n
        w = self._bg.random_raw(2 * n)
        return (w[0::2] << np.uint64(32)) | w[1::2]

    def __repr__(self):
        return f"Generator(device={self.device!r}, initial_seed={self._seed})"


default_generator = Generator()


def manual_seed(seed):
    """Seed the default generator (used when no generator= is given); returns it."""
    return default_generator.manual_seed(seed)


def seed():
    """Seed the default generator from the OS's randomness; returns the seed."""
    return default_generator.seed()


def initial_seed():
    """The default generator's initial seed."""
    return default_generator.initial_seed()


def _gen(generator):
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a tinygrad_mm Generator, got {type(generator).__name__}")
    return generator


def _float_array(arr, what):
    if not isinstance(arr, np.ndarray) or arr.dtype not in _FLOATS:
        raise TypeError(f"{what} supports float32 and float64 numpy arrays, got "
                        f"{getattr(arr, 'dtype', type(arr).__name__)}")
    if not arr.flags.writeable:
        raise ValueError(f"{what} needs a writeable array")
    return arr


# ----------------------------------------------------------------------- the draws
def normal_(arr, mean=0.0, std=1.0, generator=None):
    """Tensor.normal_ (normal_kernel, cpu/DistributionTemplates.h), in place; returns arr.

    float32 contiguous with >= 16 elements: normal_fill_AVX2; float64 the same way with
    normal_fill; smaller or strided outputs: normal_distribution<double> per element in
    TensorIterator order, using and refilling the generator's cached normal.
    """
    _float_array(arr, "normal_")
    if not std >= 0:
        raise ValueError(f"normal expects std >= 0.0, but found std {std}")
    g = _gen(generator)
    if arr.size >= 16 and arr.flags.c_contiguous:
        arr.reshape(-1)[...] = _rt.normal_fill(g, arr.size, arr.dtype, mean, std)
    else:
        _rt.write_in_order(arr, _rt.normal_scalar(g, arr.size, mean, std).astype(arr.dtype))
    return arr


def uniform_(arr, low=0.0, high=1.0, generator=None):
    """Tensor.uniform_ (uniform_kernel): one draw per element in TensorIterator order; returns arr."""
    _float_array(arr, "uniform_")
    low, high, top = float(low), float(high), float(np.finfo(arr.dtype).max)
    if not (-top <= low <= top and -top <= high <= top):
        raise ValueError(f"uniform_ expects from={low} and to={high} within the range of {arr.dtype}")
    if not low <= high:
        raise ValueError(f"uniform_ expects to return a [from, to) range, but found from={low} > to={high}")
    if not high - low <= top:
        raise ValueError(f"uniform_ expects to-from <= the max of {arr.dtype}, but found to={high} "
                         f"and from={low} which result in to-from to exceed the limit")
    _rt.write_in_order(arr, _rt.uniform_values(_gen(generator), arr.size, arr.dtype, low, high))
    return arr


def normal_array(shape, dtype=np.float32, generator=None, mean=0.0, std=1.0):
    """torch.randn / torch.normal(mean, std, size): a new C-contiguous array."""
    return normal_(_float_array(np.empty(shape, dtype), "normal"), mean, std, generator)


def uniform_array(shape, dtype=np.float32, generator=None, low=0.0, high=1.0):
    """torch.rand / Tensor.uniform_: a new C-contiguous array of U[low, high)."""
    return uniform_(_float_array(np.empty(shape, dtype), "uniform"), low, high, generator)


def randint_array(low, high, shape, generator=None, dtype=np.int64):
    """torch.randint (random_from_to_kernel): integers in [low, high)."""
    low, high = int(low), int(high)
    if not low < high:
        raise ValueError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    if not (-(1 << 63) <= low and high < 1 << 63):
        raise ValueError(f"randint: low={low} and high={high} must be int64 values")
    dtype = np.dtype(dtype)
    if dtype != _INT64 and dtype.kind in "iu" and not (
            np.iinfo(dtype).min <= low and high - 1 <= np.iinfo(dtype).max):
        raise ValueError(f"randint: [{low}, {high}) does not fit in {dtype}")
    out = _disc.randint_values(_gen(generator), math.prod(shape), low, high).reshape(shape)
    return out if dtype == _INT64 else out.astype(dtype)


def randperm_array(n, generator=None, dtype=np.int64):
    """torch.randperm (randperm_cpu): a random permutation of 0..n-1."""
    n = int(n)
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got n={n}")
    return _disc.randperm_values(_gen(generator), n).astype(dtype, copy=False)


def multinomial_array(probs, num_samples, replacement=False, generator=None):
    """torch.multinomial on a 1-d or 2-d float array of (unnormalized) weights: int64 indices.

    Without replacement, or for one sample: the exponential race argmax/topk(p / Exp(1)).
    With replacement and >= 2 samples: a binary search of the row's cumulative sum.
    """
    p = np.asarray(probs)
    if p.ndim not in (1, 2):
        raise ValueError(f"prob_dist must be 1 or 2 dim, got {p.ndim} dims (shape {p.shape})")
    if p.dtype not in _FLOATS:
        raise TypeError(f"multinomial only supports float32/float64 weights, got: {p.dtype}")
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise ValueError(f"cannot sample n_sample <= 0 samples (num_samples={num_samples})")
    n_cat = p.shape[-1]
    if not replacement and num_samples > n_cat:
        raise ValueError(f"cannot sample n_sample > prob_dist.size(-1) samples without replacement "
                         f"(num_samples={num_samples}, categories={n_cat})")
    if n_cat > 1 << 24:
        raise ValueError(f"number of categories cannot exceed 2^24, got {n_cat}")
    p2 = p.reshape(1, n_cat) if p.ndim == 1 else p
    if n_cat == 0 and p2.shape[0]:
        raise ValueError("invalid multinomial distribution (sum of probabilities <= 0): no categories")
    if p2.shape[0] == 0:
        return np.empty((0, num_samples), np.int64)
    if not replacement or num_samples == 1:
        if not ((p2 >= 0).all() and (p2 < np.inf).all()):   # NaN fails both
            raise ValueError("probability tensor contains either `inf`, `nan` or element < 0")
        if not (p2 > 0).any(axis=1).all():
            raise ValueError("invalid multinomial distribution (sum of probabilities <= 0)")
    out = _disc.multinomial_values(_gen(generator), p2, num_samples, replacement)
    return out.reshape(num_samples) if p.ndim == 1 else out

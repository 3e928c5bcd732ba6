"""The numerics of torch's CPU samplers, bit for bit, on numpy arrays (see docs/random.md).

Everything here turns 32-bit Mersenne Twister words (drawn by `random.Generator`) into the
floats torch writes. Two details make "bit for bit" harder than it looks:

* torch's kernels are compiled with floating-point contraction, so `x * (to - from) + from`,
  `ret * std + mean` and the polynomial steps of the float32 Box-Muller are fused
  multiply-adds (one rounding). numpy has no fma, so `fma32`/`fma64` emulate it exactly.
* float64 log/log1p/sin/cos come from the C library (glibc) in torch; numpy's SIMD loops
  differ in the last bit, so `libm` calls Python's `math` (the same C library) per element.
"""
import math

import numpy as np

F32, F64 = np.float32, np.float64
TWO_PI = 2.0 * math.pi               # c10::pi<double> * 2, rounded to double
TWO_PI_F32 = F32(TWO_PI)             # _mm256_set1_ps(2.0f * c10::pi<double>)


# ---------------------------------------------------------------- exact arithmetic helpers
def _two_sum(x, y):
    s = x + y
    bb = s - x
    return s, (x - (s - bb)) + (y - bb)


def _add_round_to_odd(x, y):
    """x + y rounded to odd (float64): the intermediate that makes a second rounding exact."""
    s, err = _two_sum(x, y)
    even = (s.view(np.int64) & 1) == 0
    return np.where((err != 0) & even, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)


def fma64(a, b, c):
    """round(a*b + c) in float64, as the FMA instruction (Boldo-Melquiond emulation)."""
    a, b, c = np.broadcast_arrays(np.asarray(a, F64), np.asarray(b, F64), np.asarray(c, F64))
    p = a * b
    t = 134217729.0 * a                                       # Veltkamp split, then Dekker's product
    ah = t - (t - a)
    t = 134217729.0 * b
    bh = t - (t - b)
    al, bl = a - ah, b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl         # a*b == p + e exactly
    th, tl = _two_sum(c, p)
    return th + _add_round_to_odd(tl, e)


def fma32(a, b, c):
    """round(a*b + c) in float32 for float32 inputs: a*b is exact in float64, so one float64 add
    is right unless it lands on a float32 midpoint (then redo it rounding to odd)."""
    a64 = np.asarray(a, F64)
    p = a64 * F64(b) if np.ndim(b) == 0 else a64 * np.asarray(b, F64)
    s = p + (F64(c) if np.ndim(c) == 0 else np.asarray(c, F64))
    out = s.astype(F32)
    bits = s.view(np.uint64)
    risky = ((bits & 0x1FFFFFFF) == 0x10000000) | (np.abs(s) < 2.0 ** -125)
    if risky.any():
        p, c64 = np.broadcast_arrays(p, np.asarray(c, F64))
        out[risky] = _add_round_to_odd(p[risky], c64[risky]).astype(F32)
    return out


def libm(fn, x):
    """math.fn (the C library's double function, as torch calls it) on every element of x."""
    x = np.asarray(x, F64)
    return np.fromiter(map(fn, x.ravel().tolist()), F64, count=x.size).reshape(x.shape)


# ---------------------------------------------------------------- words -> uniform floats
def unit_f32(words):
    """transformation::uniform_real<float>: the low 24 bits of a 32-bit word times 2^-24."""
    return (words & 0xFFFFFF).astype(F32) * F32(2.0 ** -24)


def unit_f64(words64):
    """transformation::uniform_real<double>: the low 53 bits of a 64-bit draw times 2^-53."""
    return (words64 & ((1 << 53) - 1)).astype(F64) * 2.0 ** -53


def uniform_values(g, n, dtype, low, high):
    """uniform_kernel (cpu/DistributionTemplates.h): fma(u, to - from, from) in the output dtype."""
    if dtype == F32:
        lo, hi = F32(low), F32(high)
        return _scale(unit_f32(g._random(n)), F32(hi - lo), lo)
    return _scale(unit_f64(g._random64(n)), F64(high) - F64(low), F64(low))


# ---------------------------------------------------------------- float32: avx_mathfun.h
_LOG_P = [F32(v) for v in (7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1,
                           1.4249322787E-1, -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1,
                           3.3333331174E-1)]
_SIN_P = [F32(v) for v in (-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1)]
_COS_P = [F32(v) for v in (2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002)]
_DP = [F32(v) for v in (-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8)]


class _FusedF32:
    """fma32 for the Cephes kernels, whose results are never float32 subnormals: one float64
    multiply-add; the float64 sums are kept so `risky()` can find the rare float32 midpoints."""

    def __init__(self):
        self.sums = []

    def __call__(self, a, b, c):
        s = a.astype(F64)
        s *= b
        s += c
        self.sums.append(s)
        return s.astype(F32)

    def risky(self):
        """Rows where some step's float64 sum sat on a float32 midpoint (rounded twice)."""
        bits = np.stack(self.sums).view(np.uint64) & 0x1FFFFFFF
        return np.flatnonzero((bits == 0x10000000).any(axis=(0, 2)))


def log256_ps(x, fma=fma32):
    """avx_mathfun.h log256_ps (Cephes logf) for x in (0, 1], with the compiler's fused steps."""
    x = np.maximum(x, F32(1.1754943508222875e-38))          # cut off denormals
    bits = x.view(np.int32)
    e = ((bits >> 23) - 126).astype(F32)                    # exponent + 1
    x = ((bits & ~0x7F800000) | 0x3F000000).view(F32)       # mantissa in [0.5, 1)
    small = x < F32(0.707106781186547524)
    e = e - small.astype(F32)
    x = (x - F32(1)) + np.where(small, x, F32(0))
    z = x * x
    y = np.full_like(x, _LOG_P[0])
    for p in _LOG_P[1:]:
        y = fma(y, x, p)
    y = fma(y * x, z, e * F32(-2.12194440e-4))
    y = y - z * F32(0.5)
    return (x + y) + e * F32(0.693359375)


def sincos256_ps(x, fma=fma32):
    """avx_mathfun.h sincos256_ps (Cephes sinf/cosf) for x >= 0, fused as compiled: (sin, cos)."""
    j = (x * F32(1.27323954473516)).astype(np.int32)        # scale by 4/pi, truncate
    j = (j + 1) & ~1
    y = j.astype(F32)
    sign_sin = (j & 4) << 29
    sign_cos = (~(j - 2) & 4) << 29
    poly_sin = (j & 2) == 0
    for dp in _DP:                                          # extended-precision x - y*pi/4
        x = fma(y, dp, x)
    z = x * x
    c = np.full_like(x, _COS_P[0])
    for p in _COS_P[1:]:
        c = fma(c, z, p)
    c = fma(c * z, z, -(z * F32(0.5))) + F32(1)
    s = np.full_like(x, _SIN_P[0])
    for p in _SIN_P[1:]:
        s = fma(s, z, p)
    s = fma(s * z, x, x)
    sin = np.where(poly_sin, s, c).view(np.int32) ^ sign_sin
    cos = np.where(poly_sin, c, s).view(np.int32) ^ sign_cos
    return sin.view(F32), cos.view(F32)


def _fill16_f32(u, mean, std):
    """normal_fill_16_AVX2 on rows of 16 uniforms: columns 0-7 from cos, 8-15 from sin."""
    out = np.empty_like(u)
    for r0 in range(0, len(u), 4096):                       # blocks that stay in cache
        b = u[r0:r0 + 4096]
        fused = _FusedF32()
        radius = np.sqrt(F32(-2) * log256_ps(F32(1) - b[:, :8], fused))
        sin, cos = sincos256_ps(TWO_PI_F32 * b[:, 8:], fused)
        rows = fused.risky()
        if len(rows):                                       # redo them with the exact fma32
            radius[rows] = np.sqrt(F32(-2) * log256_ps(F32(1) - b[rows, :8]))
            sin[rows], cos[rows] = sincos256_ps(TWO_PI_F32 * b[rows, 8:])
        out[r0:r0 + 4096, :8] = _scale(radius * cos, std, mean)
        out[r0:r0 + 4096, 8:] = _scale(radius * sin, std, mean)
    return out


def _scale(x, std, mean):
    """fma(x, std, mean) in x's dtype; with std == 1 that is the plain sum x + mean."""
    if std == 1:
        return x + x.dtype.type(mean)
    return fma32(x, std, mean) if x.dtype == F32 else fma64(x, std, mean)


def _fill16_f64(u, mean, std):
    """normal_fill_16<double>: std::log/sqrt/cos/sin, then fma(r*cos, std, mean)."""
    radius = np.sqrt(-2.0 * libm(math.log, 1.0 - u[:, :8]))
    theta = TWO_PI * u[:, 8:]
    return np.concatenate([_scale(radius * libm(math.cos, theta), std, mean),
                           _scale(radius * libm(math.sin, theta), std, mean)], axis=1)


def normal_fill(g, n, dtype, mean, std):
    """normal_fill / normal_fill_AVX2 (n >= 16, contiguous): n uniforms, Box-Muller in blocks of
    16, and when 16 does not divide n the last 16 are redrawn and recomputed."""
    f32 = dtype == F32
    unit, fill = (unit_f32, _fill16_f32) if f32 else (unit_f64, _fill16_f64)
    draw = g._random if f32 else g._random64
    mean, std = (F32(mean), F32(std)) if f32 else (F64(mean), F64(std))
    out = unit(draw(n))
    whole = n - n % 16
    out[:whole] = fill(out[:whole].reshape(-1, 16), mean, std).ravel()
    if n % 16:
        out[n - 16:] = fill(unit(draw(16)).reshape(1, 16), mean, std).ravel()
    return out


def normal_scalar(g, n, mean, std):
    """at::normal_distribution<double> called n times (small or strided outputs), as float64.

    Each fresh pair costs two random64 draws (u1, u2): r*cos(2 pi u1) is returned and
    r*sin(2 pi u1) is cached in the generator for the next call, where r = sqrt(-2 log1p(-u2)).
    """
    cached = g._next_double
    fresh = n - (cached is not None and n > 0)
    pairs = (fresh + 1) // 2
    u = unit_f64(g._random64(2 * pairs)).reshape(pairs, 2)
    r = np.sqrt(-2.0 * libm(math.log1p, -u[:, 1]))
    theta = TWO_PI * u[:, 0]
    seq = np.empty(2 * pairs, F64)
    seq[0::2], seq[1::2] = r * libm(math.cos, theta), r * libm(math.sin, theta)
    if n > 0:
        g._next_double = float(seq[-1]) if fresh % 2 else None
    vals = seq[:fresh] if cached is None or n == 0 else np.concatenate([[cached], seq[:fresh]])
    return _scale(vals, std, mean)


def exponential_values(g, n):
    """exponential_kernel with lambda = 1: -log1p(-u) in double for a 53-bit u."""
    return -libm(math.log1p, -unit_f64(g._random64(n)))


# ---------------------------------------------------------------- TensorIterator order
def iteration_axes(arr):
    """Axes of `arr` from slowest to fastest, as TensorIterator::reorder_dimensions sorts an
    output's dimensions by stride (insertion sort; ties broken by size; zero strides skipped)."""
    nd, strides, shape = arr.ndim, arr.strides, arr.shape
    perm = list(range(nd - 1, -1, -1))              # perm[0] is the fastest dimension

    def should_swap(d0, d1):
        s0, s1 = strides[d0], strides[d1]
        if s0 == 0 or s1 == 0:
            return 0
        if s0 != s1:
            return -1 if s0 < s1 else 1
        return 1 if shape[d0] > shape[d1] else 0

    for i in range(1, nd):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    return perm[::-1]


def write_in_order(arr, flat):
    """arr[...] = flat, element k going to the k-th position TensorIterator visits."""
    if arr.flags.c_contiguous:
        arr.reshape(-1)[...] = flat
        return
    axes = iteration_axes(arr)
    arr[...] = flat.reshape([arr.shape[a] for a in axes]).transpose(np.argsort(axes))

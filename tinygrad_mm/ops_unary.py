"""More elementwise ops: abs, sqrt, sigmoid, sin, cos, log2/log10, exp2, clamp -- forward beside derivative.

Each backward is the formula torch's autograd uses, so values at kinks and bounds agree with it:
abs'(0) = 0 (torch's sgn), clamp passes the gradient where min <= x <= max (bounds included).
"""
import math

from .backend import xp_of
from .function import Function


class Abs(Function):
    def forward(self, x):
        self.x = x
        return xp_of(x).abs(x)

    def backward(self, g):          # d|x|/dx = sign(x), 0 at x = 0 (as torch)
        return g * xp_of(g).sign(self.x)


class Sqrt(Function):
    def forward(self, x):
        self.out = xp_of(x).sqrt(x)
        return self.out

    def backward(self, g):          # d(sqrt x)/dx = 1 / (2 sqrt x)
        return g / (2 * self.out)


class Sigmoid(Function):
    def forward(self, x):
        xp = xp_of(x)
        # exp of a negative argument only: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below (no overflow)
        e = xp.exp(-xp.abs(x))
        self.out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self.out

    def backward(self, g):          # d(sigmoid x)/dx = s (1 - s)
        s = self.out
        return g * (1 - s) * s      # torch's order of operations


class Sin(Function):
    def forward(self, x):
        self.x = x
        return xp_of(x).sin(x)

    def backward(self, g):          # d(sin x)/dx = cos x
        return g * xp_of(g).cos(self.x)


class Cos(Function):
    def forward(self, x):
        self.x = x
        return xp_of(x).cos(x)

    def backward(self, g):          # d(cos x)/dx = -sin x
        return g * -xp_of(g).sin(self.x)


class Log2(Function):
    def forward(self, x):
        self.x = x
        return xp_of(x).log2(x)

    def backward(self, g):          # d(log2 x)/dx = 1 / (x ln 2)
        return g / (self.x * math.log(2.0))


class Log10(Function):
    def forward(self, x):
        self.x = x
        return xp_of(x).log10(x)

    def backward(self, g):          # d(log10 x)/dx = 1 / (x ln 10)
        return g / (self.x * math.log(10.0))


class Exp2(Function):
    def forward(self, x):
        self.out = xp_of(x).exp2(x)
        return self.out

    def backward(self, g):          # d(2^x)/dx = 2^x ln 2
        return g * (self.out * math.log(2.0))


class Clamp(Function):
    """x limited to [lo, hi] (either may be None); the gradient passes where lo <= x <= hi."""
    torch_name = "ClampBackward1"

    def forward(self, x, lo=None, hi=None):
        xp = xp_of(x)
        out = x
        if lo is not None:
            out = xp.maximum(out, xp.asarray(lo, dtype=x.dtype))
        if hi is not None:
            out = xp.minimum(out, xp.asarray(hi, dtype=x.dtype))
        self.x, self.lo, self.hi = x, lo, hi
        return out if out is not x else x.copy()

    def backward(self, g):          # slope 1 inside and at the bounds, 0 outside (torch's clamp_backward)
        xp, x = xp_of(g), self.x
        inside = xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        return xp.where(inside, g, 0).astype(g.dtype, copy=False)

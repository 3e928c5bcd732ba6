"""gradient_verdict: is a hand-written gradient right, and if not, what kind of wrong?

For backprop exercises (examples/backprop_exercise.py): compare your gradient with the
tape's and name the usual mistakes -- gradcheck's hints for same-shaped arrays (a factor
2, the sign, a transposed matrix, all zeros) plus the shape mistakes: a broadcast input
whose gradient was not summed over the broadcast dimensions, a sum that dropped a kept
dimension, a transposed non-square matrix.
"""
import numpy as np

from .gradcheck import _hint
from .coerce import host_array


class Verdict:
    """ok, and a one-line explanation (empty when ok)."""
    __slots__ = ("ok", "message", "maxdiff")

    def __init__(self, ok, message="", maxdiff=0.0):
        self.ok, self.message, self.maxdiff = ok, message, maxdiff

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return "Verdict(ok)" if self.ok else f"Verdict({self.message!r})"


def _host(x):
    return host_array(x).astype(np.float64)


def gradient_verdict(mine, reference, rtol=1e-5, atol=1e-8):
    """Verdict on `mine` (an array or Tensor) against the `reference` gradient."""
    a, r = _host(mine), _host(reference)
    if a.shape == r.shape:
        diff = float(np.abs(a - r).max(initial=0.0))
        if np.allclose(a, r, rtol=rtol, atol=atol):
            return Verdict(True, "", diff)
        hint = _hint(a, r) if r.ndim else _scalar_hint(float(a), float(r))
        return Verdict(False, hint or f"wrong values (max abs diff {diff:.3g})", diff)
    close = lambda x: x.shape == r.shape and np.allclose(x, r, rtol=rtol, atol=atol)  # noqa: E731
    if a.size == r.size and close(a.reshape(r.shape)):
        return Verdict(False, f"right values, wrong shape {a.shape} (the input has shape {r.shape}): "
                       + ("keep the summed dimension (keepdims=True)" if 1 in r.shape else "reshape it"))
    if a.ndim == 2 and a.T.shape == r.shape and close(a.T):
        return Verdict(False, f"transposed: shape {a.shape}, the input has shape {r.shape} "
                       "(g @ W vs g @ W.T, or the operands of a matmul swapped)")
    axes = _broadcast_axes(r.shape, a.shape)
    if axes is not None:
        summed = a.sum(axis=axes, keepdims=True).reshape(r.shape)
        where = ", ".join(str(k) for k in axes)
        if close(summed):
            return Verdict(False, f"missing broadcast sum: shape {a.shape} but the input has shape {r.shape}; "
                           f"the input was broadcast in the forward, so sum its gradient over axis {where}")
        return Verdict(False, f"shape {a.shape} but the input has shape {r.shape} (broadcast over axis "
                       f"{where}: sum over it), and the values are off too")
    return Verdict(False, f"shape {a.shape} but the input has shape {r.shape}")


def _broadcast_axes(small, big):
    """The axes of `big` over which an array of shape `small` was broadcast, or None if it wasn't."""
    lead = len(big) - len(small)
    if lead < 0 or any(s != 1 and s != b for s, b in zip(small, big[lead:])):
        return None
    return tuple(range(lead)) + tuple(lead + i for i, s in enumerate(small) if s == 1 and big[lead + i] != 1)


def _scalar_hint(a, r):
    """gradcheck's hints for one number (it skips "constant factor" there: any two numbers are proportional)."""
    for target, msg in ((2.0, "your value is 2× the right one: a contribution counted twice"),
                        (0.5, "your value is ½ the right one: a factor 2 is missing"),
                        (-1.0, "your value has the opposite sign")):
        if r != 0 and abs(a / r - target) < 0.02 * abs(target):
            return msg
    return ""

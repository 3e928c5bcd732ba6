"""Compare gradients: with torch on the same inputs, or hand-written ones with the tape's."""
import numpy as np

from . import backend
from .coerce import host_array
from .tensor import Tensor


def torch_tolerances(dtype):
    """(rtol, atol): 1e-7 for float64 (our standard), torch.testing's defaults for float32."""
    return (1e-7, 1e-7) if np.dtype(dtype) == np.float64 else (1.3e-6, 1e-5)


class Comparison:
    """One row: name, exact?, allclose?, max abs diff."""

    def __init__(self, name, exact, close, maxdiff, shape):
        self.name, self.exact, self.close, self.maxdiff, self.shape = name, exact, close, maxdiff, shape

    def __str__(self):
        return self.format(14)

    def format(self, width):
        return (f"{self.name:<{width}} exact: {str(self.exact):<5} | allclose: {str(self.close):<5} | "
                f"max diff: {self.maxdiff:.3g}")

    __repr__ = __str__  # compare_with_torch returns a list of these: show the rows, not addresses


def cmp(name, ours, reference, rtol=1e-5, atol=1e-8):
    """Compare an array with a reference entry by entry (makemore part 4's `cmp`); returns a Comparison."""
    a, b = host_array(ours), host_array(reference)
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ: {a.shape} vs reference {b.shape}")
    diff = float(np.abs(a.astype(np.float64) - b).max(initial=0.0))
    return Comparison(name, bool(np.array_equal(a, b)), bool(np.allclose(a, b, rtol=rtol, atol=atol)),
                      diff, a.shape)


def format_comparisons(rows):
    """The rows of several cmp() calls as one table, the name column as wide as the longest name."""
    rows = list(rows)
    width = max([14] + [len(r.name) for r in rows])
    return "\n".join(r.format(width) for r in rows)




class TorchMismatch(AssertionError):
    """compare_with_torch found values or gradients that differ beyond tolerance."""


def compare_with_torch(fn, torch_fn, inputs, *, grad_output=None, rtol=None, atol=None, seed=0):
    """Run fn (tinygrad_mm) and torch_fn (torch) on the same inputs; compare outputs and gradients.

    inputs: numpy arrays (float ones require grad; integer ones are passed as indices).
    The backward uses one random upstream gradient (or grad_output) for both.
    Returns the list of Comparison rows; raises TorchMismatch listing every row that failed.
    """
    import torch
    arrays = [host_array(x) for x in inputs]
    ours = [Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out, tout = fn(*ours), torch_fn(*theirs)
    dtype = out.dtype
    r, a = torch_tolerances(dtype) if rtol is None or atol is None else (rtol, atol)
    tnp = tout.detach().numpy()
    rows = [_row("output", backend.to_numpy(out.array), tnp, r, a)]
    if out.requires_grad and out.shape == tnp.shape and out.dtype == tnp.dtype:  # else: no common upstream grad
        v = (np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
             if grad_output is None else np.asarray(grad_output, dtype=dtype))
        out.backward(v if out.array.ndim else v.reshape(()))
        tout.backward(torch.from_numpy(np.array(v)))
        for i, (t, tt) in enumerate(zip(ours, theirs)):
            if t.requires_grad:
                g = t.grad.array if t.grad is not None else np.zeros_like(t.array)
                tg = tt.grad.numpy() if tt.grad is not None else np.zeros_like(arrays[i])
                rows.append(_row(f"grad input {i}", backend.to_numpy(g), tg, r, a))
    bad = [row for row in rows if not row.close]
    if bad:
        raise TorchMismatch(f"tinygrad_mm and torch differ (rtol={r:g}, atol={a:g}):\n"
                            + format_comparisons(rows))
    return rows


def _row(name, ours, ref, rtol, atol):
    if ours.shape != ref.shape:
        return Comparison(name + f" (shape {ours.shape} vs torch {ref.shape})", False, False, float("inf"),
                          ours.shape)
    if ours.dtype != ref.dtype:
        return Comparison(name + f" (dtype {ours.dtype} vs torch {ref.dtype})", False, False, float("inf"),
                          ours.shape)
    diff = float(np.abs(ours.astype(np.float64) - ref).max(initial=0.0)) if ours.size else 0.0
    close = bool(np.allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True))
    return Comparison(name, bool(np.array_equal(ours, ref, equal_nan=True)), close, diff, ours.shape)

"""gradcheck: compare the tape's gradients with central finite differences, and say what is wrong.

Three modes:
- "vjp" (default): one random upstream gradient v; every input entry's numeric
  derivative of sum(v * f(x)) is compared with the tape's. One backward, 2 forwards per entry.
- "full": the whole Jacobian, numeric (perturb each input entry) against analytic (one
  backward per output entry with a one-hot upstream gradient). Exact but O(out * in).
- "fast": a few random directions u per input: v . (f(x + eps u) - f(x - eps u)) / 2eps
  against <grad, u>. For inputs too large to perturb entry by entry.
"""
import numpy as np

from . import backend
from .coerce import leaf_tensors
from .grad_mode import no_grad
from .tape import Tape
from .tensor import Tensor


class GradcheckError(AssertionError):
    """A gradient check failed; str() is the full report."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


class InputCheck:
    """The verdict for one input: ok, error sizes, worst entries and a hint."""

    def __init__(self, index, shape, ok, rows=(), max_abs=0.0, max_rel=0.0, hint="", n_bad=0, n=0):
        self.index, self.shape, self.ok, self.rows = index, shape, ok, list(rows)
        self.max_abs, self.max_rel, self.hint, self.n_bad, self.n = max_abs, max_rel, hint, n_bad, n


class GradcheckReport:
    """What gradcheck found, input by input; truthy when every input passed."""

    def __init__(self, mode, eps, atol, rtol):
        self.mode, self.eps, self.atol, self.rtol = mode, eps, atol, rtol
        self.inputs, self.error, self.eps_sweep = [], None, None

    @property
    def ok(self):
        return self.error is None and all(c.ok for c in self.inputs)

    __bool__ = lambda self: self.ok

    def __str__(self):
        head = (f"gradcheck {'passed' if self.ok else 'FAILED'} (mode={self.mode}, eps={self.eps:g}, "
                f"atol={self.atol:g}, rtol={self.rtol:g})")
        lines = [head]
        if self.error:
            lines.append("  " + self.error)
        for c in self.inputs:
            state = "ok" if c.ok else f"MISMATCH in {c.n_bad} of {c.n} entries"
            lines.append(f"input {c.index} {c.shape}: {state}; max abs err {c.max_abs:.3g}, "
                         f"max rel err {c.max_rel:.3g}")
            if not c.ok and c.rows:
                lines.append(_table(c.rows))
            if c.hint:
                lines.append("  hint: " + c.hint)
        if self.eps_sweep:
            lines.append(self.eps_sweep)
        return "\n".join(lines)

    __repr__ = __str__


def _table(rows):
    header = ("index", "analytic", "numeric", "abs err", "rel err")
    cells = [header] + [(str(i), f"{a:.6g}", f"{n:.6g}", f"{e:.3g}", f"{r:.3g}") for i, a, n, e, r in rows]
    w = [max(len(r[k]) for r in cells) for k in range(5)]
    return "\n".join("    " + "  ".join(c.rjust(wk) for c, wk in zip(r, w)) for r in cells)


def _check_dtypes(ts):
    for i, t in enumerate(ts):
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(
                f"gradcheck needs float64 inputs, but input {i} is {t.dtype}: with eps={1e-6:g} a float32 "
                "difference f(x+eps) - f(x-eps) keeps only about 1 significant digit (float32 resolves ~1e-7 "
                "relative), so round-off swamps the tolerance. Convert with .double() and check in float64.")
    if not any(t.requires_grad for t in ts):
        raise ValueError("gradcheck: no input requires grad; pass Tensors with requires_grad=True")


def _run(fn, ts):
    out = fn(*ts)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def _analytic(fn, ts, v):
    """The tape's gradients of sum(v * fn(ts)), one array per input (None where not required)."""
    saved = [t.grad for t in ts]
    try:
        for t in ts:
            t.grad = None
        with Tape():
            out = _run(fn, ts)
            if not out.requires_grad:
                raise RuntimeError("fn's output does not depend on any input that requires grad "
                                   "(is it computed under no_grad, or from .data/.detach()?)")
            out.backward(v)
        return [None if not t.requires_grad else
                (t.grad.array if t.grad is not None else np.zeros_like(t.array)) for t in ts]
    finally:
        for t, g in zip(ts, saved):
            t.grad = g


def _numeric_entry(fn, ts, t, i, eps, v):
    """d/dx_i of sum(v * f) at entry i of input t, by central difference (restores x_i exactly)."""
    flat = t.array.reshape(-1)
    if not np.shares_memory(flat, t.array):
        raise RuntimeError("gradcheck needs contiguous inputs")
    x0 = flat[i].copy()
    with no_grad():
        flat[i] = x0 + eps
        fp = _run(fn, ts).array.copy()  # a view op's output aliases the input we are about to poke
        flat[i] = x0 - eps
        fm = _run(fn, ts).array.copy()
    flat[i] = x0
    return (fp - fm) / (2 * eps) if v is None else float(((fp - fm) * v).sum() / (2 * eps))


def _numeric(fn, ts, t, eps, v):
    return np.array([_numeric_entry(fn, ts, t, i, eps, v) for i in range(t.array.size)]).reshape(t.shape)


def _hint(a, n):
    """Name a recognisable pattern in a wrong gradient, or ''."""
    nn = float((n * n).sum())
    if not np.any(a):
        return "the analytic gradient is all zeros: backward returned None/zeros, or the op was not recorded"
    if nn > 0:
        r = float((a * n).sum()) / nn
        resid = float(np.sqrt(((a - r * n) ** 2).sum() / nn))
        if resid < 0.02:
            for target, msg in ((2.0, "analytic ≈ 2× numeric: a contribution is counted twice "
                                      "(a doubled derivative, or an adjoint added twice)"),
                                (0.5, "analytic ≈ ½× numeric: a factor 2 is missing (d(x²)/dx = 2x, "
                                      "or only one of two uses of an input accumulated)"),
                                (-1.0, "analytic ≈ −numeric: the gradient has the opposite sign")):
                if abs(r - target) < 0.02 * abs(target):
                    return msg
            if a.size > 1:  # with one entry every pair of numbers is "proportional"
                return f"analytic ≈ {r:.4g}× numeric: a constant factor is off"
    if a.ndim == 2 and a.shape[0] == a.shape[1] and np.allclose(a, n.T, rtol=1e-3, atol=1e-6):
        return "analytic ≈ numeric transposed: a matrix is transposed in backward (g @ W vs g @ W.T)"
    return ""


def _compare(index, a, n, atol, rtol, max_rows, hint=True):
    err = np.abs(a - n)
    bad = err > atol + rtol * np.abs(n)
    rel = err / np.maximum(np.abs(n), 1e-300)
    worst = np.argsort(-(err - atol - rtol * np.abs(n)), axis=None)[:max_rows]
    rows = [(np.unravel_index(k, a.shape) if a.ndim else (), a.flat[k], n.flat[k], err.flat[k], rel.flat[k])
            for k in worst]
    rows = [(tuple(int(j) for j in ix), *map(float, rest)) for ix, *rest in rows]
    ok = not bad.any()
    return InputCheck(index, tuple(n.shape), ok, rows, float(err.max(initial=0)),
                      float(rel.max(initial=0)), "" if ok or not hint else _hint(a, n), int(bad.sum()), n.size)


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, mode="vjp", grad_output=None, seed=0,
              n_directions=4, max_rows=5, eps_sweep=False, raise_on_failure=True):
    """Check fn's tape gradients at `inputs` against central finite differences.

    fn takes the inputs (Tensors; float64 arrays are wrapped) and returns a Tensor.
    Returns a GradcheckReport; on failure raises GradcheckError with that report unless
    raise_on_failure=False. eps_sweep=True adds an error-vs-eps table that tells
    truncation error (shrinks with eps) from round-off (grows as eps shrinks).
    """
    if mode not in ("vjp", "full", "fast"):
        raise ValueError(f"mode must be 'vjp', 'full' or 'fast', got {mode!r}")
    ts = leaf_tensors(inputs)
    _check_dtypes(ts)
    if any(backend.device_of(t.array) != "cpu" for t in ts):
        ts = [t.to("cpu") for t in ts]  # finite differences poke single entries: do it on the host
    report = GradcheckReport(mode, eps, atol, rtol)
    rng = np.random.default_rng(seed)
    with no_grad():
        out = _run(fn, ts)
    if out.dtype != np.float64:
        raise TypeError(f"gradcheck needs a float64 output, got {out.dtype}")
    v = (rng.standard_normal(out.shape) if grad_output is None else
         backend.to_numpy(grad_output.array) if isinstance(grad_output, Tensor) else np.asarray(grad_output))
    try:
        grads = _analytic(fn, ts, v)
    except (ValueError, TypeError, RuntimeError) as e:
        report.error = f"backward raised {type(e).__name__}: {e}"
        if "shape" in str(e):
            report.error += ("\n  hint: gradient shape ≠ input shape — a missing (or wrong) reduction over "
                             "broadcast dimensions, or a transposed gradient")
        return _finish(report, raise_on_failure)
    jacobians = _analytic_jacobians(fn, ts, out.shape) if mode == "full" else None  # all inputs at once
    for i, (t, a) in enumerate(zip(ts, grads)):
        if a is None:
            continue
        if mode == "vjp":
            report.inputs.append(_compare(i, a, _numeric(fn, ts, t, eps, v), atol, rtol, max_rows))
        elif mode == "full":
            report.inputs.append(_full_jacobian(fn, ts, i, jacobians[i], eps, atol, rtol, max_rows))
        else:
            report.inputs.append(_directions(fn, ts, i, a, v, eps, atol, rtol, rng, n_directions))
    if eps_sweep:
        report.eps_sweep = _eps_sweep(fn, ts, grads, v)
    return _finish(report, raise_on_failure)


def _finish(report, raise_on_failure):
    if raise_on_failure and not report.ok:
        raise GradcheckError(report)
    return report


def _analytic_jacobians(fn, ts, out_shape):
    """Each input's analytic Jacobian (n_out, n_in): one backward per output entry, one-hot upstream."""
    n_out = int(np.prod(out_shape))
    rows = []
    for k in range(n_out):
        onehot = np.zeros(n_out)
        onehot[k] = 1
        rows.append(_analytic(fn, ts, onehot.reshape(out_shape)))
    return [np.array([r[j].reshape(-1) for r in rows]).reshape(n_out, t.array.size) if t.requires_grad else None
            for j, t in enumerate(ts)]


def _full_jacobian(fn, ts, i, ana, eps, atol, rtol, max_rows):
    t = ts[i]
    num = np.stack([_numeric_entry(fn, ts, t, k, eps, None).reshape(-1) for k in range(t.array.size)], axis=1)
    n_out = num.shape[0]                             # num, ana: (n_out, n_in)
    check = _compare(i, ana, num, atol, rtol, max_rows, hint=False)
    check.shape = t.shape
    check.rows = [((f"out {r[0][0]}", f"in {tuple(int(j) for j in np.unravel_index(r[0][1], t.shape))}"), *r[1:])
                  for r in check.rows]
    if not check.ok:
        v = np.random.default_rng(0).standard_normal(n_out)
        check.hint = _hint((v @ ana).reshape(t.shape), (v @ num).reshape(t.shape))
    return check


def _directions(fn, ts, i, a, v, eps, atol, rtol, rng, n):
    """Compare <grad, u> with the numeric directional derivative along n random directions u."""
    t = ts[i]
    x0 = t.array.copy()
    ana, num = [], []
    for k in range(n):
        u = rng.standard_normal(t.shape)
        with no_grad():
            t.array[...] = x0 + eps * u
            fp = _run(fn, ts).array.copy()  # may be a view of t.array
            t.array[...] = x0 - eps * u
            fm = _run(fn, ts).array.copy()
        t.array[...] = x0
        ana.append(float((a * u).sum()))
        num.append(float(((fp - fm) * v).sum() / (2 * eps)))
    check = _compare(i, np.array(ana), np.array(num), atol, rtol, n, hint=False)
    check.shape = t.shape
    check.rows = [((f"direction {r[0][0]}",), *r[1:]) for r in check.rows]
    if not check.ok:
        check.hint = _hint(np.array(ana), np.array(num))
    return check


def _eps_sweep(fn, ts, grads, v):
    """Max error against eps: falling with eps means truncation, rising means round-off."""
    lines = ["eps sweep (max abs error of the numeric gradient against the tape's):"]
    errs = []
    for e in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9):
        err = max(float(np.abs(_numeric(fn, ts, t, e, v) - a).max(initial=0))
                  for t, a in zip(ts, grads) if a is not None)
        errs.append(err)
        lines.append(f"    eps={e:<6g} error={err:.3g}")
    best = int(np.argmin(errs))
    if min(errs) > 1e-3 * max(1.0, max(float(np.abs(a).max(initial=0)) for a in grads if a is not None)):
        verdict = ("the error stays large at every eps: the analytic gradient is wrong, not the "
                   "finite differences")
    elif best == len(errs) - 1:
        verdict = "error still falling at the smallest eps: truncation error dominates"
    else:
        verdict = (f"smallest error at eps={[1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9][best]:g}: "
                   "larger eps is truncation-limited (error ∝ eps²), smaller eps round-off-limited "
                   "(error ∝ 1/eps) — in float32 round-off takes over near eps=1e-3, so small eps "
                   "makes a float32 check meaningless")
    lines.append("  verdict: " + verdict)
    return "\n".join(lines)

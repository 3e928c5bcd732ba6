"""A testing kit for custom-op authors: Hypothesis strategies and check_op, a property test for a Function.

    from tinygrad_mm.testing import check_op, arrays
    check_op(Softplus, lambda x: np.logaddexp(0, x), arrays())

hypothesis is a test-only dependency, so `import tinygrad_mm` never imports this module.
"""
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from . import backend
from .compare import TorchMismatch, compare_with_torch
from .gradcheck import gradcheck
from .tape import Tape
from .tensor import Tensor

__all__ = ["arrays", "tensors", "broadcastable_arrays", "reduction_axes", "index_arrays", "Case",
           "check_op", "OpCheckError"]


# -- strategies ----------------------------------------------------------------------------------

def _float_bound(x, dtype, up):
    """x as a value of dtype, rounded toward the inside of the range (Hypothesis wants exact bounds)."""
    v = dtype.type(x)
    if (up and v < x) or (not up and v > x):
        v = np.nextafter(v, dtype.type(np.inf if up else -np.inf))
    return float(v)


def arrays(dtype=np.float64, shape=None, min_value=-3.0, max_value=3.0, *, min_dims=0, max_dims=3,
           max_side=4):
    """numpy arrays of `dtype` with values in [min_value, max_value]; shape: a tuple, a strategy, or
    None for any shape of min_dims..max_dims dimensions, each 1..max_side long."""
    dtype = np.dtype(dtype)
    if shape is None:
        shape = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)
    if dtype.kind == "f":
        elements = st.floats(_float_bound(min_value, dtype, True), _float_bound(max_value, dtype, False),
                             allow_nan=False, allow_infinity=False, allow_subnormal=False,
                             width=8 * dtype.itemsize)
    elif dtype.kind in "iu":
        elements = st.integers(int(np.ceil(min_value)), int(np.floor(max_value)))
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        raise TypeError(f"arrays: unsupported dtype {dtype}")
    return hnp.arrays(dtype, shape, elements=elements)


def tensors(dtype=np.float64, shape=None, min_value=-3.0, max_value=3.0, requires_grad=True, **kw):
    """Tensors wrapping arrays(...); float ones require grad unless requires_grad=False."""
    return arrays(dtype, shape, min_value, max_value, **kw).map(
        lambda a: Tensor(a, requires_grad=requires_grad and a.dtype.kind == "f"))


@st.composite
def broadcastable_arrays(draw, n=2, dtype=np.float64, min_value=-3.0, max_value=3.0, *, min_dims=0,
                         max_dims=3, max_side=4):
    """A tuple of n arrays whose shapes broadcast together (size-1 and missing dimensions included)."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=min_dims, max_dims=max_dims,
                                                    min_side=1, max_side=max_side)).input_shapes
    return tuple(draw(arrays(dtype, s, min_value, max_value)) for s in shapes)


@st.composite
def reduction_axes(draw, ndim, allow_none=True, allow_tuple=True, allow_negative=True):
    """An axis argument valid for an ndim-dimensional array: None, an int, or a tuple of distinct ints."""
    kinds = (["none"] if allow_none else []) + (["int"] if ndim else []) + (["tuple"] if allow_tuple else [])
    if not kinds:
        raise ValueError(f"reduction_axes: nothing to draw for ndim={ndim} with allow_none and allow_tuple off")
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    flip = (lambda a: a - ndim if draw(st.booleans()) else a) if allow_negative else (lambda a: a)
    if kind == "int":
        return flip(draw(st.integers(0, ndim - 1)))
    picked = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)) if ndim else []
    return tuple(flip(a) for a in picked)


@st.composite
def index_arrays(draw, size, shape=None, max_len=8, repeats=True, dtype=np.int64):
    """Integer indices into an axis of length `size`; with repeats=True at least one index repeats
    (the case where a gather's backward must accumulate, not assign)."""
    if shape is None:
        shape = (draw(st.integers(2 if repeats else 1, max_len)),)
    idx = draw(hnp.arrays(np.dtype(dtype), shape, elements=st.integers(0, size - 1)))
    flat = idx.reshape(-1)
    if repeats and flat.size >= 2 and len(np.unique(flat)) == flat.size:
        flat[-1] = flat[0]  # force a repeat rather than filter: filtering would reject most draws
    return idx


# -- check_op ------------------------------------------------------------------------------------

class Case:
    """One call of an op: its input arrays (one per tensor input) and its keyword parameters."""

    def __init__(self, arrays, params=None):
        self.arrays, self.params = tuple(np.asarray(a) for a in arrays), dict(params or {})

    def fresh_params(self):
        """The params, with array values copied: an op that writes into one cannot skew the next call."""
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self.params.items()}

    def describe(self):
        """Shapes, dtypes and values, one input a line (what a failure message shows)."""
        lines = []
        for i, a in enumerate(self.arrays):
            head = f"  input {i}: {a.dtype} shape {a.shape} = "
            lines.append(head + np.array2string(a, precision=6, threshold=24, separator=", ", prefix=head))
        lines.append(f"  params: {self.params!r}")
        return "\n".join(lines)

    __repr__ = lambda self: "Case(\n" + self.describe() + ")"


def _as_case(drawn):
    if isinstance(drawn, Case):
        return drawn
    if isinstance(drawn, (tuple, list)):
        return Case(drawn)
    return Case((drawn,))


class OpCheckError(AssertionError):
    """check_op found a property that fails; str() names it and shows the smallest failing input."""

    def __init__(self, op_name, prop, case, detail, seed=None):
        self.op_name, self.prop, self.case, self.detail, self.seed = op_name, prop, case, detail, seed
        extra = "" if seed is None else f"\n  upstream gradient: rng seed {seed}"
        super().__init__(f"check_op({op_name}): this property does not hold: {prop}\n"
                         f"smallest failing example (shrunk by Hypothesis):\n{case.describe()}{extra}\n"
                         + "  " + detail.replace("\n", "\n  "))


def _changed(before, after):
    return before.shape != after.shape or not np.array_equal(before, after, equal_nan=True)


class _Checker:
    """The properties, one method each; every failure raises OpCheckError naming the property."""

    def __init__(self, op, reference, torch_reference, rtol, atol, gradcheck_kw, allow_upstream_views):
        self.op, self.reference, self.torch_reference = op, reference, torch_reference
        self.rtol, self.atol, self.gradcheck_kw = rtol, atol, gradcheck_kw
        self.allow_upstream_views = allow_upstream_views
        self.name = op.__name__

    def fail(self, prop, case, detail, seed=None):
        raise OpCheckError(self.name, prop, case, detail, seed)

    def __call__(self, case, seed):
        ts = [Tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in case.arrays]
        with Tape():
            try:
                out = self.op.apply(*ts, **case.fresh_params())
            except Exception as e:
                self.fail("forward runs", case, f"forward raised {type(e).__name__}: {e}")
            self.check_forward(case, ts, out)
            if not out.requires_grad:
                return
            self.check_backward(case, out, ts, seed)
        self.check_gradient(case, seed, out.shape)
        if self.torch_reference is not None:
            self.check_torch(case, seed)

    def check_forward(self, case, ts, out):
        for i, (a, t) in enumerate(zip(case.arrays, ts)):
            if _changed(a, t.array):
                self.fail("forward leaves its inputs intact", case, f"forward modified input {i} in place")
        ref = np.asarray(self.reference(*[a.copy() for a in case.arrays], **case.fresh_params()))
        got = backend.to_numpy(out.array)
        prop = "forward matches the reference"
        if got.shape != ref.shape:
            self.fail(prop, case, f"output shape {got.shape}, reference shape {ref.shape}")
        if got.dtype != ref.dtype:
            self.fail(prop, case, f"output dtype {got.dtype}, reference dtype {ref.dtype}")
        if not np.allclose(got, ref, rtol=self.rtol, atol=self.atol, equal_nan=True):
            diff = float(np.abs(got - ref).max())
            self.fail(prop, case, f"max abs diff {diff:.3g} (rtol={self.rtol:g}, atol={self.atol:g})\n"
                                  f"output:    {np.array2string(got, precision=6, threshold=24)}\n"
                                  f"reference: {np.array2string(ref, precision=6, threshold=24)}")

    def check_backward(self, case, out, ts, seed):
        """Call the entry's backward directly, as the tape would, and inspect what it returns."""
        node = out.entry.function
        g = np.asarray(np.random.default_rng(seed).standard_normal(out.shape), dtype=out.dtype)
        g_before = g.copy()
        saved = [(name, a, a.copy()) for name, a in node.saved_arrays() if isinstance(a, np.ndarray)]
        try:
            grads = node.backward(g)
        except Exception as e:
            self.fail("backward runs", case, f"backward raised {type(e).__name__}: {e}", seed)
        grads = grads if isinstance(grads, (tuple, list)) else (grads,)
        # numpy ops on 0-d arrays return scalars; the tape accepts them, and they alias nothing
        grads = [np.asarray(gi) if isinstance(gi, np.generic) else gi for gi in grads]
        prop = "backward returns one gradient per input, shaped like it"
        if len(grads) != len(ts):
            self.fail(prop, case, f"backward returned {len(grads)} gradients for {len(ts)} inputs", seed)
        for i, (t, gi) in enumerate(zip(ts, grads)):
            if gi is None or not t.requires_grad:
                continue
            if not isinstance(gi, np.ndarray):
                self.fail(prop, case, f"gradient {i} is a {type(gi).__name__}, not an array", seed)
            ok = (gi.shape == t.shape) or (self.op.broadcasts and gi.shape == out.shape)
            if not ok or gi.dtype != t.dtype:
                self.fail(prop, case, f"gradient {i} has shape {gi.shape} and dtype {gi.dtype}; input {i} "
                                      f"has shape {t.shape} and dtype {t.dtype}", seed)
        prop = "backward leaves its inputs, saved arrays and the upstream gradient intact"
        for i, (a, t) in enumerate(zip(case.arrays, ts)):
            if _changed(a, t.array):
                self.fail(prop, case, f"backward modified input {i} in place", seed)
        if _changed(g_before, g):
            self.fail(prop, case, "backward modified the upstream gradient in place", seed)
        for name, a, before in saved:
            if _changed(before, a):
                self.fail(prop, case, f"backward modified the saved array {name} in place "
                                      "(a second backward, with retain_graph=True, would be wrong)", seed)
        others = [(f"input {i}", t.array) for i, t in enumerate(ts)] + [(n, a) for n, a, _ in saved]
        if not self.allow_upstream_views:
            others.append(("the upstream gradient", g))
        prop = "backward returns fresh arrays (no aliasing)"
        for i, gi in enumerate(grads):
            if not isinstance(gi, np.ndarray):
                continue
            for name, a in others + [(f"gradient {j}", grads[j]) for j in range(i) if grads[j] is not None]:
                if np.shares_memory(gi, a):
                    self.fail(prop, case, f"gradient {i} shares memory with {name}: return a new array "
                                          "(e.g. g * 1.0, .copy()), not a view or an array you keep", seed)

    def check_gradient(self, case, seed, out_shape):
        # finite differences need float64; the op runs on float64 copies of float inputs
        arrays = [a.astype(np.float64) if a.dtype.kind == "f" else a.copy() for a in case.arrays]
        with Tape():
            with_params = lambda *ts: self.op.apply(*ts, **case.fresh_params())  # noqa: E731
            v = np.asarray(np.random.default_rng(seed).standard_normal(out_shape), dtype=np.float64)
            report = gradcheck(with_params, arrays, grad_output=v, raise_on_failure=False, **self.gradcheck_kw)
        if not report.ok:
            self.fail("gradient matches finite differences", case, str(report), seed)

    def check_torch(self, case, seed):
        try:
            compare_with_torch(lambda *ts: self.op.apply(*ts, **case.fresh_params()),
                               lambda *ts: self.torch_reference(*ts, **case.fresh_params()),
                               [a.copy() for a in case.arrays], seed=seed)
        except TorchMismatch as e:
            self.fail("agrees with the torch reference", case, str(e), seed)


def check_op(op, reference, inputs, *, torch_reference=None, max_examples=25, rtol=1e-7, atol=1e-9,
             eps=1e-6, grad_atol=1e-5, grad_rtol=1e-3, allow_upstream_views=False, derandomize=True):
    """Property-test a custom Function over Hypothesis-drawn inputs; raise OpCheckError on the smallest failure.

    op: the Function subclass (called as op.apply(*tensors, **params)). reference: a numpy
    function with the same signature on arrays, for the forward. inputs: a strategy drawing
    one array, a tuple of arrays (one per tensor input), or a Case (arrays and params).
    Checked, per example: forward against reference and inputs left intact; backward's
    gradient count, shapes and dtypes; that backward mutates no input, saved array or
    upstream gradient and returns no array aliasing one of them or another gradient;
    gradcheck with a random upstream gradient; and, given torch_reference, torch agreement.
    Set allow_upstream_views=True for a view op (reshape-like) whose gradient is a view of g.
    Returns the number of examples checked.
    """
    checker = _Checker(op, reference, torch_reference, rtol, atol,
                       dict(eps=eps, atol=grad_atol, rtol=grad_rtol), allow_upstream_views)
    count = [0]

    # database=None: no .hypothesis folder in the user's cwd; no explain phase: it costs seconds per
    # failure, and the message already shows the whole shrunk input
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=derandomize,
              phases=(Phase.explicit, Phase.generate, Phase.shrink),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(drawn=inputs, seed=st.integers(0, 2 ** 16))
    def run(drawn, seed):
        count[0] += 1
        checker(_as_case(drawn), seed)

    try:
        run()
    except OpCheckError as e:
        # re-raise without Hypothesis's traceback: the message already holds the shrunk example
        raise OpCheckError(e.op_name, e.prop, e.case, e.detail, e.seed) from None
    return count[0]

"""Tests for gradcheck (passes right ops, names what is wrong with wrong ones) and the torch comparisons."""
import re

import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import Function, GradcheckError, Tape, TorchMismatch, cmp, compare_with_torch, gradcheck

torch = pytest.importorskip("torch")

MODES = ["vjp", "full", "fast"]
rng = np.random.default_rng(0)
X33 = rng.standard_normal((3, 3))
X24 = rng.standard_normal((2, 4))
W43 = rng.standard_normal((4, 3))
B3 = rng.standard_normal(3)
POS = rng.uniform(0.5, 2.0, (2, 3))


def softmax_nll(x, w, b):
    logits = x @ w + b
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    return -probs[tg.arange(2), [0, 2]].log().mean()


CORRECT = {
    "mul_square": (lambda x: x * x, [X24]),
    "tanh_mlp": (lambda x, w, b: (x @ w + b).tanh(), [X24, W43, B3]),
    "softmax_nll": (softmax_nll, [X24, W43, B3]),
    "div_log_pow": (lambda a, b: (a / b).log() * b ** 1.5 - (a ** -0.5), [POS, POS[::-1].copy()]),
    "reductions": (lambda x: x.sum(0) * x.mean(1, keepdims=True) + x.amax(1, keepdim=True), [X24]),
    "views": (lambda x: x.reshape(3, 3).T[1:] * x.reshape(9)[::4].sum(), [X33.reshape(9)]),
    "embedding": (lambda C: C[np.array([[0, 2], [2, 2]])].exp(), [X33]),
}


class Doubled(Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):          # wrong: 4x instead of 2x
        return 4 * self.x * g


class Halved(Doubled):
    def backward(self, g):          # wrong: x instead of 2x
        return self.x * g


class Flipped(Doubled):
    def backward(self, g):          # wrong: -2x
        return -2 * self.x * g


class Transposed(Function):
    def forward(self, x):
        self.x = x
        return x.sum(1, keepdims=True) * x  # not symmetric in (i, j)

    def backward(self, g):          # the right gradient, transposed
        x = self.x
        right = g * x.sum(1, keepdims=True) + (g * x).sum(1, keepdims=True)
        return right.T


class AddBias(Function):
    def forward(self, x, b):
        return x + b

    def backward(self, g):          # wrong: b was broadcast, its gradient must be summed
        return g, g


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CORRECT)
def test_correct_ops_pass(name, mode):
    fn, inputs = CORRECT[name]
    report = gradcheck(fn, [a.copy() for a in inputs], mode=mode)
    assert report.ok and bool(report)
    text = str(report)
    assert text.startswith(f"gradcheck passed (mode={mode}")
    assert len(report.inputs) == len(inputs) and all(c.ok for c in report.inputs)


def test_gradcheck_accepts_tensors_and_leaves_them_as_they_were():
    x = tg.tensor(X24.copy(), requires_grad=True)
    x.grad = np.full((2, 4), 7.0)
    c = tg.tensor(np.arange(4.0))  # a constant input: not checked
    report = gradcheck(lambda x, c: (x * c).tanh(), [x, c])
    assert report.ok and len(report.inputs) == 1
    np.testing.assert_array_equal(x.data, X24)
    np.testing.assert_array_equal(x.grad, np.full((2, 4), 7.0))


def test_gradcheck_does_not_touch_the_callers_tape():
    with Tape() as tape:
        gradcheck(lambda x: x.exp(), [X24.copy()], mode="full")
        assert len(tape) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op,hint", [(Doubled, "2×"), (Halved, "½×"), (Flipped, "opposite sign")])
def test_wrong_factor_is_named(op, hint, mode):
    with pytest.raises(GradcheckError) as err:
        gradcheck(lambda x: op.apply(x), [X33.copy()], mode=mode)
    report = err.value.report
    assert not report.ok and not report.inputs[0].ok
    assert hint in report.inputs[0].hint and hint in str(err.value)
    assert "FAILED" in str(err.value)


@pytest.mark.parametrize("mode", ["vjp", "full"])
def test_transposed_gradient_is_named(mode):
    report = gradcheck(lambda x: Transposed.apply(x), [X33.copy()], mode=mode, raise_on_failure=False)
    assert not report.ok
    assert "transpose" in report.inputs[0].hint


@pytest.mark.parametrize("bshape", [(1, 3), (3,)])
def test_missing_broadcast_reduction_is_named(bshape):
    report = gradcheck(lambda x, b: AddBias.apply(x, b), [X33.copy(), rng.standard_normal(bshape)],
                       raise_on_failure=False)
    assert not report.ok
    text = str(report)
    assert "AddBias" in text and "(3, 3)" in text and str(bshape) in text
    assert "shape" in text and "broadcast" in text


def test_report_has_the_worst_entries_table():
    report = gradcheck(lambda x: Doubled.apply(x), [X33.copy()], raise_on_failure=False, max_rows=4)
    text = str(report)
    lines = text.splitlines()
    header = next(i for i, l in enumerate(lines) if l.split() == ["index", "analytic", "numeric", "abs",
                                                                   "err", "rel", "err"])
    rows = lines[header + 1: header + 5]
    assert len(rows) == 4 and "MISMATCH in 9 of 9 entries" in text
    # the worst entry comes first, and its numbers are the real ones: analytic = 2 * numeric = 4x * v
    v = np.random.default_rng(0).standard_normal((3, 3))
    numeric = 2 * X33 * v
    worst = np.unravel_index(np.argmax(np.abs(numeric)), (3, 3))
    first = rows[0]
    assert first.strip().startswith(str(tuple(int(i) for i in worst)))
    analytic, num, abs_err, rel_err = map(float, re.findall(r"-?[\d.]+(?:e-?\d+)?", first.split(")")[-1]))
    assert analytic == pytest.approx(2 * numeric[worst], rel=1e-5)
    assert num == pytest.approx(numeric[worst], rel=1e-5)
    assert abs_err == pytest.approx(abs(numeric[worst]), rel=1e-2) and rel_err == pytest.approx(1, rel=1e-2)
    assert report.inputs[0].rows[0][0] == tuple(int(i) for i in worst)


def test_full_mode_table_names_output_and_input_entries():
    report = gradcheck(lambda x: Doubled.apply(x), [X24.copy()], mode="full", raise_on_failure=False)
    text = str(report)
    assert "MISMATCH in 8 of 64 entries" in text  # the diagonal of the (8, 8) Jacobian
    assert re.search(r"\('out 3', 'in \(0, 3\)'\)\s+-?[\d.]+", text)
    assert all(r[0][1] == "in (%d, %d)" % divmod(int(r[0][0].split()[1]), 4) for r in report.inputs[0].rows)
    assert "np.int64" not in text


def test_raise_on_failure_false_returns_the_report():
    report = gradcheck(lambda x: Flipped.apply(x), [X33.copy()], raise_on_failure=False)
    assert isinstance(report, tg.GradcheckReport)
    assert report.ok is False and not report
    assert report.inputs[0].n_bad == 9 and report.inputs[0].max_abs > 0.1


def test_float32_inputs_raise_type_error_explaining_float64():
    with pytest.raises(TypeError, match=r"(?s)float64.*float32.*round-off.*\.double\(\)"):
        gradcheck(lambda x: x * x, [X33.astype(np.float32)])
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda x: x * x, [tg.tensor(X33.astype(np.float32), requires_grad=True)])


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        gradcheck(lambda x: x, [X33.copy()], mode="exact")
    with pytest.raises(ValueError, match="requires grad"):
        gradcheck(lambda x: x, [tg.tensor(X33.copy())])
    with pytest.raises(TypeError, match="Tensor"):
        gradcheck(lambda x: x.detach().numpy(), [X33.copy()])
    report = gradcheck(lambda x: x.detach() * 2.0, [X33.copy()], raise_on_failure=False)
    assert not report.ok and "does not depend" in str(report)


def test_eps_sweep_table_and_verdict():
    good = gradcheck(lambda x: (x * x).tanh(), [X24.copy()], eps_sweep=True)
    text = str(good)
    assert "eps sweep" in text and len(re.findall(r"eps=\S+\s+error=", text)) == 8
    assert "verdict:" in text and "truncation" in good.eps_sweep and "wrong" not in good.eps_sweep
    bad = gradcheck(lambda x: Doubled.apply(x), [X24.copy()], eps_sweep=True, raise_on_failure=False)
    assert "the analytic gradient is wrong" in bad.eps_sweep


# -- torch comparisons ---------------------------------------------------------------------------

def test_compare_with_torch_passes_for_matching_functions():
    def f(x, w, b):
        return (x @ w + b).tanh().sum(1)

    for dtype in (np.float64, np.float32):
        rows = compare_with_torch(f, f, [X24.astype(dtype), W43.astype(dtype), B3.astype(dtype)])
        assert [r.name for r in rows] == ["output", "grad input 0", "grad input 1", "grad input 2"]
        assert all(r.close for r in rows)
    rows = compare_with_torch(lambda C, ix: C[ix].exp(), lambda C, ix: C[ix].exp(), [X33, np.array([0, 0, 2])])
    assert len(rows) == 2 and rows[1].close  # the index input gets no gradient row
    rows = compare_with_torch(lambda x: (x * x).mean(), lambda x: (x * x).mean(), [X33])  # scalar output
    assert all(r.close for r in rows)


def test_compare_with_torch_raises_for_a_wrong_function():
    with pytest.raises(TorchMismatch, match=r"(?s)differ.*grad input 0.*allclose: False"):
        compare_with_torch(lambda x: Doubled.apply(x).sum(), lambda x: (x * x).sum(), [X33])
    with pytest.raises(TorchMismatch, match="shape"):
        compare_with_torch(lambda x: x.sum(0), lambda x: x.sum(1), [X24])


def test_cmp_reports_exact_allclose_and_max_diff():
    a = np.array([1.0, 2.0, 3.0])
    r = cmp("same", a, a.copy())
    assert r.exact and r.close and r.maxdiff == 0
    r = cmp("close", tg.tensor(a), a + 1e-9)
    assert not r.exact and r.close and r.maxdiff == pytest.approx(1e-9)
    r = cmp("far", a, torch.tensor(a + [0, 0, 0.5]))
    assert not r.exact and not r.close and r.maxdiff == 0.5
    assert str(r).split() == ["far", "exact:", "False", "|", "allclose:", "False", "|", "max", "diff:", "0.5"]
    with pytest.raises(ValueError, match="shapes differ"):
        cmp("bad", a, a[:2])

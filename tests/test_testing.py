"""tinygrad_mm.testing: the strategies draw what they claim; check_op passes good ops and names what is wrong."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_mm as tg
from tinygrad_mm import Function, Tensor
from tinygrad_mm.testing import (Case, OpCheckError, arrays, broadcastable_arrays, check_op, index_arrays,
                                 reduction_axes, tensors)


def softplus_ref(x):
    return np.logaddexp(0.0, x)


class Softplus(Function):
    def forward(self, x):
        self.x = x
        return np.logaddexp(0.0, x)

    def backward(self, g):
        return g / (1.0 + np.exp(-self.x))


class Mul(Function):
    broadcasts = True  # backward returns output-shaped gradients; the tape reduces them

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return g * self.b, g * self.a


class SumSquares(Function):
    def forward(self, x, axis=None):
        self.x = x
        axes = range(x.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
        self.axes = tuple(sorted(a % x.ndim for a in axes))
        return (x * x).sum(axis=axis)

    def backward(self, g):
        return 2 * self.x * np.expand_dims(g, self.axes)


class Gather(Function):
    def forward(self, table, idx):     # idx is a keyword parameter: op inputs share one dtype
        self.idx, self.n = idx, table.shape[0]
        return table[idx]

    def backward(self, g):
        out = np.zeros((self.n,) + g.shape[self.idx.ndim:], dtype=g.dtype)
        np.add.at(out, self.idx, g)    # a row picked twice receives both gradients
        return out


class GatherAssigns(Gather):
    def backward(self, g):
        out = np.zeros((self.n,) + g.shape[self.idx.ndim:], dtype=g.dtype)
        out[self.idx] = g              # wrong with repeated indices: the last write wins
        return out


@st.composite
def gather_cases(draw):
    table = draw(arrays(shape=st.tuples(st.integers(1, 5), st.integers(1, 3))))
    return Case((table,), {"idx": draw(index_arrays(table.shape[0]))})


def failure(op, reference, inputs, **kw):
    """The OpCheckError check_op raises (fails the test if it passes)."""
    with pytest.raises(OpCheckError) as info:
        check_op(op, reference, inputs, **kw)
    return info.value


# -- correct ops pass ----------------------------------------------------------------------------

def test_check_op_passes_a_correct_unary_op_and_counts_examples():
    assert check_op(Softplus, softplus_ref, arrays(), max_examples=20) == 20


def test_check_op_passes_a_broadcasting_binary_op():
    check_op(Mul, lambda a, b: a * b, broadcastable_arrays(2), max_examples=20)


def test_check_op_passes_an_op_with_drawn_params():
    @st.composite
    def cases(draw):
        x = draw(arrays())
        return Case((x,), {"axis": draw(reduction_axes(x.ndim))})
    check_op(SumSquares, lambda x, axis=None: (x * x).sum(axis=axis), cases(), max_examples=20)


def test_check_op_passes_a_gather_with_repeated_indices():
    check_op(Gather, lambda t, idx: t[idx], gather_cases(), max_examples=20)


def test_check_op_passes_a_matching_torch_reference():
    torch = pytest.importorskip("torch")
    check_op(Softplus, softplus_ref, arrays(), torch_reference=torch.nn.functional.softplus, max_examples=10)


# -- wrong ops fail, saying which property and on what input -------------------------------------

class WrongGradient(Softplus):
    def backward(self, g):
        return 2 * g / (1.0 + np.exp(-self.x))


def test_wrong_gradient_fails_with_the_property_input_and_hint():
    e = failure(WrongGradient, softplus_ref, arrays())
    msg = str(e)
    assert e.prop == "gradient matches finite differences"
    assert msg.startswith("check_op(WrongGradient): this property does not hold: gradient matches finite differences")
    assert "smallest failing example" in msg and "input 0: float64 shape" in msg and "params: {}" in msg
    assert "2× numeric" in msg  # gradcheck's hint is carried into the message


class WrongForLargeMatrices(Softplus):
    def backward(self, g):
        d = g / (1.0 + np.exp(-self.x))
        return 2 * d if self.x.ndim >= 2 and (self.x > 1.5).any() else d


def test_failure_reports_the_shrunk_example():
    e = failure(WrongForLargeMatrices, softplus_ref, arrays())
    (x,) = e.case.arrays
    assert x.shape == (1, 1) and x.item() > 1.5  # Hypothesis shrank it to one offending entry


def test_gather_that_assigns_fails_on_repeated_indices():
    e = failure(GatherAssigns, lambda t, idx: t[idx], gather_cases())
    assert e.prop == "gradient matches finite differences" and "'idx': array([0, 0])" in str(e)


class MutatesInputInBackward(Softplus):
    def backward(self, g):
        x = self.x
        np.negative(x, out=x)             # overwrites the input tensor's array
        np.exp(x, out=x)
        return g / (1.0 + x)


def test_backward_mutating_its_input_fails():
    e = failure(MutatesInputInBackward, softplus_ref, arrays(min_dims=1))
    assert "intact" in e.prop and "backward modified input 0 in place" in str(e)


class MutatesInputInForward(Function):
    def forward(self, x):
        x += 0.0 * x + 1.0                # x + 1, computed in the caller's array
        self.x = x
        return x.copy()

    def backward(self, g):
        return g.copy()


def test_forward_mutating_its_input_fails():
    e = failure(MutatesInputInForward, lambda x: x + 1.0, arrays(min_dims=1))
    assert e.prop == "forward leaves its inputs intact"


class MutatesUpstream(Softplus):
    def backward(self, g):
        g /= 1.0 + np.exp(-self.x)
        return g * 1.0


def test_backward_mutating_the_upstream_gradient_fails():
    e = failure(MutatesUpstream, softplus_ref, arrays(min_dims=1))
    assert "the upstream gradient in place" in str(e)


class MutatesSaved(Function):
    def forward(self, x):
        self.s = 1.0 / (1.0 + np.exp(-x))
        return np.logaddexp(0.0, x)

    def backward(self, g):
        self.s *= g
        return self.s


def test_backward_mutating_a_saved_array_fails():
    e = failure(MutatesSaved, softplus_ref, arrays(min_dims=1))
    assert "saved array self.s" in str(e)


class Identity(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g                          # right values, but the upstream array itself


def test_gradient_aliasing_the_upstream_gradient_fails_unless_views_are_allowed():
    e = failure(Identity, lambda x: x, arrays())
    assert e.prop == "backward returns fresh arrays (no aliasing)"
    assert "gradient 0 shares memory with the upstream gradient" in str(e)
    check_op(Identity, lambda x: x, arrays(), allow_upstream_views=True, max_examples=10)


class AddSameArray(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        d = g.copy()
        return d, d                       # one array handed out as two gradients


def test_gradient_aliasing_another_gradient_fails():
    same = arrays(shape=st.just((2, 3)))
    e = failure(AddSameArray, lambda a, b: a + b, st.tuples(same, same))
    assert "gradient 1 shares memory with gradient 0" in str(e)


class NoBroadcastReduction(Mul):
    broadcasts = False                    # but backward still returns output-shaped gradients


def test_gradient_of_the_wrong_shape_fails():
    inputs = st.tuples(arrays(shape=st.just((2, 3))), arrays(shape=st.just((3,))))
    e = failure(NoBroadcastReduction, lambda a, b: a * b, inputs)
    assert "shaped like it" in e.prop and "gradient 1 has shape (2, 3)" in str(e)


class WrongForward(Softplus):
    def forward(self, x):
        self.x = x
        return np.logaddexp(0.0, x) + 1e-3


def test_forward_disagreeing_with_the_reference_fails():
    e = failure(WrongForward, softplus_ref, arrays())
    assert e.prop == "forward matches the reference" and "max abs diff 0.001" in str(e)


def test_disagreeing_torch_reference_fails():
    torch = pytest.importorskip("torch")
    e = failure(Softplus, softplus_ref, arrays(), torch_reference=lambda t: torch.nn.functional.softplus(t, beta=2))
    assert e.prop == "agrees with the torch reference" and "tinygrad_mm and torch differ" in str(e)


class RaisesInBackward(Softplus):
    def backward(self, g):
        raise ValueError("oops")


def test_backward_raising_is_reported_as_a_property():
    e = failure(RaisesInBackward, softplus_ref, arrays())
    assert e.prop == "backward runs" and "ValueError: oops" in str(e)


def test_importing_tinygrad_mm_does_not_import_testing_or_hypothesis():
    code = ("import sys, tinygrad_mm; "
            "assert 'tinygrad_mm.testing' not in sys.modules and 'hypothesis' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- gradcheck's eps sweep -----------------------------------------------------------------------

class Float32Inside(Softplus):
    def forward(self, x):
        self.x = x
        return np.logaddexp(0.0, x.astype(np.float32)).astype(np.float64)


def test_eps_sweep_tells_round_off_from_a_wrong_gradient():
    x = np.random.default_rng(0).standard_normal((2, 3))
    noisy = tg.gradcheck(lambda t: Float32Inside.apply(t), [x.copy()], eps_sweep=True, raise_on_failure=False)
    assert not noisy.ok  # at the default eps=1e-6 float32 round-off swamps the check ...
    assert "round-off" in noisy.eps_sweep and "float32" in noisy.eps_sweep and "wrong" not in noisy.eps_sweep
    assert tg.gradcheck(lambda t: Float32Inside.apply(t), [x.copy()], eps=1e-3).ok  # ... a larger eps passes
    wrong = tg.gradcheck(lambda t: WrongGradient.apply(t), [x.copy()], eps_sweep=True, raise_on_failure=False)
    assert "the analytic gradient is wrong" in wrong.eps_sweep


# -- strategies ----------------------------------------------------------------------------------

@given(arrays(np.float32, min_value=-2.0, max_value=0.1, max_dims=2, max_side=3))
def test_arrays_have_the_dtype_range_and_shape_asked_for(a):
    assert a.dtype == np.float32 and a.ndim <= 2 and all(1 <= n <= 3 for n in a.shape)
    assert np.all((a >= -2.0) & (a <= 0.1))


@given(arrays(np.int64, shape=(2, 3), min_value=-1, max_value=4))
def test_arrays_with_a_fixed_shape_and_integer_dtype(a):
    assert a.shape == (2, 3) and a.dtype == np.int64 and a.min() >= -1 and a.max() <= 4


@given(tensors(), tensors(np.int64, requires_grad=True))
def test_tensors_are_tensors_and_only_floats_require_grad(t, i):
    assert isinstance(t, Tensor) and t.requires_grad and t.dtype == np.float64
    assert isinstance(i, Tensor) and not i.requires_grad


@given(broadcastable_arrays(3, min_dims=1))
def test_broadcastable_arrays_broadcast_together(arrs):
    assert len(arrs) == 3 and all(a.ndim >= 1 for a in arrs)
    np.broadcast_shapes(*(a.shape for a in arrs))


@given(st.data())
def test_reduction_axes_are_valid_for_numpy(data):
    x = data.draw(arrays())
    axis = data.draw(reduction_axes(x.ndim))
    if isinstance(axis, tuple):
        assert len({a % x.ndim for a in axis}) == len(axis)
    x.sum(axis=axis)  # raises for an invalid or repeated axis
    ints = data.draw(reduction_axes(max(x.ndim, 1), allow_none=False, allow_tuple=False, allow_negative=False))
    assert isinstance(ints, int) and ints >= 0


@given(index_arrays(5))
def test_index_arrays_are_in_range_and_repeat(idx):
    assert idx.dtype == np.int64 and idx.min() >= 0 and idx.max() < 5
    assert len(np.unique(idx)) < idx.size


@given(index_arrays(3, shape=(2, 2), repeats=False))
def test_index_arrays_take_a_shape(idx):
    assert idx.shape == (2, 2) and idx.max() < 3

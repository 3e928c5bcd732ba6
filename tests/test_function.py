"""The Function contract: custom ops' gradient shapes, counts, dtypes, and devices."""

import numpy as np
import pytest
from hypothesis import strategies as st

import tinygrad_mm as tg
from tinygrad_mm import Function, Tape, backend, ops


def leaf(values, dtype=np.float64):
    return tg.tensor(np.array(values, dtype=dtype), requires_grad=True)


finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False)



# -- op contracts ------------------------------------------------------------------------------

class AddWrongShape(Function):
    """x + b with b broadcast over rows; backward forgets to reduce b's gradient."""

    def forward(self, x, b):
        return x + b

    def backward(self, g):
        return g, g


class AddBroadcasting(AddWrongShape):
    broadcasts = True


def test_wrong_shaped_gradient_raises_value_error_naming_op_and_shapes():
    with Tape():
        x, b = leaf(np.ones((4, 3))), leaf(np.ones((1, 3)))
        good = (x * 2.0).sum()
        loss = AddWrongShape.apply(x, b).sum() + good
        with pytest.raises(ValueError, match=r"AddWrongShape.*\(4, 3\).*\(1, 3\).*broadcasts = True"):
            loss.backward()
    assert x.grad is None and b.grad is None  # rolled back


@pytest.mark.parametrize("bshape", [(1, 3), (3,), (4, 1), ()])
def test_broadcasts_true_reduces_the_gradient(bshape):
    with Tape():
        x, b = leaf(np.ones((4, 3))), leaf(np.ones(bshape))
        AddBroadcasting.apply(x, b).backward(np.arange(12.0).reshape(4, 3))
    expected = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(x.grad, expected)
    axes = tuple(range(2 - len(bshape))) + tuple(2 - len(bshape) + i for i, n in enumerate(bshape) if n == 1)
    np.testing.assert_array_equal(b.grad, expected.sum(axis=axes, keepdims=True).reshape(bshape))
    assert b.grad.shape == bshape


def test_broadcasts_true_still_rejects_an_unreducible_shape():
    class Bad(AddBroadcasting):
        def backward(self, g):
            return g, g.T

    with Tape():
        x, b = leaf(np.ones((4, 3))), leaf(np.ones((1, 3)))
        with pytest.raises(ValueError, match=r"Bad.*\(3, 4\).*\(1, 3\)"):
            Bad.apply(x, b).sum().backward()


def test_wrong_number_of_gradients():
    class OneGrad(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, g):
            return g

    with Tape():
        a, b = leaf([1.0]), leaf([2.0])
        with pytest.raises(RuntimeError, match=r"OneGrad.*1 gradients for 2 inputs"):
            OneGrad.apply(a, b).sum().backward()
    assert a.grad is None


def test_gradient_with_wrong_dtype():
    class Float32Grad(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return (g * 2).astype(np.float32)

    with Tape():
        x = leaf([1.0, 2.0])
        with pytest.raises(TypeError, match=r"Float32Grad.*float32.*float64"):
            Float32Grad.apply(x).sum().backward()
    assert x.grad is None


def test_none_gradient_for_an_input_is_allowed():
    class Scale(Function):
        def forward(self, x, s):
            self.s = s
            return x * s

        def backward(self, g):
            return g * self.s, None

    with Tape():
        x, s = leaf([1.0, 2.0]), leaf([3.0])
        Scale.apply(x, s).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    assert s.grad is None


def test_apply_rejects_non_tensor_inputs():
    with pytest.raises(TypeError, match="keyword"):
        AddWrongShape.apply(leaf([1.0]), np.ones(1))
    # named first even after two Tensors that do not match: the constant is the mistake to fix
    for bad in (3.0, np.ones(2)):
        with pytest.raises(TypeError, match="takes Tensors as positional inputs"):
            ops.Add.apply(leaf([1.0, 2.0], np.float32), leaf([1.0, 2.0], np.float64), bad)


def test_a_function_with_no_inputs_runs_forward_and_records_nothing():
    class Seven(Function):
        def forward(self):
            return np.full((2,), 7.0)

    with Tape() as tape:
        out = Seven.apply()
    np.testing.assert_array_equal(out.array, [7.0, 7.0])
    assert not out.requires_grad and len(tape) == 0


def test_mixing_float32_and_float64_in_one_function_raises_before_recording():
    with Tape() as tape:  # operators promote (as torch) with a recorded cast; a Function never mixes
        a = leaf([1.0, 2.0], np.float32)
        b = leaf([1.0, 2.0], np.float64)
        _ = a * 2.0  # one entry already there
        for f in (lambda: ops.Add.apply(a, b), lambda: ops.Mul.apply(b, a), lambda: ops.Matmul.apply(a, b)):
            with pytest.raises(TypeError, match=r"(?s)float32.*float64|float64.*float32"):
                f()
            assert len(tape) == 1


@pytest.mark.skipif(not backend.cuda_available(), reason=f"no GPU: {backend.CUPY_UNAVAILABLE_REASON}")
def test_mixing_devices_raises_before_recording():
    with Tape() as tape:
        a = leaf([1.0, 2.0], np.float32)
        b = a.to("cuda").requires_grad_()
        for f in (lambda: a + b, lambda: b * a):
            with pytest.raises(TypeError, match=r"(?s)cpu.*cuda|cuda.*cpu"):
                f()
            assert len(tape) == 0


def test_a_forward_returning_a_tensor_is_refused_at_apply_naming_the_op():
    class Twice(Function):
        def forward(self, x):
            return tg.tensor(x * 2)          # a Tensor, not an array: the mistake

        def backward(self, g):
            return 2 * g

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with Tape() as tape:
        with pytest.raises(TypeError, match=r"Twice\.forward returned a Tensor.*raw arrays"):
            Twice.apply(x)
        assert len(tape) == 0                # refused before anything was recorded

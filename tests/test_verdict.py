"""gradient_verdict: right, or which usual mistake."""
import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm.verdict import gradient_verdict

rng = np.random.default_rng(0)
G = rng.standard_normal((4, 4))


@pytest.mark.parametrize("mine, start", [
    (2 * G, "analytic ≈ 2× numeric"), (0.5 * G, "analytic ≈ ½× numeric"), (-G, "analytic ≈ −numeric"),
    (G.T, "analytic ≈ numeric transposed"), (np.zeros((4, 4)), "the analytic gradient is all zeros"),
    (3 * G, "analytic ≈ 3× numeric: a constant factor is off"), (G + 1, "wrong values (max abs diff 1")])
def test_same_shape_mistakes_get_gradchecks_hints(mine, start):
    v = gradient_verdict(mine, G)
    assert not v and v.message.startswith(start), v.message


def test_right_answers_pass_and_accept_tensors():
    v = gradient_verdict(tg.tensor(G), G + 1e-12)
    assert v and v.message == "" and v.maxdiff < 1e-11 and repr(v) == "Verdict(ok)"


def test_scalars_get_their_own_hints():
    assert gradient_verdict(np.array(4.0), np.array(2.0)).message.startswith("your value is 2× the right one")
    assert gradient_verdict(np.array(-2.0), np.array(2.0)).message == "your value has the opposite sign"
    assert gradient_verdict(np.array(2.5), np.array(2.0)).message.startswith("wrong values")


def test_shape_mistakes():
    b = G.sum(0, keepdims=True)                                      # a (1, 4) input broadcast over rows
    assert "sum its gradient over axis 0" in gradient_verdict(G, b).message
    assert "(broadcast over axis 0: sum over it), and the values are off too" in gradient_verdict(G, 2 * b).message
    assert "keep the summed dimension" in gradient_verdict(b.reshape(-1), b).message
    w = rng.standard_normal((3, 5))
    assert gradient_verdict(w.T, w).message.startswith("transposed: shape (5, 3), the input has shape (3, 5)")
    assert gradient_verdict(np.ones(7), w).message == "shape (7,) but the input has shape (3, 5)"

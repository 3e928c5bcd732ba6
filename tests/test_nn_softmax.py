"""softmax / log_softmax as torch: 0-d inputs, size-0 dims, the implicit-dim rule, dtype=, float32 accuracy."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from tinygrad_mm import Tensor
from tinygrad_mm.nn import functional as tF

from ops_helpers import check_grad, check_torch
from nn_helpers import DTYPES

NAMES = ["softmax", "log_softmax"]


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [0, -1])
def test_zero_dim_input_is_its_own_distribution(name, dim):
    ours, theirs = getattr(tF, name), getattr(F, name)
    for v in (2.0, -1e30, np.nan):
        check_torch(lambda x: ours(x, dim), lambda x: theirs(x, dim), [np.array(v)])
    with pytest.raises(IndexError, match="Dimension out of range"):
        ours(Tensor(np.array(1.0)), 1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape, dim", [((3, 0), 1), ((3, 0), 0), ((0, 3), 0), ((0, 3), 1), ((0,), 0),
                                        ((2, 0, 4), -1)])
def test_size_zero_dims_give_empty_results(name, shape, dim):
    ours, theirs = getattr(tF, name), getattr(F, name)
    check_torch(lambda x: ours(x, dim), lambda x: theirs(x, dim), [np.zeros(shape)])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_implicit_dim_follows_torchs_legacy_rule_with_its_warning(name, ndim):
    x = np.random.default_rng(ndim).standard_normal((2, 3, 4, 5)[:ndim])
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name} has been deprecated") as rec:
        out = getattr(tF, name)(Tensor(x))
    assert rec[0].filename == __file__               # the warning points at the caller, as torch's
    ref = quiet(getattr(F, name), torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_dtype_argument_and_integer_inputs(name):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    check_torch(lambda t: getattr(tF, name)(t, 1, dtype=np.float64),
                lambda t: getattr(F, name)(t, 1, dtype=torch.float64), [x])
    with pytest.raises(TypeError, match="floating point"):
        getattr(tF, name)(Tensor(np.array([1, 2, 3])), 0)


def test_float32_log_softmax_of_large_logits_is_as_accurate_as_torchs():
    # logits ~1e4: log_softmax is x - max - log(sum), in that order; adding max + log(sum) first
    # would round to the spacing of 1e4 in float32 (~1e-3) before the subtraction
    rng = np.random.default_rng(0)
    for scale, shift in ((1e4, 0.0), (1.0, 1e4), (1.0, -1e4), (30.0, 1e4)):
        x32 = (rng.standard_normal((64, 27)) * scale + shift).astype(np.float32)
        truth = F.log_softmax(torch.from_numpy(x32).double(), 1).numpy()
        ours = tF.log_softmax(Tensor(x32), 1).numpy()
        theirs = F.log_softmax(torch.from_numpy(x32), 1).numpy()
        err_ours, err_torch = np.abs(ours - truth).max(), np.abs(theirs - truth).max()
        assert err_ours <= max(1.5 * err_torch, 1e-6), (scale, shift, err_ours, err_torch)
        np.testing.assert_allclose(ours, truth, rtol=1.3e-6, atol=1e-5)


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**31),
       log_scale=st.floats(-2, 3), name=st.sampled_from(NAMES), data=st.data())
def test_softmax_hypothesis_vs_torch(shape, seed, log_scale, name, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).standard_normal(shape) * 10.0 ** log_scale
    for dtype in DTYPES:
        check_torch(lambda t: getattr(tF, name)(t, dim), lambda t: getattr(F, name)(t, dim), [x.astype(dtype)])
    if log_scale < 1:
        check_grad(lambda t: getattr(tF, name)(t, dim), [x])

"""Tests for the reference training steps in ``benchmarks/reference_steps.py``."""

import numpy as np
import pytest

from benchmarks.reference_steps import NumpyStep, TorchStep, init_params, PARAM_NAMES

torch = pytest.importorskip("torch")
F = torch.nn.functional


def make_batch(seed, B=32, vocab=27, block=3):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, vocab, size=(B, block), dtype=np.int64)
    Y = rng.integers(0, vocab, size=B, dtype=np.int64)
    X[1] = X[0]          # make sure whole rows repeat ...
    X[2, :] = X[0, 0]    # ... and indices repeat within a row
    return X, Y


def torch_grads(params, X, Y):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    emb = t["C"][torch.from_numpy(X)]
    h = torch.tanh(F.linear(emb.view(X.shape[0], -1), t["W1"], t["b1"]))
    logits = F.linear(h, t["W2"], t["b2"])
    loss = F.cross_entropy(logits, torch.from_numpy(Y))
    loss.backward()
    return loss.item(), {k: v.grad.detach().numpy() for k, v in t.items()}


def test_init_params_shapes_and_dtype():
    for dtype in (np.float32, np.float64):
        p = init_params(0, dtype=dtype)
        shapes = {"C": (27, 10), "W1": (200, 30), "b1": (200,), "W2": (27, 200), "b2": (27,)}
        assert {k: v.shape for k, v in p.items()} == shapes
        assert all(v.dtype == dtype for v in p.values())
        assert not p["b2"].any()
    np.testing.assert_array_equal(init_params(3)["W1"], init_params(3)["W1"])


def test_numpy_grads_match_torch_float64():
    params = init_params(0, dtype=np.float64)
    X, Y = make_batch(1)
    assert len(np.unique(X)) < X.size  # repeated indices present
    loss, grads = NumpyStep(params).loss_and_grads(X, Y)
    ref_loss, ref_grads = torch_grads(params, X, Y)
    assert abs(loss - ref_loss) < 1e-7
    for k in PARAM_NAMES:
        assert grads[k].shape == params[k].shape
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=0, atol=1e-7, err_msg=k)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-6), (np.float32, 1e-5)])
def test_five_sgd_steps_agree(dtype, tol):
    params = init_params(0, dtype=dtype)
    ns, ts = NumpyStep(params), TorchStep(params)
    np_losses, torch_losses = [], []
    X, Y = make_batch(10)
    for _ in range(5):  # same batch each step, so the loss must go down
        np_losses.append(ns(X, Y, 0.1))
        torch_losses.append(ts(X, Y, 0.1))
    assert all(isinstance(v, float) for v in np_losses + torch_losses)
    np.testing.assert_allclose(np_losses, torch_losses, rtol=0, atol=tol)
    assert all(a > b for a, b in zip(np_losses, np_losses[1:]))
    # the caller's params are untouched (both steps work on copies)
    np.testing.assert_array_equal(params["W1"], init_params(0, dtype=dtype)["W1"])
    tp = ts.get_params()
    for k, v in ns.get_params().items():
        np.testing.assert_allclose(v, tp[k], rtol=0, atol=10 * tol, err_msg=k)


def test_numpy_step_keeps_float32():
    ns = NumpyStep(init_params(0, dtype=np.float32))
    X, Y = make_batch(2)
    _, grads = ns.loss_and_grads(X, Y)
    assert all(g.dtype == np.float32 for g in grads.values())
    for lr in (0.1, np.float64(0.1)):
        ns(X, Y, lr)
    assert all(v.dtype == np.float32 for v in ns.get_params().values())
    assert all(v.dtype == np.float32 for v in TorchStep(init_params(0)).get_params().values())

"""Shared helpers for tests/test_ops_*.py: torch parity on any device, and gradcheck settings."""
import numpy as np

from tinygrad_mm.compare import torch_tolerances
import torch

from tinygrad_mm import Tensor, backend, gradcheck

GC = dict(eps=1e-6, atol=1e-5, rtol=1e-3)  # the gradcheck standard: float64, central differences

def tol(dtype):
    """The one tolerance table (compare.torch_tolerances): 1e-7 in float64, torch's defaults in float32."""
    rtol, atol = torch_tolerances(dtype)
    return dict(rtol=rtol, atol=atol)


def check_torch(fn, torch_fn, arrays, device="cpu", seed=0, **tolerances):
    """Run fn on tinygrad_mm tensors on `device` and torch_fn on CPU torch tensors of the same values.

    Float arrays require grad, integer ones are plain (indices). Compares the output
    (values, shape, dtype), then backpropagates one random upstream gradient through both
    and compares every float input's gradient (values, shape = input shape, dtype).
    Returns (our output, torch output) for further checks.
    """
    arrays = [np.asarray(a) for a in arrays]
    ours = [Tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out, tout = fn(*ours), torch_fn(*theirs)
    assert out.device == device
    ref = tout.detach().numpy()
    assert out.shape == ref.shape, f"output shape {out.shape} vs torch {ref.shape}"
    assert out.dtype == ref.dtype, f"output dtype {out.dtype} vs torch {ref.dtype}"
    t = tolerances or tol(out.dtype)
    np.testing.assert_allclose(out.detach().numpy(), ref, equal_nan=True, err_msg="forward", **t)
    if not tout.requires_grad:
        return out, tout
    v = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(Tensor(v, device=device))
    tout.backward(torch.from_numpy(v))
    for i, (a, o, th) in enumerate(zip(arrays, ours, theirs)):
        if a.dtype.kind != "f":
            continue
        g = o.grad if o.grad is not None else np.zeros_like(a)
        g = backend.to_numpy(g)  # a cupy gradient comes to the host
        tg = th.grad.detach().numpy() if th.grad is not None else np.zeros_like(a)
        assert g.shape == a.shape, f"grad {i} has shape {g.shape}, input {a.shape}"
        assert g.dtype == a.dtype, f"grad {i} has dtype {g.dtype}, input {a.dtype}"
        np.testing.assert_allclose(g, tg, equal_nan=True, err_msg=f"grad of input {i}", **t)
    return out, tout


def check_grad(fn, arrays, **kw):
    """gradcheck in float64 with the project's eps/atol/rtol (a random upstream gradient by default)."""
    arrays = [np.asarray(a) for a in arrays]
    inputs = [Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    return gradcheck(fn, inputs, **{**GC, **kw})


def randn(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def positive(*shape, seed=0, dtype=np.float64):
    """Values in [0.5, 2]: safe for log, pow with negative/fractional exponents, and division."""
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape).astype(dtype)


def away_from_zero(*shape, seed=0, dtype=np.float64):
    """Values with |x| in [0.2, 2]: keeps finite differences off relu's kink."""
    r = np.random.default_rng(seed)
    return (r.uniform(0.2, 2.0, shape) * r.choice([-1.0, 1.0], shape)).astype(dtype)

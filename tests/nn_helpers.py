"""Shared helpers of the nn tests: torch parity of modules, gradcheck of modules."""

import numpy as np
import torch

import tinygrad_mm as tg
from tinygrad_mm import Tensor, backend, gradcheck, nn

from ops_helpers import GC, tol

DTYPES = [np.float64, np.float32]
TORCH_DT = {np.float64: torch.float64, np.float32: torch.float32}


def rnd(*shape, seed=0, dtype=np.float64, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def host(a):
    return backend.to_numpy(a.data if isinstance(a, Tensor) else a)


def copy_into_torch(ours, theirs):
    """Copy our parameters and buffers into the torch module (same names), as float tensors."""
    tsd = theirs.state_dict()
    with torch.no_grad():
        for name, t in ours._named_tensors():
            tsd[name].copy_(torch.from_numpy(t.detach().numpy().copy()))


def assert_close(ours, ref, dtype, what="", **override):
    """Our array vs a torch tensor/array: shape, dtype and values (1e-7 in float64, torch's defaults in float32)."""
    a = host(ours)
    b = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} vs torch {b.dtype}"
    np.testing.assert_allclose(a, b, err_msg=what, equal_nan=True, **{**tol(dtype), **override})


def module_parity(ours, theirs, x, dtype, device, n_steps=1, **override):
    """Forward and backward (random upstream) of our module and the torch one; compares output, input
    gradient (float inputs) and every parameter's gradient (`override`: tolerances, see assert_close)."""
    copy_into_torch(ours, theirs)
    tparams = dict(theirs.named_parameters())
    for step in range(n_steps):
        xs = x[step] if isinstance(x, list) else x
        xt = Tensor(xs, device=device, requires_grad=xs.dtype.kind == "f")
        xtt = torch.tensor(xs, requires_grad=xs.dtype.kind == "f")
        ours.zero_grad()
        theirs.zero_grad()
        out, tout = ours(xt), theirs(xtt)
        assert out.device == device
        assert_close(out, tout, dtype, "forward", **override)
        v = rnd(*out.shape, seed=step + 7, dtype=dtype)
        out.backward(Tensor(v, device=device))
        tout.backward(torch.from_numpy(v))
        if xs.dtype.kind == "f":
            assert_close(xt.grad, xtt.grad, dtype, "grad of input", **override)
        for name, p in ours.named_parameters():
            assert p.grad is not None, name
            assert_close(p.grad, tparams[name].grad, dtype, f"grad of {name}", **override)


def gradcheck_module(module, x, with_input=True):
    """gradcheck (float64) of the module's output w.r.t. its parameters and (float) input."""
    params = module.parameters()
    xt = Tensor(x, requires_grad=with_input and x.dtype.kind == "f")
    return gradcheck(lambda xx, *ps: module(xx), [xt, *params], **GC)


def make_mlp(dtype=np.float32, device="cpu", seed=0, hidden=64, bn=False):
    g = tg.Generator(seed)
    layers = [nn.Embedding(27, 10, generator=g, dtype=dtype, device=device), nn.Flatten(),
              nn.Linear(30, hidden, generator=g, dtype=dtype, device=device)]
    if bn:
        layers.append(nn.BatchNorm1d(hidden, dtype=dtype, device=device))
    layers += [nn.Tanh(), nn.Linear(hidden, 27, generator=g, dtype=dtype, device=device)]
    return nn.Sequential(*layers)


def make_torch_mlp(dtype=np.float32, hidden=64, bn=False):
    td = TORCH_DT[dtype]
    layers = [torch.nn.Embedding(27, 10, dtype=td), torch.nn.Flatten(), torch.nn.Linear(30, hidden, dtype=td)]
    if bn:
        layers.append(torch.nn.BatchNorm1d(hidden, dtype=td))
    layers += [torch.nn.Tanh(), torch.nn.Linear(hidden, 27, dtype=td)]
    return torch.nn.Sequential(*layers)

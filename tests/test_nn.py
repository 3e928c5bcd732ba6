"""tinygrad_mm.nn layers (Embedding, Linear, Tanh, Flatten, Sequential, BatchNorm1d, softmax) against gradcheck and torch."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tinygrad_mm as tg
from tinygrad_mm import Tape, Tensor, backend, gradcheck, nn

from ops_helpers import GC, tol
from nn_helpers import make_mlp, make_torch_mlp, DTYPES, TORCH_DT, rnd, assert_close, module_parity, gradcheck_module


# -- Embedding ---------------------------------------------------------------------------------
def test_embedding_gradcheck_repeated_indices():
    emb = nn.Embedding(7, 3, generator=tg.Generator(0), dtype=np.float64)
    idx = np.array([[0, 3, 3], [6, 0, 0]])  # repeats: across and within rows
    gradcheck_module(emb, idx)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_matches_torch(dtype, device):
    emb = nn.Embedding(27, 5, generator=tg.Generator(1), dtype=dtype, device=device)
    temb = torch.nn.Embedding(27, 5, dtype=TORCH_DT[dtype])
    idx = np.random.default_rng(0).integers(0, 27, size=(8, 3))
    idx[1] = idx[0]
    module_parity(emb, temb, idx, dtype, device)


def test_embedding_repeated_indices_accumulate():
    emb = nn.Embedding(4, 2, dtype=np.float64)
    idx = np.array([2, 2, 2, 0])
    v = rnd(4, 2, seed=3)
    emb(idx).backward(Tensor(v))
    want = np.zeros((4, 2))
    want[2] = v[0] + v[1] + v[2]
    want[0] = v[3]
    np.testing.assert_array_equal(emb.weight.grad, want)


@pytest.mark.parametrize("bad", [-1, 27, 1000, -28])
def test_embedding_range_error_names_index_and_size(bad):
    emb = nn.Embedding(27, 4)
    idx = np.array([[0, 1, bad]])
    with Tape() as tape, pytest.raises(IndexError) as e:
        emb(idx)
    msg = str(e.value)
    assert re.search(rf"(?<![\d-]){bad}(?!\d)", msg), msg   # the bad index itself
    assert "27" in msg, msg                                    # the table size
    assert len(tape) == 0


def test_embedding_init_is_standard_normal():
    w = nn.Embedding(1000, 50, generator=tg.Generator(0)).weight.detach().numpy()
    assert w.dtype == np.float32 and w.shape == (1000, 50)
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02
    assert "Embedding(1000, 50)" in repr(nn.Embedding(1000, 50))


# -- Linear --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(bias):
    lin = nn.Linear(4, 3, bias=bias, generator=tg.Generator(0), dtype=np.float64)
    assert (lin.bias is None) == (not bias)
    assert len(lin.parameters()) == (2 if bias else 1)
    gradcheck_module(lin, rnd(5, 4))
    gradcheck_module(lin, rnd(2, 3, 4, seed=1))    # leading batch dims


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_matches_torch(bias, dtype, device):
    lin = nn.Linear(30, 20, bias=bias, generator=tg.Generator(2), dtype=dtype, device=device)
    tlin = torch.nn.Linear(30, 20, bias=bias, dtype=TORCH_DT[dtype])
    assert lin.weight.shape == tuple(tlin.weight.shape) == (20, 30)   # torch layout (out, in)
    module_parity(lin, tlin, rnd(16, 30, dtype=dtype), dtype, device)
    module_parity(lin, tlin, rnd(2, 5, 30, seed=4, dtype=dtype), dtype, device)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_batch_mlp_matches_torch_through_pooled_buffers(dtype, device):
    # batch 2048: the hidden activations, their tanh, and both backward matmuls are over 1 MiB, so they
    # live in HostPool buffers; a buffer reused while still needed would show up as a wrong value
    g = tg.Generator(5)
    ours = nn.Sequential(nn.Linear(200, 300, generator=g, dtype=dtype, device=device), nn.Tanh(),
                         nn.Linear(300, 200, generator=g, dtype=dtype, device=device), nn.Tanh(),
                         nn.Linear(200, 27, generator=g, dtype=dtype, device=device))
    theirs = torch.nn.Sequential(torch.nn.Linear(200, 300), torch.nn.Tanh(), torch.nn.Linear(300, 200),
                                 torch.nn.Tanh(), torch.nn.Linear(200, 27)).to(TORCH_DT[dtype])
    # float32: a weight gradient sums 2048 rows into entries of size ~50; two valid summation orders
    # differ by a few ulps of that (~2e-5), past torch's default atol of 1e-5, meant for O(1) values
    loose = {"atol": 1e-4} if dtype == np.float32 else {}
    module_parity(ours, theirs, [rnd(2048, 200, seed=s, dtype=dtype) for s in range(3)], dtype, device,
                  n_steps=3, **loose)


def test_linear_is_one_tape_entry():
    lin = nn.Linear(3, 2)
    with Tape() as tape:
        out = lin(Tensor(rnd(4, 3, dtype=np.float32)))   # kept: the tape holds entries weakly
    assert len(tape) == 1 and out.entry is tape.entries[0]


@pytest.mark.parametrize("fan_in", [1, 9, 400])
def test_linear_init_bound(fan_in):
    lin = nn.Linear(fan_in, 500, generator=tg.Generator(0))
    bound = 1 / np.sqrt(fan_in)
    for p in (lin.weight.detach().numpy(), lin.bias.detach().numpy()):
        assert p.min() >= -bound and p.max() <= bound
        # uniform on the whole interval: the empirical range reaches close to both ends
        assert p.min() < -0.97 * bound and p.max() > 0.97 * bound
        assert abs(p.std() - bound / np.sqrt(3)) < 0.1 * bound
    assert "Linear(9 → 500)" in repr(nn.Linear(9, 500))
    assert "bias=False" in repr(nn.Linear(9, 500, bias=False))


def test_linear_feature_mismatch_raises():
    with pytest.raises(ValueError, match="features"):
        nn.Linear(4, 2)(Tensor(np.zeros((3, 5), np.float32)))


# -- Tanh, Flatten, Sequential ------------------------------------------------------------------------
def test_tanh_flatten_gradcheck():
    gradcheck_module(nn.Tanh(), rnd(3, 4))
    gradcheck_module(nn.Flatten(), rnd(2, 3, 4))
    gradcheck_module(nn.Flatten(start_dim=2), rnd(2, 3, 2, 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_flatten_match_torch(dtype, device):
    module_parity(nn.Tanh(), torch.nn.Tanh(), rnd(4, 5, dtype=dtype, scale=3), dtype, device)
    module_parity(nn.Flatten(), torch.nn.Flatten(), rnd(4, 3, 2, dtype=dtype), dtype, device)
    module_parity(nn.Flatten(2), torch.nn.Flatten(2), rnd(4, 3, 2, 5, dtype=dtype), dtype, device)


def test_sequential_gradcheck():
    m = make_mlp(np.float64, hidden=4)
    X = np.random.default_rng(0).integers(0, 27, size=(5, 3))
    gradcheck_module(m, X)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_matches_torch(dtype, device):
    m, tm = make_mlp(dtype, device, bn=True), make_torch_mlp(dtype, bn=True)
    X = np.random.default_rng(0).integers(0, 27, size=(32, 3))
    module_parity(m, tm, X, dtype, device)


def test_sequential_indexing():
    m = make_mlp()
    assert len(m) == 5 and isinstance(m[2], nn.Linear) and list(m)[3] is m[3]


# -- BatchNorm1d -----------------------------------------------------------------------------------
def test_batchnorm_gradcheck_train_and_eval():
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    bn.weight.data[:] = [0.5, 1.5, -2.0]
    bn.bias.data[:] = [0.1, 0.2, 0.3]
    gradcheck_module(bn, rnd(6, 3, scale=2) + 1)
    bn.running_mean.data[:] = [0.3, -0.2, 1.0]
    bn.running_var.data[:] = [0.5, 2.0, 1.3]
    bn.eval()
    gradcheck_module(bn, rnd(4, 3, seed=1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_train_then_eval_matches_torch(dtype, device):
    bn = nn.BatchNorm1d(5, momentum=0.1, dtype=dtype, device=device)
    tbn = torch.nn.BatchNorm1d(5, momentum=0.1, dtype=TORCH_DT[dtype])
    bn.weight.data[:] = backend.to_device(rnd(5, seed=9, dtype=dtype), device)
    bn.bias.data[:] = backend.to_device(rnd(5, seed=10, dtype=dtype), device)
    batches = [rnd(8, 5, seed=s, dtype=dtype, scale=s + 1) + s for s in range(5)]
    module_parity(bn, tbn, batches, dtype, device, n_steps=5)   # training: batch statistics
    # five updates of the running statistics, unbiased variance as torch
    assert_close(bn.running_mean, tbn.running_mean, dtype, "running_mean")
    assert_close(bn.running_var, tbn.running_var, dtype, "running_var")
    assert not np.allclose(bn.running_var.detach().numpy(), 1)
    bn.eval()
    tbn.eval()
    rm, rv = bn.running_mean.detach().numpy().copy(), bn.running_var.detach().numpy().copy()
    x = rnd(3, 5, seed=42, dtype=dtype)
    out = bn(Tensor(x, device=device))
    assert_close(out, tbn(torch.from_numpy(x)), dtype, "eval forward")
    # eval uses exactly the running statistics and leaves them unchanged
    want = (x - rm) / np.sqrt(rv + bn.eps) * bn.weight.detach().numpy() + bn.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), want, **tol(dtype))
    np.testing.assert_array_equal(bn.running_mean.detach().numpy(), rm)
    np.testing.assert_array_equal(bn.running_var.detach().numpy(), rv)
    out1 = bn(Tensor(x[:1], device=device))     # a single row is fine in eval mode
    np.testing.assert_allclose(out1.detach().numpy(), want[:1], **tol(dtype))


def test_batchnorm_errors_and_buffers():
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(Tensor(np.zeros((1, 4), np.float32)))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        bn(Tensor(np.zeros((3, 5), np.float32)))
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert list(bn.state_dict()) == list(torch.nn.BatchNorm1d(4).state_dict())


# -- softmax / log_softmax ---------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [nn.softmax, nn.log_softmax])
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_gradcheck(fn, dim):
    gradcheck(lambda x: fn(x, dim=dim), [Tensor(rnd(3, 4, 2, scale=3), requires_grad=True)], **GC)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_matches_torch(name, dtype, dim, device):
    ours, theirs = getattr(nn, name), getattr(F, name)
    for scale in (1.0, 50.0, 1e4):
        x = rnd(6, 9, dtype=dtype, scale=scale)
        xt = Tensor(x, device=device, requires_grad=True)
        xtt = torch.tensor(x, requires_grad=True)
        out, tout = ours(xt, dim=dim), theirs(xtt, dim=dim)
        assert np.isfinite(out.detach().numpy()).all()
        # torch's default tolerances in float32 too: x - max - log(sum), torch's order, loses nothing at 1e4
        assert_close(out, tout, dtype, f"{name} forward, scale {scale}")
        v = rnd(6, 9, seed=1, dtype=dtype)
        out.backward(Tensor(v, device=device))
        tout.backward(torch.from_numpy(v))
        assert_close(xt.grad, xtt.grad, dtype, f"{name} grad, scale {scale}")


def test_softmax_one_tape_entry_and_masked_logits():
    x = Tensor(np.array([[0.0, -np.inf, 1.0], [2.0, 2.0, -np.inf]]), requires_grad=True)
    with Tape() as tape:
        p = nn.softmax(x, dim=1)
        lp = nn.log_softmax(x, dim=1)
    assert len(tape) == 2
    assert p.detach().numpy()[0, 1] == 0 and p.detach().numpy()[1, 2] == 0
    np.testing.assert_allclose(p.detach().numpy(), F.softmax(torch.from_numpy(x.detach().numpy()), -1).detach().numpy(), rtol=1e-12)
    assert lp.detach().numpy()[0, 1] == -np.inf and np.isfinite(lp.detach().numpy()[0, [0, 2]]).all()

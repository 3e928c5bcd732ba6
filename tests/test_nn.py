"""tinygrad_mm.nn: every module and functional against gradcheck (float64) and torch (float64, float32)."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

import tinygrad_mm as tg
from tinygrad_mm import Tape, Tensor, backend, gradcheck, nn, optim
from tinygrad_mm.nn import functional as NF

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
            tsd[name].copy_(torch.from_numpy(t.numpy().copy()))


def assert_close(ours, ref, dtype, what="", **override):
    """Our array vs a torch tensor/array: shape, dtype and values (1e-7 in float64, torch's defaults in float32)."""
    a = host(ours)
    b = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} vs torch {b.dtype}"
    np.testing.assert_allclose(a, b, err_msg=what, equal_nan=True, **{**tol(dtype), **override})


def module_parity(ours, theirs, x, dtype, device, n_steps=1):
    """Forward and backward (random upstream) of our module and the torch one; compares output, input
    gradient (float inputs) and every parameter's gradient."""
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
        assert_close(out, tout, dtype, "forward")
        v = rnd(*out.shape, seed=step + 7, dtype=dtype)
        out.backward(Tensor(v, device=device))
        tout.backward(torch.from_numpy(v))
        if xs.dtype.kind == "f":
            assert_close(xt.grad, xtt.grad, dtype, "grad of input")
        for name, p in ours.named_parameters():
            assert p.grad is not None, name
            assert_close(p.grad, tparams[name].grad, dtype, f"grad of {name}")


def gradcheck_module(module, x, with_input=True):
    """gradcheck (float64) of the module's output w.r.t. its parameters and (float) input."""
    params = module.parameters()
    xt = Tensor(x, requires_grad=with_input and x.dtype.kind == "f")
    return gradcheck(lambda xx, *ps: module(xx), [xt, *params], **GC)


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
    w = nn.Embedding(1000, 50, generator=tg.Generator(0)).weight.numpy()
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


def test_linear_is_one_tape_entry():
    lin = nn.Linear(3, 2)
    with Tape() as tape:
        out = lin(Tensor(rnd(4, 3, dtype=np.float32)))   # kept: the tape holds entries weakly
    assert len(tape) == 1 and out.op is tape.entries[0]


@pytest.mark.parametrize("fan_in", [1, 9, 400])
def test_linear_init_bound(fan_in):
    lin = nn.Linear(fan_in, 500, generator=tg.Generator(0))
    bound = 1 / np.sqrt(fan_in)
    for p in (lin.weight.numpy(), lin.bias.numpy()):
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
    assert not np.allclose(bn.running_var.numpy(), 1)
    bn.eval()
    tbn.eval()
    rm, rv = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    x = rnd(3, 5, seed=42, dtype=dtype)
    out = bn(Tensor(x, device=device))
    assert_close(out, tbn(torch.from_numpy(x)), dtype, "eval forward")
    # eval uses exactly the running statistics and leaves them unchanged
    want = (x - rm) / np.sqrt(rv + bn.eps) * bn.weight.numpy() + bn.bias.numpy()
    np.testing.assert_allclose(out.numpy(), want, **tol(dtype))
    np.testing.assert_array_equal(bn.running_mean.numpy(), rm)
    np.testing.assert_array_equal(bn.running_var.numpy(), rv)
    out1 = bn(Tensor(x[:1], device=device))     # a single row is fine in eval mode
    np.testing.assert_allclose(out1.numpy(), want[:1], **tol(dtype))


def test_batchnorm_errors_and_buffers():
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match="at least 2"):
        bn(Tensor(np.zeros((1, 4), np.float32)))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        bn(Tensor(np.zeros((3, 5), np.float32)))
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var"]


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
        assert np.isfinite(out.numpy()).all()
        # float32, scale 1e4: log_softmax values ~1e4 carry float32 rounding of ~1e-3 absolutely
        t = dict(rtol=1e-5, atol=1e-5 * scale) if dtype == np.float32 and scale > 1 else {}
        assert_close(out, tout, dtype, f"{name} forward, scale {scale}", **t)
        v = rnd(6, 9, seed=1, dtype=dtype)
        out.backward(Tensor(v, device=device))
        tout.backward(torch.from_numpy(v))
        assert_close(xt.grad, xtt.grad, dtype, f"{name} grad, scale {scale}", **t)


def test_softmax_one_tape_entry_and_masked_logits():
    x = Tensor(np.array([[0.0, -np.inf, 1.0], [2.0, 2.0, -np.inf]]), requires_grad=True)
    with Tape() as tape:
        p = nn.softmax(x)
        lp = nn.log_softmax(x)
    assert len(tape) == 2
    assert p.numpy()[0, 1] == 0 and p.numpy()[1, 2] == 0
    np.testing.assert_allclose(p.numpy(), F.softmax(torch.from_numpy(x.numpy()), -1).numpy(), rtol=1e-12)
    assert lp.numpy()[0, 1] == -np.inf and np.isfinite(lp.numpy()[0, [0, 2]]).all()


# -- the fused cross-entropy ---------------------------------------------------------------------------
def ce_inputs(n=8, c=5, seed=0, dtype=np.float64, scale=2.0, ignore_some=False):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, c)) * scale).astype(dtype)
    y = rng.integers(0, c, size=n)
    if ignore_some:
        y[::3] = -100
    return logits, y


def ce_parity(logits, y, dtype, device="cpu", seed=0, **kw):
    """Our cross_entropy vs torch's: value and gradient (random upstream for reduction='none')."""
    x = Tensor(logits, device=device, requires_grad=True)
    xt = torch.tensor(logits, requires_grad=True)
    out = nn.cross_entropy(x, y, **kw)
    tout = F.cross_entropy(xt, torch.from_numpy(y), **kw)
    assert_close(out, tout, dtype, f"loss {kw}")
    v = np.asarray(rnd(*out.shape, seed=seed, dtype=dtype))
    out.backward(Tensor(v, device=device))
    tout.backward(torch.from_numpy(v))
    assert_close(x.grad, xt.grad, dtype, f"grad {kw}")
    return out, x.grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_gradcheck(reduction, ignore):
    logits, y = ce_inputs(6, 4, ignore_some=ignore)
    gradcheck(lambda x: nn.cross_entropy(x, y, reduction=reduction), [Tensor(logits, requires_grad=True)], **GC)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_matches_torch(reduction, dtype, ignore, device):
    logits, y = ce_inputs(32, 27, dtype=dtype, ignore_some=ignore)
    ce_parity(logits, y, dtype, device, reduction=reduction)


@pytest.mark.parametrize("ignore_index", [0, 3, -1])
def test_cross_entropy_custom_ignore_index(ignore_index):
    logits, y = ce_inputs(10, 4)
    y[[1, 4, 7]] = ignore_index
    for reduction in ("mean", "sum", "none"):
        ce_parity(logits, y, np.float64, reduction=reduction, ignore_index=ignore_index)


def test_cross_entropy_ignored_row_over_masked_class_stays_finite():
    # an ignored row's placeholder target 0 sits on a -inf logit: inf * 0 must not make the loss NaN
    logits = np.array([[-np.inf, 1.0, 2.0], [0.0, 1.0, 2.0], [-np.inf, 0.0, 0.0]])
    y = np.array([-100, 1, 2])
    for reduction in ("mean", "sum", "none"):
        out, g = ce_parity(logits, y, np.float64, reduction=reduction)
        assert np.isfinite(out.numpy()).all() and np.isfinite(g).all()


def test_cross_entropy_all_ignored_is_nan_with_zero_grad_as_torch():
    logits, _ = ce_inputs(3, 4)
    y = np.full(3, -100)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no 0/0 RuntimeWarnings
        out, g = ce_parity(logits, y, np.float64)
    assert np.isnan(out.item()) and not g.any()
    out, g = ce_parity(logits, y, np.float64, reduction="sum")
    assert out.item() == 0 and not g.any()


def test_cross_entropy_is_one_tape_entry_and_module_form():
    logits, y = ce_inputs(dtype=np.float32)
    x = Tensor(logits, requires_grad=True)
    with Tape() as tape:
        loss = nn.cross_entropy(x, y)
    assert len(tape) == 1 and type(tape.entries[0]).__name__ == "CrossEntropy"
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    assert "reduction='sum'" in repr(loss_fn)
    np.testing.assert_allclose(loss_fn(x, y).item(), loss.item() * len(y), rtol=1e-6)
    # targets as a Tensor and as a list are accepted too
    assert nn.cross_entropy(x, Tensor(y)).item() == loss.item() == nn.cross_entropy(x, y.tolist()).item()


@pytest.mark.parametrize("target, exc, pattern", [
    (np.array([0.0, 1.0, 2.0, 3.0]), TypeError, "integer"),
    (np.array([True, False, True, False]), TypeError, "integer"),
    (np.array([[0], [1], [2], [3]]), ValueError, r"shape \(4,\)"),
    (np.array([0, 1, 2]), ValueError, r"shape \(4,\)"),
    (np.array([0, 27, 1, 2]), IndexError, "Target 27 is out of bounds"),
    (np.array([0, 1, -1, 2]), IndexError, "Target -1 is out of bounds"),
    (np.array([0, 1, 2, 30]), IndexError, "Target 30 is out of bounds"),
])
def test_cross_entropy_target_validation_before_compute(target, exc, pattern):
    x = Tensor(ce_inputs(4, 27)[0], requires_grad=True)
    with Tape() as tape:
        with pytest.raises(exc, match=pattern):
            nn.cross_entropy(x, target)
        with pytest.raises(ValueError, match="reduction"):
            nn.cross_entropy(x, np.zeros(4, np.int64), reduction="avg")
        with pytest.raises(ValueError, match=r"\(N, C\)"):
            nn.cross_entropy(Tensor(np.zeros((2, 3, 4)), requires_grad=True), np.zeros(2, np.int64))
        assert len(tape) == 0


def test_cross_entropy_validates_targets_before_logits():
    # a bad target is reported even when the logits would also be refused: nothing was computed
    x = Tensor(np.array([[np.nan, 0.0]]), requires_grad=True)
    with pytest.raises(IndexError, match="Target 5 is out of bounds"):
        nn.cross_entropy(x, np.array([5]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_extreme_logits_exact(dtype):
    for target, want_loss, want_grad in ((1, 1e4, [1.0, -1.0]), (0, 0.0, [0.0, 0.0])):
        x = Tensor(np.array([[1e4, 0.0]], dtype=dtype), requires_grad=True)
        loss = nn.cross_entropy(x, np.array([target]))
        assert loss.item() == want_loss            # exactly, not 1e4 - 1e4 rounding
        loss.backward()
        assert np.isfinite(x.grad).all()
        np.testing.assert_array_equal(x.grad, np.array([want_grad], dtype=dtype))


def test_cross_entropy_float32_huge_logits_never_nan():
    rng = np.random.default_rng(0)
    logits = rng.choice([-1e4, 1e4], size=(64, 10)).astype(np.float32)
    logits[:, 3] = 1e4                        # ties at the max
    y = rng.integers(0, 10, 64)
    for reduction in ("mean", "sum", "none"):
        x = Tensor(logits, requires_grad=True)
        out = nn.cross_entropy(x, y, reduction=reduction)
        v = np.ones(out.shape, np.float32)
        out.backward(Tensor(v))
        assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad).all()
        ref = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y), reduction=reduction)
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1.3e-6, atol=1e-5)


def test_cross_entropy_masked_classes():
    logits = np.array([[2.0, -np.inf, 0.5, -np.inf], [-np.inf, 1.0, 1.0, 3.0]])
    y = np.array([0, 3])
    out, g = ce_parity(logits, y, np.float64, reduction="none")
    assert np.isfinite(out.numpy()).all()
    assert g[0, 1] == 0 and g[0, 3] == 0 and g[1, 0] == 0        # masked classes: probability 0
    assert nn.softmax(Tensor(logits)).numpy()[0, 1] == 0
    # the target on a -inf logit: an impossible class has loss +inf (torch agrees), gradient finite
    y_bad = np.array([1, 3])
    x = Tensor(logits, requires_grad=True)
    per_row = nn.cross_entropy(x, y_bad, reduction="none")
    assert per_row.numpy()[0] == np.inf and np.isfinite(per_row.numpy()[1])
    assert F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y_bad), reduction="none")[0] == np.inf
    loss = nn.cross_entropy(x, y_bad)
    assert loss.item() == np.inf
    loss.backward()
    assert np.isfinite(x.grad).all()


@pytest.mark.parametrize("bad, kind", [(np.inf, "+inf or NaN"), (np.nan, "+inf or NaN"), (None, "all logits -inf")])
def test_cross_entropy_undefined_rows_raise_naming_the_row(bad, kind):
    logits = np.zeros((4, 3))
    if bad is None:
        logits[2] = -np.inf
    else:
        logits[2, 1] = bad
    x = Tensor(logits, requires_grad=True)
    with Tape() as tape:
        with pytest.raises(ValueError) as e:
            nn.cross_entropy(x, np.array([0, 1, 2, 0]))
        assert len(tape) == 0
    assert "rows [2]" in str(e.value) and kind in str(e.value)


def unfused_log_softmax(x, y):
    n = x.shape[0]
    logp = nn.log_softmax(x, dim=1)
    return -logp[tg.arange(n), y].mean()


def unfused_makemore(x, y):
    n = x.shape[0]
    counts = x.exp()
    probs = counts / counts.sum(1, keepdims=True)
    return -probs[tg.arange(n), y].log().mean()


@pytest.mark.parametrize("unfused", [unfused_log_softmax, unfused_makemore])
def test_cross_entropy_matches_unfused_engine_paths(unfused):
    logits, y = ce_inputs(16, 27, seed=3)
    x1, x2 = Tensor(logits, requires_grad=True), Tensor(logits, requires_grad=True)
    with Tape() as tape:
        fused = nn.cross_entropy(x1, y)
    assert len(tape) == 1
    with Tape() as tape:
        ref = unfused(x2, y)
    assert len(tape) > 2            # the engine-ops path: several entries
    np.testing.assert_allclose(fused.item(), ref.item(), rtol=1e-12)
    fused.backward()
    ref.backward()
    np.testing.assert_allclose(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
    tref = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y))
    np.testing.assert_allclose(fused.item(), tref.item(), rtol=1e-12)


def test_naive_exp_overflows_where_fused_does_not():
    logits, y = ce_inputs(8, 10, dtype=np.float32, scale=1.0)
    logits += 100                    # exp(100) > float32 max (~3.4e38)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = unfused_makemore(Tensor(logits, requires_grad=True), y).item()
    assert not np.isfinite(naive)    # inf / inf -> nan
    x = Tensor(logits, requires_grad=True)
    fused = nn.cross_entropy(x, y)
    fused.backward()
    assert np.isfinite(fused.item()) and np.isfinite(x.grad).all()
    ref = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)).item()
    np.testing.assert_allclose(fused.item(), ref, rtol=1.3e-6, atol=1e-5)


@given(n=st.integers(1, 24), c=st.integers(2, 40), log_scale=st.floats(-3, 4),
       seed=st.integers(0, 2**31), ignore=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_hypothesis_vs_torch(n, c, log_scale, seed, ignore, reduction):
    logits, y = ce_inputs(n, c, seed=seed, scale=10.0 ** log_scale)
    if ignore:
        y[np.random.default_rng(seed).random(n) < 0.3] = -100
    if reduction == "mean" and (y == -100).all():
        y[0] = 0
    out, g = ce_parity(logits, y, np.float64, seed=seed % 1000, reduction=reduction)
    assert np.isfinite(out.numpy()).all() and np.isfinite(g).all()
    # float32 too: torch's defaults, relative to the logit scale for the loss (lse of logits ~1e4
    # in float32 carries an absolute rounding of ~1e-3)
    x32 = logits.astype(np.float32)
    out32 = nn.cross_entropy(Tensor(x32), y, reduction=reduction).numpy()
    ref32 = F.cross_entropy(torch.from_numpy(x32), torch.from_numpy(y), reduction=reduction).numpy()
    np.testing.assert_allclose(out32, ref32, rtol=1.3e-6, atol=1e-5 * max(1.0, 10.0 ** log_scale))


# -- Module ------------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, dtype=np.float32, seed=0):
        g = tg.Generator(seed)
        self.emb = nn.Embedding(5, 2, generator=g, dtype=dtype)
        self.layers = [nn.Linear(4, 3, generator=g, dtype=dtype), nn.Tanh(),
                       nn.Linear(3, 3, bias=False, generator=g, dtype=dtype)]
        self.bn = nn.BatchNorm1d(3, dtype=dtype)
        self.head = nn.Sequential(nn.Linear(3, 2, generator=g, dtype=dtype))
        self.scale = Tensor(np.float32(2.0) if dtype == np.float32 else 2.0)   # a plain buffer
        self.count = Tensor(np.array([7], np.int64))                         # an integer buffer

    def forward(self, idx):
        h = self.emb(idx).reshape(idx.shape[0], -1)
        for layer in self.layers:
            h = layer(h)
        return self.head(self.bn(h)) * self.scale


PARAM_NAMES = ["emb.weight", "layers.0.weight", "layers.0.bias", "layers.2.weight", "bn.weight",
               "bn.bias", "head.0.weight", "head.0.bias"]


def test_named_parameters_recurse_into_children_and_lists():
    m = Block()
    assert [n for n, _ in m.named_parameters()] == PARAM_NAMES
    assert [p for _, p in m.named_parameters()] == m.parameters()
    assert [n for n, _ in m.named_buffers()] == ["scale", "count", "bn.running_mean", "bn.running_var"]
    assert list(m.state_dict()) == ["scale", "count"] + PARAM_NAMES[:4] + [
        "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "head.0.weight", "head.0.bias"]
    assert m.num_parameters() == 10 + 15 + 9 + 6 + 8
    assert len(m.modules()) == 1 + 1 + 3 + 1 + 1 + 1


def test_sequential_names_like_torch():
    m, tm = make_mlp(bn=True), make_torch_mlp(bn=True)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(m.state_dict()) == [k for k in tm.state_dict() if not k.endswith("num_batches_tracked")]
    assert [tuple(p.shape) for p in m.parameters()] == [tuple(p.shape) for p in tm.parameters()]


def test_shared_parameter_listed_once():
    a = nn.Linear(3, 3)
    m = nn.Sequential(a, nn.Tanh(), a)        # the same layer twice (tied weights)
    assert len(m.parameters()) == len(list(torch.nn.Sequential(
        tl := torch.nn.Linear(3, 3), torch.nn.Tanh(), tl).parameters())) == 2
    w0 = a.weight.numpy().copy()
    opt = optim.SGD(m.parameters(), lr=0.1)
    m(Tensor(np.ones((1, 3), np.float32))).sum().backward()
    g = a.weight.grad.copy()
    opt.step()                                # one update, not two
    np.testing.assert_allclose(a.weight.numpy(), w0 - 0.1 * g, rtol=1e-6)


def test_zero_grad_and_train_eval_propagate():
    m = Block()
    m(np.array([[0, 1], [2, 3], [4, 0]])).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.eval() is m
    assert all(not mod.training for mod in m.modules()) and not m.head[0].training
    assert m.train() is m and all(mod.training for mod in m.modules())
    m.train(False)
    assert not m.bn.training


def test_to_dtype_keeps_tensor_objects():
    m = Block()
    before = {n: t for n, t in m._named_tensors()}
    opt = optim.SGD(m.parameters(), lr=0.1)   # made before the conversion: must keep working
    m(np.array([[0, 1], [2, 3]])).sum().backward()
    assert m.double() is m
    after = dict(m._named_tensors())
    assert all(after[n] is before[n] for n in before)
    assert all(t.dtype == np.float64 for n, t in after.items() if n != "count")
    assert m.count.dtype == np.int64                       # integer buffers are not converted
    assert all(p.grad is None for p in m.parameters())
    x = np.array([[0, 1], [2, 3]])
    w0 = m.layers[0].weight.numpy().copy()
    m(x).sum().backward()
    opt.step()
    assert m.layers[0].weight.dtype == np.float64 and not np.array_equal(m.layers[0].weight.numpy(), w0)
    m.float()
    assert all(after[n] is t for n, t in m._named_tensors()) and m.emb.weight.dtype == np.float32
    m.to(device="cpu")
    with pytest.raises(ValueError, match="unknown device"):
        m.to(device="tpu")


def test_to_cuda_and_back(device):
    m = Block()
    x = np.array([[0, 1], [2, 3]])
    want = m(x).numpy()
    ids = [id(t) for _, t in m._named_tensors()]
    m.to(device)
    assert all(t.device == device for _, t in m._named_tensors())
    assert [id(t) for _, t in m._named_tensors()] == ids
    np.testing.assert_allclose(m(x).numpy(), want, rtol=1e-6)


def test_state_dict_round_trip():
    a, b = Block(seed=0), Block(seed=1)
    x = np.array([[0, 1], [2, 3], [4, 4]])
    a(x)                                      # moves a's running statistics
    sd = a.state_dict()
    assert all(sd[n] is not t.data for n, t in a._named_tensors())  # copies ...
    sd["emb.weight"][:] = 0                   # ... so editing them does not touch the model
    assert a.emb.weight.numpy().any()
    sd = a.state_dict()
    b.load_state_dict(sd)
    for (n, ta), (_, tb) in zip(a._named_tensors(), b._named_tensors()):
        np.testing.assert_array_equal(ta.numpy(), tb.numpy(), err_msg=n)
        assert tb.data is not sd[n]           # loading copies too
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    # a float64 state dict loads into a float32 model as float32
    b.load_state_dict({k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in sd.items()})
    assert b.emb.weight.dtype == np.float32


def snapshot(m):
    return {n: t.numpy().copy() for n, t in m._named_tensors()}


def assert_unchanged(m, snap):
    for n, t in m._named_tensors():
        np.testing.assert_array_equal(t.numpy(), snap[n], err_msg=f"{n} was changed by a failed load")


def test_load_state_dict_mismatch_lists_everything_and_loads_nothing():
    a, b = Block(seed=0), Block(seed=1)
    snap = snapshot(b)
    sd = a.state_dict()
    del sd["bn.running_var"], sd["layers.0.bias"]
    sd["extra.weight"] = np.zeros(3, np.float32)
    sd["head.0.weight"] = np.zeros((5, 5), np.float32)
    with pytest.raises(ValueError) as e:
        b.load_state_dict(sd)
    msg = str(e.value)
    for piece in ("bn.running_var", "layers.0.bias", "extra.weight", "head.0.weight", "(5, 5)", "(2, 3)"):
        assert piece in msg, (piece, msg)
    assert_unchanged(b, snap)


def test_load_state_dict_failing_conversion_loads_nothing():
    a, b = Block(seed=0), Block(seed=1)
    snap = snapshot(b)
    sd = a.state_dict()
    sd["head.0.bias"] = np.array(["a", "b"])   # right shape, cannot become float: fails late
    with pytest.raises(ValueError):
        b.load_state_dict(sd)
    assert_unchanged(b, snap)


def test_repr_shows_layers_and_parameter_count():
    m = make_mlp()
    r = repr(m)
    assert r.startswith("Sequential(")
    for piece in ("(0): Embedding(27, 10)", "(1): Flatten()", "(2): Linear(30 → 64)", "(3): Tanh()",
                  "(4): Linear(64 → 27)"):
        assert piece in r, r
    n = 27 * 10 + 30 * 64 + 64 + 64 * 27 + 27
    assert m.num_parameters() == n == sum(p.numel() for p in make_torch_mlp().parameters())
    assert f"{n:,} parameters" in r
    assert "BatchNorm1d(64, eps=1e-05, momentum=0.1)" in repr(make_mlp(bn=True))
    assert "(layers.0): Linear(4 → 3)" in repr(Block())


def test_module_without_forward():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


# -- end to end -------------------------------------------------------------------------------------
def test_mlp_overfits_and_matches_torch_step_for_step():
    m, tm = make_mlp(np.float32), make_torch_mlp(np.float32)
    copy_into_torch(m, tm)
    rng = np.random.default_rng(1)
    X, Y = rng.integers(0, 27, (32, 3)), rng.integers(0, 27, 32)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    opt = optim.SGD(m.parameters(), lr=0.5)
    topt = torch.optim.SGD(tm.parameters(), lr=0.5)
    ours, theirs = [], []
    for _ in range(60):
        loss = nn.cross_entropy(m(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ours.append(loss.item())
        tloss = F.cross_entropy(tm(Xt), Yt)
        topt.zero_grad()
        tloss.backward()
        topt.step()
        theirs.append(tloss.item())
    assert ours[-1] < 0.5 < ours[0]
    np.testing.assert_allclose(ours, theirs, rtol=1.3e-6, atol=1e-5)
    tparams = dict(tm.named_parameters())
    for n, p in m.named_parameters():
        # 60 float32 SGD steps compound rounding differences a little beyond a single op's tolerance
        np.testing.assert_allclose(p.numpy(), tparams[n].detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=n)

"""layer_norm / LayerNorm and batch_norm / BatchNorm1d against gradcheck and torch, state dicts both ways."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from tinygrad_mm import Tape, Tensor, nn
from tinygrad_mm.nn import functional as tF

from ops_helpers import check_grad, check_torch
from nn_helpers import DTYPES, TORCH_DT, rnd, assert_close, module_parity, gradcheck_module


def torch_state(module):
    return {k: torch.from_numpy(np.asarray(v)) for k, v in module.state_dict().items()}


# -- layer_norm ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, normalized", [((4, 5), (5,)), ((2, 3, 4), (3, 4)), ((6,), (6,)),
                                               ((2, 3, 4), (4,))])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_matches_torch(shape, normalized, affine, dtype, device):
    x = rnd(*shape, seed=1, scale=3) + 2
    params = [rnd(*normalized, seed=2) + 1, rnd(*normalized, seed=3)][:{"both": 2, "weight": 1, "none": 0}[affine]]
    arrays = [a.astype(dtype) for a in [x, *params]]
    check_torch(lambda *t: tF.layer_norm(t[0], normalized, *t[1:], eps=1e-3),
                lambda *t: F.layer_norm(t[0], normalized, *t[1:], eps=1e-3), arrays, device=device)
    if dtype == np.float64:
        check_grad(lambda *t: tF.layer_norm(t[0], normalized, *t[1:]), [x, *params])


def test_layer_norm_bias_without_weight_and_errors():
    x, b = rnd(3, 4), rnd(4, seed=1)
    check_torch(lambda t, c: tF.layer_norm(t, (4,), None, c), lambda t, c: F.layer_norm(t, (4,), None, c), [x, b])
    with Tape() as tape:
        with pytest.raises(ValueError, match=r"expected input with shape \[\*, 5\], but got input of size\[3, 4\]"):
            tF.layer_norm(Tensor(x, requires_grad=True), [5])
        with pytest.raises(ValueError, match="Expected weight to be of same shape as normalized_shape"):
            tF.layer_norm(Tensor(x, requires_grad=True), 4, Tensor(np.ones(3)))
        assert len(tape) == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_layernorm_module_matches_torch(dtype):
    for args, kw in [((5,), {}), (((3, 5),), {"eps": 1e-3}), ((5,), {"bias": False}),
                     ((5,), {"elementwise_affine": False})]:
        ours = nn.LayerNorm(*args, **kw, dtype=dtype)
        theirs = torch.nn.LayerNorm(*args, **kw, dtype=TORCH_DT[dtype])
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
        with torch.no_grad():
            for p in theirs.parameters():
                p.uniform_(0.5, 1.5)
        ours.load_state_dict(torch_state_of(theirs))
        module_parity(ours, theirs, rnd(4, 3, 5, seed=7, dtype=dtype, scale=2), dtype, "cpu")
    assert repr(nn.LayerNorm(5)) == repr(torch.nn.LayerNorm(5))


def torch_state_of(theirs):
    return {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}


def _layer_norm_run(lib, x, w, b, v, dtype):
    mod, fn, wrap = (torch, F.layer_norm, torch.tensor) if lib == "torch" else (None, tF.layer_norm, Tensor)
    xt = wrap(x.astype(dtype), requires_grad=True)
    out = fn(xt, (x.shape[-1],), wrap(w.astype(dtype)), wrap(b.astype(dtype)))
    out.backward(wrap(v.astype(dtype)))
    return out.detach().numpy().astype(np.float64), xt.grad.numpy().astype(np.float64)


@given(n=st.integers(1, 5), c=st.integers(2, 6), seed=st.integers(0, 2**31), log_scale=st.floats(-2, 3))
def test_layer_norm_hypothesis_vs_torch(n, c, seed, log_scale):
    x = rnd(n, c, seed=seed % 10000, scale=10.0 ** log_scale) + 10.0 ** log_scale
    w, b, v = rnd(c, seed=1), rnd(c, seed=2), rnd(n, c, seed=3)
    check_torch(lambda *t: tF.layer_norm(t[0], (c,), *t[1:]), lambda *t: F.layer_norm(t[0], (c,), *t[1:]),
                [x, w, b])
    # float32: a row of 2 or 3 close values loses digits to cancellation (torch's own float32 gradient
    # is off by up to ~1e-2 there, against the float64 result), so measure both against float64:
    # ours may be off by at most twice torch's error, or by 1e-6 of the scale the rounding acts on
    # (forward: |x| * rstd * |w|; backward: rstd * |g w|). Float32 intermediates fail this in ~1 of
    # 500 cases (by ~40 ulps of that scale); Normalize computes in float64 and passes.
    truth = _layer_norm_run("torch", x, w, b, v, np.float64)
    ours, theirs = _layer_norm_run("ours", x, w, b, v, np.float32), _layer_norm_run("torch", x, w, b, v, np.float32)
    rstd = 1 / np.sqrt(x.var(axis=-1) + 1e-5).min()
    scales = (np.abs(x).max() * rstd * np.abs(w).max(), rstd * np.abs(v * w).max())
    for what, o, t, r, scale in zip(("forward", "grad"), ours, theirs, truth, scales):
        assert np.abs(o - r).max() <= max(2 * np.abs(t - r).max(), 1e-6 * scale), what


# -- batch_norm -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 5), (6, 5, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm1d_train_then_eval_matches_torch(shape, dtype, momentum, device):
    bn = nn.BatchNorm1d(5, momentum=momentum, dtype=dtype, device=device)
    tbn = torch.nn.BatchNorm1d(5, momentum=momentum, dtype=TORCH_DT[dtype])
    with torch.no_grad():
        tbn.weight.uniform_(0.5, 1.5)
        tbn.bias.uniform_(-1, 1)
    batches = [rnd(*shape, seed=s, dtype=dtype, scale=s + 1) + s for s in range(4)]
    module_parity(bn, tbn, batches, dtype, device, n_steps=4)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert_close(getattr(bn, name), getattr(tbn, name), dtype, name)
    assert int(bn.num_batches_tracked) == 4
    bn.eval()
    tbn.eval()
    module_parity(bn, tbn, rnd(3, *shape[1:], seed=9, dtype=dtype), dtype, device)
    assert int(bn.num_batches_tracked) == 4           # eval moves nothing


@pytest.mark.parametrize("affine, track, bias", [(False, True, True), (True, False, True), (False, False, True),
                                               (True, True, False)])
def test_batchnorm1d_affine_and_tracking_options(affine, track, bias):
    bn = nn.BatchNorm1d(4, affine=affine, track_running_stats=track, dtype=np.float64, bias=bias)
    tbn = torch.nn.BatchNorm1d(4, affine=affine, track_running_stats=track, dtype=torch.float64, bias=bias)
    assert repr(bn) == repr(tbn)
    assert list(bn.state_dict()) == list(tbn.state_dict())
    assert [n for n, _ in bn.named_parameters()] == [n for n, _ in tbn.named_parameters()]
    x = rnd(6, 4, 2, seed=3) * 2 + 1
    module_parity(bn, tbn, x, np.float64, "cpu")
    bn.eval()
    tbn.eval()
    module_parity(bn, tbn, rnd(5, 4, 2, seed=4), np.float64, "cpu")   # untracked: batch statistics still
    gradcheck_module(bn.train(), x)


def test_batchnorm_gradcheck_3d_train_and_eval():
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    bn.weight.data[:] = [0.5, 1.5, -2.0]
    bn.bias.data[:] = [0.1, 0.2, 0.3]
    gradcheck_module(bn, rnd(4, 3, 5, scale=2) + 1)
    bn.eval()
    gradcheck_module(bn, rnd(2, 3, 4, seed=1))


@pytest.mark.parametrize("training", [True, False])
def test_functional_batch_norm_matches_torch(training):
    x, rm, rv = rnd(6, 3, 4, seed=1) + 1, rnd(3, seed=2), np.abs(rnd(3, seed=3)) + 0.5
    w, b = rnd(3, seed=4), rnd(3, seed=5)
    ours_rm, ours_rv = Tensor(rm.copy()), Tensor(rv.copy())
    theirs_rm, theirs_rv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    check_torch(lambda a, c, d: tF.batch_norm(a, ours_rm, ours_rv, c, d, training, 0.3, 1e-3),
                lambda a, c, d: F.batch_norm(a, theirs_rm, theirs_rv, c, d, training, 0.3, 1e-3), [x, w, b])
    np.testing.assert_allclose(ours_rm.numpy(), theirs_rm.numpy(), rtol=1e-12)   # moved in place, as torch
    np.testing.assert_allclose(ours_rv.numpy(), theirs_rv.numpy(), rtol=1e-12)
    assert training != np.allclose(ours_rm.numpy(), rm)


def test_batchnorm_errors_leave_state_unchanged():
    bn = nn.BatchNorm1d(4)
    before = {k: v.copy() for k, v in bn.state_dict().items()}
    with Tape() as tape:
        with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
            bn(Tensor(np.zeros((1, 4), np.float32), requires_grad=True))
        with pytest.raises(ValueError, match="expected 2D or 3D input"):
            bn(Tensor(np.zeros((2, 4, 1, 1), np.float32)))
        with pytest.raises(ValueError, match=r"\(N, 4\)"):
            bn(Tensor(np.zeros((3, 5), np.float32)))
        assert len(tape) == 0
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    bn.eval()
    bn(Tensor(np.zeros((1, 4), np.float32)))          # one row is fine in eval mode
    with pytest.raises(ValueError, match="evaluation mode"):
        tF.batch_norm(Tensor(np.zeros((2, 4))), None, None)


def test_batchnorm_state_dict_ports_both_ways_strictly():
    ours = nn.Sequential(nn.Linear(6, 5, dtype=np.float64), nn.BatchNorm1d(5, dtype=np.float64), nn.Tanh(),
                         nn.LayerNorm(5, dtype=np.float64), nn.Linear(5, 3, dtype=np.float64))
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.Tanh(),
                                 torch.nn.LayerNorm(5), torch.nn.Linear(5, 3)).double()
    for s in range(3):                                  # move the running statistics and the counter
        ours(Tensor(rnd(8, 6, seed=s) + s))
    theirs.load_state_dict(torch_state(ours), strict=True)
    ours.eval()
    theirs.eval()
    x = rnd(4, 6, seed=11)
    assert_close(ours(Tensor(x)), theirs(torch.from_numpy(x)), np.float64, "ours -> torch")
    theirs.train()
    theirs(torch.from_numpy(rnd(8, 6, seed=12)))        # torch moves on; port back
    back = nn.Sequential(nn.Linear(6, 5, dtype=np.float64), nn.BatchNorm1d(5, dtype=np.float64), nn.Tanh(),
                         nn.LayerNorm(5, dtype=np.float64), nn.Linear(5, 3, dtype=np.float64))
    back.load_state_dict(theirs.state_dict())
    assert int(back[1].num_batches_tracked) == 4 and back[1].num_batches_tracked.dtype == np.int64
    back.eval()
    theirs.eval()
    assert_close(back(Tensor(x)), theirs(torch.from_numpy(x)), np.float64, "torch -> ours")

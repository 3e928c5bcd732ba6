"""Module: parameters, modes, devices and dtypes, state dicts that never half-load, repr; and an end-to-end fit."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tinygrad_mm as tg
from tinygrad_mm import Tensor, nn, optim

from nn_helpers import make_mlp, make_torch_mlp, copy_into_torch


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
    assert [n for n, _ in m.named_buffers()] == ["scale", "count", "bn.running_mean", "bn.running_var",
                                                  "bn.num_batches_tracked"]
    assert list(m.state_dict()) == ["scale", "count"] + PARAM_NAMES[:4] + [
        "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "head.0.weight",
        "head.0.bias"]
    assert m.num_parameters() == 10 + 15 + 9 + 6 + 8
    assert len(m.modules()) == 1 + 1 + 3 + 1 + 1 + 1


def test_sequential_names_like_torch():
    m, tm = make_mlp(bn=True), make_torch_mlp(bn=True)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(m.state_dict()) == list(tm.state_dict())
    assert [tuple(p.shape) for p in m.parameters()] == [tuple(p.shape) for p in tm.parameters()]


def test_shared_parameter_listed_once():
    a = nn.Linear(3, 3)
    m = nn.Sequential(a, nn.Tanh(), a)        # the same layer twice (tied weights)
    assert len(m.parameters()) == len(list(torch.nn.Sequential(
        tl := torch.nn.Linear(3, 3), torch.nn.Tanh(), tl).parameters())) == 2
    w0 = a.weight.detach().numpy().copy()
    opt = optim.SGD(m.parameters(), lr=0.1)
    m(Tensor(np.ones((1, 3), np.float32))).sum().backward()
    g = a.weight.grad.array.copy()
    opt.step()                                # one update, not two
    np.testing.assert_allclose(a.weight.detach().numpy(), w0 - 0.1 * g, rtol=1e-6)


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
    assert all(t.dtype == np.float64 for n, t in after.items() if n not in ("count", "bn.num_batches_tracked"))
    assert m.count.dtype == m.bn.num_batches_tracked.dtype == np.int64   # integer buffers are not converted
    assert all(p.grad is None for p in m.parameters())
    x = np.array([[0, 1], [2, 3]])
    w0 = m.layers[0].weight.detach().numpy().copy()
    (m(x) ** 2).sum().backward()   # not m(x).sum(): through the BatchNorm its gradient is exactly 0
    opt.step()
    assert m.layers[0].weight.dtype == np.float64 and not np.array_equal(m.layers[0].weight.detach().numpy(), w0)
    m.float()
    assert all(after[n] is t for n, t in m._named_tensors()) and m.emb.weight.dtype == np.float32
    m.to(device="cpu")
    with pytest.raises(ValueError, match="unknown device"):
        m.to(device="tpu")


def test_to_cuda_and_back(device):
    m = Block()
    x = np.array([[0, 1], [2, 3]])
    want = m(x).detach().numpy()
    ids = [id(t) for _, t in m._named_tensors()]
    m.to(device)
    assert all(t.device == device for _, t in m._named_tensors())
    assert [id(t) for _, t in m._named_tensors()] == ids
    np.testing.assert_allclose(m(x).detach().numpy(), want, rtol=1e-6)


def test_state_dict_round_trip():
    a, b = Block(seed=0), Block(seed=1)
    x = np.array([[0, 1], [2, 3], [4, 4]])
    a(x)                                      # moves a's running statistics
    sd = a.state_dict()
    assert all(sd[n] is not t.data for n, t in a._named_tensors())  # copies ...
    sd["emb.weight"][:] = 0                   # ... so editing them does not touch the model
    assert a.emb.weight.detach().numpy().any()
    sd = a.state_dict()
    b.load_state_dict(sd)
    for (n, ta), (_, tb) in zip(a._named_tensors(), b._named_tensors()):
        np.testing.assert_array_equal(ta.detach().numpy(), tb.detach().numpy(), err_msg=n)
        assert tb.data is not sd[n]           # loading copies too
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # a float64 state dict loads into a float32 model as float32
    b.load_state_dict({k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in sd.items()})
    assert b.emb.weight.dtype == np.float32


def snapshot(m):
    return {n: t.detach().numpy().copy() for n, t in m._named_tensors()}


def assert_unchanged(m, snap):
    for n, t in m._named_tensors():
        np.testing.assert_array_equal(t.detach().numpy(), snap[n], err_msg=f"{n} was changed by a failed load")


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
    assert f"(3): {torch.nn.BatchNorm1d(64)!r}" in repr(make_mlp(bn=True))    # torch's own wording
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
        np.testing.assert_allclose(p.detach().numpy(), tparams[n].detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=n)


# -- torch semantics: modes, traversal, state dicts that port both ways ------------------------------------
def test_train_eval_switch_dropout_and_batchnorm_as_torch():
    m = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5), nn.ReLU())
    tm = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Dropout(0.5), torch.nn.ReLU())
    assert m.training and all(mod.training for mod in m.modules())
    x = Tensor(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    assert not np.array_equal(m(x).detach().numpy(), m(x).detach().numpy())   # dropout draws afresh
    m.eval()
    tm.eval()
    assert [mod.training for mod in m.modules()] == [mod.training for mod in tm.modules()]
    copy_into_torch(m, tm)
    np.testing.assert_allclose(m(x).detach().numpy(), tm(torch.from_numpy(x.numpy())).detach().numpy(),
                               rtol=1.3e-6, atol=1e-5)
    np.testing.assert_array_equal(m(x).detach().numpy(), m(x).detach().numpy())   # eval: deterministic
    with pytest.raises(ValueError, match="boolean"):
        m.train("yes")


def test_traversal_names_as_torch():
    m, tm = make_mlp(bn=True), make_torch_mlp(bn=True)
    assert [n for n, _ in m.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [type(c).__name__ for c in m.children()] == [type(c).__name__ for c in tm.children()]
    assert [tuple(b.shape) for b in m.buffers()] == [tuple(b.shape) for b in tm.buffers()]
    assert m.parameters(recurse=False) == [] and len(m[2].parameters(recurse=False)) == 2
    shared = nn.Linear(2, 2)
    assert len(nn.Sequential(shared, nn.Tanh(), shared).modules()) == 3        # listed once, as torch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_ports_into_torch_and_back_strictly(dtype):
    ours, theirs = make_mlp(dtype, bn=True), make_torch_mlp(dtype, bn=True)
    X = np.random.default_rng(1).integers(0, 27, size=(16, 3))
    for _ in range(3):                                   # move BatchNorm's statistics and counter
        ours(X)
    sd = ours.state_dict()
    assert list(sd) == list(theirs.state_dict())
    result = theirs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ours.eval()
    theirs.eval()
    Xe = np.random.default_rng(2).integers(0, 27, size=(5, 3))
    tol = dict(rtol=1e-7, atol=1e-7) if dtype == np.float64 else dict(rtol=1.3e-6, atol=1e-5)
    np.testing.assert_allclose(ours(Xe).detach().numpy(), theirs(torch.from_numpy(Xe)).detach().numpy(), **tol)
    theirs.train()
    theirs(torch.from_numpy(X))                          # torch trains on: its state comes back to us
    back = make_mlp(dtype, seed=9, bn=True)
    assert back.load_state_dict(theirs.state_dict()) == ([], [])
    assert int(back[3].num_batches_tracked) == 4
    back.eval()
    theirs.eval()
    np.testing.assert_allclose(back(Xe).detach().numpy(), theirs(torch.from_numpy(Xe)).detach().numpy(), **tol)


def test_load_state_dict_not_strict_reports_keys_and_loads_the_rest():
    m = make_mlp(bn=True)
    sd = m.state_dict()
    del sd["3.num_batches_tracked"]
    sd["extra"] = np.zeros(2)
    w = sd["0.weight"] = np.ones_like(sd["0.weight"])
    with pytest.raises(ValueError, match="missing: 3.num_batches_tracked | unexpected: extra"):
        m.load_state_dict(sd)
    assert not np.array_equal(m[0].weight.detach().numpy(), w)
    assert m.load_state_dict(sd, strict=False) == (["3.num_batches_tracked"], ["extra"])
    np.testing.assert_array_equal(m[0].weight.detach().numpy(), w)
    sd["0.weight"] = np.ones((3, 3))
    with pytest.raises(ValueError, match="shape mismatch"):      # a wrong shape is never loaded
        m.load_state_dict(sd, strict=False)

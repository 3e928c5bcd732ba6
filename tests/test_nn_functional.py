"""nn.functional layer functions and activations (relu, tanh, sigmoid, linear, embedding, one_hot,
dropout) and their modules, against gradcheck and torch."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

import tinygrad_mm as tg
from tinygrad_mm import Tape, Tensor, nn
from tinygrad_mm.nn import functional as tF

from ops_helpers import away_from_zero, check_grad, check_torch
from nn_helpers import DTYPES, TORCH_DT, rnd, module_parity


# -- activations ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_match_torch(name, dtype, device):
    x = away_from_zero(5, 4, seed=1) * 4
    check_torch(getattr(tF, name), getattr(F, name), [x.astype(dtype)], device=device)
    check_grad(getattr(tF, name), [x])


@given(scale=st.floats(-2, 3), seed=st.integers(0, 2**31))
def test_sigmoid_hypothesis_and_extremes(scale, seed):
    x = rnd(20, seed=seed % 1000, scale=10.0 ** scale)
    for dtype in DTYPES:
        check_torch(tF.sigmoid, torch.sigmoid, [x.astype(dtype)])
    big = np.array([-1e4, -800.0, -80.0, 0.0, 80.0, 800.0, 1e4, np.inf, -np.inf, np.nan], np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):   # no overflow warnings on the way
        out = tF.sigmoid(Tensor(big)).numpy()
    np.testing.assert_array_equal(out, torch.sigmoid(torch.from_numpy(big)).numpy())


def test_activation_modules_and_integer_inputs():
    x = away_from_zero(3, 4)
    for ours, theirs in [(nn.ReLU(), torch.nn.ReLU()), (nn.Tanh(), torch.nn.Tanh()),
                         (nn.Sigmoid(), torch.nn.Sigmoid()), (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
                         (nn.LogSoftmax(dim=0), torch.nn.LogSoftmax(dim=0))]:
        module_parity(ours, theirs, x, np.float64, "cpu")
        assert type(ours).__name__ == type(theirs).__name__
    i = np.array([-2, 0, 3])
    for name, module in (("relu", "ReLU"), ("tanh", "Tanh"), ("sigmoid", "Sigmoid")):
        ours, theirs = getattr(tF, name)(Tensor(i)), getattr(F, name)(torch.from_numpy(i))
        assert ours.dtype == theirs.numpy().dtype
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
        ours, theirs = getattr(nn, module)()(Tensor(i)), getattr(torch.nn, module)()(torch.from_numpy(i))
        assert ours.dtype == theirs.numpy().dtype


def test_relu_inplace_as_torch():
    x = Tensor(away_from_zero(3, 4), requires_grad=True)
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    h, ht = x * 2, xt * 2
    out, tout = tF.relu(h, inplace=True), F.relu(ht, inplace=True)
    assert out is h and tout is ht
    np.testing.assert_array_equal(h.detach().numpy(), ht.detach().numpy())
    v = rnd(3, 4, seed=2)
    (out * Tensor(v)).sum().backward()
    (tout * torch.from_numpy(v)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        nn.ReLU(inplace=True)(x)
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"


# -- linear -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_matches_torch(dtype, device):
    x, w, b = rnd(5, 3, dtype=dtype), rnd(4, 3, seed=1, dtype=dtype), rnd(4, seed=2, dtype=dtype)
    check_torch(tF.linear, F.linear, [x, w, b], device=device)
    check_torch(tF.linear, F.linear, [rnd(2, 5, 3, dtype=dtype), w], device=device)
    check_torch(tF.linear, F.linear, [x, w[0]], device=device)       # a 1-D weight (torch: then no bias)
    check_torch(tF.linear, F.linear, [x[0], w, b], device=device)    # a 1-D input
    check_grad(tF.linear, [rnd(5, 3), rnd(4, 3, seed=1), rnd(4, seed=2)])


@pytest.mark.parametrize("n_in, n_out, batch", [(0, 3, 4), (3, 0, 4), (3, 2, 0), (0, 0, 2)])
def test_linear_with_size_zero_dims_as_torch(n_in, n_out, batch):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lin = nn.Linear(n_in, n_out, dtype=np.float64)
    # torch warns once, for the weight: kaiming_uniform_ of a zero-element tensor is a no-op
    assert [str(w.message) for w in caught] == ["Initializing zero-element tensors is a no-op"] * (0 in (n_in, n_out))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # torch's own zero-element warning
        tlin = torch.nn.Linear(n_in, n_out, dtype=torch.float64)
    assert lin.weight.shape == tuple(tlin.weight.shape) and lin.bias.shape == tuple(tlin.bias.shape)
    if n_in == 0:   # bound 1/sqrt(0) is taken as 0, as torch: the bias starts at zero
        np.testing.assert_array_equal(lin.bias.detach().numpy(), 0)
    module_parity(lin, tlin, rnd(batch, n_in), np.float64, "cpu")


# -- embedding ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1])
@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_padding_idx_matches_torch(padding_idx, dtype, device):
    emb = nn.Embedding(7, 3, padding_idx=padding_idx, generator=tg.Generator(0), dtype=dtype, device=device)
    temb = torch.nn.Embedding(7, 3, padding_idx=padding_idx, dtype=TORCH_DT[dtype])
    if padding_idx is not None:   # initialized to zero there, as torch
        assert emb.padding_idx == temb.padding_idx
        np.testing.assert_array_equal(emb.weight.detach().numpy()[padding_idx], 0)
    idx = np.array([[0, 3, 3, 6], [6, 0, 1, 0]])
    module_parity(emb, temb, idx, dtype, device)
    if padding_idx is not None:   # the padding row is read but gets no gradient
        np.testing.assert_array_equal(emb.weight.grad.numpy()[padding_idx], 0)
    assert ("padding_idx" in repr(emb)) == (padding_idx is not None)


def test_embedding_functional_options_match_torch():
    w = rnd(6, 4, seed=3) * 2
    idx = np.array([[1, 2, 2], [5, 1, 1]])
    it = torch.from_numpy(idx)
    check_torch(lambda W: tF.embedding(idx, W, padding_idx=2, scale_grad_by_freq=True),
                lambda W: F.embedding(it, W, padding_idx=2, scale_grad_by_freq=True), [w])
    # the padding row is read but gets no gradient, so gradcheck (which differentiates) skips it
    check_grad(lambda W: tF.embedding(idx, W, padding_idx=0), [w])
    for norm_type in (2.0, 1.0):   # max_norm renormalizes the looked-up rows in place, as torch
        ours, theirs = Tensor(w), torch.from_numpy(w.copy())
        out = tF.embedding(idx, ours, max_norm=1.5, norm_type=norm_type)
        tout = F.embedding(it, theirs, max_norm=1.5, norm_type=norm_type)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
        np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-12)
        assert not np.allclose(ours.numpy(), w)


def test_embedding_refuses_bad_ids_and_arguments():
    w = Tensor(rnd(5, 2), requires_grad=True)
    with Tape() as tape:
        for bad in ([0, -1], [5], [[1, 7]]):
            with pytest.raises(IndexError, match="out of range"):
                tF.embedding(np.array(bad), w)
        with pytest.raises(TypeError, match="integers"):
            tF.embedding(np.array([0.0, 1.0]), w)
        with pytest.raises(ValueError, match="Padding_idx must be within num_embeddings"):
            tF.embedding(np.array([0]), w, padding_idx=5)
        with pytest.raises(ValueError, match="Padding_idx"):
            nn.Embedding(5, 2, padding_idx=-6)
        with pytest.raises(NotImplementedError, match="sparse"):
            nn.Embedding(5, 2, sparse=True)
        assert len(tape) == 0


def test_embedding_from_pretrained_and_weight_sharing():
    table = Tensor(rnd(4, 3))
    frozen = nn.Embedding.from_pretrained(table)
    assert frozen.weight.array is table.array and frozen.parameters() == []
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    assert trainable.parameters() == [trainable.weight] and trainable.padding_idx == 1
    np.testing.assert_array_equal(frozen(np.array([2, 0])).numpy(), table.numpy()[[2, 0]])


# -- one_hot ------------------------------------------------------------------------------------------
@given(shape=st.lists(st.integers(0, 4), max_size=3), c=st.integers(1, 6), seed=st.integers(0, 100))
def test_one_hot_matches_torch(shape, c, seed):
    idx = np.random.default_rng(seed).integers(0, c, size=shape)
    for n in (c, c + 2) + ((-1,) if idx.size else ()):
        ours, theirs = tF.one_hot(Tensor(idx), n), F.one_hot(torch.from_numpy(idx), n)
        assert ours.dtype == np.int64 and ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert tF.one_hot(Tensor(idx), c).float().dtype == np.float32   # F.one_hot(xs, 27).float()


def test_one_hot_errors_as_torch():
    with pytest.raises(TypeError, match="LongTensor"):
        tF.one_hot(Tensor(np.array([1, 2], np.int32)))
    with pytest.raises(ValueError, match="non-negative"):
        tF.one_hot(Tensor(np.array([-1, 2])))
    with pytest.raises(ValueError, match="smaller than num_classes"):
        tF.one_hot(Tensor(np.array([5])), 3)
    with pytest.raises(ValueError, match="empty tensor"):
        tF.one_hot(Tensor(np.zeros(0, np.int64)))


# -- dropout ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_is_the_mask_torch_draws(p, dtype):
    # torch's CPU dropout keeps entry i when u_i < 1 - p, u = rand(float64) from the default generator,
    # and scales by 1 / (1 - p) in the input's dtype: check that torch does so, then that we do so with
    # our generator's draws (so equal generators give bit-identical dropout)
    x = rnd(300, 7, dtype=dtype)
    state = torch.get_rng_state()
    tout = F.dropout(torch.from_numpy(x), p)
    torch.set_rng_state(state)
    keep = torch.rand(x.shape, dtype=torch.float64) < 1 - p
    assert torch.equal(tout, torch.from_numpy(x) * (keep.to(TORCH_DT[dtype]) / (1 - p)))
    tg.manual_seed(123)
    u = tg.rand(*x.shape, dtype=np.float64).numpy()
    noise = (u < 1 - p).astype(dtype) / dtype(1 - p)
    np.testing.assert_array_equal(noise, (torch.from_numpy(u < 1 - p).to(TORCH_DT[dtype]) / (1 - p)).numpy())
    tg.manual_seed(123)
    xt = Tensor(x, requires_grad=True)
    out = tF.dropout(xt, p)
    np.testing.assert_array_equal(out.detach().numpy(), x * noise)
    v = rnd(300, 7, seed=1, dtype=dtype)
    out.backward(Tensor(v))
    np.testing.assert_array_equal(xt.grad.numpy(), v * noise)
    assert abs((out.detach().numpy() == 0).mean() - p) < 0.05


def test_dropout_edge_cases_and_module():
    x = Tensor(rnd(4, 5), requires_grad=True)
    assert tF.dropout(x, 0.5, training=False) is x and tF.dropout(x, 0.0) is x
    z = tF.dropout(x, 1.0)
    np.testing.assert_array_equal(z.detach().numpy(), 0)
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        tF.dropout(x, 1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(-0.1)
    d = nn.Dropout(0.3)
    assert repr(d) == "Dropout(p=0.3, inplace=False)"
    assert d.eval()(x) is x and d.train()(x) is not x
    h = x * 1
    tg.manual_seed(5)
    want = tF.dropout(h, 0.3).detach().numpy()
    tg.manual_seed(5)
    assert nn.Dropout(0.3, inplace=True)(h) is h
    np.testing.assert_array_equal(h.detach().numpy(), want)

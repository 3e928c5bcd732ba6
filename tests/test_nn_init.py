"""nn.init: in place, unrecorded but version-logged, torch's formulas and signatures; Linear/Embedding init."""
import inspect
import math
import re
import warnings

import numpy as np
import pytest
import torch

import tinygrad_mm as tg
from tinygrad_mm import Tape, Tensor, nn
from tinygrad_mm.nn import init

FILLS = ["uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_"]


def fresh(*shape, dtype=np.float32, device="cpu"):
    return tg.zeros(*shape, dtype=dtype, device=device, requires_grad=True)


@pytest.mark.parametrize("name", FILLS + ["constant_", "zeros_", "ones_", "calculate_gain"])
def test_signatures_are_torchs(name):
    ours, theirs = inspect.signature(getattr(init, name)), inspect.signature(getattr(torch.nn.init, name))
    assert [(p.name, p.default) for p in ours.parameters.values()] == \
           [(p.name, p.default) for p in theirs.parameters.values()]


@pytest.mark.parametrize("name", FILLS)
def test_fills_in_place_unrecorded_and_seeded(name, device):
    w = fresh(30, 20, device=device)
    array = w.array
    with Tape() as tape:
        out = getattr(init, name)(w, generator=tg.Generator(3))
    assert out is w and w.array is array and len(tape) == 0 and w.requires_grad and w.is_leaf
    again = getattr(init, name)(fresh(30, 20, device=device), generator=tg.Generator(3))
    np.testing.assert_array_equal(again.detach().numpy(), w.detach().numpy())
    assert w.detach().numpy().std() > 0 and w.dtype == np.float32
    tg.manual_seed(11)
    a = getattr(init, name)(fresh(5, 4)).detach().numpy().copy()
    tg.manual_seed(11)
    np.testing.assert_array_equal(getattr(init, name)(fresh(5, 4)).detach().numpy(), a)   # default generator


def test_init_after_use_invalidates_the_saved_values_as_torch():
    w, x = fresh(3, 3, dtype=np.float64), Tensor(np.ones((3, 3)), requires_grad=True)
    loss = (w * x).sum()          # Mul saved w for x's gradient
    init.normal_(w)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    tw, tx = torch.zeros(3, 3, requires_grad=True), torch.ones(3, 3, requires_grad=True)
    tloss = (tw * tx).sum()
    torch.nn.init.normal_(tw)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tloss.backward()


@pytest.mark.parametrize("shape", [(40, 30), (20, 6, 3, 3), (500, 2)])
@pytest.mark.parametrize("kw", [{}, {"a": math.sqrt(5)}, {"mode": "fan_out", "nonlinearity": "relu"},
                                {"nonlinearity": "tanh"}, {"a": 0.2, "mode": "FAN_IN"}])
def test_kaiming_draws_torchs_bounds(shape, kw):
    # the fan and gain come out as torch's: kaiming_uniform_ is uniform_ on torch's bound, kaiming_normal_
    # normal_ with torch's std (equal generators give equal values)
    t = torch.empty(shape)
    fan = torch.nn.init._calculate_correct_fan(t, kw.get("mode", "fan_in"))
    gain = torch.nn.init.calculate_gain(kw.get("nonlinearity", "leaky_relu"), kw.get("a", 0))
    std = gain / math.sqrt(fan)
    want_u = init.uniform_(fresh(*shape), -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator=tg.Generator(0))
    want_n = init.normal_(fresh(*shape), 0.0, std, generator=tg.Generator(0))
    got_u = init.kaiming_uniform_(fresh(*shape), **kw, generator=tg.Generator(0))
    got_n = init.kaiming_normal_(fresh(*shape), **kw, generator=tg.Generator(0))
    np.testing.assert_array_equal(got_u.detach().numpy(), want_u.detach().numpy())
    np.testing.assert_array_equal(got_n.detach().numpy(), want_n.detach().numpy())
    ref = torch.nn.init.kaiming_uniform_(torch.empty(shape), **kw).numpy()    # same law: range and spread
    bound = math.sqrt(3.0) * std
    assert np.abs(got_u.detach().numpy()).max() <= bound and np.abs(ref).max() <= bound
    assert abs(got_u.detach().numpy().std() - ref.std()) < 0.1 * ref.std()


@pytest.mark.parametrize("shape", [(40, 30), (20, 6, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_xavier_draws_torchs_bounds(shape, gain):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    want_u = init.uniform_(fresh(*shape), -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator=tg.Generator(1))
    want_n = init.normal_(fresh(*shape), 0.0, std, generator=tg.Generator(1))
    np.testing.assert_array_equal(init.xavier_uniform_(fresh(*shape), gain, tg.Generator(1)).detach().numpy(),
                                  want_u.detach().numpy())
    np.testing.assert_array_equal(init.xavier_normal_(fresh(*shape), gain, tg.Generator(1)).detach().numpy(),
                                  want_n.detach().numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_and_normal_laws(dtype):
    u = init.uniform_(fresh(200, 500, dtype=dtype), -2.0, 3.0, generator=tg.Generator(0)).detach().numpy()
    assert u.dtype == dtype and u.min() >= -2.0 and u.max() < 3.0
    assert abs(u.mean() - 0.5) < 0.02 and abs(u.std() - 5 / math.sqrt(12)) < 0.02
    n = init.normal_(fresh(200, 500, dtype=dtype), 1.5, 0.25, generator=tg.Generator(0)).detach().numpy()
    assert abs(n.mean() - 1.5) < 0.005 and abs(n.std() - 0.25) < 0.005
    c = init.constant_(fresh(3, dtype=dtype), 0.7).detach().numpy()
    np.testing.assert_array_equal(c, np.full(3, 0.7, dtype))
    np.testing.assert_array_equal(init.ones_(fresh(2, 2)).detach().numpy(), 1)
    np.testing.assert_array_equal(init.zeros_(Tensor(np.ones(2))).numpy(), 0)
    np.testing.assert_array_equal(init.constant_(Tensor(np.zeros(2, np.int64)), 3).numpy(), [3, 3])


def test_calculate_gain_as_torch():
    for args in [("linear",), ("conv2d",), ("sigmoid",), ("tanh",), ("relu",), ("leaky_relu",),
                 ("leaky_relu", 0.2), ("leaky_relu", 3), ("selu",)]:
        assert init.calculate_gain(*args) == torch.nn.init.calculate_gain(*args)
    for bad in [("swish",), ("leaky_relu", True), ("leaky_relu", "0.1")]:
        with pytest.raises(ValueError) as theirs:
            torch.nn.init.calculate_gain(*bad)
        with pytest.raises(ValueError, match=re.escape(str(theirs.value))):
            init.calculate_gain(*bad)


def test_errors_and_zero_element_warnings_as_torch():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.kaiming_uniform_(fresh(5))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_normal_(fresh(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_normal_(fresh(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="from=1 > to=0"):
        init.uniform_(fresh(3), 1, 0)
    with pytest.raises(ValueError, match="std >= 0.0"):
        init.normal_(fresh(3), 0, -1)
    with pytest.raises(TypeError, match="floating point"):
        init.normal_(Tensor(np.zeros(3, np.int64)))
    with pytest.raises(TypeError, match="takes a Tensor"):
        init.uniform_(np.zeros(3))
    for fn in (init.kaiming_uniform_, init.kaiming_normal_):
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            assert fn(fresh(0, 3)).shape == (0, 3)


def test_linear_and_embedding_initialize_through_init_as_torch():
    lin = nn.Linear(30, 20, generator=tg.Generator(4))
    g = tg.Generator(4)                       # weight first, then bias, from one stream (torch's order)
    w = init.kaiming_uniform_(fresh(20, 30), a=math.sqrt(5), generator=g)
    b = init.uniform_(fresh(20), -1 / math.sqrt(30), 1 / math.sqrt(30), generator=g)
    np.testing.assert_array_equal(lin.weight.detach().numpy(), w.detach().numpy())
    np.testing.assert_array_equal(lin.bias.detach().numpy(), b.detach().numpy())
    emb = nn.Embedding(10, 4, padding_idx=2, generator=tg.Generator(5))
    want = init.normal_(fresh(10, 4), generator=tg.Generator(5)).detach().numpy()
    want[2] = 0
    np.testing.assert_array_equal(emb.weight.detach().numpy(), want)
    lin.reset_parameters(tg.Generator(4))     # re-initialization through the public API
    np.testing.assert_array_equal(lin.weight.detach().numpy(), w.detach().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.Linear(3, 2)                       # no warning for an ordinary layer


# -- the draws: bit for bit torch's, given the same seed ----------------------------------------------------
@pytest.mark.parametrize("n", [1, 5, 15, 16, 17, 300])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_and_normal_draw_what_torch_draws(n, dtype):
    td = torch.float32 if dtype == np.float32 else torch.float64
    a, b, mean, std = -0.3, 0.7, 0.5, 2.0
    g = torch.Generator().manual_seed(7)
    ours = tg.Generator().manual_seed(7)
    for _ in range(2):  # twice: the generator states advance alike
        want = torch.empty(n, dtype=td).uniform_(a, b, generator=g).numpy()
        np.testing.assert_array_equal(init.uniform_(fresh(n, dtype=dtype), a, b, ours).detach().numpy(), want)
        want = torch.empty(n, dtype=td).normal_(mean, std, generator=g).numpy()
        np.testing.assert_array_equal(init.normal_(fresh(n, dtype=dtype), mean, std, ours).detach().numpy(), want)

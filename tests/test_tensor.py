"""Tests for Tensor and creation: dtypes, generators, properties, repr, constants, and makemore's idioms."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_mm as tg
from tinygrad_mm import Tape, Tensor

torch = pytest.importorskip("torch")


# -- creation --------------------------------------------------------------------------------

def test_tensor_default_dtypes():
    assert tg.tensor([1.0, 2.0]).dtype == np.float32
    assert tg.tensor(2.5).dtype == np.float32
    assert tg.tensor([1, 2]).dtype == np.int64
    assert tg.tensor(3).dtype == np.int64
    assert tg.tensor([[1, 2.5]]).dtype == np.float32
    assert tg.tensor([True, False]).dtype == np.bool_
    assert tg.tensor([1.0], dtype=np.float64).dtype == np.float64
    assert tg.tensor([1, 2], dtype=np.float32).dtype == np.float32
    # arrays keep their dtype: float64 is supported, not downcast
    assert tg.tensor(np.arange(3.0)).dtype == np.float64
    assert tg.tensor(np.arange(3, dtype=np.int32)).dtype == np.int32
    with pytest.raises(TypeError, match="cannot make a tensor"):
        tg.tensor(["a"])


def test_tensor_copies_its_data():
    a = np.ones(3)
    t = tg.tensor(a)
    a[0] = 5.0
    np.testing.assert_array_equal(t.data, [1.0, 1.0, 1.0])
    u = tg.tensor(t)
    assert u.data is not t.data and u.dtype == t.dtype


@pytest.mark.parametrize("make", [tg.zeros, tg.ones, tg.randn, tg.rand])
def test_float_factories(make):
    t = make(2, 3)
    assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == "cpu" and not t.requires_grad
    assert make((2, 3)).shape == (2, 3) and make([4]).shape == (4,)
    d = make(2, dtype=np.float64, requires_grad=True)
    assert d.dtype == np.float64 and d.requires_grad and d.is_leaf


def test_factory_values():
    np.testing.assert_array_equal(tg.zeros(2, 2).data, np.zeros((2, 2)))
    np.testing.assert_array_equal(tg.ones(3).data, np.ones(3))
    r = tg.rand(1000, generator=tg.Generator(0)).detach().numpy()
    assert r.min() >= 0 and r.max() < 1
    n = tg.randn(10000, generator=tg.Generator(0), dtype=np.float64).detach().numpy()
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05
    x = tg.tensor([[1.0, 2.0]], dtype=np.float64)
    for like, v in ((tg.zeros_like, 0), (tg.ones_like, 1)):
        t = like(x, requires_grad=True)
        assert t.shape == (1, 2) and t.dtype == np.float64 and t.requires_grad and (t.detach().numpy() == v).all()


def test_randint():
    t = tg.randint(0, 27, (32, 3), generator=tg.Generator(1))
    assert t.shape == (32, 3) and t.dtype == np.int64
    assert t.detach().numpy().min() >= 0 and t.detach().numpy().max() < 27
    assert tg.randint(5, 6, 4).tolist() == [5, 5, 5, 5]
    assert tg.randint(0, 2, (3,)).shape == (3,)


def test_arange():
    a = tg.arange(5)
    assert a.dtype == np.int64 and a.tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(2, 10, 3).tolist() == [2, 5, 8]
    f = tg.arange(0.0, 1.0, 0.25)
    assert f.dtype == np.float32 and f.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert tg.arange(3, dtype=np.float64).dtype == np.float64


def test_seeded_generator_is_reproducible():
    a = tg.randn(3, 4, generator=tg.Generator(42))
    b = tg.randn(3, 4, generator=tg.Generator(42))
    c = tg.randn(3, 4, generator=tg.Generator(43))
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    g = tg.Generator(7)
    first = [tg.randn(2, generator=g).detach().numpy(), tg.randint(0, 100, 5, generator=g).detach().numpy()]
    g.manual_seed(7)
    np.testing.assert_array_equal(tg.randn(2, generator=g).detach().numpy(), first[0])
    np.testing.assert_array_equal(tg.randint(0, 100, 5, generator=g).detach().numpy(), first[1])
    # float32 and float64 draws from one seed are the same numbers (float32 rounded)
    np.testing.assert_array_equal(tg.randn(5, generator=tg.Generator(3), dtype=np.float64).detach().numpy().astype(np.float32),
                                  tg.randn(5, generator=tg.Generator(3)).detach().numpy())


def test_generator_state_round_trip():
    g = tg.Generator(123)
    tg.randn(10, generator=g)
    state = g.get_state()
    assert isinstance(state, np.ndarray) and state.dtype == np.uint8 and state.shape == (5056,)  # torch's layout
    after = [tg.randn(5, generator=g).detach().numpy(), tg.rand(3, generator=g).detach().numpy()]
    g.set_state(state)
    np.testing.assert_array_equal(tg.randn(5, generator=g).detach().numpy(), after[0])
    np.testing.assert_array_equal(tg.rand(3, generator=g).detach().numpy(), after[1])
    other = tg.Generator(0)
    other.set_state(state)
    np.testing.assert_array_equal(tg.randn(5, generator=other).detach().numpy(), after[0])


def test_manual_seed_drives_the_default_generator():
    g = tg.manual_seed(2024)
    assert isinstance(g, tg.Generator)
    a = tg.randn(4)
    tg.manual_seed(2024)
    np.testing.assert_array_equal(tg.randn(4).detach().numpy(), a.detach().numpy())


def test_cuda_device_without_gpu_is_a_clear_error():
    if tg.cuda_available():
        pytest.skip("a GPU is present")
    for f in (lambda: tg.zeros(2, device="cuda"), lambda: tg.randn(2, device="cuda"),
              lambda: tg.tensor([1.0]).to("cuda")):
        with pytest.raises(RuntimeError, match="cuda"):
            f()
    with pytest.raises(ValueError, match="tpu"):
        tg.zeros(2, device="tpu")


def test_creation_on_device(device):
    for t in (tg.zeros(2, device=device), tg.ones(2, device=device), tg.randn(2, device=device),
              tg.rand(2, device=device), tg.randint(0, 3, 2, device=device), tg.arange(3, device=device),
              tg.tensor([1.0], device=device)):
        assert t.device == device
    # the host stream is the same on every device
    np.testing.assert_array_equal(tg.randn(4, generator=tg.Generator(0), device=device).detach().numpy(),
                                  tg.randn(4, generator=tg.Generator(0)).detach().numpy())


# -- properties --------------------------------------------------------------------------------

def test_properties():
    t = tg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert t.shape == (2, 3) and isinstance(t.shape, tuple)
    assert t.ndim == 2 and t.dtype == np.float32 and t.device == "cpu"
    assert t.requires_grad and t.grad is None and t.is_leaf and t.entry is None
    assert t.numel() == 6 and len(t) == 2 and t.size() == (2, 3) and t.size(1) == 3
    assert isinstance(t.array, np.ndarray) and isinstance(t.data, Tensor) and t.data.array is t.array
    assert t.detach().numpy() is t.array and t.tolist() == [[1, 2, 3], [4, 5, 6]]
    with Tape():
        y = t * 2.0
    assert not y.is_leaf and y.entry.name == "Mul" and y.requires_grad


def test_item():
    assert tg.tensor([[2.5]]).item() == 2.5 and type(tg.tensor([[2.5]]).item()) is float
    assert tg.tensor(3).item() == 3 and type(tg.tensor(3).item()) is int
    assert float(tg.tensor(1.5)) == 1.5
    with pytest.raises(RuntimeError, match=r"2 elements.*\(2,\)"):
        tg.tensor([1.0, 2.0]).item()


def test_requires_grad_only_for_floats():
    with pytest.raises(TypeError, match="int64"):
        tg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        tg.tensor([1, 2]).requires_grad_()
    t = tg.tensor([1.0]).requires_grad_()
    assert t.requires_grad
    with Tape():
        y = t * 2.0
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_detach_shares_memory_and_cuts_history():
    with Tape():
        x = tg.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2.0
    d = y.detach()
    assert np.shares_memory(d.data, y.data) and not d.requires_grad and d.entry is None


def test_to_and_dtype_conversions():
    x = tg.tensor([1.5, 2.5], requires_grad=True)
    assert x.to() is x and x.to("cpu") is x and x.float() is x and x.to(dtype=np.float32) is x
    d = x.double()  # recorded, as torch: the gradient flows back to x as float32
    assert d.dtype == np.float64 and d.requires_grad and not d.is_leaf and not np.shares_memory(d.array, x.array)
    d.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [1.0, 1.0]
    x.grad = None
    np.testing.assert_array_equal(d.detach().numpy(), [1.5, 2.5])
    assert d.float().dtype == np.float32
    l = x.long()
    assert l.dtype == np.int64 and not l.requires_grad and l.tolist() == [1, 2]
    assert x.cpu() is x
    with Tape():
        y = x * 2.0
        assert y.float() is y  # no change: the history is kept
        y.float().sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_repr():
    assert repr(tg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(tg.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tg.tensor(2)) == "tensor(2)"
    assert repr(tg.tensor([1.0], dtype=np.float64, requires_grad=True)) == \
        "tensor([1.], dtype=torch.float64, requires_grad=True)"
    with Tape():
        y = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True) * 2.0
    assert repr(y) == "tensor([[2., 4.],\n        [6., 8.]], grad_fn=<MulBackward0>)"
    assert "..." in repr(tg.zeros(2000)) and "..." not in repr(tg.zeros(100))  # long tensors are summarized
    assert tg.tensor([1.0]).short() == "tensor of shape (1,) float32 on cpu"


# -- constants: Python scalars take the tensor's dtype ------------------------------------------

OPS = [lambda t, c: t + c, lambda t, c: c + t, lambda t, c: t - c, lambda t, c: c - t,
       lambda t, c: t * c, lambda t, c: c * t, lambda t, c: t / c, lambda t, c: c / t]


@given(c=st.one_of(st.integers(-1000, 1000), st.floats(0.5, 1e6), st.floats(-1e6, -0.5)),
       op=st.sampled_from(OPS), dtype=st.sampled_from([np.float32, np.float64]))
def test_python_scalars_never_upcast(c, op, dtype):
    t = tg.tensor(np.array([1.5, -2.0], dtype=dtype), requires_grad=True)
    with Tape():
        y = op(t, c)
    assert y.dtype == dtype and y.requires_grad
    np.testing.assert_allclose(y.detach().numpy(), op(t.detach().numpy(), dtype(c)), rtol=1e-6)


PROMOTION_CASES = [  # (tensor data, tensor dtype, the other operand): torch decides the result dtype
    ([1.0, 2.0], np.float32, np.float64(0.5)), ([1.0, 2.0], np.float32, np.float32(2)),
    ([1, 2], np.int64, 1), ([1, 2], np.int64, 1.5), ([1.0, 2.0], np.float32, np.array([1.0, 2.0])),
    ([1.0, 2.0], np.float32, True), ([1, 2], np.int32, 2.5), ([True, False], np.bool_, 3),
    ([1.0, 2.0], np.float32, np.array(2.0)), ([1, 2], np.int64, np.float32(2.0)),
]


@pytest.mark.parametrize("data, dtype, other", PROMOTION_CASES)
def test_scalar_and_array_operands_promote_as_torch(data, dtype, other):
    ours = tg.tensor(data, dtype=dtype)
    theirs = torch.tensor(data, dtype=getattr(torch, np.dtype(dtype).name if dtype is not np.bool_ else "bool"))
    t_other = torch.as_tensor(other) if isinstance(other, np.ndarray) else other
    for op in (lambda a, b: a + b, lambda a, b: b * a):
        want = op(theirs, t_other)
        got = op(ours, other)
        assert str(got.dtype) == str(want.dtype), (data, dtype, other)  # printed as torch prints it
        np.testing.assert_array_equal(got.detach().numpy(), want.numpy())
    if dtype is not np.bool_:  # torch has no pow on bools
        assert (ours ** ours).dtype == np.dtype(str((theirs ** theirs).dtype).replace("torch.", ""))


# -- makemore, line for line ---------------------------------------------------------------------

def makemore_loss(C, W1, b1, W2, b2, X, Y, arange):
    """The makemore MLP forward exactly as written in the lecture; runs on both libraries."""
    emb = C[X]
    h = (emb.view(-1, 30) @ W1 + b1).tanh()
    logits = h @ W2 + b2
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    loss = -probs[arange(X.shape[0]), Y].log().mean()
    return loss


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_makemore_mlp_matches_torch(dtype):
    g = tg.Generator(2147483647)
    C = tg.randn(27, 10, generator=g, dtype=dtype)
    W1 = tg.randn(30, 200, generator=g, dtype=dtype) * 0.2
    b1 = tg.randn(200, generator=g, dtype=dtype) * 0.01
    W2 = tg.randn(200, 27, generator=g, dtype=dtype) * 0.1
    b2 = tg.randn(27, generator=g, dtype=dtype) * 0
    params = [p.detach().requires_grad_() for p in (C, W1, b1, W2, b2)]
    X = tg.randint(0, 27, (32, 3), generator=g)
    Y = tg.randint(0, 27, (32,), generator=g)
    X.data[1] = X.data[0]  # repeated rows and indices: the embedding gradient must accumulate
    for p in params:
        p.grad = None
    with Tape():
        loss = makemore_loss(*params, X, Y, tg.arange)
        loss.backward()
    tparams = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in params]
    tloss = makemore_loss(*tparams, torch.from_numpy(X.detach().numpy()), torch.from_numpy(Y.detach().numpy()), torch.arange)
    tloss.backward()
    assert loss.dtype == dtype and loss.shape == ()
    if dtype == np.float64:
        assert abs(loss.item() - tloss.item()) < 1e-7
        for p, tp in zip(params, tparams):
            assert p.grad.dtype == dtype and p.grad.shape == p.shape
            np.testing.assert_allclose(p.grad, tp.grad.detach().numpy(), rtol=1e-7, atol=1e-7)
    else:
        torch.testing.assert_close(torch.tensor(loss.item(), dtype=torch.float32), tloss.detach())
        for p, tp in zip(params, tparams):
            assert p.grad.dtype == dtype
            torch.testing.assert_close(torch.from_numpy(p.grad.array), tp.grad)

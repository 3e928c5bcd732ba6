"""torch.* function forms, dtype names, and lecture code run unchanged on both libraries."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import tinygrad_mm as tg
from ops_helpers import check_torch, positive, randn

FORMS = {  # name: program using only `lib.<function>` forms
    "tanh": lambda lib, x: lib.tanh(x),
    "exp": lambda lib, x: lib.exp(x),
    "log": lambda lib, x: lib.log(x),
    "sqrt": lambda lib, x: lib.sqrt(x),
    "abs": lambda lib, x: lib.abs(x),
    "sigmoid": lambda lib, x: lib.sigmoid(x),
    "relu": lambda lib, x: lib.relu(x),
    "clamp": lambda lib, x: lib.clamp(x, 0.8, 1.2),
    "matmul": lambda lib, x: lib.matmul(x, x.T),
    "cat": lambda lib, x: lib.cat([x, x * 2], 1),
    "stack": lambda lib, x: lib.stack([x, x.exp()], -1),
    "where": lambda lib, x: lib.where(x > 1, x, x * 3),
    "where_scalar": lambda lib, x: lib.where(x > 1, x, 0.0),
    "sum": lambda lib, x: lib.sum(x, 1),
    "mean": lambda lib, x: lib.mean(x, 0, keepdim=True),
    "max": lambda lib, x: lib.max(x),
    "max_dim": lambda lib, x: lib.max(x, 1).values,
    "min_dim": lambda lib, x: lib.min(x, 0)[0],
    "std": lambda lib, x: lib.std(x, 0),
    "var": lambda lib, x: lib.var(x, unbiased=False),
    "norm": lambda lib, x: lib.norm(x),
    "unbind_cat": lambda lib, x: lib.cat(lib.unbind(x.view(3, 2, 2), 1), 1),  # makemore part 2
    "pow_rpow": lambda lib, x: 10 ** lib.linspace(-3, 0, 12).view(3, 4) * x,   # lrs = 10**lre
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", FORMS)
def test_function_forms(name, dtype):
    f = FORMS[name]
    check_torch(lambda x: f(tg, x), lambda x: f(torch, x), [positive(3, 4, seed=1, dtype=dtype)])


@pytest.mark.parametrize("name", ["all", "any", "argmax", "argmin"])
def test_function_forms_without_gradients(name):
    x = np.round(randn(3, 4, seed=2))  # ties for argmax/argmin
    arg = name.startswith("arg")
    for args in [(), (1,), (0, True)]:
        ours = getattr(tg, name)(tg.tensor(x) if arg else tg.tensor(x) > 0, *args)
        theirs = getattr(torch, name)(torch.tensor(x) if arg else torch.tensor(x) > 0, *args)
        assert ours.tolist() == theirs.tolist() and ours.dtype == theirs.numpy().dtype
    if arg:
        with pytest.raises(RuntimeError, match="does not support bool"):
            getattr(tg, name)(tg.tensor(x) > 0)


def test_dtype_names():
    pairs = [(tg.float32, torch.float32), (tg.float, torch.float), (tg.float64, torch.float64), (tg.double, torch.double),
             (tg.float16, torch.float16), (tg.half, torch.half), (tg.int32, torch.int32), (tg.int, torch.int),
             (tg.int64, torch.int64), (tg.long, torch.long), (tg.bool, torch.bool), (tg.uint8, torch.uint8)]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs) and str(ours) == str(theirs)
        assert ours == np.dtype(torch.empty(0, dtype=theirs).numpy().dtype)
        assert tg.zeros(2, dtype=ours).dtype == ours and tg.tensor([1], dtype=ours).dtype == ours
        assert tg.ones(2).to(ours).dtype == ours and tg.ones(2).type(ours).dtype == ours
    assert tg.zeros(2).dtype == tg.float32 and tg.float32 == np.float32 and tg.float32 != tg.float64
    assert {np.dtype("float32"): 1}[tg.float32] == 1 and tg.float64.is_floating_point and not tg.long.is_floating_point


def test_allclose():
    a = np.array([1.0, 2.0, np.nan])
    for kw in [{}, {"equal_nan": True}, {"rtol": 0.1}]:
        for b in [a, a + 1e-9, a * 1.05]:
            assert tg.allclose(tg.tensor(a), tg.tensor(b), **kw) == torch.allclose(torch.tensor(a), torch.tensor(b), **kw)
    assert tg.allclose(tg.ones(2), tg.ones(2)) is True
    with pytest.raises(RuntimeError, match="did not match"):
        tg.allclose(tg.ones(2), tg.ones(2, dtype=tg.float64))


@given(st.floats(-10, 10), st.floats(-10, 10), st.integers(0, 40), st.sampled_from(["float32", "float64"]))
def test_linspace_bit_exact(start, end, steps, dtype):
    ours = tg.linspace(start, end, steps, dtype=getattr(tg, dtype))
    theirs = torch.linspace(start, end, steps, dtype=getattr(torch, dtype))
    assert ours.dtype == theirs.numpy().dtype and ours.shape == tuple(theirs.shape)
    if steps:  # the endpoints exactly; inside, within an ulp of the range (torch's SIMD blocks round apart)
        assert ours[0].item() == theirs[0].item() and ours[-1].item() == theirs[-1].item()
    ulp = np.spacing(np.array(max(abs(start), abs(end)), dtype=dtype))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=2 * ulp)


@pytest.mark.parametrize("kw", [{}, {"bins": 5}, {"bins": 7, "density": True}, {"bins": 4, "range": (-1.0, 1.0)}],
                         ids=str)
def test_histogram(kw):
    x = randn(200, seed=3, dtype=np.float32)
    h, e = tg.histogram(tg.tensor(x), **kw)
    th, te = torch.histogram(torch.tensor(x), **kw)
    assert h.dtype == th.numpy().dtype == e.dtype and h.shape == tuple(th.shape) and e.shape == tuple(te.shape)
    np.testing.assert_allclose(e.numpy(), te.numpy(), rtol=1e-6, atol=1e-6)  # linspace: within an ulp
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-6)
    hy, hx = tg.histogram(tg.tensor([1.0, 1.0]), bins=4)  # one value: a unit-wide range
    assert hx.tolist() == torch.histogram(torch.tensor([1.0, 1.0]), bins=4).bin_edges.tolist()


def test_making_tensors():
    for f in [lambda lib: lib.full((2, 3), 1.5), lambda lib: lib.full((2,), 3), lambda lib: lib.full((1,), True),
              lambda lib: lib.eye(3), lambda lib: lib.eye(2, 3, dtype=lib.int64), lambda lib: lib.empty(2, 3).zero_(),
              lambda lib: lib.full_like(lib.ones(2, dtype=lib.int32), 7),
              lambda lib: lib.zeros_like(lib.ones(2, 3)), lambda lib: lib.ones_like(lib.ones(2, dtype=lib.float64))]:
        ours, theirs = f(tg), f(torch)
        assert ours.dtype == theirs.numpy().dtype and ours.tolist() == theirs.tolist()


def test_micrograd_engine_tests_with_tensors():
    """micrograd's test/test_engine.py, torch half, run on both libraries."""
    def sanity(lib):
        x = lib.Tensor([-4.0]).double()
        x.requires_grad = True
        z = 2 * x + 2 + x
        q = z.relu() + z * x
        h = (z * z).relu()
        y = h + q + q * x
        y.backward()
        return y.data.item(), x.grad.item()

    def more_ops(lib):
        a = lib.Tensor([-4.0]).double()
        b = lib.Tensor([2.0]).double()
        a.requires_grad = True
        b.requires_grad = True
        c = a + b
        d = a * b + b**3
        c = c + c + 1
        c = c + 1 + c + (-a)
        d = d + d * 2 + (b + a).relu()
        d = d + 3 * d + (b - a).relu()
        e = c - d
        f = e**2
        g = f / 2.0
        g = g + 10.0 / f
        g.backward()
        return g.data.item(), a.grad.item(), b.grad.item()

    for program in (sanity, more_ops):
        assert program(tg) == pytest.approx(program(torch), rel=1e-12)


def test_makemore_part4_manual_backprop_checks():
    """cmp() and the BatchNorm forward of makemore part 4: torch.all, allclose, abs().max(), var, std."""
    def run(lib):
        g = np.random.default_rng(5)
        hprebn = lib.tensor(g.standard_normal((32, 64)).astype(np.float32), requires_grad=True)
        bngain = lib.tensor(g.standard_normal((1, 64)).astype(np.float32) * 0.1 + 1.0, requires_grad=True)
        n = 32
        bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
        bndiff = hprebn - bnmeani
        bndiff2 = bndiff**2
        bnvar = 1 / (n - 1) * (bndiff2).sum(0, keepdim=True)
        bnvar_inv = (bnvar + 1e-5)**-0.5
        bnraw = bndiff * bnvar_inv
        hpreact = bngain * bnraw
        h = lib.tanh(hpreact)
        loss = (h * lib.linspace(-1, 1, 64)).sum()
        bnvar.retain_grad()
        loss.backward()
        dbnvar_direct = hprebn.var(0, keepdim=True, unbiased=True)
        dt = bnvar.grad.clone()
        ex = lib.all(dt == bnvar.grad).item()
        app = lib.allclose(dt, bnvar.grad)
        maxdiff = (dt - bnvar.grad).abs().max().item()
        return (ex, app, maxdiff, dt.shape == bnvar.shape, bnvar.grad.std().item(), dbnvar_direct.detach().numpy(),
                bnvar.detach().numpy(), hprebn.grad.numpy(), bngain.grad.numpy(), sum(p.nelement() for p in [hprebn, bngain]))

    ours, theirs = run(tg), run(torch)
    assert ours[:4] == theirs[:4] and ours[-1] == theirs[-1]
    for a, b in zip(ours[4:-1], theirs[4:-1]):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)  # float32 sums in a different order than torch's


WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia", "harper", "evelyn"]


def test_makemore_part1_bigrams_on_both_libraries():
    """Counting, normalizing, the log likelihood and the one-layer bigram net (one-hot by eye rows)."""
    def run(lib):
        chars = sorted(set("".join(WORDS)))
        stoi = {s: i + 1 for i, s in enumerate(chars)}
        stoi["."] = 0
        V = len(stoi)
        N = lib.zeros((V, V), dtype=lib.int32)
        xs, ys = [], []
        for w in WORDS:
            cs = ["."] + list(w) + ["."]
            for ch1, ch2 in zip(cs, cs[1:]):
                ix1, ix2 = stoi[ch1], stoi[ch2]
                N[ix1, ix2] += 1
                xs.append(ix1)
                ys.append(ix2)
        p = N[0].float()
        p = p / p.sum()
        P = (N + 1).float()
        P /= P.sum(1, keepdims=True)
        log_likelihood, n = 0.0, 0
        for x, y in zip(xs, ys):
            log_likelihood += lib.log(P[x, y])
            n += 1
        nll = -log_likelihood / n
        xs, ys = lib.tensor(xs), lib.tensor(ys)
        W = lib.linspace(-0.3, 0.3, V * V).view(V, V).t() * 1
        W.requires_grad = True
        for _ in range(5):
            xenc = lib.eye(V)[xs]                      # F.one_hot(xs, num_classes=V).float()
            logits = xenc @ W
            counts = logits.exp()
            probs = counts / counts.sum(1, keepdims=True)
            loss = -probs[lib.arange(xs.nelement()), ys].log().mean() + 0.01 * (W**2).mean()
            W.grad = None
            loss.backward()
            W.data += -50 * W.grad
        return N.numpy(), p.numpy(), P.numpy(), nll.item(), loss.item(), W.detach().numpy(), N.dtype == lib.int32

    ours, theirs = run(tg), run(torch)
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[-1] and theirs[-1]
    for a, b in zip(ours[1:-1], theirs[1:-1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # float32, sums in another order


def test_makemore_part3_diagnostics_on_both_libraries():
    """Saturation, histogram, update-to-data ratios and the loss curve's view(-1, k).mean(1)."""
    def run(lib):
        x = lib.tensor(randn(32, 30, seed=7, dtype=np.float32))
        W = (lib.tensor(randn(30, 20, seed=8, dtype=np.float32)) * (5 / 3) / 30**0.5).requires_grad_()
        bngain, bnbias = lib.ones((1, 20), requires_grad=True), lib.zeros((1, 20), requires_grad=True)
        hpreact = x @ W
        bnmeani, bnstdi = hpreact.mean(0, keepdim=True), hpreact.std(0, keepdim=True)
        hpreact = bngain * (hpreact - bnmeani) / bnstdi + bnbias
        h = lib.tanh(hpreact)
        h.retain_grad()
        loss = (h ** 2).mean()
        loss.backward()
        with lib.no_grad():
            running = 0.999 * lib.zeros((1, 20)) + 0.001 * bnmeani
        saturated = (h.abs() > 0.97).float().mean() * 100
        hy, hx = lib.histogram(h, density=True)
        ud = [((0.1 * p.grad).std() / p.data.std()).log10().item() for p in [W, bngain]]
        lossi = lib.tensor([float(i % 7) for i in range(40)]).view(-1, 10).mean(1)
        return (saturated.item(), hy.detach().numpy(), hx[:-1].detach().numpy(), h.grad.numpy(), W.grad.numpy(),
                running.numpy(), lossi.numpy(), ud)

    for a, b in zip(run(tg), run(torch)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5)  # float32 through matmul and std


def test_makemore_part5_wavenet_layers_on_both_libraries():
    """Part 5's hand-written Embedding, FlattenConsecutive, Linear, BatchNorm1d (3-D: dims (0, 1)) and Tanh."""
    def run(lib):
        g = np.random.default_rng(9)
        vocab, n_embd, n_hidden, block = 27, 6, 16, 8

        def param(*shape, scale=1.0):
            return lib.tensor((g.standard_normal(shape) * scale).astype(np.float32))

        C = param(vocab, n_embd)
        W1, W2, W3 = param(n_embd * 2, n_hidden, scale=0.3), param(n_hidden * 2, n_hidden, scale=0.2), \
            param(n_hidden * 2, vocab, scale=0.1)
        gammas, betas = [lib.ones(n_hidden) for _ in range(2)], [lib.zeros(n_hidden) for _ in range(2)]
        params = [C, W1, W2, W3] + gammas + betas
        for p in params:
            p.requires_grad = True
        X = lib.tensor(g.integers(0, vocab, (32, block)))
        Y = lib.tensor(g.integers(0, vocab, 32))

        def flatten_consecutive(x, n):
            B, T, Cn = x.shape
            x = x.view(B, T // n, Cn * n)
            if x.shape[1] == 1:
                x = x.squeeze(1)
            return x

        def batchnorm(x, gamma, beta):
            dim = 0 if x.ndim == 2 else (0, 1)
            xmean, xvar = x.mean(dim, keepdim=True), x.var(dim, keepdim=True)
            return gamma * ((x - xmean) / lib.sqrt(xvar + 1e-5)) + beta

        x = C[X]
        x = lib.tanh(batchnorm(flatten_consecutive(x, 2) @ W1, gammas[0], betas[0]))
        x = lib.tanh(batchnorm(flatten_consecutive(x, 2) @ W2, gammas[1], betas[1]))
        logits = flatten_consecutive(x, 2).view(32, -1)[:, : n_hidden * 2] @ W3
        counts = (logits - logits.max(1, keepdim=True).values).exp()
        loss = -(counts / counts.sum(1, keepdim=True))[lib.arange(32), Y].log().mean()
        loss.backward()
        return [loss.item(), tuple(x.shape)] + [p.grad.numpy() for p in params]

    ours, theirs = run(tg), run(torch)
    assert ours[1] == theirs[1]
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    for a, b in zip(ours[2:], theirs[2:]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)  # float32 through 3 matmuls and 2 batch norms

"""The fused cross-entropy: one tape entry, target validation, exact numerics, torch and unfused parity."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

import tinygrad_mm as tg
from tinygrad_mm import Tape, Tensor, gradcheck, nn

from ops_helpers import GC
from nn_helpers import DTYPES, rnd, assert_close


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


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c", [(4096, 27), (600, 64), (1000, 3)])
def test_cross_entropy_tall_logits_match_torch(n, c, dtype, reduction, device):
    # tall, narrow logits take the column-wise max and BLAS row sums (kernels.row_max / row_sum)
    logits, y = ce_inputs(n, c, dtype=dtype, ignore_some=reduction == "mean")
    logits[7, 1] = -np.inf                          # a masked class inside the tall path
    ce_parity(logits, y, dtype, device, reduction=reduction)
    logits[n - 3, 2] = np.inf
    with pytest.raises(ValueError, match=rf"rows \[{n - 3}\] have \+inf or NaN logit"):
        nn.cross_entropy(Tensor(logits, device=device), y)


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
        assert np.isfinite(out.detach().numpy()).all() and np.isfinite(g).all()


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
    assert len(tape) == 1 and tape.entries[0].name == "CrossEntropy"
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
        with pytest.raises(ValueError, match=r"target of shape \(2, 4\)"):    # (N, C, d1) takes (N, d1)
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
        assert np.isfinite(out.detach().numpy()).all() and np.isfinite(x.grad).all()
        ref = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y), reduction=reduction)
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1.3e-6, atol=1e-5)


def test_cross_entropy_largest_finite_logits_warn_nothing_and_match_torch():
    # row maxima that sum past float32's range (the finiteness check must not overflow, and warn),
    # on the targets: every loss is finite
    logits = np.full((64, 5), np.finfo(np.float32).max, np.float32)
    logits[:, 1:] = np.linspace(-3, 3, 4, dtype=np.float32)
    y = np.zeros(64, np.int64)
    x = Tensor(logits, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = nn.cross_entropy(x, y)
        loss.backward()
    ref_x = torch.from_numpy(logits).requires_grad_()
    ref = F.cross_entropy(ref_x, torch.from_numpy(y))
    ref.backward()
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1.3e-6)
    np.testing.assert_allclose(x.grad.numpy(), ref_x.grad.numpy(), rtol=1.3e-6, atol=1e-5)


def test_cross_entropy_masked_classes():
    logits = np.array([[2.0, -np.inf, 0.5, -np.inf], [-np.inf, 1.0, 1.0, 3.0]])
    y = np.array([0, 3])
    out, g = ce_parity(logits, y, np.float64, reduction="none")
    assert np.isfinite(out.detach().numpy()).all()
    assert g[0, 1] == 0 and g[0, 3] == 0 and g[1, 0] == 0        # masked classes: probability 0
    assert nn.softmax(Tensor(logits), dim=1).detach().numpy()[0, 1] == 0
    # the target on a -inf logit: an impossible class has loss +inf (torch agrees), gradient finite
    y_bad = np.array([1, 3])
    x = Tensor(logits, requires_grad=True)
    per_row = nn.cross_entropy(x, y_bad, reduction="none")
    assert per_row.detach().numpy()[0] == np.inf and np.isfinite(per_row.detach().numpy()[1])
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
    assert np.isfinite(out.detach().numpy()).all() and np.isfinite(g).all()
    # float32 too: torch's defaults, relative to the logit scale for the loss (lse of logits ~1e4
    # in float32 carries an absolute rounding of ~1e-3)
    x32 = logits.astype(np.float32)
    out32 = nn.cross_entropy(Tensor(x32), y, reduction=reduction).detach().numpy()
    ref32 = F.cross_entropy(torch.from_numpy(x32), torch.from_numpy(y), reduction=reduction).detach().numpy()
    np.testing.assert_allclose(out32, ref32, rtol=1.3e-6, atol=1e-5 * max(1.0, 10.0 ** log_scale))


def test_tensor_targets_stay_on_their_device(monkeypatch):
    """A Tensor's targets are read as its array: they used to go through .data (another Tensor),
    to the host and back, on every step -- on cupy a device round trip and a sync per step."""
    from tinygrad_mm import backend

    def refuse(a):
        raise AssertionError(f"targets moved through the host: {type(a).__name__}")
    monkeypatch.setattr(backend, "to_numpy", refuse)
    logits = tg.tensor(rnd(4, 5), requires_grad=True)
    loss = tg.nn.functional.cross_entropy(logits, tg.tensor(np.array([0, 4, 2, 1])))
    loss.backward()
    assert logits.grad.shape == (4, 5)

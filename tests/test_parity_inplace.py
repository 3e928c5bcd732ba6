"""In-place ops on recorded tensors vs torch: the programs torch accepts give its gradients; the
ones it rejects raise here too. Never a silently wrong gradient.

Each case is one program written against a module `lib` (tinygrad_mm or torch), returning the
tensors whose .grad to compare after `loss.backward()` with the returned loss.
"""
import numpy as np
import pytest
import torch

import tinygrad_mm as tg

X0 = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4))
Y0 = np.random.default_rng(1).uniform(0.5, 1.5, (3, 4))


def leaves(lib):
    return lib.tensor(X0, requires_grad=True), lib.tensor(Y0, requires_grad=True)


def c_add_after_use(lib):      # Add saves nothing: a later += is harmless
    x, y = leaves(lib)
    a = x * 2
    b = a + y
    a += 1
    return (b * b).sum() + a.sum(), (x, y)


def c_mul_after_use(lib):      # b = a + y reads a; a *= 3 afterwards must not scale b's gradient
    x, y = leaves(lib)
    a = x * 2
    b = a + y
    a *= 3
    return b.sum() + (a * y).sum(), (x, y)


def c_saved_input(lib):        # Mul saved a: torch refuses
    x, y = leaves(lib)
    a = x * 2
    b = a * y
    a += 1
    return b.sum(), (x, y)


def c_saved_output(lib):       # exp saved its output: torch refuses
    x, _ = leaves(lib)
    a = x.exp()
    a += 1
    return a.sum(), (x,)


def c_tanh_mul_(lib):
    x, _ = leaves(lib)
    a = x.tanh()
    a.mul_(2)
    return a.sum(), (x,)


def c_chain(lib):              # a sequence of in-place ops on one intermediate
    x, y = leaves(lib)
    a = x + 0
    a *= y
    a += y
    a.sub_(x, alpha=2)
    a /= 2
    a.add_(y, alpha=0.5)
    a.clamp_(0.4, 2.0)
    return (a * a).sum(), (x, y)


def c_setitem_row(lib):
    x, y = leaves(lib)
    a = x * 1
    a[0] = y[1] * 3
    return (a * a).sum(), (x, y)


def c_setitem_mask(lib):
    x, y = leaves(lib)
    a = x * 1
    a[a > 1] = 0.0
    return (a * y).sum(), (x, y)


def c_setitem_advanced(lib):
    x, y = leaves(lib)
    a = x * 1
    a[lib.tensor([0, 2]), lib.tensor([1, -1])] = y[0, :2]
    return (a * a).sum(), (x, y)


def c_augmented_index(lib):    # a[0] += v: getitem, in place on the view, setitem
    x, y = leaves(lib)
    a = x * 2
    a[0] += y[0]
    a[1][2] *= 3
    a[:, 1] -= y[:, 0]
    return (a * a).sum(), (x, y)


def c_view_mul_(lib):          # writing a view changes its base's gradient (torch's CopySlices)
    x, _ = leaves(lib)
    a = x * 2
    v = a[:2]
    v.mul_(3)
    v.add_(1)
    return (a * a).sum(), (x,)


def c_transpose_view(lib):
    x, y = leaves(lib)
    a = x * 2
    v = a.t()
    v[0] += y[:, 0]
    return (a * a).sum(), (x, y)


def c_reshape_view(lib):
    x, y = leaves(lib)
    a = x * 2
    v = a.view(-1)
    v[1:5] *= y[0]
    return (a * y).sum(), (x, y)


def c_fill_zero_copy(lib):
    x, y = leaves(lib)
    a, b, c = x * 1, x * 2, x * 3
    a.fill_(2.0)
    b.zero_()
    c.copy_(y)
    return (a * x + b * x + c * x).sum(), (x, y)


def c_masked_fill_(lib):
    x, y = leaves(lib)
    a = x * y
    a.masked_fill_(a > 1, 0.5)
    return (a * x).sum(), (x, y)


def c_leaf_inplace(lib):       # torch refuses in-place on a leaf that requires grad
    x, _ = leaves(lib)
    x += 1
    return x.sum(), (x,)


def c_leaf_view_inplace(lib):  # and on a view of one
    x, _ = leaves(lib)
    v = x[0]
    v.mul_(2)
    return x.sum(), (x,)


def c_no_grad_update(lib):     # the optimizer step: in place under no_grad, then a new forward
    x, y = leaves(lib)
    (x * y).sum().backward()
    with lib.no_grad():
        x -= 0.1 * x.grad
        y.add_(y.grad, alpha=-0.1)
    x.grad = None
    y.grad = None
    return (x * y * x).sum(), (x, y)


def c_data_update(lib):        # p.data += -lr * p.grad, as in the lectures
    x, y = leaves(lib)
    (x * y).sum().backward()
    x.data += -0.1 * x.grad
    y.data.mul_(2)
    x.grad = None
    y.grad = None
    return (x * y).sum(), (x, y)


def c_data_write_after_forward(lib):  # not version-logged in torch: the saved value is used as it is
    x, y = leaves(lib)
    b = x * y
    x.data += 1
    return b.sum(), (x, y)


def c_view_of_written(lib):    # a view taken before its base is written: torch follows, we refuse
    x, _ = leaves(lib)
    a = x * 2
    v = a[0]
    a.mul_(3)
    return v.sum(), (x,)


CASES = [c_add_after_use, c_mul_after_use, c_saved_input, c_saved_output, c_tanh_mul_, c_chain,
         c_setitem_row, c_setitem_mask, c_setitem_advanced, c_augmented_index, c_view_mul_, c_transpose_view,
         c_reshape_view, c_fill_zero_copy, c_masked_fill_, c_leaf_inplace, c_leaf_view_inplace,
         c_no_grad_update, c_data_update, c_data_write_after_forward]
DIFFERENCES = [c_view_of_written]  # torch accepts, we raise (docs/pytorch.md): refused, never wrong


def run(case, lib):
    try:
        loss, ts = case(lib)
        loss.backward()
        return loss, ts, None
    except RuntimeError as e:
        return None, None, e


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_inplace_as_torch(case):
    loss, ts, err = run(case, tg)
    tloss, tts, terr = run(case, torch)
    if terr is not None:
        assert err is not None, f"torch raised {terr}; we computed {loss}"
        words = "inplace operation" if "inplace" in str(terr) else "leaf Variable"
        assert words in str(err), err
        return
    assert err is None, f"torch accepted; we raised {err}"
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    for o, t in zip(ts, tts):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", DIFFERENCES, ids=lambda c: c.__name__)
def test_what_we_refuse_torch_follows(case):
    assert run(case, torch)[2] is None
    err = run(case, tg)[2]
    assert err is not None and "another recorded view" in str(err)


def test_refusal_leaves_the_tensor_unchanged():
    x = tg.tensor(X0, requires_grad=True)
    a = x * 2
    v = a[0]
    before = a.detach().numpy().copy()
    with pytest.raises(RuntimeError, match="another recorded view"):
        a.mul_(3)
    np.testing.assert_array_equal(a.detach().numpy(), before)
    assert v.shape == (4,)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x[0] = 1.0
    np.testing.assert_array_equal(x.detach().numpy(), X0)

"""An optimizer step between a forward and its backward: torch's gradient, or torch's error."""
import numpy as np
import pytest
import torch

import tinygrad_mm as tg

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 3))
W1, W2 = RNG.standard_normal((5, 3)), RNG.standard_normal((2, 5))


def _step_between(lib, optim, deep):
    w1 = lib.tensor(W1, requires_grad=True)
    w2 = lib.tensor(W2, requires_grad=True)
    x = lib.tensor(X)
    h = x @ w1.T                       # x needs no gradient: only x is saved, not w1
    out = (h.tanh() @ w2.T) if deep else h   # tanh(h) needs a gradient: w2 is saved
    loss = (out * out).sum()
    loss.backward(retain_graph=True)   # grads exist, so the step has something to apply
    opt = optim([w1, w2], lr=0.1)
    opt.step()
    loss.backward()                    # after the parameters were written in place
    return w1.grad, w2.grad


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_a_step_that_overwrites_no_saved_array_keeps_torch_gradients(optimizer):
    ours = _step_between(tg, getattr(tg.optim, optimizer), deep=False)
    theirs = _step_between(torch, getattr(torch.optim, optimizer), deep=False)
    np.testing.assert_allclose(ours[0].detach().numpy(), theirs[0].numpy(), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_a_step_that_overwrites_a_saved_parameter_raises_as_torch(optimizer):
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        _step_between(torch, getattr(torch.optim, optimizer), deep=True)
    with pytest.raises(RuntimeError, match=rf"modified by an inplace operation: a parameter \({optimizer}\.step\)"):
        _step_between(tg, getattr(tg.optim, optimizer), deep=True)

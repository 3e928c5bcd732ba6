"""The nn calls of the makemore lectures (parts 1-5), written as the notebooks write them, against torch.

Each snippet runs twice, once with `torch`/`F` bound to torch and once to tinygrad_mm, from the
same weights; values and gradients must agree.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F

import tinygrad_mm
import tinygrad_mm.nn.functional as tg_F

LIBS = {"torch": (torch, torch_F), "ours": (tinygrad_mm, tg_F)}
rng = np.random.default_rng(0)
XS, YS = rng.integers(0, 27, 40), rng.integers(0, 27, 40)
W0 = rng.standard_normal((27, 27))
C0, W1_0, W2_0 = rng.standard_normal((27, 10)), rng.standard_normal((30, 64)) * 0.2, rng.standard_normal((64, 27)) * 0.1
X3 = rng.integers(0, 27, (32, 3))


def values(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def part1_bigram(torch, F):
    xs, ys = torch.tensor(XS), torch.tensor(YS)
    W = torch.tensor(W0, requires_grad=True)
    xenc = F.one_hot(xs, num_classes=27).float()          # the lecture's encoding
    logits = xenc.double() @ W
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    loss = -probs[torch.arange(len(XS)), ys].log().mean() + 0.01 * (W ** 2).mean()
    loss.backward()
    return loss, W.grad, xenc


def part2_mlp(torch, F):
    C = torch.tensor(C0, requires_grad=True)
    W1, W2 = torch.tensor(W1_0, requires_grad=True), torch.tensor(W2_0, requires_grad=True)
    X, Y = torch.tensor(X3), torch.tensor(YS[:32])
    emb = C[X]
    h = (emb.view(-1, 30) @ W1).tanh()                    # the lecture: torch.tanh(...), not in our namespace yet
    logits = h @ W2
    loss = F.cross_entropy(logits, Y)
    loss.backward()
    probs = F.softmax(logits, dim=1)                      # sampling
    return loss, C.grad, W1.grad, probs


def part3_retain_grad(torch, F):
    C = torch.tensor(C0, requires_grad=True)
    W1, W2 = torch.tensor(W1_0, requires_grad=True), torch.tensor(W2_0, requires_grad=True)
    emb = C[torch.tensor(X3)]
    hpreact = emb.view(emb.shape[0], -1) @ W1
    h = hpreact.tanh()
    logits = h @ W2
    for t in (hpreact, h, logits):
        t.retain_grad()                                   # layer.out.retain_grad()
    loss = F.cross_entropy(logits, torch.tensor(YS[:32]))
    loss.backward()
    return loss, hpreact.grad, h.grad, logits.grad


def part4_backprop_ninja(torch, F):
    logits = torch.tensor(W2_0[:32], requires_grad=True)
    Yb = torch.tensor(YS[:32])
    loss = F.cross_entropy(logits, Yb)
    loss.backward()
    n = Yb.shape[0]
    dlogits = F.softmax(logits.detach(), 1)               # the hand-derived gradient
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    onehot = F.one_hot(logits.max(1).indices, num_classes=logits.shape[1])
    return loss, logits.grad, dlogits, onehot


SNIPPETS = [part1_bigram, part2_mlp, part3_retain_grad, part4_backprop_ninja]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda f: f.__name__)
def test_lecture_snippet_matches_torch(snippet):
    ours, theirs = snippet(*LIBS["ours"]), snippet(*LIBS["torch"])
    for i, (a, b) in enumerate(zip(ours, theirs)):
        a, b = values(a), values(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (i, a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-7, err_msg=f"{snippet.__name__} output {i}")


def test_torchified_part5_model_trains_as_torch():
    # makemore part 5's final form with torch.nn layers; our state dict goes into torch's model
    def build(torch):
        return torch.nn.Sequential(torch.nn.Embedding(27, 10), torch.nn.Flatten(),
                                   torch.nn.Linear(30, 64, bias=False), torch.nn.BatchNorm1d(64), torch.nn.Tanh(),
                                   torch.nn.Linear(64, 27))
    ours, theirs = build(tinygrad_mm), build(torch)
    with tinygrad_mm.no_grad():
        ours[-1].weight *= 0.1                            # "last layer make less confident"
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for model, lib in ((ours, LIBS["ours"]), (theirs, LIBS["torch"])):
        torch_, F = lib
        params = list(model.parameters())
        losses = []
        for step in range(3):
            ix = np.random.default_rng(step).integers(0, 32, 16)
            loss = F.cross_entropy(model(torch_.tensor(X3[ix])), torch_.tensor(YS[:32][ix]))
            for p in params:
                p.grad = None
            loss.backward()
            for p in params:
                p.data += -0.1 * p.grad
            losses.append(loss.item())
        model.eval()
        model.out = values(model(torch_.tensor(X3[:5])))
        model.losses = losses
    np.testing.assert_allclose(ours.losses, theirs.losses, rtol=1e-5)
    np.testing.assert_allclose(ours.out, theirs.out, rtol=1e-4, atol=1e-5)

"""Shared by the tg.compile tests: a small model, its step, batches, eager/compiled twins."""
import numpy as np

import tinygrad_mm as tg
from tinygrad_mm import nn
from tinygrad_mm.nn import functional as F


class MLP(nn.Module):
    def __init__(self, seed=0):
        g = tg.Generator(seed)
        self.emb = nn.Embedding(11, 4, generator=g)
        self.l1 = nn.Linear(8, 16, generator=g)
        self.l2 = nn.Linear(16, 11, generator=g)

    def forward(self, x):
        return self.l2(self.l1(self.emb(x).reshape(x.shape[0], -1)).tanh())


def step(model, opt, X, Y):
    loss = F.cross_entropy(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def batches(n, b, seed=0):
    rng = np.random.default_rng(seed)
    return [(tg.tensor(rng.integers(0, 11, (b, 2))), tg.tensor(rng.integers(0, 11, b))) for _ in range(n)]


def twins(make_opt=lambda ps: tg.optim.SGD(ps, lr=0.1)):
    a, b = MLP(), MLP()
    return (a, make_opt(a.parameters())), (b, make_opt(b.parameters()))


def assert_same(ma, mb):
    for p, q in zip(ma.parameters(), mb.parameters()):
        assert np.array_equal(p.array, q.array)
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            assert np.array_equal(p.grad.array, q.grad.array)

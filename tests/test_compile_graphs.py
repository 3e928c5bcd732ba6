"""Hypothesis: on random graphs (reuse, broadcasting, gathers with repeated indices, every optimizer)
a compiled step gives bit-identical losses, parameters and gradients to the eager step."""
import numpy as np
from hypothesis import given, settings, strategies as st

import tinygrad_mm as tg
from tinygrad_mm.nn import functional as F

# every pair of these shapes broadcasts: (3, 4) with anything, (4,) with (1, 4), () with all
SHAPES = {"A": (3, 4), "b": (4,), "c": (1, 4), "s": (), "W": (4, 4), "T": (6, 4)}
BINARY = ("add", "sub", "mul", "div")
UNARY = ("tanh", "exp", "relu", "neg", "sum0", "mean", "mean0", "matmul", "linear", "gather", "xent")

OPTIMIZERS = {
    "sgd": lambda ps: tg.optim.SGD(ps, lr=0.05),
    "momentum": lambda ps: tg.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda ps: tg.optim.SGD(ps, lr=0.05, momentum=0.5, nesterov=True),
    "adam": lambda ps: tg.optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda ps: tg.optim.AdamW(ps, lr=1e-2),
}

op = st.one_of(st.tuples(st.sampled_from(BINARY), st.integers(0, 99), st.integers(0, 99)),
               st.tuples(st.sampled_from(UNARY), st.integers(0, 99), st.just(0)))


def build(program, p, x, idx, y):
    """Run `program` over the pool [x, params...]; the loss sums every value the program made."""
    pool = [x, p["A"], p["b"], p["c"], p["s"]]
    for kind, i, j in program:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        if kind == "add":
            r = a + b
        elif kind == "sub":
            r = a - b
        elif kind == "mul":
            r = a * b
        elif kind == "div":
            r = a / (1 + b * b)
        elif kind == "tanh":
            r = a.tanh()
        elif kind == "exp":
            r = a.tanh().exp()
        elif kind == "relu":
            r = a.relu()
        elif kind == "neg":
            r = -a
        elif kind == "sum0":
            r = a.sum(0, keepdim=True) if a.ndim == 2 else a.sum()
        elif kind == "mean":
            r = a.mean()
        elif kind == "mean0":  # its backward hands back a broadcast (stride-0) gradient
            r = a.mean(axis=0) if a.ndim == 2 else a.mean()
        elif kind == "matmul":
            r = (a if a.shape == (3, 4) else a + x) @ p["W"]
        elif kind == "linear":  # the preallocated Affine replay, fed whatever the pool holds
            r = F.linear(a if a.shape == (3, 4) else a + x, p["W"], p["b"])
        elif kind == "gather":  # repeated indices accumulate in the table's gradient
            r = p["emb"](idx).sum(0, keepdim=True) * (a if a.ndim < 2 else a.sum(0, keepdim=True))
        else:
            r = F.cross_entropy(a if a.shape == (3, 4) else a + x, y)
        pool.append(r)
    # so that every program has a gradient to take, and a float64 parameter among float32 ones
    # (each dtype's update rounds lr its own way)
    loss = (p["A"] * x).sum() * 0.1 + p["d"].tanh().sum().float()
    for r in pool[5:]:
        loss = loss + r.sum() * 0.5
    return loss


class Params:
    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.t = {k: tg.tensor(rng.standard_normal(s).astype(np.float32) * 0.5, requires_grad=True)
                  for k, s in SHAPES.items() if k != "T"}
        self.t["emb"] = tg.nn.Embedding(6, 4, generator=tg.Generator(seed))
        self.t["d"] = tg.tensor(rng.standard_normal(4) * 0.5, requires_grad=True)  # float64

    def __getitem__(self, k):
        return self.t[k]

    def list(self):
        return [self.t["d"]] + [v for k, v in sorted(self.t.items()) if k not in ("emb", "d")] + [self.t["emb"].weight]


@settings(max_examples=40, deadline=None)
@given(program=st.lists(op, min_size=1, max_size=8), optimizer=st.sampled_from(sorted(OPTIMIZERS)),
       seed=st.integers(0, 2**16), poison=st.sampled_from([None, np.nan, np.inf, -np.inf]))
def test_compiled_equals_eager_on_random_graphs(program, optimizer, seed, poison):
    """poison: a non-finite entry in the last call's input, which a replay must carry as eager
    does (a nan spread by a one-hot matmul was found this way), or refuse as eager refuses it."""
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(4)]
    if poison is not None:
        xs[3][rng.integers(3), rng.integers(4)] = poison
    calls = [(tg.tensor(x), tg.tensor(rng.integers(0, 6, 5)), tg.tensor(rng.integers(0, 4, 3))) for x in xs]
    runs = []
    for compiled in (False, True):
        p = Params(seed)
        opt = OPTIMIZERS[optimizer](p.list())

        def step(x, idx, y):
            loss = build(program, p, x, idx, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        f = tg.compile(step) if compiled else step
        losses = [f(*c).item() for c in calls[:3]]  # calls 1-2 capture, 3-4 replay
        with np.errstate(all="ignore"):  # nan and inf as the poison makes them
            try:
                losses.append(f(*calls[3]).item())
            except ValueError as e:  # cross-entropy refuses non-finite logits, before any update
                losses.append(str(e))
        runs.append((losses, p))
    (la, pa), (lb, pb) = runs
    assert all(a == b or a != a and b != b for a, b in zip(la, lb))  # a loss, nan, or the same error
    for a, b in zip(pa.list(), pb.list()):
        assert np.array_equal(a.array, b.array, equal_nan=True)
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            assert np.array_equal(a.grad.array, b.grad.array, equal_nan=True)

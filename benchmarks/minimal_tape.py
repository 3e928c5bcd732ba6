"""The smallest tape that trains the name model: the floor for what any eager tape can cost.

    python -m benchmarks.bench_step --batches 32 --contenders numpy minimal eager

Not the library: a benchmark contender. Its ops are the library's ops written bare (the same
array calls, the one-hot scatter included), and the tape is a plain list that backward sweeps
in reverse. It has none of what tinygrad_mm's tape does for a user: no dtype, device or shape
checks, no broadcast reduction, no index or target range checks, no in-place version check,
no weak references (a forward never swept stays on the list), no record of a swept entry for
print(tape) and the pictures, no roll-back on error, no compile hooks. The gap between it and
`eager` is the price of those.
"""
import numpy as np


class T:
    """A tensor: array, gradient, and whether it is a parameter."""
    __slots__ = ("a", "grad", "param")

    def __init__(self, a, param=False):
        self.a, self.grad, self.param = a, None, param


class Op:
    tape = []

    @classmethod
    def apply(cls, *ins, **kw):
        op = cls()
        op.ins = ins
        out = T(op.forward(*[t.a for t in ins], **kw))
        Op.tape.append((op, out))
        return out


class Gather(Op):
    def forward(self, w, idx):
        self.idx, self.n = idx.ravel(), w.shape[0]
        return w[idx]

    def backward(self, g):            # one-hot matmul: repeated rows accumulate
        k = self.idx.size
        onehot = np.zeros((self.n, k), g.dtype)
        onehot[self.idx, np.arange(k)] = 1
        return (onehot @ g.reshape(k, -1),)


class Reshape(Op):
    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.shape),)


class Affine(Op):
    def forward(self, x, w, b):
        self.x, self.w = x, w
        out = x @ w.T
        out += b
        return out

    def backward(self, g):
        return g @ self.w, g.T @ self.x, g.sum(axis=0)


class Tanh(Op):
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, g):
        return (g * (1 - self.y * self.y),)


class CrossEntropy(Op):
    def forward(self, logits, target):
        m = logits.max(axis=1, keepdims=True)
        e = np.exp(logits - m)
        s = e.sum(axis=1, keepdims=True)
        e /= s
        self.p, self.t, self.rows = e, target, np.arange(len(target))
        return np.asarray((np.log(s[:, 0]) - (logits[self.rows, target] - m[:, 0])).sum() / len(target))

    def backward(self, g):
        scale = g / len(self.t)
        d = self.p * scale
        d[self.rows, self.t] -= scale
        return (d,)


def backward(loss):
    """Sweep the tape in reverse, adding each gradient into its input's slot."""
    grads = {id(loss): np.ones((), loss.a.dtype)}
    for op, out in reversed(Op.tape):
        g = grads.pop(id(out), None)
        if g is None:
            continue
        for t, gi in zip(op.ins, op.backward(g)):
            if t.param:
                t.grad = gi if t.grad is None else t.grad + gi
            else:
                k = id(t)
                grads[k] = gi if k not in grads else grads[k] + gi
    Op.tape.clear()


class MinimalStep:
    """The name model's SGD step on the minimal tape: `step(X, Y, lr) -> float`."""

    def __init__(self, params):
        self.p = [T(np.array(params[k], copy=True), param=True) for k in ("C", "W1", "b1", "W2", "b2")]

    def __call__(self, X, Y, lr):
        C, W1, b1, W2, b2 = self.p
        emb = Gather.apply(C, idx=X)                                   # (B, T, C)
        h = Tanh.apply(Affine.apply(Reshape.apply(emb, shape=(X.shape[0], -1)), W1, b1))
        loss = CrossEntropy.apply(Affine.apply(h, W2, b2), target=Y)  # ()
        for p in self.p:
            p.grad = None
        backward(loss)
        for p in self.p:
            p.a -= lr * p.grad
        return float(loss.a)

"""Reference training steps for the makemore part-2 MLP name model.

Two baselines that the speed benchmark compares the engine against:

* ``NumpyStep`` -- hand-written numpy forward, manual backward and SGD update
  (makemore part 4, "backprop ninja" style).
* ``TorchStep`` -- the same model in torch eager mode on CPU.

Model (vocab 27, context 3, embedding 10, hidden 200)::

    emb    = C[X]                              # (B, block, n_embd)
    h      = tanh(emb.reshape(B, -1) @ W1.T + b1)
    logits = h @ W2.T + b2
    loss   = cross_entropy(logits, Y)          # mean over the batch

Parameters are a dict of numpy arrays in torch ``nn.Linear`` layout
(weights are ``(out, in)``): ``C`` (27, 10), ``W1`` (200, 30), ``b1`` (200,),
``W2`` (27, 200), ``b2`` (27,).

Both steps are called as ``step(X, Y, lr) -> float`` with ``X`` an int64 array
of shape ``(B, block)`` and ``Y`` an int64 array of shape ``(B,)``; they update
their own copy of the parameters and return the loss before the update.
"""

from __future__ import annotations

import math

import numpy as np

PARAM_NAMES = ("C", "W1", "b1", "W2", "b2")


def init_params(seed, dtype=np.float32, vocab=27, block=3, n_embd=10, n_hidden=200):
    """Build the parameters with ``np.random.default_rng(seed)`` (makemore part-3 style)."""
    rng = np.random.default_rng(seed)
    fan_in = block * n_embd
    params = {
        "C": rng.standard_normal((vocab, n_embd)),
        "W1": rng.standard_normal((n_hidden, fan_in)) * ((5 / 3) / math.sqrt(fan_in)),
        "b1": rng.standard_normal(n_hidden) * 0.01,
        "W2": rng.standard_normal((vocab, n_hidden)) * 0.1,
        "b2": np.zeros(vocab),
    }
    return {k: v.astype(dtype) for k, v in params.items()}


class NumpyStep:
    """Numpy forward + manual backward + SGD, on its own copy of ``params``."""

    def __init__(self, params):
        self.params = {k: np.array(params[k], copy=True) for k in PARAM_NAMES}
        self._rows = np.arange(0)

    def _arange(self, B):
        if self._rows.shape[0] != B:
            self._rows = np.arange(B)
        return self._rows

    def loss_and_grads(self, X, Y):
        """Return ``(loss, grads)`` for a batch without updating the parameters."""
        p = self.params
        C, W1, b1, W2, b2 = p["C"], p["W1"], p["b1"], p["W2"], p["b2"]
        B = X.shape[0]
        rows = self._arange(B)

        # forward (in-place where it costs no readability, to spare temporaries)
        emb = C[X]                                   # (B, block, n_embd)
        x = emb.reshape(B, -1)                       # (B, block*n_embd)
        pre = x @ W1.T
        pre += b1
        h = np.tanh(pre, out=pre)                    # (B, n_hidden)
        logits = h @ W2.T
        logits += b2                                 # (B, vocab)
        logits -= logits.max(axis=1, keepdims=True)  # log-sum-exp shift
        counts = np.exp(logits)
        counts_sum = counts.sum(axis=1, keepdims=True)
        loss = -(logits[rows, Y] - np.log(counts_sum[:, 0])).mean()

        # backward
        dlogits = counts
        dlogits /= counts_sum                        # softmax (reuses the buffer)
        dlogits[rows, Y] -= 1
        dlogits /= B
        dW2 = dlogits.T @ h
        db2 = dlogits.sum(axis=0)
        dh = dlogits @ W2
        dpre = dh
        dpre *= 1 - h * h                            # tanh'
        dW1 = dpre.T @ x
        db1 = dpre.sum(axis=0)
        demb = (dpre @ W1).reshape(emb.shape)
        dC = np.zeros_like(C)
        np.add.at(dC, X, demb)                       # scatter-add, handles repeats

        grads = {"C": dC, "W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
        return float(loss), grads

    def __call__(self, X, Y, lr):
        loss, grads = self.loss_and_grads(X, Y)
        lr = float(lr)
        for k, g in grads.items():
            g *= lr
            self.params[k] -= g
        return loss

    def get_params(self):
        return {k: v.copy() for k, v in self.params.items()}


class TorchStep:
    """The same model in torch eager mode, on CPU or CUDA (torch is imported lazily)."""

    def __init__(self, params, device="cpu"):
        import torch
        import torch.nn.functional as F

        self._torch = torch
        self._F = F
        self.device = device
        self.params = {
            k: torch.tensor(params[k], device=device, requires_grad=True)  # torch.tensor copies
            for k in PARAM_NAMES
        }

    def __call__(self, X, Y, lr):
        torch, F = self._torch, self._F
        p = self.params
        Xt = torch.from_numpy(X)
        Yt = torch.from_numpy(Y)
        if self.device != "cpu":
            Xt, Yt = Xt.to(self.device, non_blocking=True), Yt.to(self.device, non_blocking=True)

        emb = p["C"][Xt]
        h = torch.tanh(F.linear(emb.view(emb.shape[0], -1), p["W1"], p["b1"]))
        logits = F.linear(h, p["W2"], p["b2"])
        loss = F.cross_entropy(logits, Yt)
        loss.backward()

        lr = float(lr)
        with torch.no_grad():
            for t in p.values():
                t.add_(t.grad, alpha=-lr)
                t.grad = None
        return loss.item()  # .item() synchronizes on CUDA, as the library step's does

    def get_params(self):
        return {k: v.detach().cpu().numpy().copy() for k, v in self.params.items()}

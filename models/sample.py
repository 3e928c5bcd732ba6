"""Sampling names from the MLP: start from a context of '.'s, draw, shift, stop at '.'."""
from __future__ import annotations

import numpy as np

from tinygrad_mm import backend
from tinygrad_mm.tape import no_grad


def sample_names(model, vocab, n=10, temperature=1.0, seed=None, max_len=50) -> list[str]:
    """n names drawn from softmax(logits / temperature) with numpy's Generator(seed).

    All n names are drawn together, one character position per forward pass; each row
    draws one uniform number per position (even after it ended), so a seed fixes the names.
    A name is cut at max_len characters if '.' never comes.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    rng = np.random.default_rng(seed)
    device = model.parameters()[0].device
    T = model.config.block_size
    context = np.zeros((n, T), dtype=np.int64)           # (n, T): all '.' to start
    out = np.zeros((n, max_len), dtype=np.int64)          # (n, max_len): 0 pads after the end
    alive = np.ones(n, dtype=bool)
    with no_grad():
        for t in range(max_len):
            logits, _ = model(backend.to_device(context, device))
            z = backend.to_numpy(logits.array).astype(np.float64) / temperature   # (n, V)
            p = np.exp(z - z.max(axis=1, keepdims=True))
            cdf = np.cumsum(p, axis=1)
            u = rng.random(n) * cdf[:, -1]                  # inverse-CDF draw, unnormalized
            ix = np.minimum((cdf <= u[:, None]).sum(axis=1), p.shape[1] - 1)   # (n,)
            ix = np.where(alive, ix, 0)
            out[:, t] = ix
            alive &= ix != 0
            if not alive.any():
                break
            context = np.concatenate([context[:, 1:], ix[:, None]], axis=1)
    return [vocab.decode(row[:np.argmax(row == 0)] if (row == 0).any() else row) for row in out]


def mark_names(names, train_words) -> list[str]:
    """'emma (in train)' / 'zalyn (new)' for each name."""
    seen = set(train_words)
    return [f"{name or '(empty)'} ({'in train' if name in seen else 'new'})" for name in names]

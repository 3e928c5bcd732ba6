"""Sampling names from the MLP: start from a context of '.'s, draw, shift, stop at '.'."""
from __future__ import annotations

import numpy as np

import tinygrad_mm as tg

MAX_LEN = 50  # a name is cut here if '.' never comes


def sample_names(model, vocab, n=10, temperature=1.0, seed=None, max_len=MAX_LEN) -> list[str]:
    """n names drawn from softmax(logits / temperature) with numpy's Generator(seed).

    All n names are drawn together, one character position per forward pass; each row
    draws one uniform number per position (even after it ended), so a seed fixes the names.
    A name is cut at max_len characters if '.' never comes.
    """
    if not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    device = model.parameters()[0].device
    T = model.config.block_size
    context = np.zeros((n, T), dtype=np.int64)           # (n, T): all '.' to start
    out = np.zeros((n, max_len), dtype=np.int64)          # (n, max_len): 0 pads after the end
    alive = np.ones(n, dtype=bool)
    with tg.no_grad():
        for t in range(max_len):
            logits, _ = model(tg.as_tensor(context, device=device))
            z = logits.to(device="cpu").numpy().astype(np.float64) / temperature   # (n, V)
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

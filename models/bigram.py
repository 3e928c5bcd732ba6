"""makemore part 1's baselines: the count bigram (add-k smoothed) and the one-layer neural bigram."""
from __future__ import annotations

import numpy as np

import tinygrad_mm as tg
from tinygrad_mm import nn, optim

from .dataset import NamesData, Vocab, build_examples


def bigram_pairs(words, vocab: Vocab):
    """Flat arrays (a, b) of every bigram, with '.' before and after each word."""
    X, Y = build_examples(words, vocab, block_size=1)
    return X[:, 0], Y


def bigram_counts(words, vocab: Vocab) -> np.ndarray:
    """(vocab.size, vocab.size) int64 matrix N[a, b] = number of times b follows a."""
    a, b = bigram_pairs(words, vocab)
    V = vocab.size
    return np.bincount(a * V + b, minlength=V * V).astype(np.int64).reshape(V, V)


def bigram_nll(words, vocab: Vocab, N: np.ndarray, smoothing: float = 1.0) -> float:
    """Average negative log likelihood per character of the words under add-k smoothed counts N."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    a, b = bigram_pairs(words, vocab)
    if len(a) == 0:
        raise ValueError("no words to evaluate")
    P = np.asarray(N, dtype=np.float64) + smoothing
    with np.errstate(divide="ignore", invalid="ignore"):  # zero counts without smoothing -> inf, not a warning
        P = P / P.sum(axis=1, keepdims=True)
        return float(-np.mean(np.log(P[a, b])))


def count_bigram_dev_loss(data: NamesData, smoothing=1.0) -> float:
    """The baseline `train` prints: add-k smoothed counts from train words, NLL on dev words."""
    return bigram_nll(data.dev_words, data.vocab, bigram_counts(data.train_words, data.vocab), smoothing)


class NeuralBigram(nn.Module):
    """makemore part 1's one-layer neural bigram: logits = W[previous char] (= one_hot @ W)."""

    def __init__(self, vocab_size, generator=None, dtype=np.float32, device="cpu"):
        self.table = nn.Embedding(vocab_size, vocab_size, generator=generator or tg.Generator(0),
                                  dtype=dtype, device=device)

    def forward(self, idx, targets=None):
        logits = self.table(idx)          # (B, V)
        loss = None if targets is None else nn.functional.cross_entropy(logits, targets)
        return logits, loss


def train_neural_bigram(words, vocab, steps=200, lr=50.0, reg=0.01, seed=2147483647, device="cpu"):
    """Full-batch gradient descent on logits = W[prev], loss = NLL + reg * mean(W**2).
    Returns (model, final total loss, final data NLL)."""
    X, Y = build_examples(words, vocab, block_size=1)
    xs, ys = tg.as_tensor(X[:, 0], device=device), tg.as_tensor(Y, device=device)  # (N,), (N,)
    model = NeuralBigram(vocab.size, generator=tg.Generator(seed), device=device)
    opt = optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        _, nll = model(xs, ys)
        total = nll + reg * (model.table.weight ** 2).mean()
        opt.zero_grad()
        total.backward()
        opt.step()
    with tg.no_grad():  # the loss of the final weights
        _, nll = model(xs, ys)
        total = nll + reg * (model.table.weight ** 2).mean()
    return model, total.item(), nll.item()

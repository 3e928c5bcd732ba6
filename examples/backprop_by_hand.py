"""makemore part 4's exercise, solved: the MLP with BatchNorm backpropagated by hand, piece by piece.

    python examples/backprop_by_hand.py

The forward (examples/backprop_exercise.py) is the lecture's, broken into small steps:
embedding, Linear, BatchNorm (mean, difference, variance, inverse std), tanh, Linear, and
cross-entropy as max / exp / sum / divide / log / pick. Every gradient below is derived on
paper and written in numpy; the table compares each with the tape's. Then the lecture's two
shortcuts: the cross-entropy and the BatchNorm backward each in one formula.
Everything is float64, so hand and tape agree to ~1e-15.
"""
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tinygrad_mm as tg  # noqa: E402
from tinygrad_mm import format_comparisons  # noqa: E402
from examples.backprop_exercise import ORDER, batch, forward, make_params  # noqa: E402


def gradients(v, d, n, Yb):
    """Every gradient, from the loss back to the embedding table (v: forward values, d: filled in).
    Each d[name] is assigned once, complete: the exercise checks it at that moment."""
    # loss = -mean of the n picked log-probabilities: each picked one gets -1/n, the rest nothing
    dlogprobs = np.zeros_like(v["logprobs"])
    dlogprobs[np.arange(n), Yb] = -1.0 / n
    d["logprobs"] = dlogprobs
    d["probs"] = d["logprobs"] / v["probs"]                                  # d log x = 1/x
    # probs = counts * counts_sum_inv: counts_sum_inv (n, 1) was broadcast over 27 columns -> sum them
    d["counts_sum_inv"] = (v["counts"] * d["probs"]).sum(1, keepdims=True)
    d["counts_sum"] = -v["counts_sum"] ** -2 * d["counts_sum_inv"]           # d x^-1 = -x^-2
    # counts feeds probs directly and through counts_sum (each entry adds to its row's sum)
    d["counts"] = v["counts_sum_inv"] * d["probs"] + d["counts_sum"]
    d["norm_logits"] = v["counts"] * d["counts"]                             # d exp x = exp x
    d["logit_maxes"] = -d["norm_logits"].sum(1, keepdims=True)               # broadcast: sum the columns
    # logits feed norm_logits directly and through the max, which routes back to the argmax only
    onehot = np.zeros_like(v["logits"])
    onehot[np.arange(n), v["logits"].argmax(1)] = 1.0
    d["logits"] = d["norm_logits"] + onehot * d["logit_maxes"]
    # logits = h @ W2 + b2
    d["h"] = d["logits"] @ v["W2"].T
    d["W2"] = v["h"].T @ d["logits"]
    d["b2"] = d["logits"].sum(0)
    d["hpreact"] = (1.0 - v["h"] ** 2) * d["h"]                              # d tanh = 1 - tanh^2
    # hpreact = bngain * bnraw + bnbias: gain and bias (1, 64) were broadcast over the batch
    d["bngain"] = (v["bnraw"] * d["hpreact"]).sum(0, keepdims=True)
    d["bnbias"] = d["hpreact"].sum(0, keepdims=True)
    d["bnraw"] = v["bngain"] * d["hpreact"]
    # bnraw = bndiff * bnvar_inv
    d["bnvar_inv"] = (v["bndiff"] * d["bnraw"]).sum(0, keepdims=True)
    d["bnvar"] = -0.5 * (v["bnvar"] + 1e-5) ** -1.5 * d["bnvar_inv"]
    d["bndiff2"] = np.ones_like(v["bndiff2"]) / (n - 1) * d["bnvar"]         # a sum spreads back evenly
    d["bndiff"] = v["bnvar_inv"] * d["bnraw"] + 2 * v["bndiff"] * d["bndiff2"]   # two uses
    d["bnmeani"] = -d["bndiff"].sum(0, keepdims=True)
    d["hprebn"] = d["bndiff"] + np.ones_like(v["hprebn"]) / n * d["bnmeani"]     # two uses
    # hprebn = embcat @ W1 + b1
    d["embcat"] = d["hprebn"] @ v["W1"].T
    d["W1"] = v["embcat"].T @ d["hprebn"]
    d["b1"] = d["hprebn"].sum(0)
    d["emb"] = d["embcat"].reshape(v["emb"].shape)                           # a reshape: the same numbers
    # emb = C[Xb]: each picked row of C receives its gradient; a row picked twice receives both
    dC = np.zeros_like(v["C"])
    np.add.at(dC, v["Xb"], d["emb"])                                         # (dC[Xb] += demb drops repeats)
    d["C"] = dC
    return d


def fused_logits(v, n, Yb):
    """The cross-entropy backward in one line: (softmax(logits) - onehot(Yb)) / n."""
    p = np.exp(v["logits"] - v["logits"].max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(n), Yb] -= 1.0
    return p / n


def fused_hprebn(v, d, n):
    """The BatchNorm backward in one line (the lecture's, with its n-1 variance)."""
    dh = d["hpreact"]
    return v["bngain"] * v["bnvar_inv"] / n * (n * dh - dh.sum(0) - n / (n - 1) * v["bnraw"]
                                               * (dh * v["bnraw"]).sum(0))


def main(batch_size=32, seed=42):
    """Print the comparison table; returns its rows (Comparison objects)."""
    p = make_params(seed=seed)
    Xb, Yb = batch(batch_size, seed)
    with tg.Tape():
        a = forward(p, Xb, Yb)
        a["loss"].backward()
    print(f"loss {a['loss'].item():.6f} on a batch of {batch_size} (float64)\n")
    v = {k: t.detach().numpy() for k, t in {**a, **p}.items()}
    v["Xb"] = Xb
    n = len(Yb)
    hand = gradients(v, {}, n, Yb)
    tape = {k: t.grad for k, t in {**a, **p}.items()}
    rows = [tg.cmp(k, hand[k], tape[k]) for k in ORDER]
    rows.append(tg.cmp("logits (fused)", fused_logits(v, n, Yb), tape["logits"]))
    rows.append(tg.cmp("hprebn (fused)", fused_hprebn(v, hand, n), tape["hprebn"]))
    print(format_comparisons(rows))
    print("\nall allclose: " + str(all(r.close for r in rows)))
    return rows


if __name__ == "__main__":
    main()

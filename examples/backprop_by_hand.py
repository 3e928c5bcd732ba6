"""makemore part 4's exercise with our tape: backprop the MLP by hand, then compare with the tape.

    python examples/backprop_by_hand.py

Everything is float64, so hand and tape agree to ~1e-15 and every row says allclose: True.
`exact` may be False in general (the same math in a different order rounds differently);
here the hand formulas happen to match the ops' own, so it is True too.
"""
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tinygrad_mm as tg  # noqa: E402
from tinygrad_mm import format_comparisons  # noqa: E402
from models.dataset import make_splits  # noqa: E402
from models.mlp import MLPConfig, MLPLanguageModel  # noqa: E402


def forward(model, Xb, Yb):
    """The model's forward written out layer by layer, keeping every intermediate tensor."""
    emb = model.embedding(Xb)            # (B, T, C)   gather rows of C
    embcat = model.flatten(emb)          # (B, T*C)    concatenate the context
    hpre = model.hidden(embcat)          # (B, H)      embcat @ W1.T + b1
    h = model.tanh(hpre)                 # (B, H)
    logits = model.output(h)             # (B, V)      h @ W2.T + b2
    loss = tg.nn.cross_entropy(logits, Yb)
    return dict(emb=emb, embcat=embcat, hpre=hpre, h=h, logits=logits, loss=loss)


def backward_by_hand(model, Xb, Yb, a):
    """Every gradient, derived on paper and written in numpy (weights in torch's (out, in) layout)."""
    C, W1, W2 = model.embedding.weight.array, model.hidden.weight.array, model.output.weight.array
    emb, embcat, h, logits = (a[k].array for k in ("emb", "embcat", "h", "logits"))
    n = len(Yb)
    d = {}
    # cross-entropy of the mean: d loss / d logits = (softmax - onehot) / n
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(n), Yb] -= 1
    d["logits"] = p / n
    # logits = h @ W2.T + b2
    d["h"] = d["logits"] @ W2
    d["W2"] = d["logits"].T @ h
    d["b2"] = d["logits"].sum(0)
    # h = tanh(hpre): d tanh = 1 - tanh^2, and tanh is what we kept
    d["hpre"] = (1 - h ** 2) * d["h"]
    # hpre = embcat @ W1.T + b1
    d["embcat"] = d["hpre"] @ W1
    d["W1"] = d["hpre"].T @ embcat
    d["b1"] = d["hpre"].sum(0)
    # flatten is a reshape: the same numbers, laid back out
    d["emb"] = d["embcat"].reshape(emb.shape)
    # embedding: each picked row of C receives its gradient; a row picked twice receives both
    dC = np.zeros_like(C)
    np.add.at(dC, Xb, d["emb"])
    d["C"] = dC
    return d


def tape_gradients(model, a):
    """The tape's gradients: .grad of the parameters, last_grad (the adjoint) of the intermediates."""
    m = model
    g = {"C": m.embedding.weight.grad, "W1": m.hidden.weight.grad, "b1": m.hidden.bias.grad,
         "W2": m.output.weight.grad, "b2": m.output.bias.grad}   # the lecture's names
    for k in ("logits", "h", "hpre", "embcat", "emb"):
        g[k] = a[k].entry.grad_out   # each entry keeps its output gradient after the sweep
    return g


ORDER = ["logits", "h", "W2", "b2", "hpre", "embcat", "W1", "b1", "emb", "C"]  # the order backprop reaches them


def main(batch_size=32, seed=42):
    """Print the comparison table; returns its rows (Comparison objects)."""
    data = make_splits()
    model = MLPLanguageModel(MLPConfig(vocab_size=data.vocab.size), generator=tg.Generator(seed),
                             dtype=np.float64)
    ix = np.random.default_rng(seed).integers(0, len(data.Xtr), batch_size)
    Xb, Yb = data.Xtr[ix], data.Ytr[ix]
    with tg.Tape():
        a = forward(model, Xb, Yb)
        a["loss"].backward()
    print(f"loss {a['loss'].item():.6f} on a batch of {batch_size} (float64)\n")
    hand = backward_by_hand(model, Xb, Yb, a)
    tape = tape_gradients(model, a)
    rows = [tg.cmp(k, hand[k], tape[k]) for k in ORDER]
    print(format_comparisons(rows))
    print("\nall allclose: " + str(all(r.close for r in rows)))
    return rows


if __name__ == "__main__":
    main()

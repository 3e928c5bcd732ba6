"""makemore part 4 as an exercise: backprop the MLP with BatchNorm through every piece, by hand.

    python examples/backprop_exercise.py

The forward below is the lecture's, broken into small steps (BatchNorm and cross-entropy
too), on our tensors in float64. Your job: in `my_gradients`, replace each `TODO` with the
gradient of the loss with respect to that intermediate or parameter, in numpy, using the
forward values `v[...]` and the gradients you already have `d[...]`. Run the file: each
gradient is checked against the tape's as soon as you assign it, and a wrong one gets a
verdict (a factor 2, the sign, a transposed matrix, a missing broadcast sum ...). Your
`d[...]` always holds the tape's correct value afterwards, so one mistake does not spoil
the gradients after it. The solution is examples/backprop_by_hand.py (no peeking!).
"""
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tinygrad_mm as tg  # noqa: E402
from tinygrad_mm.verdict import gradient_verdict  # noqa: E402

TODO = None  # an unanswered gradient

# the order backprop reaches them: from the loss back to the embedding table
ORDER = ["logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "logit_maxes", "logits",
         "h", "W2", "b2", "hpreact", "bngain", "bnbias", "bnraw", "bnvar_inv", "bnvar", "bndiff2", "bndiff",
         "bnmeani", "hprebn", "embcat", "W1", "b1", "emb", "C"]


def make_params(vocab_size=27, block_size=3, n_embd=10, n_hidden=64, seed=42):
    """The lecture's parameters, float64. Small random biases and gains, not zeros and ones: an
    all-zero start can hide a wrong backward (a forgotten term times zero is still zero)."""
    rng = np.random.default_rng(seed)
    shapes = {"C": (vocab_size, n_embd), "W1": (n_embd * block_size, n_hidden), "b1": (n_hidden,),
              "W2": (n_hidden, vocab_size), "b2": (vocab_size,), "bngain": (1, n_hidden), "bnbias": (1, n_hidden)}
    scale = {"C": 1.0, "W1": (5 / 3) / (n_embd * block_size) ** 0.5, "b1": 0.1, "W2": 0.1, "b2": 0.1,
             "bngain": 0.1, "bnbias": 0.1}
    p = {k: rng.standard_normal(s) * scale[k] for k, s in shapes.items()}
    p["bngain"] += 1.0
    return {k: tg.tensor(a, dtype=np.float64, requires_grad=True) for k, a in p.items()}


def batch(batch_size=32, seed=42):
    from models.dataset import make_splits
    data = make_splits()
    ix = np.random.default_rng(seed).integers(0, len(data.Xtr), batch_size)
    return data.Xtr[ix], data.Ytr[ix]


def forward(p, Xb, Yb):
    """The forward in small steps; returns every intermediate (each keeps its gradient: retain_grad)."""
    n = len(Yb)
    a = {}
    a["emb"] = p["C"][Xb]                                      # (n, 3, 10)  embed the characters
    a["embcat"] = a["emb"].reshape(n, -1)                      # (n, 30)     concatenate the context
    # Linear layer 1
    a["hprebn"] = a["embcat"] @ p["W1"] + p["b1"]              # (n, 64)     hidden layer pre-activation
    # BatchNorm layer
    a["bnmeani"] = 1 / n * a["hprebn"].sum(0, keepdim=True)    # (1, 64)
    a["bndiff"] = a["hprebn"] - a["bnmeani"]
    a["bndiff2"] = a["bndiff"] ** 2
    a["bnvar"] = 1 / (n - 1) * a["bndiff2"].sum(0, keepdim=True)   # Bessel's n-1, as the lecture
    a["bnvar_inv"] = (a["bnvar"] + 1e-5) ** -0.5
    a["bnraw"] = a["bndiff"] * a["bnvar_inv"]
    a["hpreact"] = p["bngain"] * a["bnraw"] + p["bnbias"]
    # non-linearity
    a["h"] = a["hpreact"].tanh()                               # (n, 64)
    # Linear layer 2
    a["logits"] = a["h"] @ p["W2"] + p["b2"]                   # (n, 27)
    # cross entropy loss, the same as tg.nn.functional.cross_entropy(logits, Yb)
    a["logit_maxes"] = a["logits"].max(1, keepdim=True).values   # subtracted for numerical stability
    a["norm_logits"] = a["logits"] - a["logit_maxes"]
    a["counts"] = a["norm_logits"].exp()
    a["counts_sum"] = a["counts"].sum(1, keepdims=True)
    a["counts_sum_inv"] = a["counts_sum"] ** -1
    a["probs"] = a["counts"] * a["counts_sum_inv"]
    a["logprobs"] = a["probs"].log()
    a["loss"] = -a["logprobs"][np.arange(n), Yb].mean()
    for t in a.values():
        t.retain_grad()
    return a


def my_gradients(v, d, n, Yb):
    """YOUR exercise: d[name] = d loss / d name, a numpy array shaped like v[name] (or p[name]).
    Assign each one complete (build it in a local variable first): it is checked on assignment."""
    d["logprobs"] = TODO        # loss = -logprobs[range(n), Yb].mean(): only n entries are used
    d["probs"] = TODO           # logprobs = log(probs)
    d["counts_sum_inv"] = TODO  # probs = counts * counts_sum_inv   (counts_sum_inv is (n, 1): broadcast!)
    d["counts_sum"] = TODO      # counts_sum_inv = counts_sum ** -1
    d["counts"] = TODO          # counts is used twice: in probs and in counts_sum (add both)
    d["norm_logits"] = TODO     # counts = exp(norm_logits)
    d["logit_maxes"] = TODO     # norm_logits = logits - logit_maxes
    d["logits"] = TODO          # two uses again: norm_logits, and the max (one-hot at the argmax)
    d["h"] = TODO               # logits = h @ W2 + b2
    d["W2"] = TODO
    d["b2"] = TODO
    d["hpreact"] = TODO         # h = tanh(hpreact): use v["h"]
    d["bngain"] = TODO          # hpreact = bngain * bnraw + bnbias
    d["bnbias"] = TODO
    d["bnraw"] = TODO
    d["bnvar_inv"] = TODO       # bnraw = bndiff * bnvar_inv
    d["bnvar"] = TODO           # bnvar_inv = (bnvar + 1e-5) ** -0.5
    d["bndiff2"] = TODO         # bnvar = 1/(n-1) * bndiff2.sum(0, keepdims=True)
    d["bndiff"] = TODO          # two uses: bnraw and bndiff2
    d["bnmeani"] = TODO         # bndiff = hprebn - bnmeani
    d["hprebn"] = TODO          # two uses: bndiff and bnmeani
    d["embcat"] = TODO          # hprebn = embcat @ W1 + b1
    d["W1"] = TODO
    d["b1"] = TODO
    d["emb"] = TODO             # embcat = emb.reshape(n, -1)
    d["C"] = TODO               # emb = C[Xb]: a row picked twice gets both gradients (np.add.at)


class Checked(dict):
    """The `d` you write into: each assignment is checked against the tape, then replaced by the tape's
    gradient (so a wrong answer does not spoil the ones after it). `results` lists (name, Verdict or None)."""

    def __init__(self, tape_grads):
        super().__init__()
        self.tape_grads, self.results = tape_grads, []

    def __setitem__(self, name, value):
        ref = self.tape_grads[name]
        self.results.append((name, None if value is None else gradient_verdict(value, ref)))
        super().__setitem__(name, ref.copy())  # a copy: writing into d[name] later cannot touch the tape's

    def __getitem__(self, name):
        if name not in self:
            raise KeyError(f"d[{name!r}] is not computed yet: backprop reaches it later (see ORDER)")
        return super().__getitem__(name)


def run(gradients=my_gradients, batch_size=32, seed=42, quiet=False):
    """Forward and tape backward, then your gradients, each checked; returns [(name, Verdict or None)]."""
    p = make_params(seed=seed)
    Xb, Yb = batch(batch_size, seed)
    with tg.Tape():
        a = forward(p, Xb, Yb)
        a["loss"].backward()
    tape_grads = {k: t.grad.array for k, t in {**a, **p}.items()}
    values = {k: t.detach().numpy() for k, t in {**a, **p}.items()}
    values["Xb"] = Xb
    d = Checked(tape_grads)
    gradients(values, d, len(Yb), Yb)
    if not quiet:
        print(f"loss {a['loss'].item():.6f} on a batch of {len(Yb)} (float64)\n")
        print(report(d.results))
    return d.results


def report(results):
    """One line per gradient, then a tally."""
    lines = []
    for name, v in results:
        state = "TODO" if v is None else f"ok (max diff {v.maxdiff:.2g})" if v else "WRONG: " + v.message
        lines.append(f"{name:<15} {state}")
    done = [v for _, v in results if v is not None]
    good = sum(bool(v) for v in done)
    lines.append(f"\n{good} of {len(results)} gradients right, {len(done) - good} wrong, "
                 f"{len(results) - len(done)} still TODO")
    return "\n".join(lines)


if __name__ == "__main__":
    run()

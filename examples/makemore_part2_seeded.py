"""makemore part 2 (the MLP) with the lecture's seed, drawing torch's exact random numbers.

    python examples/makemore_part2_seeded.py [--steps 200000] [--torch]

The lecture (karpathy/nn-zero-to-hero, lectures/makemore/makemore_part2_mlp.ipynb) seeds
`g = torch.Generator().manual_seed(2147483647)` and draws its parameters with it. Every random
number here comes from `tinygrad_mm.Generator().manual_seed(2147483647)`, which draws the same
bits as torch, so:

* the first loss of the video (five words, 32 examples, 3481 parameters) is 17.7697 again;
* the parameters C, W1, b1, W2, b2 (11897 numbers) equal torch's to the last bit;
* the minibatches `randint(0, Xtr.shape[0], (32,), generator=g)` are torch's, index for index;
* the names are sampled with `multinomial(probs, 1, generator=g)` from `manual_seed(2147483647 + 10)`.

The notebook's training loop draws its minibatches from torch's *unseeded* default generator
(`torch.randint(0, Xtr.shape[0], (32,))`), so its final losses (2.1260 / 2.1701) and its 20
names cannot be reproduced by anyone; this script passes `generator=g` (the reproducible
version), and `--torch` runs the very same steps in torch to compare.
The training arithmetic (float32 numpy here, MKL in torch) rounds differently: the first step's
losses agree to 1e-7, and SGD amplifies the difference (1e-4 after 50 steps), so after 200,000
steps the two runs end near each other (train 2.1254 vs 2.1220 here) with different weights and
different names. Sampling one set of weights gives the same names in both; the draws always agree.
"""
import argparse
import functools
import os
import random
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tinygrad_mm as tg  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "models", "data", "names.txt")
SEED = 2147483647
BLOCK = 3
LECTURE = {  # what the lecture's notebook printed
    "first_five_words_loss": 17.7697, "parameters": 11897, "train_loss": 2.1260, "dev_loss": 2.1701,
    "names": ["carmahela.", "jhovi.", "kimrin.", "thil.", "halanna.", "jazhien.", "amerynci.",
              "aqui.", "nellara.", "chaiiv.", "kaleigh.", "ham.", "joce.", "quinton.", "lilea.",
              "jamilio.", "jeron.", "jaryni.", "jace.", "chrudeley."]}


@functools.lru_cache(maxsize=None)
def load_words(path=DATA):
    """(words, stoi, itos) of names.txt; '.' is 0, 'a'..'z' are 1..26."""
    with open(path) as f:
        words = f.read().splitlines()
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    return words, stoi, {i: s for s, i in stoi.items()}


def build_dataset(words, stoi):
    """The lecture's (context of 3 characters -> next character) pairs."""
    X, Y = [], []
    for w in words:
        context = [0] * BLOCK
        for ch in w + ".":
            X.append(context)
            Y.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    return np.array(X, np.int64).reshape(-1, BLOCK), np.array(Y, np.int64)


@functools.lru_cache(maxsize=None)
def lecture_splits(path=DATA):
    """(Xtr, Ytr), (Xdev, Ydev), (Xte, Yte) of the lecture (cached: read-only arrays)."""
    words, stoi, _ = load_words(path)
    out = splits(words, stoi)
    for a in (a for pair in out for a in pair):
        a.flags.writeable = False
    return out


def splits(words, stoi):
    """random.seed(42); random.shuffle(words); 80% / 10% / 10%, as the lecture (Python's random)."""
    words = list(words)
    random.seed(42)
    random.shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return [build_dataset(part, stoi) for part in (words[:n1], words[n1:n2], words[n2:])]


def first_five_words_loss(words, stoi):
    """The video's first forward pass: 5 words, C (27, 2), W1 (6, 100), prob-based NLL."""
    X, Y = build_dataset(words[:5], stoi)
    g = tg.Generator().manual_seed(SEED)
    C, W1, b1, W2, b2 = (tg.randn(s, generator=g).numpy() for s in [(27, 2), (6, 100), 100, (100, 27), 27])
    h = np.tanh(C[X].reshape(-1, 6) @ W1 + b1)
    counts = np.exp(h @ W2 + b2)
    prob = counts / counts.sum(1, keepdims=True)
    return float(-np.log(prob[np.arange(len(Y)), Y]).mean())


def init_params(g):
    """C, W1, b1, W2, b2 in the lecture's order of draws (float32)."""
    return [tg.randn(s, generator=g).numpy() for s in [(27, 10), (30, 200), 200, (200, 27), 27]]


def forward(P, X):
    C, W1, b1, W2, b2 = P
    emb = C[X].reshape(len(X), -1)
    h = np.tanh(emb @ W1 + b1)
    return emb, h, h @ W2 + b2


def cross_entropy(logits, Y):
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(Y)), Y].mean(), np.exp(logp)


def sgd_step(P, X, Y, lr):
    """Forward, cross-entropy, backward by hand, `p.data += -lr * p.grad`; returns the loss."""
    C, W1, b1, W2, b2 = P
    emb, h, logits = forward(P, X)
    loss, p = cross_entropy(logits, Y)
    p[np.arange(len(Y)), Y] -= 1
    dlogits = p / np.float32(len(Y))
    dh = (dlogits @ W2.T) * (1 - h * h)
    demb = dh @ W1.T
    grads = [None, emb.T @ dh, dh.sum(0), h.T @ dlogits, dlogits.sum(0)]
    grads[0] = np.zeros_like(C)
    np.add.at(grads[0], X, demb.reshape(len(X), BLOCK, -1))
    for param, grad in zip(P, grads):
        param += np.float32(-lr) * grad
    return float(loss)


def train(P, Xtr, Ytr, g, steps):
    """The lecture's loop with the minibatch drawn from g; returns (losses, first indices)."""
    losses, first_ix = [], None
    for i in range(steps):
        ix = tg.randint(0, Xtr.shape[0], (32,), generator=g).numpy()
        first_ix = ix if first_ix is None else first_ix
        losses.append(sgd_step(P, Xtr[ix], Ytr[ix], 0.1 if i < 100000 else 0.01))
    return losses, first_ix


def split_loss(P, X, Y):
    return float(cross_entropy(forward(P, X)[2], Y)[0])


def sample(P, itos, n=20):
    """The lecture's sampler, g = manual_seed(2147483647 + 10), one multinomial draw per character."""
    g = tg.Generator().manual_seed(SEED + 10)
    names = []
    for _ in range(n):
        out, context = [], [0] * BLOCK
        while True:
            logits = forward(P, np.array([context]))[2]
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            ix = tg.multinomial(probs, num_samples=1, generator=g).item()
            context = context[1:] + [ix]
            out.append(ix)
            if ix == 0:
                break
        names.append("".join(itos[i] for i in out))
    return names


def run(steps, evaluate=True):
    """Everything the lecture prints, from our generator: a dict of the figures (evaluate=False
    skips the final train/dev losses, which take a second or two)."""
    words, stoi, itos = load_words()
    (Xtr, Ytr), (Xdev, Ydev), _ = lecture_splits()
    g = tg.Generator().manual_seed(SEED)
    P = init_params(g)
    res = {"first_five_words_loss": first_five_words_loss(words, stoi),
           "parameters": sum(p.size for p in P), "params": [p.copy() for p in P],
           "initial_train_loss": split_loss(P, Xtr, Ytr)}
    t0 = time.perf_counter()
    res["losses"], res["first_ix"] = train(P, Xtr, Ytr, g, steps)
    res["seconds"] = time.perf_counter() - t0
    if evaluate:
        res["train_loss"], res["dev_loss"] = split_loss(P, Xtr, Ytr), split_loss(P, Xdev, Ydev)
    res["trained"], res["names"] = P, sample(P, itos)
    return res


def first_five_words_loss_torch(words, stoi):
    """first_five_words_loss in the lecture's torch code."""
    import torch
    X5, Y5 = (torch.from_numpy(a) for a in build_dataset(words[:5], stoi))
    g = torch.Generator().manual_seed(SEED)
    C, W1, b1, W2, b2 = (torch.randn(s, generator=g) for s in [(27, 2), (6, 100), 100, (100, 27), 27])
    counts = (torch.tanh(C[X5].view(-1, 6) @ W1 + b1) @ W2 + b2).exp()
    return float(-(counts / counts.sum(1, keepdims=True))[torch.arange(32), Y5].log().mean())


def run_torch(steps, evaluate=True):
    """The lecture's torch code with generator=g in randint (needs torch): the same dict."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # one core: many threads only contend on these tiny matmuls
    try:
        return _run_torch(steps, evaluate)
    finally:
        torch.set_num_threads(threads)


def _run_torch(steps, evaluate):
    import torch
    import torch.nn.functional as F
    words, stoi, itos = load_words()
    (Xtr, Ytr), (Xdev, Ydev) = [(torch.tensor(X), torch.tensor(Y)) for X, Y in lecture_splits()[:2]]
    res = {"first_five_words_loss": first_five_words_loss_torch(words, stoi)}
    g = torch.Generator().manual_seed(SEED)
    P = [torch.randn(s, generator=g) for s in [(27, 10), (30, 200), 200, (200, 27), 27]]
    C, W1, b1, W2, b2 = P
    res["params"] = [p.numpy().copy() for p in P]
    res["parameters"] = sum(p.nelement() for p in P)
    fwd = lambda X: torch.tanh(C[X].view(-1, 30) @ W1 + b1) @ W2 + b2  # noqa: E731
    res["initial_train_loss"] = float(F.cross_entropy(fwd(Xtr), Ytr))
    for p in P:
        p.requires_grad = True
    res["losses"], res["first_ix"] = [], None
    t0 = time.perf_counter()
    for i in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
        res["first_ix"] = ix.numpy() if res["first_ix"] is None else res["first_ix"]
        loss = F.cross_entropy(fwd(Xtr[ix]), Ytr[ix])
        for p in P:
            p.grad = None
        loss.backward()
        for p in P:
            p.data += -(0.1 if i < 100000 else 0.01) * p.grad
        res["losses"].append(loss.item())
    res["seconds"] = time.perf_counter() - t0
    res["trained"] = [p.detach().numpy().copy() for p in P]
    with torch.no_grad():
        if evaluate:
            res["train_loss"], res["dev_loss"] = (float(F.cross_entropy(fwd(X), Y))
                                                  for X, Y in [(Xtr, Ytr), (Xdev, Ydev)])
        g = torch.Generator().manual_seed(SEED + 10)
        res["names"] = []
        for _ in range(20):
            out, context = [], [0] * BLOCK
            while True:
                probs = F.softmax(fwd(torch.tensor([context])), dim=1)
                ix = torch.multinomial(probs, num_samples=1, generator=g).item()
                context = context[1:] + [ix]
                out.append(ix)
                if ix == 0:
                    break
            res["names"].append("".join(itos[i] for i in out))
    return res


def report(name, r):
    print(f"--- {name}")
    print(f"first forward pass (5 words): loss {r['first_five_words_loss']:.4f}")
    print(f"parameters: {r['parameters']}, initial train loss {r['initial_train_loss']:.4f}, "
          f"first minibatch {r['first_ix'][:8].tolist() if r['first_ix'] is not None else []}")
    if r["losses"]:
        print(f"{len(r['losses'])} steps in {r['seconds']:.1f} s: first minibatch loss "
              f"{r['losses'][0]:.4f}, last {r['losses'][-1]:.4f}")
    print(f"train loss {r['train_loss']:.4f}, dev loss {r['dev_loss']:.4f}")
    print("names: " + " ".join(r["names"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200000, help="training steps (lecture: 200000)")
    ap.add_argument("--torch", action="store_true", help="also run the same steps in torch")
    args = ap.parse_args(argv)
    report("lecture notebook (minibatches from the unseeded default generator)",
           dict(LECTURE, initial_train_loss=float("nan"), first_ix=None, losses=[]))
    ours = run(args.steps)
    report("tinygrad_mm", ours)
    if args.torch:
        theirs = run_torch(args.steps)
        report("torch, the same steps", theirs)
        same = all(np.array_equal(a, b) for a, b in zip(ours["params"], theirs["params"]))
        print(f"initial parameters bit-identical: {same}; first minibatch identical: "
              f"{np.array_equal(ours['first_ix'], theirs['first_ix'])}; names identical: "
              f"{ours['names'] == theirs['names']}")
    return ours


if __name__ == "__main__":
    main()

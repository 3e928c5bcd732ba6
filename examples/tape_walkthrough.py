"""Watch the chain rule happen: record the name model's forward, then sweep the tape one entry at a time.

    python examples/tape_walkthrough.py

The same stepping is a library API: `for step in tape.backward_steps(loss): ...` yields a
Step(entry, grad_out, increments) per swept entry (see docs/tape.md).
"""
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tinygrad_mm as tg  # noqa: E402
from models.dataset import Vocab, build_examples, load_words  # noqa: E402
from models.mlp import MLPConfig, MLPLanguageModel  # noqa: E402


def summary(a, k=4):
    """'(4, 27) |·|=0.123  [0.01, -0.02, ...]': shape, norm and the first few values of an array."""
    a = np.asarray(a, dtype=np.float64)
    head = np.array2string(a.reshape(-1)[:k], precision=4, separator=", ", suppress_small=True)
    more = ", ...]" if a.size > k else "]"
    return f"{str(a.shape):<10} |·|={np.sqrt((a * a).sum()):.4g}  {head[:-1]}{more}"


def namer(model):
    """A function naming a tensor: a parameter by its module path, an intermediate by its entry."""
    names = {id(p): name for name, p in model.named_parameters()}

    def name(t):
        if id(t) in names:
            return names[id(t)]
        return f"output of #{t.entry.index} {t.entry.name}" if t.entry is not None else "a leaf"
    return name


def batch(word="emma", block_size=3):
    """The examples of one word: '...' -> e, '..e' -> m, '.em' -> m, 'emm' -> a (and 'mma' -> '.')."""
    vocab = Vocab.from_words(load_words())
    X, Y = build_examples([word], vocab, block_size)
    return vocab, X[:4], Y[:4]   # a batch of 4


def main(word="emma"):
    """Print the tape, then each Step of the reverse sweep; returns the list of Steps."""
    vocab, X, Y = batch(word)
    print("batch of 4 (context -> next character):")
    for x, y in zip(X, Y):
        print(f"  {vocab.decode(x)} -> {vocab.decode([y])}")

    model = MLPLanguageModel(MLPConfig(vocab_size=vocab.size), generator=tg.Generator(42))
    name = namer(model)
    with tg.Tape() as tape:       # a fresh tape: only this forward is on it
        _, loss = model(X, Y)
    print(f"\nloss = {loss.item():.4f} (uniform guessing: ln {vocab.size} = {np.log(vocab.size):.4f})")
    print("\nthe tape after the forward (one entry per op, in execution order):")
    print(tape)

    print("\nthe reverse sweep, one entry at a time (last entry first):")
    steps = []
    for step in tape.backward_steps(loss):
        steps.append(step)
        print(f"\n{step!r}")
        print(f"  upstream gradient d loss / d (output of #{step.entry.index}): {summary(step.grad_out)}")
        for t, inc in step.increments:
            kind = ".grad +=" if t.is_leaf else "adjoint +="
            print(f"  {kind:<10} {name(t):<24} {summary(inc)}")
        if not step.increments:
            print("  (no input needs a gradient)")
    print("\nafter the sweep every entry is freed (saved arrays dropped), keeping its |grad out|:")
    print(tape)
    return steps


if __name__ == "__main__":
    main()

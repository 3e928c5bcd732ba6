"""micrograd's first example on 0-d tensors: every value and every adjoint small enough to check by hand.

    python examples/scalar_walkthrough.py

    a = 2, b = -3, c = 10, f = -2
    e = a * b        = -6
    d = e + c        =  4
    L = d * f        = -8

The sweep runs from L back to the leaves, one entry at a time (tape.backward_steps), and
prints each upstream gradient and what it adds to each input. Then micrograd's neuron,
o = tanh(x1*w1 + x2*w2 + b), whose bias makes o = 1/sqrt(2) so that 1 - o² = 1/2.
Finally it writes scalar_walkthrough.html (the same sweep with a Step button) when asked:
    python examples/scalar_walkthrough.py --html scalar_walkthrough.html
"""
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tinygrad_mm as tg  # noqa: E402


def scalar(v):
    return tg.tensor(v, dtype=np.float64, requires_grad=True)


def sweep(tape, out, names):
    """Print the forward values, then each Step; returns {name: gradient} of every named tensor."""
    tape.label({k: t for k, t in names.items() if t.is_leaf})
    by_id = {id(t): k for k, t in names.items()}
    for k, t in names.items():
        how = "leaf" if t.is_leaf else f"entry #{t.entry.index} {t.entry.name}"
        print(f"  {k:<8} = {t.item():8.4f}   ({how})")
    print(tape)
    out.retain_grad()
    for t in names.values():
        t.retain_grad()   # intermediates keep their gradient too, so we can print them all at the end
    print(f"\nreverse sweep from {by_id[id(out)]} (d{by_id[id(out)]}/d{by_id[id(out)]} = 1):")
    for step in tape.backward_steps(out):
        e = step.entry
        made = next(k for k, t in names.items() if t.entry is e)
        print(f"  #{e.index} {e.name:<5} {made}: upstream d{by_id[id(out)]}/d{made} = {float(step.grad_out):g}")
        for t, g in step.increments:
            kind = ".grad" if t.is_leaf else "adjoint"
            print(f"      {kind:>7} of {by_id[id(t)]:<8} += {float(g):g}")
    return {k: t.grad.item() for k, t in names.items()}


def expression():
    """L = (a*b + c) * f: the lecture's first graph."""
    a, b, c, f = scalar(2.0), scalar(-3.0), scalar(10.0), scalar(-2.0)
    with tg.Tape() as tape:
        e = a * b
        d = e + c
        L = d * f
    print("L = (a*b + c) * f")
    grads = sweep(tape, L, dict(a=a, b=b, c=c, e=e, d=d, f=f, L=L))
    by_hand = dict(L=1.0, d=-2.0, f=4.0, e=-2.0, c=-2.0, a=6.0, b=-4.0)  # dL/dd = f, dL/df = d, dL/da = dL/de * b ...
    return grads, by_hand


def neuron():
    """o = tanh(x1*w1 + x2*w2 + b): micrograd's neuron, b chosen so that n = x1*w1 + x2*w2 + b = atanh(1/sqrt(2))."""
    x1, x2, w1, w2 = scalar(2.0), scalar(0.0), scalar(-3.0), scalar(1.0)
    b = scalar(6.881373587019543)  # -6 + atanh(1/sqrt(2)) = -6 + 0.8813735870195432
    with tg.Tape() as tape:
        x1w1 = x1 * w1
        x2w2 = x2 * w2
        x1w1x2w2 = x1w1 + x2w2
        n = x1w1x2w2 + b
        o = n.tanh()
    print("\no = tanh(x1*w1 + x2*w2 + b)")
    grads = sweep(tape, o, dict(x1=x1, w1=w1, x2=x2, w2=w2, b=b, x1w1=x1w1, x2w2=x2w2,
                               x1w1x2w2=x1w1x2w2, n=n, o=o))
    # do/dn = 1 - o² = 1/2; a sum passes it on; a product sends each factor the other one
    by_hand = dict(o=1.0, n=0.5, b=0.5, x1w1x2w2=0.5, x1w1=0.5, x2w2=0.5,
                   x1=0.5 * -3.0, w1=0.5 * 2.0, x2=0.5 * 1.0, w2=0.5 * 0.0)
    return grads, by_hand


def check(grads, by_hand):
    ok = True
    for k, want in by_hand.items():
        good = abs(grads[k] - want) < 1e-12
        ok &= good
        print(f"  d/d{k:<8} tape {grads[k]:8.4f}   by hand {want:8.4f}   {'ok' if good else 'WRONG'}")
    return ok


def main(html=None):
    """Run both examples; returns True when every tape gradient equals the hand-derived one."""
    grads, by_hand = expression()
    print("\ncheck against the chain rule by hand:")
    ok = check(grads, by_hand)
    grads, by_hand = neuron()
    print("\ncheck against the chain rule by hand:")
    ok &= check(grads, by_hand)
    if html:
        tape, L, leaves = recorded()
        print(f"\nwrote {tape.save_html(html, L, names=leaves)}: open it and press Step")
    print("\nall gradients as derived by hand: " + str(ok))
    return ok


def recorded():
    """The first expression recorded again, still live, for the page (it runs its own sweep)."""
    a, b, c, f = scalar(2.0), scalar(-3.0), scalar(10.0), scalar(-2.0)
    with tg.Tape() as tape:
        L = (a * b + c) * f
    return tape, L, dict(a=a, b=b, c=c, f=f)


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--html", metavar="PATH", help="also write the first sweep as a page with a Step button")
    sys.exit(0 if main(p.parse_args().html) else 1)

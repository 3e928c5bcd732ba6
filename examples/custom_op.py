"""Write a softplus op, break it on purpose, read gradcheck's and check_op's reports, fix it.

    python examples/custom_op.py

softplus(x) = log(1 + e^x), a smooth relu; its derivative is the sigmoid 1 / (1 + e^-x).
"""
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tinygrad_mm as tg  # noqa: E402


class Softplus(tg.Function):
    """softplus(x) = log(1 + e^x); backward: g * sigmoid(x)."""

    def forward(self, x):
        self.x = x                       # saved for backward (the tape frees it after the sweep)
        return np.logaddexp(0.0, x)      # log(e^0 + e^x) without overflow for large x

    def backward(self, g):
        return g / (1.0 + np.exp(-self.x))   # a new array: never return g or self.x itself


class SoftplusWrongSign(Softplus):
    """Broken on purpose: d/dx log(1 + e^-x) = -sigmoid(-x) -- a minus sign is easy to misplace."""

    def backward(self, g):
        return -g / (1.0 + np.exp(-self.x))


class SoftplusInPlace(Softplus):
    """Broken on purpose, in a way gradcheck cannot see: backward scales its saved sigmoid in place."""

    def forward(self, x):
        self.s = 1.0 / (1.0 + np.exp(-x))   # sigmoid(x), saved for backward
        return np.logaddexp(0.0, x)

    def backward(self, g):
        self.s *= g                        # "saves an allocation": right values on the first sweep, but
        return self.s                      # a second sweep (retain_graph=True) multiplies by g again


def reference(x):
    """The numpy forward that check_op compares against."""
    return np.logaddexp(0.0, x)


def torch_reference(x):
    import torch
    return torch.nn.functional.softplus(x)


def _torch_available():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def main():
    """Run the walkthrough, printing each report; returns the final check_op example count."""
    from tinygrad_mm.testing import OpCheckError, arrays, check_op  # hypothesis: a test extra

    x = np.random.default_rng(0).standard_normal((2, 3))  # float64: gradcheck's requirement

    section("1. the broken op: gradcheck compares the tape's gradient with finite differences")
    report = tg.gradcheck(lambda t: SoftplusWrongSign.apply(t), [x.copy()], raise_on_failure=False)
    print(report)
    print("-> read the hint line: the analytic gradient has the opposite sign.")

    section("2. is it the finite differences? sweep eps")
    report = tg.gradcheck(lambda t: SoftplusWrongSign.apply(t), [x.copy()], eps_sweep=True,
                          raise_on_failure=False)
    print(report.eps_sweep)
    print("-> no eps helps: the backward is wrong, not the numerics.")

    section("3. check_op on many inputs: the smallest failing example")
    try:
        check_op(SoftplusWrongSign, reference, arrays())
    except OpCheckError as e:
        print(e)

    section("4. a bug gradcheck misses: backward writes into what it saved")
    report = tg.gradcheck(lambda t: SoftplusInPlace.apply(t), [x.copy()], raise_on_failure=False)
    print(f"gradcheck alone says: {'passed' if report.ok else 'FAILED'} (the values are right)")
    try:
        check_op(SoftplusInPlace, reference, arrays())
    except OpCheckError as e:
        print(e)

    section("5. the fixed op")
    print(tg.gradcheck(lambda t: Softplus.apply(t), [x.copy()]))
    torch_ref = torch_reference if _torch_available() else None
    n = check_op(Softplus, reference, arrays(min_value=-20.0, max_value=20.0), torch_reference=torch_ref)
    print(f"check_op passed on {n} examples: forward, gradcheck, shapes, no mutation, no aliasing"
          + (", torch agreement" if torch_ref else ""))
    return n


if __name__ == "__main__":
    main()

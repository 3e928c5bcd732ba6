"""Memory: entries die with their outputs, swept entries are freed, loops stay flat."""
import weakref

import numpy as np
from hypothesis import strategies as st

import tinygrad_mm as tg
from tinygrad_mm import Tape, tape_print


def leaf(values, dtype=np.float64):
    return tg.tensor(np.array(values, dtype=dtype), requires_grad=True)


finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False)



# -- memory --------------------------------------------------------------------------------------

def _mlp(x, w1, w2):
    return ((x @ w1).tanh() @ w2).exp().mean()


def test_forward_loop_without_no_grad_or_backward_stays_flat():
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((8, 4)))
    w1, w2 = leaf(rng.standard_normal((4, 16))), leaf(rng.standard_normal((16, 3)))
    with Tape() as tape:
        first = weakref.ref(_mlp(x, w1, w2).entry)  # dropped at once
        for _ in range(2000):
            loss = _mlp(x, w1, w2)
            assert len(tape) <= 5
        assert first() is None
        assert len(tape) == 5  # only the last forward is alive
        assert len(tape._live) <= 1100  # dead weak slots are compacted, not kept forever
    del loss


def test_forward_backward_loop_stays_flat():
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((8, 4)))
    w1, w2 = leaf(rng.standard_normal((4, 16))), leaf(rng.standard_normal((16, 3)))
    with Tape() as tape:
        for _ in range(2000):
            w1.grad = w2.grad = None
            loss = _mlp(x, w1, w2)
            loss.backward()
            assert len(tape) == 5 and all(e.freed for e in tape.entries)
        assert len(tape._live) <= 1100
        loss = _mlp(x, w1, w2)  # the next op drops the previous sweep's records
        assert len(tape) == 5 and not any(e.freed for e in tape.entries)


def test_freed_entry_drops_its_saved_arrays_and_inputs():
    with Tape():
        x = leaf(np.ones(3))
        y = x.exp()
        saved = weakref.ref(y.entry)
        y.sum().backward()
    assert y.entry.freed and y.entry.function is None and y.entry.inputs is None
    assert y.entry.in_shapes == ((3,),) and tape_print.saved_nbytes(y.entry) == 0
    assert saved() is y.entry

"""HostPool's idleness test must not depend on how the calling code holds or counts references."""
import gc
import operator

import numpy as np
import pytest

from tinygrad_mm.host_pool import HostPool

SHAPE = (512, 1024)  # 2 MiB of float32: pooled


def _claim_in_nested_call(pool):
    def inner():
        return pool.empty(SHAPE, np.float32)
    return inner()


CALLERS = {  # the same request made through differently shaped calling code
    "direct": lambda pool: pool.empty(SHAPE, np.float32),
    "nested": _claim_in_nested_call,
    "getattr": lambda pool: getattr(pool, "empty")(SHAPE, "float32"),
    "methodcaller": lambda pool: operator.methodcaller("empty", SHAPE, np.float32)(pool),
    "comprehension": lambda pool: [pool.empty(SHAPE, np.float32) for _ in range(1)][0],
}


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_a_held_buffer_is_never_handed_out_again(caller):
    pool, claim = HostPool(), CALLERS[caller]
    a = claim(pool)
    a[...] = 1.0
    b = claim(pool)           # a is alive: b must be a fresh buffer
    b[...] = 2.0
    assert not np.shares_memory(a, b) and (a == 1.0).all()
    assert pool.idle_count() == 0


@pytest.mark.parametrize("caller", sorted(CALLERS))
@pytest.mark.parametrize("keep", ["view", "slice", "transpose", "reshape", "asarray", "memoryview", "nothing"])
def test_a_buffer_is_reused_exactly_when_nothing_refers_to_it(caller, keep):
    pool, claim = HostPool(), CALLERS[caller]
    a = claim(pool)
    held = {"view": lambda: a.view(np.int32), "slice": lambda: a[3:], "transpose": lambda: a.T,
            "reshape": lambda: a.reshape(-1)[::2], "asarray": lambda: np.asarray(a),
            "memoryview": lambda: memoryview(a), "nothing": lambda: None}[keep]()
    del a
    gc.collect()
    b = claim(pool)
    if keep == "nothing":
        assert len(pool._pairs) == 1  # the idle buffer was reused: no new one
    else:
        assert len(pool._pairs) == 2  # something still refers to the first buffer
        if not isinstance(held, memoryview):
            assert not np.shares_memory(b, held)
    del b, held


def test_small_requests_are_not_pooled():
    pool = HostPool()
    small = pool.empty((10, 10), np.float32)
    assert small.shape == (10, 10) and pool.held_bytes() == 0

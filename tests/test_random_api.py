"""The torch-shaped random API (randn, rand, randint, randperm, multinomial, normal, *_like) and
multinomial's algorithms, compared bit for bit with torch 2.13's CPU generator."""
import timeit

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_mm as tg
from tinygrad_mm import random as R

torch = pytest.importorskip("torch")


def pair(seed):
    return torch.Generator().manual_seed(seed), tg.Generator().manual_seed(seed)


def same(theirs, ours):
    ours = ours.numpy() if isinstance(ours, tg.Tensor) else ours
    theirs = theirs.numpy()
    assert (theirs.dtype, theirs.shape) == (ours.dtype, ours.shape)
    assert np.array_equal(theirs, ours) and np.array_equal(np.signbit(theirs), np.signbit(ours))


def same_state(tgen, ours):
    np.testing.assert_array_equal(tgen.get_state().numpy(), ours.get_state())


# ------------------------------------------------------------------------------ multinomial
@st.composite
def weights(draw):
    rows = draw(st.integers(1, 3))
    n = draw(st.integers(1, 60))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    w = np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 1.0, 0.5, 2.0]) | st.floats(1e-6, 10),
                               min_size=rows * n, max_size=rows * n)), dtype).reshape(rows, n)
    w[:, draw(st.integers(0, n - 1))] = 1.0                    # no all-zero row
    layout = draw(st.sampled_from(["2d", "1d", "transposed"]))
    if layout == "1d":
        w = w[0]
    elif layout == "transposed":
        w = np.ascontiguousarray(w.T).T                         # dense but column-major
    return w


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2 ** 64 - 1), w=weights(), replacement=st.booleans(), data=st.data())
def test_multinomial_matches_torch(seed, w, replacement, data):
    """Zeros and repeated weights make ties: their order is libstdc++'s nth_element/sort."""
    k = data.draw(st.integers(1, 2 * w.shape[-1] if replacement else w.shape[-1]))
    tgen, ours = pair(seed)
    tw = torch.from_numpy(w.copy()) if w.flags.c_contiguous else torch.from_numpy(w.T.copy()).t()
    same(torch.multinomial(tw, k, replacement, generator=tgen),
         tg.multinomial(tg.tensor(w) if w.flags.c_contiguous else w, k, replacement, generator=ours))
    same_state(tgen, ours)


def test_multinomial_one_sample_takes_the_exponential_race_even_with_replacement():
    p = np.random.default_rng(0).random((5, 27)).astype(np.float32)
    for seed in range(20):
        tgen, ours = pair(seed)
        same(torch.multinomial(torch.from_numpy(p), 1, True, generator=tgen),
             R.multinomial_array(p, 1, True, ours))
        same_state(tgen, ours)


def test_multinomial_large_rows_use_partial_sort_ties():
    p = np.zeros((2, 700), np.float32)
    p[:, [3, 50, 600]] = [0.2, 0.5, 0.3]
    tgen, ours = pair(1)
    same(torch.multinomial(torch.from_numpy(p), 10, generator=tgen), R.multinomial_array(p, 10, False, ours))


@pytest.mark.parametrize("w, k, replacement, match", [
    ([[0.5, -0.1]], 1, False, "inf.*nan.*< 0"),
    ([[0.5, np.nan]], 1, False, "inf.*nan.*< 0"),
    ([[0.5, np.inf]], 2, False, "inf.*nan.*< 0"),
    ([[0.0, 0.0]], 1, False, "sum of probabilities <= 0"),
    ([[1.0, 1.0], [0.0, 0.0]], 2, True, "sum of probabilities <= 0"),
    ([[1.0, -1.0]], 3, True, "entry < 0"),
    ([[1.0, np.nan]], 3, True, "entry < 0"),            # NaN fails `val >= 0` first, as in C++
    ([[1.0, np.inf]], 3, True, "infinity or NaN"),
    ([[1.0, 2.0]], 3, False, "without replacement"),
    ([[1.0, 2.0]], 0, True, "n_sample <= 0"),
    ([[[1.0]]], 1, True, "1 or 2 dim"),
])
def test_multinomial_errors_name_the_problem(w, k, replacement, match):
    with pytest.raises(ValueError, match=match):
        tg.multinomial(np.array(w, np.float32), k, replacement)
    with pytest.raises(RuntimeError):                    # torch refuses the same input
        torch.multinomial(torch.tensor(w), k, replacement)


def test_multinomial_error_in_a_later_row_advances_the_stream_like_torch():
    w = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]], np.float32)
    tgen, ours = pair(4)
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.from_numpy(w), 3, True, generator=tgen)
    with pytest.raises(ValueError, match="row 2"):
        R.multinomial_array(w, 3, True, ours)
    same_state(tgen, ours)


def test_multinomial_rejects_integer_weights():
    with pytest.raises(TypeError, match="float32/float64"):
        tg.multinomial(np.array([1, 2, 3]), 1)


# ------------------------------------------------------------------------------ creation API
def test_randn_rand_shapes_and_dtypes_as_torch():
    tgen, ours = pair(2147483647)
    same(torch.randn((27, 2), generator=tgen), tg.randn((27, 2), generator=ours))
    same(torch.randn(3, 4, generator=tgen), tg.randn(3, 4, generator=ours))
    same(torch.randn([5], generator=tgen, dtype=torch.float64), tg.randn([5], generator=ours, dtype=np.float64))
    same(torch.randn((), generator=tgen), tg.randn((), generator=ours))
    same(torch.rand(2, 3, generator=tgen), tg.rand(2, 3, generator=ours))
    same_state(tgen, ours)
    x = tg.randn(2, 2, generator=ours, requires_grad=True)
    assert x.requires_grad and x.dtype == np.float32


def test_randint_randperm_forms():
    tgen, ours = pair(0)
    same(torch.randint(10, (3, 4), generator=tgen), tg.randint(10, (3, 4), generator=ours))
    same(torch.randint(-5, 5, (6,), generator=tgen), tg.randint(-5, 5, (6,), generator=ours))
    same(torch.randint(0, 7, (2,), generator=tgen, dtype=torch.int32),
         tg.randint(0, 7, (2,), generator=ours, dtype=np.int32))
    same(torch.randint(low=2, high=9, size=(3,), generator=tgen),
         tg.randint(low=2, high=9, size=(3,), generator=ours))
    same(torch.randperm(9, generator=tgen), tg.randperm(9, generator=ours))
    assert tg.randint(0, 3, 4, generator=ours).shape == (4,)      # an int size is accepted too
    with pytest.raises(TypeError, match="needs high and size"):
        tg.randint(5)


def test_like_functions():
    tgen, ours = pair(3)
    t, o = torch.zeros(4, 5, dtype=torch.float64), tg.zeros(4, 5, dtype=np.float64)
    same(torch.randn_like(t, generator=tgen), tg.randn_like(o, generator=ours))
    same(torch.rand_like(t, generator=tgen), tg.rand_like(o, generator=ours))
    same(torch.randint_like(t, 10, generator=tgen), tg.randint_like(o, 10, generator=ours))
    same(torch.randint_like(t, 3, 10, generator=tgen), tg.randint_like(o, 3, 10, generator=ours))
    same_state(tgen, ours)


def test_normal_overloads():
    tgen, ours = pair(8)
    same(torch.normal(2.0, 3.0, (4, 5), generator=tgen), tg.normal(2.0, 3.0, (4, 5), generator=ours))
    m = torch.rand(20, generator=tgen)
    mo = tg.rand(20, generator=ours)
    same(torch.normal(m, 0.5, generator=tgen), tg.normal(mo, 0.5, generator=ours))
    same(torch.normal(1.0, m, generator=tgen), tg.normal(1.0, mo, generator=ours))
    same(torch.normal(m, m, generator=tgen), tg.normal(mo, mo, generator=ours))
    same(torch.normal(m[:3], m[3:6], generator=tgen), tg.normal(mo[:3], mo[3:6], generator=ours))
    same_state(tgen, ours)
    with pytest.raises(ValueError, match="std >= 0"):
        tg.normal(0.0, tg.tensor([-1.0, 1.0]))
    with pytest.raises(TypeError, match="size="):
        tg.normal(0.0, 1.0)


def test_bad_arguments_name_the_values():
    with pytest.raises(ValueError, match="from=5 >= to=5"):
        tg.randint(5, 5, (2,))
    with pytest.raises(ValueError, match=r"from=2.0 > to=1.0"):
        R.uniform_(np.empty(3, np.float32), 2, 1)
    with pytest.raises(ValueError, match="std -1"):
        R.normal_(np.empty(3), 0, -1)
    with pytest.raises(ValueError, match="n=-1"):
        tg.randperm(-1)
    with pytest.raises(ValueError, match="int64"):
        tg.randint(0, 2 ** 63, (1,))
    with pytest.raises(ValueError, match="does not fit in int8"):
        tg.randint(0, 300, (1,), dtype=np.int8)
    with pytest.raises(TypeError, match="float32 and float64"):
        tg.randn(3, dtype=np.int32)
    with pytest.raises(TypeError, match="Generator"):
        tg.randn(3, generator=torch.Generator())
    with pytest.raises(ValueError, match="writeable"):
        R.normal_(np.broadcast_to(np.zeros(1), (20,)))


def test_cuda_without_a_gpu_fails_before_drawing():
    if tg.cuda_available():
        pytest.skip("a GPU is present")
    g = tg.Generator().manual_seed(1)
    with pytest.raises(RuntimeError, match="cuda"):
        tg.randn(3, generator=g, device="cuda")
    np.testing.assert_array_equal(g.get_state(), tg.Generator().manual_seed(1).get_state())



def test_batch_index_draw_costs_about_what_numpy_does():
    """randint(0, n, (32,)) per training step: a few microseconds, like numpy's rng.integers."""
    g, rng = tg.Generator(0), np.random.default_rng(0)
    ours = min(timeit.repeat(lambda: tg.randint(0, 182625, (32,), generator=g), number=500, repeat=5))
    numpy = min(timeit.repeat(lambda: rng.integers(0, 182625, 32), number=500, repeat=5))
    assert ours / 500 < 50e-6 and ours < 5 * numpy    # loose: shared CI machines are noisy

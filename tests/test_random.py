"""tinygrad_mm.random draws torch 2.13's CPU numbers bit for bit, and keeps its state in step.

Every test runs the same calls on a torch.Generator and on ours and compares raw values
(np.array_equal, so -0.0 vs 0.0 or a last-bit difference fails) and the 5056-byte states.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_mm as tg
from tinygrad_mm import random as R

torch = pytest.importorskip("torch")

SEEDS = st.sampled_from([0, 1, 42, 2147483647, 2 ** 32, 2 ** 63 - 1, 2 ** 64 - 1, -1, -2 ** 63]) | \
    st.integers(0, 2 ** 64 - 1)
SIZES = st.sampled_from([0, 1, 2, 15, 16, 17, 31, 33, 100, 1000])
DTYPES = st.sampled_from([np.float32, np.float64])
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64, np.int64: torch.int64}


def pair(seed):
    return torch.Generator().manual_seed(seed), R.Generator().manual_seed(seed)


def same(theirs, ours):
    """Bit-identical: equal values, equal signs of zero, NaN where torch has NaN."""
    theirs = theirs.numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert (theirs.dtype, theirs.shape) == (ours.dtype, ours.shape)
    equal = theirs == ours
    if theirs.dtype.kind == "f":
        equal = (equal & (np.signbit(theirs) == np.signbit(ours))) | (np.isnan(theirs) & np.isnan(ours))
    bad = np.flatnonzero(~equal)
    assert bad.size == 0, (f"{bad.size} of {theirs.size} differ, first at {bad[:5]}: "
                           f"torch {theirs.ravel()[bad[:3]]} ours {ours.ravel()[bad[:3]]}")


def same_state(tgen, ours):
    np.testing.assert_array_equal(tgen.get_state().numpy(), ours.get_state())


# one draw of each kind, as (torch call, our call) on a pair of generators
def draw(kind, n, dtype, tgen, ours):
    td = TORCH_DTYPE[dtype]
    if kind == "randn":
        return torch.randn(n, dtype=td, generator=tgen), R.normal_array((n,), dtype, ours)
    if kind == "rand":
        return torch.rand(n, dtype=td, generator=tgen), R.uniform_array((n,), dtype, ours)
    if kind == "normal":
        return (torch.empty(n, dtype=td).normal_(0.5, 2.5, generator=tgen),
                R.normal_(np.empty(n, dtype), 0.5, 2.5, ours))
    if kind == "uniform":
        return (torch.empty(n, dtype=td).uniform_(-3.0, 0.7, generator=tgen),
                R.uniform_(np.empty(n, dtype), -3.0, 0.7, ours))
    if kind == "randint":
        return (torch.randint(-7, 1000, (n,), generator=tgen), R.randint_array(-7, 1000, (n,), ours))
    if kind == "randint_wide":                   # a range >= 2**28 takes 64-bit draws
        return (torch.randint(-5, 2 ** 40, (n,), generator=tgen),
                R.randint_array(-5, 2 ** 40, (n,), ours))
    if kind == "randperm":
        return torch.randperm(n, generator=tgen), R.randperm_array(n, ours)
    raise AssertionError(kind)


KINDS = ["randn", "rand", "normal", "uniform", "randint", "randint_wide", "randperm"]


@settings(max_examples=200, deadline=None)
@given(seed=SEEDS, kind=st.sampled_from(KINDS), n=SIZES, dtype=DTYPES)
def test_each_draw_matches_torch(seed, kind, n, dtype):
    tgen, ours = pair(seed)
    same(*draw(kind, n, dtype, tgen, ours))
    same_state(tgen, ours)


@settings(max_examples=80, deadline=None)
@given(seed=SEEDS, calls=st.lists(st.tuples(st.sampled_from(KINDS), SIZES, DTYPES), min_size=2,
                                  max_size=8))
def test_mixed_call_sequences_stay_in_step(seed, calls):
    """Odd small randn calls leave a cached normal that the next small call uses first."""
    tgen, ours = pair(seed)
    for kind, n, dtype in calls:
        same(*draw(kind, n, dtype, tgen, ours))
    same_state(tgen, ours)


@pytest.mark.parametrize("seed", [0, 1, 2147483647, 2 ** 63 - 1, 2 ** 64 - 1, -1, -2 ** 63])
def test_seeding_and_state_bytes_match_torch(seed):
    tgen, ours = pair(seed)
    same_state(tgen, ours)
    assert ours.initial_seed() == tgen.initial_seed()
    torch.randn(3, generator=tgen), R.normal_array((3,), np.float32, ours)  # leaves a cached normal
    same_state(tgen, ours)


def test_only_the_low_32_bits_of_the_seed_reach_the_twister():
    a, b = R.Generator().manual_seed(1), R.Generator().manual_seed(2 ** 32 + 1)
    np.testing.assert_array_equal(R.normal_array((40,), np.float32, a), R.normal_array((40,), np.float32, b))
    assert (a.initial_seed(), b.initial_seed()) == (1, 2 ** 32 + 1)


def test_a_new_generator_has_torchs_default_seed():
    same_state(torch.Generator(), R.Generator())
    assert R.Generator().initial_seed() == torch.Generator().initial_seed() == 67280421310721


# name: (base shape, numpy view, torch view)
VIEWS = {
    "transposed": ((7, 9), lambda a: a.T, lambda t: t.t()),
    "every_3rd_column": ((8, 40), lambda a: a[:, ::3], lambda t: t[:, ::3]),
    "rows_then_T": ((12, 10), lambda a: a[::2].T, lambda t: t[::2].t()),
    "permuted": ((4, 5, 6), lambda a: a.transpose(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    "permuted_slice": ((4, 5, 6), lambda a: a[1:3].transpose(1, 2, 0)[::2],
                       lambda t: t[1:3].permute(1, 2, 0)[::2]),
    "small_transposed": ((3, 4), lambda a: a.T, lambda t: t.t()),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("fill", ["normal", "uniform"])
def test_strided_outputs_fill_in_torchs_iteration_order(dtype, view, fill):
    """Non-contiguous outputs take the per-element path, visited in TensorIterator order."""
    shape, np_view, torch_view = VIEWS[view]
    tgen, ours = pair(11)
    tbase, base = torch.zeros(shape, dtype=TORCH_DTYPE[dtype]), np.zeros(shape, dtype)
    if fill == "normal":
        torch_view(tbase).normal_(0.25, 1.5, generator=tgen)
        R.normal_(np_view(base), 0.25, 1.5, ours)
    else:
        torch_view(tbase).uniform_(-1.0, 2.0, generator=tgen)
        R.uniform_(np_view(base), -1.0, 2.0, ours)
    same(tbase, base)
    same_state(tgen, ours)


def test_large_float32_randn_every_value():
    """The normal_fill_AVX2 path (Cephes log/sincos, fused multiply-adds) over 2**18 values."""
    tgen, ours = pair(2024)
    same(torch.empty(2 ** 18 + 5).normal_(-0.3, 1.7, generator=tgen),
         R.normal_array((2 ** 18 + 5,), np.float32, ours, -0.3, 1.7))
    same(torch.randn(2 ** 18, generator=tgen), R.normal_array((2 ** 18,), np.float32, ours))


def test_randint_switches_to_64_bit_draws_at_2_to_the_28():
    for low, high in [(0, 2 ** 28 - 1), (0, 2 ** 28), (-3, 2 ** 28 - 3), (-2 ** 63, 2 ** 63 - 1),
                      (-2 ** 63, -2 ** 63 + 10), (2 ** 62, 2 ** 63 - 1), (0, 1)]:
        tgen, ours = pair(5)
        same(torch.randint(low, high, (9,), generator=tgen), R.randint_array(low, high, (9,), ours))
        same_state(tgen, ours)


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.float32, np.float64, np.uint8])
def test_randint_and_randperm_other_dtypes(dtype):
    tgen, ours = pair(9)
    tdt = getattr(torch, np.dtype(dtype).name)
    same(torch.randint(0, 100, (40,), generator=tgen, dtype=tdt),
         R.randint_array(0, 100, (40,), ours, dtype))
    same(torch.randperm(40, generator=tgen, dtype=tdt), R.randperm_array(40, ours, dtype))


def test_randperm_large_n():
    tgen, ours = pair(3)
    same(torch.randperm(100_003, generator=tgen), R.randperm_array(100_003, ours))
    same_state(tgen, ours)


# ------------------------------------------------------------------------------ state
def test_state_round_trip_and_exchange_with_torch():
    tgen, ours = pair(2147483647)
    torch.randn(5, generator=tgen), R.normal_array((5,), np.float32, ours)   # cache a normal
    saved = ours.get_state()
    assert saved.dtype == np.uint8 and saved.shape == (R.STATE_SIZE,)
    after = R.normal_array((7,), np.float64, ours), R.randint_array(0, 10, (4,), ours)
    ours.set_state(saved)
    np.testing.assert_array_equal(R.normal_array((7,), np.float64, ours), after[0])
    np.testing.assert_array_equal(R.randint_array(0, 10, (4,), ours), after[1])
    fresh = R.Generator()
    fresh.set_state(tgen.get_state().numpy())                  # torch's state resumes here ...
    same(torch.randn(7, generator=tgen, dtype=torch.float64), R.normal_array((7,), np.float64, fresh))
    back = torch.Generator()
    back.set_state(torch.from_numpy(fresh.get_state()))        # ... and ours resumes in torch
    same(torch.rand(20, generator=back), R.uniform_array((20,), np.float32, fresh))


def test_state_round_trip_at_a_block_boundary_and_right_after_seeding():
    for words in (0, 624, 1248, 623):
        tgen, ours = pair(77)
        if words:
            torch.randint(0, 10, (words,), generator=tgen), R.randint_array(0, 10, (words,), ours)
        same_state(tgen, ours)
        again = R.Generator()
        again.set_state(ours.get_state())
        np.testing.assert_array_equal(again.get_state(), ours.get_state())


def test_set_state_rejects_bad_states_clearly():
    g = R.Generator()
    with pytest.raises(ValueError, match="5056 uint8"):
        g.set_state(np.zeros(10, np.uint8))
    with pytest.raises(ValueError, match="5056 uint8"):
        g.set_state(g.get_state().astype(np.int64))
    with pytest.raises(TypeError, match="PCG64"):
        g.set_state('{"bit_generator": "PCG64"}')
    bad = g.get_state()
    bad[8:12] = np.frombuffer(np.int32(700).tobytes(), np.uint8)       # left = 700
    with pytest.raises(ValueError, match="left=700"):
        g.set_state(bad)
    bad = g.get_state()
    bad[8:12] = np.frombuffer(np.int32(100).tobytes(), np.uint8)       # left=100 with next=0
    with pytest.raises(ValueError, match="inconsistent"):
        g.set_state(bad)
    np.testing.assert_array_equal(g.get_state(), R.Generator().get_state())  # untouched by failures


# ------------------------------------------------------------------------------ default generator
def test_default_generator_follows_manual_seed():
    torch.manual_seed(2147483647)
    g = tg.manual_seed(2147483647)
    assert g is R.default_generator and tg.initial_seed() == torch.initial_seed()
    same(torch.randn(27, 2), tg.randn(27, 2).numpy())
    same(torch.randint(0, 182625, (32,)), tg.randint(0, 182625, (32,)).numpy())
    same(torch.rand(3), tg.rand(3).numpy())
    same_state(torch.default_generator, R.default_generator)


def test_generator_seed_and_errors():
    g = R.Generator()
    s = g.seed()
    assert 0 <= s < 2 ** 53 and g.initial_seed() == s
    with pytest.raises(TypeError, match="expected a long"):
        g.manual_seed(1.5)
    with pytest.raises(ValueError, match="out of range"):
        g.manual_seed(2 ** 64)
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        R.Generator("tpu")
    assert R.Generator(7).initial_seed() == 7          # the older Generator(seed) form
    assert R.Generator("cuda").device == "cuda"

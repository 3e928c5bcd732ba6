"""backend: the scatter-add behind every gather's backward, the index range check, the fused kernels,
the host buffer pool and the fast paths for tall arrays."""
import threading
import warnings

import numpy as np
import pytest

from tinygrad_mm import backend, host_pool, kernels, side_thread


def _reference(idx, rows, n):
    out = np.zeros((n, rows.shape[-1]), dtype=np.float64)
    np.add.at(out, idx.ravel(), rows.reshape(idx.size, rows.shape[-1]).astype(np.float64))
    return out


@pytest.mark.parametrize("n, k, d", [(27, 96, 10),         # one-hot path (the name model's batch)
                                     (27, 0, 10),          # no indices: zeros
                                     (4, 12, 0),           # zero-width rows
                                     (5000, 2000, 3),      # n*k > 2**23: the per-column bincount path
                                     (27, 20000, 10),      # many narrow rows: bincount too
                                     (27, 20000, 24)])     # many wide rows: one-hot
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint64])
def test_scatter_add_rows_accumulates_repeats_on_both_paths(n, k, d, dtype):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, min(n, 7), size=k).astype(dtype)  # few distinct rows: many repeats
    rows = rng.standard_normal((k, d)).astype(np.float32)
    out = kernels.scatter_add_rows(idx, rows, n)
    assert out.shape == (n, d) and out.dtype == np.float32
    # the plain np.add.at adds ~3,000 float32 rows one after another: its rounding error grows to
    # ~3e-5 relative, where the one-hot matmul (BLAS, blocked sums) stays within 1e-5
    tol = 1e-4 if kernels.PLAIN else 1e-5
    np.testing.assert_allclose(out, _reference(idx, rows, n), rtol=tol, atol=tol)


def test_scatter_add_rows_takes_any_index_shape():
    idx = np.array([[0, 1, 1], [2, 1, 0]])
    rows = np.ones((2, 3, 4), np.float32)
    np.testing.assert_array_equal(kernels.scatter_add_rows(idx, rows, 3)[:, 0], [2, 3, 1])


@pytest.mark.parametrize("bad, size", [([0, 3], 3), ([-1, 0], 3), ([0, 2**40], 5)])
def test_check_index_range_names_the_bad_index_and_size(bad, size):
    with pytest.raises(IndexError, match=rf"{bad[-1] if bad[-1] != 0 else bad[0]} is out of range for size {size}"):
        backend.check_index_range(np.array(bad), size)


def test_check_index_range_accepts_valid_and_empty():
    backend.check_index_range(np.array([0, 2, 2]), 3)
    backend.check_index_range(np.array([], dtype=np.int64), 0)
    backend.check_index_range(np.array([1, 2], dtype=np.uint8), 3)


@pytest.mark.parametrize("dtype", [">i8", "<i4", ">i2", "u2", "i1"])
def test_check_index_range_reads_any_integer_dtype_and_byte_order(dtype):
    backend.check_index_range(np.array([0, 2, 1], dtype=dtype), 3)
    with pytest.raises(IndexError, match="3 is out of range for size 3"):
        backend.check_index_range(np.array([0, 3], dtype=dtype), 3)
    if np.dtype(dtype).kind == "i":  # a negative index is out of range too (numpy would wrap it)
        with pytest.raises(IndexError, match="-1 is out of range for size 3"):
            backend.check_index_range(np.array([[0, 1], [-1, 2]], dtype=dtype), 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_any_non_finite_entry_without_warnings(bad):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sum would warn "overflow" on these huge finite values
        huge = np.full((32, 27), np.finfo(np.float32).max, np.float32)
        assert kernels.all_finite(huge) and kernels.all_finite(np.zeros((0, 3)))
        for where in ((0, 0), (31, 26), (5, 7)):
            a = huge.copy()
            a[where] = bad
            assert not kernels.all_finite(a)


def test_numpy_tanh_grad_and_xent_grad_match_their_formulas():
    rng = np.random.default_rng(1)
    y, g = np.tanh(rng.standard_normal((3, 4))), rng.standard_normal((3, 4))
    np.testing.assert_allclose(kernels.tanh_grad(y, g), g * (1 - y * y))
    p = rng.random((3, 5))
    t = np.array([4, 0, 4])
    want = p * 0.5
    want[np.arange(3), t] -= 0.5
    np.testing.assert_allclose(kernels.softmax_xent_grad(p, t, np.arange(3), 0.5), want)


def test_module_for_unknown_device_and_missing_cuda():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        backend.module_for("tpu")
    if not backend.cuda_available():
        with pytest.raises(RuntimeError, match="cupy unavailable|install the gpu extra"):
            backend.module_for("cuda")


def test_xent_grad_takes_a_per_row_scale():
    rng = np.random.default_rng(2)
    p, t, scale = rng.random((3, 5)), np.array([1, 1, 4]), rng.standard_normal((3, 1))
    want = p * scale
    want[np.arange(3), t] -= scale[:, 0]
    np.testing.assert_allclose(kernels.softmax_xent_grad(p, t, np.arange(3), scale), want)


# -- the host pool: large buffers reused only once nothing refers to them ---------------------------
def _address(a):
    return a.__array_interface__["data"][0]


def _big(pool, fill):
    a = pool.empty((512, 1024), np.float32)       # 2 MiB: pooled
    a.fill(fill)
    return a


def test_pool_reuses_a_buffer_once_its_array_is_gone():
    pool = host_pool.HostPool()
    a = _big(pool, 1)
    where = _address(a)
    del a
    b = _big(pool, 2)
    assert _address(b) == where and pool.held_bytes() == 2 << 20


@pytest.mark.parametrize("keep", [lambda a: a, lambda a: a[3:], lambda a: a.reshape(-1)[::2].reshape(64, -1),
                                  lambda a: a.T, lambda a: np.asarray(a), lambda a: memoryview(a)])
def test_pool_never_hands_out_a_buffer_something_still_refers_to(keep):
    pool = host_pool.HostPool()
    held = keep(_big(pool, 7))                       # only a view (or the array) survives
    b = _big(pool, 3)                                # must be fresh memory
    assert np.all(np.asarray(held) == 7) and np.all(b == 3)
    assert pool.held_bytes() == 4 << 20


def test_pool_reuses_across_dtypes_and_shapes_of_the_same_size():
    pool = host_pool.HostPool()
    a = pool.empty((256, 1024), np.float64)
    where = _address(a)
    del a
    b = pool.empty((1024, 512), np.float32)
    assert _address(b) == where and b.dtype == np.float32 and b.shape == (1024, 512)
    assert b.flags.c_contiguous and b.flags.writeable


def test_pool_leaves_small_arrays_to_numpy_and_releases_idle_buffers_past_its_limit():
    pool = host_pool.HostPool()
    small = pool.empty((10, 10), np.float32)
    assert small.shape == (10, 10) and pool.held_bytes() == 0
    kept = [pool.empty(((1 << 18) + i,), np.float32) for i in range(pool.MAX_BUFFERS)]  # all busy, distinct sizes
    del kept[::2]                                    # half of them idle
    extra = pool.empty((1 << 19,), np.float32)
    assert len(pool._pairs) == pool.MAX_BUFFERS // 2 + 1   # the idle ones were let go
    assert all(np.shares_memory(k, b) for k, b in zip(kept, (b for b, _ in pool._pairs)))
    pool.clear()
    assert pool.held_bytes() == 0 and extra.size == 1 << 19  # arrays in use outlive clear()


def test_pool_never_gives_one_buffer_to_two_threads():
    pool = host_pool.HostPool()
    clashes = []

    def work(k):
        for i in range(300):
            a = pool.empty((1 << 18,), np.float32)
            a.fill(k)
            b = pool.empty((1 << 18,), np.float32)   # a is alive: b must be other memory
            b.fill(-k)
            if not (np.all(a == k) and np.all(b == -k)):
                clashes.append((k, i))

    threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not clashes and len(pool._pairs) <= 9   # at most 3 alive per thread (old a, old b, new)


# -- the fast paths agree with the plain numpy call, on small and large arrays -------------------------
SHAPES = [(3, 5), (32, 27), (4096, 27), (2048, 64), (600, 100), (0, 27)]


@pytest.mark.parametrize("one_blas_thread", [True, False], ids=["1-thread", "threads"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_and_column_reductions_match_numpy(shape, dtype, one_blas_thread, monkeypatch):
    monkeypatch.setattr(kernels, "ONE_BLAS_THREAD", one_blas_thread)
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    if x.size:
        x[1, 2], x[-1, -1] = np.inf, -np.inf
    np.testing.assert_array_equal(kernels.row_max(x), x.max(axis=1, keepdims=True))
    if x.size:
        x[0, 0] = np.nan                             # NaN wins the max, as numpy's
        assert np.isnan(kernels.row_max(x)[0, 0]) and not np.isnan(kernels.row_max(x)[2:]).any()
    y = np.abs(np.random.default_rng(4).standard_normal(shape)).astype(dtype)
    # against the exact (float64 of float64) sums: BLAS sums in another order than numpy, and over
    # a long column more accurately (numpy adds row after row: 5e-6 relative at 16384 rows, gemv 2e-6)
    exact = y.astype(np.float64)
    plain, blas = (2e-5, 2e-6) if dtype == np.float32 else (1e-13, 1e-13)  # plain: numpy's own order
    np.testing.assert_allclose(kernels.row_sum(y), exact.sum(axis=1, keepdims=True),
                               rtol=plain if kernels.PLAIN else blas)
    np.testing.assert_allclose(kernels.col_sum(y), exact.sum(axis=0),
                               rtol=blas if kernels.col_sum_by_matmul(y) else plain)
    by_matmul = not kernels.PLAIN and y.size >= kernels.SMALL and (shape[1] <= kernels.SHORT or not one_blas_thread)
    assert kernels.col_sum_by_matmul(y) == by_matmul
    assert kernels.row_sum(y).dtype == kernels.col_sum(y).dtype == dtype


@pytest.mark.parametrize("n", [4, 1, 5000])
def test_pooled_matmul_tanh_and_tanh_grad_match_numpy(n):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((n, 300)).astype(np.float32), rng.standard_normal((300, 200)).astype(np.float32)
    out = kernels.matmul(a, b)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)
    y = kernels.tanh(out)
    np.testing.assert_array_equal(y, np.tanh(out))
    g = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(kernels.tanh_grad(y, g), g * (1 - y * y))
    assert out.dtype == y.dtype == np.float32
    assert not np.shares_memory(out, y)          # all three alive: three distinct buffers


@pytest.mark.parametrize("one_blas_thread", [True, False], ids=["1-thread", "threads"])
@pytest.mark.parametrize("n, out, inp", [(4, 200, 30), (5000, 200, 30), (5000, 27, 200), (2048, 64, 64), (0, 7, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_grad_is_g_transposed_times_x_on_either_path(n, out, inp, dtype, one_blas_thread, monkeypatch):
    monkeypatch.setattr(kernels, "ONE_BLAS_THREAD", one_blas_thread)
    rng = np.random.default_rng(6)
    g, x = rng.standard_normal((n, out)).astype(dtype), rng.standard_normal((n, inp)).astype(dtype)
    gw = kernels.weight_grad(g, x)
    # the wide path (one BLAS thread, many rows, out > in) must really be taken where the constants say
    wide = not kernels.PLAIN and one_blas_thread and n >= kernels.WIDE_BATCH and out > inp
    assert kernels.wide_weight_grad(g, x) == wide
    exact = g.astype(np.float64).T @ x.astype(np.float64)
    rtol, atol = (1e-4, 1e-3) if dtype == np.float32 else (1e-12, 1e-10)
    np.testing.assert_allclose(gw, exact, rtol=rtol, atol=atol)
    assert gw.shape == (out, inp) and gw.dtype == dtype and gw.flags.c_contiguous


# -- a large linear backward on two threads --------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_a_large_linear_backward_splits_across_two_threads_with_the_same_bits(bias, monkeypatch):
    import tinygrad_mm as tg
    monkeypatch.setattr(kernels, "PLAIN", False)  # about the fast path, in both CI passes
    rng = np.random.default_rng(8)
    x0, up = rng.standard_normal((4096, 30)).astype(np.float32), rng.standard_normal((4096, 200)).astype(np.float32)
    grads, sides = [], []
    real = side_thread.beside

    def counted(main, side):
        def on_helper():
            sides.append(threading.get_ident())
            return side()
        return real(main, on_helper)
    monkeypatch.setattr(side_thread, "beside", counted)
    for split in (True, False):
        monkeypatch.setattr(kernels, "SIDE_THREAD", split)
        layer = tg.nn.Linear(30, 200, bias=bias, generator=tg.Generator(1))
        x = tg.tensor(x0, requires_grad=True)
        layer(x).backward(tg.tensor(up))
        grads.append([t.grad.numpy() for t in (x, *layer.parameters())])
        assert len(sides) == 1 and sides[0] != threading.get_ident()  # split once, on another thread
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(kernels, "SIDE_THREAD", True)
    assert kernels.on_side_thread(up, x0) and not kernels.on_side_thread(up[:1024], x0[:1024])


def test_beside_returns_both_results_and_raises_either_error_after_both_finished():
    assert side_thread.beside(lambda: 1, lambda: 2) == (1, 2)
    nested = []  # a job that starts a job: run on a thread of its own, so a deadlock fails, not hangs
    t = threading.Thread(target=lambda: nested.append(side_thread.beside(lambda: 1, lambda: side_thread.beside(
        lambda: 2, lambda: 3))), daemon=True)
    t.start()
    t.join(30)
    assert nested == [(1, (2, 3))]
    with pytest.raises(ZeroDivisionError):
        side_thread.beside(lambda: 1, lambda: 1 / 0)
    done = []

    def slow():
        threading.Event().wait(0.05)
        done.append(True)
    with pytest.raises(KeyError):
        side_thread.beside(lambda: {}["missing"], slow)
    assert done == [True]  # the helper's writes are over before the error reaches the caller


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no os.fork on this platform")
def test_a_forked_child_starts_its_own_helper_thread():
    import os
    assert side_thread.beside(lambda: 0, lambda: 0) == (0, 0)  # the parent's helper exists
    pid = os.fork()
    if pid == 0:  # the child: a hang here would fail the parent's wait below by timeout
        ok = side_thread.beside(lambda: 1, lambda: 2) == (1, 2)
        os._exit(0 if ok else 1)
    for _ in range(200):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        threading.Event().wait(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung waiting for the parent's helper thread")
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_side_thread_follows_the_blas_thread_count_and_its_opt_out():
    import os
    import subprocess
    import sys

    def side_thread(**env):
        e = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                             "TINYGRAD_MM_SIDE_THREAD")}
        out = subprocess.run([sys.executable, "-c", "from tinygrad_mm import kernels; print(kernels.SIDE_THREAD)"],
                             env={**e, **env}, capture_output=True, text=True, check=True)
        return out.stdout.strip() == "True"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert side_thread(OPENBLAS_NUM_THREADS="1") == (cores > 1)
    assert not side_thread(OPENBLAS_NUM_THREADS="1", TINYGRAD_MM_SIDE_THREAD="0")
    if cores > 1:
        assert not side_thread(OPENBLAS_NUM_THREADS="2")  # OpenBLAS splits each matmul itself

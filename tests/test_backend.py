"""backend: the scatter-add behind every gather's backward, the index range check, the fused kernels."""
import numpy as np
import pytest

from tinygrad_mm import backend


def _reference(idx, rows, n):
    out = np.zeros((n, rows.shape[-1]), dtype=np.float64)
    np.add.at(out, idx.ravel(), rows.reshape(idx.size, rows.shape[-1]).astype(np.float64))
    return out


@pytest.mark.parametrize("n, k, d", [(27, 96, 10),         # one-hot path (the name model's batch)
                                     (27, 0, 10),          # no indices: zeros
                                     (4, 12, 0),           # zero-width rows
                                     (5000, 2000, 3)])     # n*k > 2**23: the per-column bincount path
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint64])
def test_scatter_add_rows_accumulates_repeats_on_both_paths(n, k, d, dtype):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, min(n, 7), size=k).astype(dtype)  # few distinct rows: many repeats
    rows = rng.standard_normal((k, d)).astype(np.float32)
    out = backend.scatter_add_rows(idx, rows, n)
    assert out.shape == (n, d) and out.dtype == np.float32
    np.testing.assert_allclose(out, _reference(idx, rows, n), rtol=1e-5, atol=1e-5)


def test_scatter_add_rows_takes_any_index_shape():
    idx = np.array([[0, 1, 1], [2, 1, 0]])
    rows = np.ones((2, 3, 4), np.float32)
    np.testing.assert_array_equal(backend.scatter_add_rows(idx, rows, 3)[:, 0], [2, 3, 1])


@pytest.mark.parametrize("bad, size", [([0, 3], 3), ([-1, 0], 3), ([0, 2**40], 5)])
def test_check_index_range_names_the_bad_index_and_size(bad, size):
    with pytest.raises(IndexError, match=rf"{bad[-1] if bad[-1] != 0 else bad[0]} is out of range for size {size}"):
        backend.check_index_range(np.array(bad), size)


def test_check_index_range_accepts_valid_and_empty():
    backend.check_index_range(np.array([0, 2, 2]), 3)
    backend.check_index_range(np.array([], dtype=np.int64), 0)
    backend.check_index_range(np.array([1, 2], dtype=np.uint8), 3)


def test_numpy_tanh_grad_and_xent_grad_match_their_formulas():
    rng = np.random.default_rng(1)
    y, g = np.tanh(rng.standard_normal((3, 4))), rng.standard_normal((3, 4))
    np.testing.assert_allclose(backend.tanh_grad(y, g), g * (1 - y * y))
    p = rng.random((3, 5))
    t = np.array([4, 0, 4])
    want = p * 0.5
    want[np.arange(3), t] -= 0.5
    np.testing.assert_allclose(backend.softmax_xent_grad(p, t, np.arange(3), 0.5), want)


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
    np.testing.assert_allclose(backend.softmax_xent_grad(p, t, np.arange(3), scale), want)

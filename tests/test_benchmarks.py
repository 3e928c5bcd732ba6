"""The benchmark scripts run (tiny sizes) and report what they promise; no timing is asserted."""
import json

import pytest

from benchmarks import bench_ops, bench_step, gpu, memory


def test_bench_step_times_all_contenders_from_the_same_start(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(bench_step, "steps_for", lambda batch: 3)
    out = tmp_path / "step.json"
    rows = bench_step.main(["--batches", "4", "--repeats", "1", "--json", str(out)])
    (row,) = rows
    assert {"tinygrad_mm", "numpy", "torch", "ratio_vs_numpy", "ratio_vs_torch"} <= set(row)
    assert json.loads(out.read_text())["step"][0]["batch"] == 4
    assert "÷ numpy" in bench_step.format_rows(rows)


def test_library_and_numpy_steps_agree_on_the_loss():
    from benchmarks.reference_steps import NumpyStep, init_params
    params = init_params(0)
    X, Y = bench_step.make_batches(1, 8)[0]
    lib, ref = bench_step.LibraryStep(params), NumpyStep(params)
    assert lib(X, Y, 0.1) == pytest.approx(ref(X, Y, 0.1), rel=1e-5)
    assert lib(X, Y, 0.1) == pytest.approx(ref(X, Y, 0.1), rel=1e-5)  # and after one update


def test_bench_ops_reports_overhead_for_each_op():
    rows = bench_ops.run(number=5)
    assert [r["op"] for r in rows] == ["add", "matmul", "tanh", "gather", "cross_entropy"]
    assert all(r["tape_us"] > 0 and r["numpy_us"] > 0 for r in rows)


def test_memory_benchmark_runs_and_passes_on_a_short_run(capsys):
    assert memory.main(["--steps", "400", "--every", "100", "--tolerance-mib", "64"]) == 0
    assert "RSS growth" in capsys.readouterr().out


def test_gpu_benchmark_says_why_it_skips_without_a_gpu(capsys):
    from tinygrad_mm import cuda_available
    if cuda_available():
        pytest.skip("a GPU is present: the real benchmark runs instead")
    assert gpu.main([]) == []
    assert "GPU benchmark skipped" in capsys.readouterr().out

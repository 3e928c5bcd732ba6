"""The benchmark scripts run (tiny sizes) and report what they promise; no timing is asserted."""
import json
import sys

import pytest

from benchmarks import bench_ops, bench_step, gpu, memory


def test_bench_step_times_each_contender_in_its_own_process(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "step.json"
    rows = bench_step.main(["--batches", "4", "--repeats", "2", "--steps", "3", "--json", str(out)])
    (row,) = rows
    assert {"numpy", "eager", "compiled", "torch", "compiled_vs_numpy", "compiled_vs_torch",
            "faults_compiled"} <= set(row)
    assert json.loads(out.read_text())["step"][0]["batch"] == 4
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically
    assert "comp÷np" in bench_step.format_rows(rows)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_library_and_numpy_steps_agree_on_the_loss(compiled):
    from benchmarks.reference_steps import NumpyStep, init_params
    params = init_params(0)
    lib, ref = bench_step.LibraryStep(params, compiled=compiled), NumpyStep(params)
    for X, Y in bench_step.make_batches(4, 8):  # a compiled step captures twice, then replays
        assert lib(X, Y, 0.1) == pytest.approx(ref(X, Y, 0.1), rel=1e-5)


def test_the_minimal_tape_trains_like_the_numpy_step():
    from benchmarks.minimal_tape import MinimalStep
    from benchmarks.reference_steps import NumpyStep, init_params
    params = init_params(0)
    tape, ref = MinimalStep(params), NumpyStep(params)
    for X, Y in bench_step.make_batches(4, 8):
        assert tape(X, Y, 0.1) == pytest.approx(ref(X, Y, 0.1), rel=1e-5)
    rows = bench_step.run([4], 1, contenders=("numpy", "minimal"), steps=2)
    assert "minimal_vs_numpy" in rows[0] and "min÷np" in bench_step.format_rows(rows)


def test_benchmarks_use_the_public_api_and_do_not_import_each_other():
    import pathlib
    for f in pathlib.Path(bench_step.__file__).parent.glob("*.py"):
        text = f.read_text()
        assert "backend" not in text, f.name
    assert "gpu" not in "".join(l for l in pathlib.Path(bench_step.__file__).read_text().splitlines(True)
                                if l.startswith(("import", "from")))


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


def test_the_gpu_check_script_stops_at_once_with_its_summary_where_cupy_cannot_run(tmp_path):
    """The lent GPU machines reach no network: the script installs nothing unless given wheels,
    so without cupy it must fail in seconds (not minutes of pip retries), saying why."""
    import os
    import pathlib
    import subprocess
    import time
    from tinygrad_mm import cuda_available
    if cuda_available():
        pytest.skip("a GPU is present: the script would run the whole check")
    script = pathlib.Path(bench_step.__file__).parent / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    t = time.perf_counter()
    run = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHON=sys.executable, OUT=str(tmp_path)))
    assert time.perf_counter() - t < 60
    assert run.returncode != 0
    assert "GPU check summary" in run.stdout and "cannot use the GPU" in run.stdout
    assert "numpy " in run.stdout and "packages" in run.stdout  # the versions it found, cupy's too
    try:
        import cupy  # noqa: F401 (installed without a GPU: its version is listed instead)
    except ImportError:
        assert "cupy MISSING" in run.stdout

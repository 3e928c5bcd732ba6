"""Issue 12's bar: programs a makemore/micrograd learner writes run with only the torch imports swapped.

Each script in tests/notebooks/ (our own programs in the style of the lectures, see its README) runs twice,
in subprocesses side by side: as written (real torch) and with `import tinygrad_mm as torch` /
`import tinygrad_mm.nn.functional as F`. Two tests per script:
- every statement runs on tinygrad_mm (the report lists every failing line, with its exception);
- every cell prints what torch prints: text equal, numbers within float32 rounding (notebook_runner).
The random draws are torch's only once tinygrad_mm's generator is torch-identical (the scripts seed their
own Generators); until then printed random-dependent numbers differ, and the second test says where.
"""
import functools
import os

import pytest

import notebook_runner as nr

# check_real_notebooks.py is the tool that runs the real notebooks (a local check), not a program.
SCRIPTS = sorted(f for f in os.listdir(nr.NOTEBOOKS) if f.endswith(".py") and f != "check_real_notebooks.py")
# Seconds per script and side. Each script takes 2-5 s a side in torch on the shared 2-core box (most of
# it importing torch); the limit only catches a hang, and a timeout reports the cell and line it stopped in.
TIMEOUT = 120.0


@functools.lru_cache(maxsize=None)
def runs(script):
    return nr.run_script(os.path.join(nr.NOTEBOOKS, script), timeout=TIMEOUT)


def reference(script):
    """torch's run; a script torch itself cannot run is a broken script, not a tinygrad_mm failure."""
    theirs = runs(script)["torch"]
    assert theirs.problem is None, f"{script} under torch: {theirs.problem}"
    assert not theirs.errors(), f"{script} fails under torch itself:\n" + "\n".join(nr.format_errors(theirs))
    return theirs


def test_scripts_are_there():
    expected = {f"makemore_part{k}.py" for k in range(1, 6)} | {"micrograd_engine.py", "micrograd_moons.py"}
    assert expected <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_line_runs_on_tinygrad_mm(script):
    reference(script)
    ours = runs(script)["tinygrad_mm"]
    assert ours.problem is None, f"{script} under tinygrad_mm: {ours.problem} ({nr.timing(runs(script))})"
    errors = nr.distinct_errors(ours)
    primary = [e for _, e, _ in errors if not e["consequence"]]
    if errors:   # the report is the message; a traceback of this line would add nothing
        pytest.fail(f"{script}: {len(primary)} failing line(s), {len(errors) - len(primary)} more that may only "
                    f"follow from them ({nr.timing(runs(script))}):\n" + "\n".join(nr.format_errors(ours)),
                    pytrace=False)


@pytest.mark.parametrize("script", SCRIPTS)
def test_prints_what_torch_prints(script):
    theirs = reference(script)
    ours = runs(script)["tinygrad_mm"]
    assert ours.problem is None, f"{script} under tinygrad_mm: {ours.problem}"
    differences = nr.compare_runs(theirs, ours)
    if differences:
        pytest.fail(f"{script}: {len(differences)} cell(s) print otherwise than torch ({nr.timing(runs(script))}):\n"
                    + "\n".join(nr.format_differences(differences, candidate=ours)), pytrace=False)


# The comparison itself: a wrong tolerance would make the tests above pass or fail for nothing.
@pytest.mark.parametrize("ours, theirs, same", [
    ("tensor(3.3377, grad_fn=<NegBackward0>)", "tensor(3.3377, grad_fn=<NegBackward0>)", True),
    ("tensor(3.3378, grad_fn=<NegBackward0>)", "tensor(3.3377, grad_fn=<NegBackward0>)", True),  # last digit
    ("tensor(3.3390, grad_fn=<NegBackward0>)", "tensor(3.3377, grad_fn=<NegBackward0>)", False),  # 4e-4 rel
    ("tensor(3.3377, grad_fn=<Neg>)", "tensor(3.3377, grad_fn=<NegBackward0>)", False),             # format
    ("train 2.0705235004425", "train 2.0705235004425", True),
    ("train 2.0706235004425", "train 2.0705235004425", True),                                     # 5e-5 rel
    ("train 2.0727235004425", "train 2.0705235004425", False),                                    # 1e-3 rel
    ("maxdiff: 5.122274160385132e-09", "maxdiff: 0.0", True),                                     # noise
    ("torch.Size([32, 27])", "torch.Size([32, 27])", True),
    ("torch.Size([32, 28])", "torch.Size([32, 27])", False),                                      # ints exact
    ("tensor([ 0.0719, -0.0000])", "tensor([0.0719, 0.0000])", True),                             # padding
    ("tensor([0.568 , 0.2673])", "tensor([0.5680, 0.2673])", False),                              # numpy style
    ("tensor([0.0683, 0.0822,\n", "tensor([0.0683, 0.0822, 0.0190,\n", False),                   # wrapping
    ("dtype=int32)", "dtype=torch.int32)", False),
    ("2.4544754028320312", "tensor(2.4545)", False),
    ("(32, 27)", "torch.Size([32, 27])", False),
    ("nan", "nan", True), ("nan", "0.0", False),
])
def test_lines_match(ours, theirs, same):
    assert bool(nr.lines_match(ours, theirs)) == same


def test_swap_imports_changes_only_the_two_import_lines():
    source = "import torch\nimport torch.nn.functional as F # f\nx = torch.ones(2)\n  import torch\n"
    swapped = nr.swap_imports(source, "tinygrad_mm").split("\n")
    assert swapped[0] == "import tinygrad_mm as torch"
    assert swapped[1].startswith("import tinygrad_mm.nn.functional as F")
    assert swapped[2] == "x = torch.ones(2)" and swapped[3] == "  import tinygrad_mm as torch"
    assert nr.swap_imports(source, "torch") == source


def test_runner_reports_every_failing_line_and_goes_on(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("# %% a\nx = no_such_function()\ny = x + 1\nprint('after')\n"
                      "# %% b\nimport math\nz = math.sqrt(-1)\nprint(y)\nw = [1][5]\nprint('end')\n")
    started = nr.time.perf_counter()
    run = nr.finish_script(nr.start_script(str(script), "tinygrad_mm"), "tinygrad_mm", 60, started)
    assert run.problem is None
    rows = [(c["title"], e["line"], e["type"], e["consequence"]) for c, e, _ in nr.distinct_errors(run)]
    assert rows == [("a", 2, "NameError", False), ("a", 3, "NameError", True),
                    ("b", 7, "ValueError", False), ("b", 8, "NameError", True), ("b", 9, "IndexError", False)]
    assert [c["output"] for c in run.cells] == ["after\n", "end\n"]
    report = "\n".join(nr.format_errors(run))
    assert "line 2: x = no_such_function()" in report and "may only follow" in report


def test_runner_counts_data_a_failed_statement_left_half_done_as_a_consequence(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("# %% a\nimport math\nlog = []\nfor k in range(3):\n    log.append(math.no_such(k))\n"
                      "print(log[-1])\nprint([][0])\nalias = log\nprint(alias[0])\n")
    started = nr.time.perf_counter()
    run = nr.finish_script(nr.start_script(str(script), "tinygrad_mm"), "tinygrad_mm", 60, started)
    rows = [(e["line"], e["type"], e["consequence"]) for _, e, _ in nr.distinct_errors(run)]
    # the loop's failure leaves `log` empty: log[-1] follows from it, and so does a name bound from it;
    # [][0] reads nothing it touched
    assert rows == [(5, "AttributeError", False), (6, "IndexError", True), (7, "IndexError", False),
                    (9, "IndexError", True)]


def load_checker():
    """tests/notebooks/check_real_notebooks.py as a module (it is a script, not a package member)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("check_real_notebooks",
                                                  os.path.join(nr.NOTEBOOKS, "check_real_notebooks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_real_notebooks_turns_code_cells_into_a_cell_script(tmp_path):
    import json
    checker = load_checker()
    notebook = {"cells": [{"cell_type": "markdown", "source": ["# title"]},
                          {"cell_type": "code", "source": ["%matplotlib inline\n", "x = 1"]},
                          {"cell_type": "code", "source": "for i in range(200000):\n    pass\nmax_steps = 50000"},
                          {"cell_type": "code", "source": ["x + 1"]},
                          {"cell_type": "code", "source": ["plt.plot([1])"]},
                          {"cell_type": "code", "source": ["y = 2;"]},
                          {"cell_type": "code", "source": ["def f(:"]}]}
    path = tmp_path / "lectures" / "makemore" / "makemore_part2_mlp.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(notebook))
    assert checker.find_notebook(str(tmp_path), "makemore_part2_mlp.ipynb") == str(path)
    cells = checker.code_cells(str(path))
    assert len(cells) == 6 and cells[0] == "%matplotlib inline\nx = 1"
    script = checker.to_script(cells, 1000)
    assert [title for title, _ in nr.split_cells(script)] == ["(preamble)", "0", "1", "2", "3", "4", "5"]
    assert "pass  # IPython: %matplotlib inline" in script
    assert "range(1000)" in script and "max_steps = 1000" in script
    assert "print(repr((x + 1)))" in script          # a notebook displays a cell's last expression
    assert "print(repr((plt.plot" not in script and "y = 2;" in script
    assert "pass  # not Python, left out" in script
    assert checker.cap_steps("range(8)", 1000) == "range(8)"

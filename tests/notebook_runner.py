"""Run a cell script as torch or as tinygrad_mm, and compare what the two runs print.

A script (tests/notebooks/*.py, or a notebook's code cells written out by
tests/notebooks/check_real_notebooks.py) is cells in order, each opened by a line `# %% <title>`.
`python tests/notebook_runner.py SCRIPT torch|tinygrad_mm` runs it in this process: for tinygrad_mm the two
import lines `import torch` and `import torch.nn.functional as F` are swapped (by text, nothing else changes),
then every top-level statement of every cell is executed in one shared namespace. A statement that raises
is recorded (exception, the script line it failed on) and the run goes on, so one run reports every failing
line, not just the first. What each cell prints is captured. The last line on stdout is one JSON object:
{"backend", "seconds", "cells": [{"index", "title", "line", "output", "seconds", "errors": [...]}]}.

The parent side (`run_script`, `compare_runs`, `format_report`) runs both backends in subprocesses and
compares their printed output line by line (see `lines_match` for the tolerance and why).
"""
import ast
import builtins
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
import traceback
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "tests", "notebooks")
# Scripts (ours and the lectures') read 'names.txt' from the working directory: they run where it is.
DATA_DIR = os.path.join(ROOT, "models", "data")
BACKENDS = ("torch", "tinygrad_mm")
SWAPS = {"import torch": "import tinygrad_mm as torch",
         "import torch.nn.functional as F": "import tinygrad_mm.nn.functional as F"}
# torch's default CPU generator starts from this seed in a fresh process (torch.initial_seed() == it);
# seeding both libraries with it makes a script's unseeded draws (torch.randn((27, 2))) the same draws.
TORCH_DEFAULT_SEED = 67280421310721
CELL_MARK = re.compile(r"^# %%(.*)$")


# ----------------------------------------------------------------------------------------------- child side
def swap_imports(source, backend):
    """The script's text as `backend` runs it: only the two torch import lines change, line count kept."""
    if backend == "torch":
        return source
    lines = source.split("\n")
    for i, line in enumerate(lines):
        code, _, comment = line.partition("#")
        indent = line[:len(line) - len(line.lstrip())]
        if code.strip() in SWAPS:
            lines[i] = indent + SWAPS[code.strip()] + ("  #" + comment if comment else "")
    return "\n".join(lines)


def split_cells(source):
    """[(title, first line number)] of the `# %%` cells; code above the first mark is cell 0."""
    cells = [("(preamble)", 1)]
    for number, line in enumerate(source.split("\n"), 1):
        match = CELL_MARK.match(line)
        if match:
            cells.append((match.group(1).strip(), number))
    return cells


def bound_names(stmt):
    """Names a top-level statement assigns (targets, defs, imports, for/with targets)."""
    names = set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def loaded_names(code):
    """Names a line of code reads ({} where the line alone does not parse, e.g. a `for ...:` header)."""
    try:
        tree = ast.parse(code.strip().rstrip(":") if code.strip().endswith(":") else code.strip())
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def touched_objects(stmt, namespace):
    """Data a failed statement read and may have left half-updated: `ratios` of a loop that failed before
    its `ratios.append(...)`, `layers` whose `.out` a failed forward never set (modules, functions,
    classes and builtins are not data)."""
    code = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            and n.id in namespace and not isinstance(namespace[n.id], code)}


def describe_error(exc, path, lines, stmt, failed_names):
    """The exception as a dict: type, message, the script line it came from, and whether it may only
    follow from an earlier failure: the failing line or statement reads a name that a failed statement
    should have (re)bound or may have left half-updated (a NameError, or a stale value of the wrong
    shape); a missing name of the library never follows from anything."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    lineno = frames[-1].lineno if frames else None
    code = lines[lineno - 1].strip() if lineno else ""
    reads = loaded_names(code) | {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)
                                  and isinstance(n.ctx, ast.Load)}
    message = str(exc).split("\n")[0][:300]
    if isinstance(exc, NameError):
        consequence = getattr(exc, "name", None) in failed_names
    elif missing_api(type(exc).__name__, message):   # missing whatever the arguments hold
        consequence = False
    else:    # a stale value, or a None .grad that a failed backward never filled
        consequence = bool(reads & failed_names) or (bool(failed_names) and "NoneType" in message)
    return {"type": type(exc).__name__, "message": message, "line": lineno, "code": code,
            "consequence": consequence, "owner": owner(type(exc).__name__, message)}


MISSING = [(re.compile(r"module 'tinygrad_mm\.nn\.functional' has no attribute '(\w+)'"), "nn.functional: F.{}"),
           (re.compile(r"module 'tinygrad_mm\.nn' has no attribute '(\w+)'"), "nn: torch.nn.{}"),
           (re.compile(r"module 'tinygrad_mm' has no attribute '(\w+)'"), "torch.* name: torch.{}"),
           (re.compile(r"type object 'Tensor' has no attribute '(\w+)'"), "Tensor method: Tensor.{}"),
           (re.compile(r"'Tensor' object has no attribute '(\w+)'"), "Tensor method: .{}")]


def missing_api(kind, message):
    """'torch.* function: torch.tanh' and the like when the exception says a name is missing, else None."""
    if kind != "AttributeError":
        return None
    for pattern, label in MISSING:
        match = pattern.search(message)
        if match:
            return label.format(match.group(1))
    return None


def owner(kind, message):
    """Which piece of the library a failure most likely belongs to (a guess from the message)."""
    found = missing_api(kind, message)
    if found:
        return found
    if "generator" in message or "seed" in message:
        return "RNG"
    if kind == "TypeError" and "argument" in message:
        return "signature (an argument torch accepts)"
    return "other"


def run_cells(path, backend):
    """Execute the script's cells statement by statement; return the JSON-able record of the run."""
    source = swap_imports(open(path).read(), backend)
    lines = source.split("\n")
    tree = ast.parse(source, filename=path)
    marks = split_cells(source)
    starts = [line for _, line in marks] + [len(lines) + 1]
    cells = [{"index": i, "title": title, "line": line, "output": "", "seconds": 0.0, "errors": []}
             for i, (title, line) in enumerate(marks)]
    module = __import__(backend)
    if hasattr(module, "manual_seed"):
        module.manual_seed(TORCH_DEFAULT_SEED)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    failed_names = set()
    captured = {i: io.StringIO() for i in range(len(cells))}
    start = time.perf_counter()
    for stmt in tree.body:
        i = max(k for k in range(len(cells)) if starts[k] <= stmt.lineno)
        print(f"cell {i} line {stmt.lineno}", file=sys.stderr, flush=True)   # progress, read on timeout
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(captured[i]):
                exec(compile(ast.Module(body=[stmt], type_ignores=[]), path, "exec"), namespace)
        except Exception as exc:                                               # noqa: BLE001 (reported)
            cells[i]["errors"].append(describe_error(exc, path, lines, stmt, failed_names))
            failed_names |= bound_names(stmt) | touched_objects(stmt, namespace)
        else:
            if touched_objects(stmt, namespace) & failed_names:   # `bn = model.layers[3]`: stale too
                failed_names |= bound_names(stmt)
            else:
                failed_names -= bound_names(stmt)
        cells[i]["seconds"] += time.perf_counter() - t0
    for i, cell in enumerate(cells):
        cell["output"] = captured[i].getvalue()
    return {"backend": backend, "seconds": time.perf_counter() - start,
            "cells": [c for c in cells if c["index"] > 0 or c["output"] or c["errors"]]}


# ---------------------------------------------------------------------------------------------- parent side
class ScriptRun:
    """One backend's run of one script: the record, or why there is none (timeout, crash)."""

    def __init__(self, backend, record=None, problem=None, seconds=0.0):
        self.backend, self.record, self.problem, self.seconds = backend, record, problem, seconds

    @property
    def cells(self):
        return self.record["cells"] if self.record else []

    def errors(self):
        """[(cell, error)] of every failed statement, consequences of earlier failures included."""
        return [(c, e) for c in self.cells for e in c["errors"]]


def start_script(path, backend):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), os.path.abspath(path), backend],
                            cwd=DATA_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_script(process, backend, timeout, started):
    try:
        out, err = process.communicate(timeout=max(1.0, timeout - (time.perf_counter() - started)))
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        where = (err.strip().split("\n") or ["?"])[-1]
        return ScriptRun(backend, problem=f"timed out after {timeout:.0f} s, in {where}",
                         seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    last = out.strip().split("\n")[-1] if out.strip() else ""
    try:
        return ScriptRun(backend, record=json.loads(last), seconds=seconds)
    except json.JSONDecodeError:
        return ScriptRun(backend, problem=f"exited {process.returncode} without a record: "
                                          f"{err.strip()[-600:]}", seconds=seconds)


def run_script(path, timeout=60.0):
    """{backend: ScriptRun} for torch and tinygrad_mm, run side by side in two subprocesses."""
    started = time.perf_counter()
    processes = {b: start_script(path, b) for b in BACKENDS}
    return {b: finish_script(p, b, timeout, started) for b, p in processes.items()}


# Numbers in printed text: 3, -0.0356, 1.3970e-09, 2.070523500442505, nan, inf.
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?\b(?:nan|inf)\b")
RTOL = 1e-4
ATOL = 1e-6


def printed_ulp(token):
    """One unit in the last printed digit of a float token: 0.0356 -> 1e-4, 1.3970e-09 -> 1e-13."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def numbers_match(a, b):
    """Integers (shapes, counts, indices, steps) exactly; floats within float32 rounding: relative 1e-4
    (float32 has 24 bits, ~6e-8 per op; a few hundred SGD steps of a different summation order stay
    well inside 1e-4), absolute 1e-6 (scripts print rounding noise itself, e.g. maxdiff 5e-09 between
    two float32 computations of one gradient, whose value no implementation reproduces), and one unit in
    the last printed digit (0.03565 rounds to 0.0356 or 0.0357 depending on the last bit)."""
    integer = re.fullmatch(r"[-+]?\d+", a) and re.fullmatch(r"[-+]?\d+", b)
    if integer:
        return int(a) == int(b)
    x, y = float(a), float(b)
    if x != x or y != y:
        return x != x and y != y
    if x == y:
        return True
    tolerance = max(ATOL, RTOL * max(abs(x), abs(y)), printed_ulp(a), printed_ulp(b))
    return abs(x - y) <= tolerance * (1 + 1e-9)


def text_between_numbers(line):
    """The line's text around its numbers, whitespace runs as one space and the padding right before a
    number dropped: torch right-aligns columns by the widest entry, so `[ 0.07, -0.98]` and `[0.07, 0.98]`
    are the same layout. Spaces elsewhere count: numpy's `0.568 ,` is not torch's `0.5680,`."""
    parts = [re.sub(r"\s+", " ", part) for part in NUMBER.split(line)]
    return [part.rstrip() for part in parts[:-1]] + parts[-1:]


def lines_match(ours, theirs):
    """Equal text between the numbers (`text_between_numbers`), numbers per `numbers_match`."""
    nums_a, nums_b = NUMBER.findall(ours), NUMBER.findall(theirs)
    if text_between_numbers(ours) != text_between_numbers(theirs) or len(nums_a) != len(nums_b):
        return False
    return all(numbers_match(a, b) for a, b in zip(nums_a, nums_b))


def compare_runs(reference, candidate):
    """[(cell index, title, [(line number in cell, torch line, our line)])] where outputs differ."""
    theirs = {c["index"]: c for c in reference.cells}
    ours = {c["index"]: c for c in candidate.cells}
    differences = []
    for index in sorted(set(theirs) | set(ours)):
        a = theirs.get(index, {}).get("output", "").split("\n")
        b = ours.get(index, {}).get("output", "").split("\n")
        bad = [(k + 1, x, y) for k, (x, y) in enumerate(zip(a, b)) if not lines_match(y, x)]
        if len(a) != len(b):
            bad.append((min(len(a), len(b)) + 1, f"<{len(a)} lines>", f"<{len(b)} lines>"))
        if bad:
            title = (theirs.get(index) or ours.get(index))["title"]
            differences.append((index, title, bad))
    return differences


def distinct_errors(run):
    """[(cell, error, times)]: one row per failing script line and exception type, in order."""
    rows = {}
    for cell, e in run.errors():
        key = (cell["index"], e["line"], e["type"])
        if key in rows:
            rows[key][2] += 1
        else:
            rows[key] = [cell, e, 1]
    return [tuple(r) for r in rows.values()]


def format_errors(run, max_after=None):
    """The failing lines, those that fail first in full, then in one line each those that may only
    follow from them (a name an earlier failure left undefined, or stale; the first `max_after` of them
    and a count where given)."""
    rows, after = [], []
    for cell, e, times in distinct_errors(run):
        again = f" (x{times})" if times > 1 else ""
        where = f"cell {cell['title']} line {e['line']}"
        if e["consequence"]:
            after.append(f"    {where}: {e['type']}: {e['message'][:90]}{again}")
        else:
            rows.append(f"  {where}: {e['code'][:110]}\n      {e['type']}: {e['message']}{again}"
                        f"\n      -> {e['owner']}")
    if after:
        rows.append("  may only follow from the failures above:")
    if max_after is not None and len(after) > max_after:
        after = after[:max_after] + [f"    ... {len(after) - max_after} more"]
    return rows + after


def format_differences(differences, max_lines=6, candidate=None):
    """The differing lines per cell; a cell that failed on `candidate`'s side shows its first line only."""
    failed = {c["index"] for c in candidate.cells if c["errors"]} if candidate else set()
    rows = []
    for index, title, bad in differences:
        note = " (the cell fails on tinygrad_mm: see its failing lines)" if index in failed else ""
        rows.append(f"  cell {title}: {len(bad)} differing line(s){note}")
        for k, theirs, ours in bad[:1 if note else max_lines]:
            rows.append(f"      line {k}\n        torch:       {theirs[:160]}\n        tinygrad_mm: {ours[:160]}")
        if len(bad) > max_lines:
            rows.append(f"      ... {len(bad) - max_lines} more")
    return rows


def timing(runs):
    """Each side's time running the cells (in its process), or its wall time where it left no record."""
    return ", ".join(f"{b} {r.record['seconds'] if r.record else r.seconds:.1f} s" for b, r in runs.items())


if __name__ == "__main__":
    script, backend = sys.argv[1], sys.argv[2]
    record = run_cells(os.path.abspath(script), backend)
    sys.stdout.flush()
    print(json.dumps(record))

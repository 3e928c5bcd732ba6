"""Run the real makemore notebooks through the notebook runner, as torch and as tinygrad_mm (a local check).

    python tests/notebooks/check_real_notebooks.py PATH [--only part3] [--max-steps 1000] [--timeout 900]
                                                    [--keep DIR]

PATH is a local clone of https://github.com/karpathy/nn-zero-to-hero (or any folder with its
lectures/makemore/*.ipynb). The notebooks are read at run time and never copied into this repository: each
notebook's code cells become a cell script in a temporary folder (or DIR with --keep), which
tests/notebook_runner.py runs on both libraries as it runs our own programs. Changes made on the way:
- IPython lines (`%matplotlib inline`, `!curl ...`) become `pass`, line numbers kept;
- a cell's last bare expression is printed (a notebook displays it), unless it is a plt.* call;
- `range(K)` with a literal K above --max-steps, and `max_steps = K`, are capped (the lectures train for
  200000 steps).
The report gives per notebook the code cells that run on tinygrad_mm, every failing line with its reason and
owner, the cells that fail under torch itself (not tinygrad_mm's failures), and the cells printing otherwise.
Exit status 0 when every cell that runs under torch runs on tinygrad_mm too, else 1.
"""
import argparse
import ast
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import notebook_runner as nr  # noqa: E402

NOTEBOOKS = {"part1": "makemore_part1_bigrams.ipynb", "part2": "makemore_part2_mlp.ipynb",
             "part3": "makemore_part3_bn.ipynb", "part4": "makemore_part4_backprop.ipynb",
             "part5": "makemore_part5_cnn1.ipynb"}


def find_notebook(root, name):
    """The notebook's path under root (lectures/makemore/ or anywhere below), or None."""
    direct = os.path.join(root, "lectures", "makemore", name)
    if os.path.isfile(direct):
        return direct
    for folder, _, files in os.walk(root):
        if name in files:
            return os.path.join(folder, name)
    return None


def code_cells(path):
    """The source text of each code cell, in order."""
    with open(path, encoding="utf-8") as f:
        notebook = json.load(f)
    cells = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            cells.append("".join(source) if isinstance(source, list) else source)
    return cells


def cap_steps(code, max_steps):
    """`range(200000)` -> `range(max_steps)` and `max_steps = 200000` -> `max_steps = max_steps`."""
    def cap(match):
        return match.group(1) + str(min(int(match.group(2)), max_steps)) + match.group(3)
    code = re.sub(r"(\brange\(\s*)(\d+)(\s*\))", cap, code)
    return re.sub(r"(\bmax_steps\s*=\s*)(\d+)(\b)", cap, code)


def displayed(code):
    """The cell with its last bare expression printed as a notebook displays it (repr), plt.* calls aside."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    if not tree.body or not isinstance(tree.body[-1], ast.Expr) or code.rstrip().endswith(";"):
        return code
    last = tree.body[-1]
    root = last.value
    while isinstance(root, (ast.Call, ast.Attribute, ast.Subscript)):
        root = root.func if isinstance(root, ast.Call) else root.value
    if isinstance(last.value, ast.Call) and (getattr(root, "id", "") in ("plt", "print", "display")):
        return code
    lines = code.split("\n")
    first, end = last.lineno - 1, last.end_lineno - 1
    lines[first] = lines[first][:last.col_offset] + "print(repr((" + lines[first][last.col_offset:]
    lines[end] = lines[end][:last.end_col_offset + (12 if first == end else 0)] + ")))" + \
        lines[end][last.end_col_offset + (12 if first == end else 0):]
    return "\n".join(lines)


def to_script(cells, max_steps):
    """One cell script: `# %% k` (k the code cell's index, from 0), then the cell's code with IPython
    lines as `pass`."""
    out = []
    for k, code in enumerate(cells):
        code = "\n".join(line[:len(line) - len(line.lstrip())] + "pass  # IPython: " + line.strip()
                         if line.lstrip().startswith(("%", "!")) else line for line in code.split("\n"))
        code = displayed(cap_steps(code, max_steps))
        try:
            ast.parse(code)
        except SyntaxError as exc:
            code = f"pass  # not Python, left out: {exc.msg}"
        out.append(f"# %% {k}\n{code}\n")
    return "\n".join(out)


def report(label, cells, runs):
    """Lines describing one notebook's two runs; returns (lines, whether tinygrad_mm fell short)."""
    theirs, ours = runs["torch"], runs["tinygrad_mm"]
    rows = [f"== {label}: {len(cells)} code cells, numbered from 0 ({nr.timing(runs)})"]
    for side in (theirs, ours):
        if side.problem:
            rows.append(f"  {side.backend}: {side.problem}")
    if theirs.problem or ours.problem:
        return rows, True
    torch_bad = {c["index"] for c in theirs.cells if c["errors"]}
    ours_bad = {c["index"] for c in ours.cells if c["errors"]}
    good = [c["index"] for c in theirs.cells if c["index"] > 0 and c["index"] not in torch_bad]
    runs_here = [k for k in good if k not in ours_bad]
    rows.append(f"  tinygrad_mm runs {len(runs_here)} of the {len(good)} cells that run under torch"
                f" ({len(torch_bad)} fail under torch itself)")
    if torch_bad:
        rows.append("  failing under torch itself (not counted against tinygrad_mm):")
        rows += ["  " + r for r in nr.format_errors(theirs, max_after=5)]
    ours.record["cells"] = [c for c in ours.cells if c["index"] not in torch_bad]
    if ours.errors():
        rows.append("  failing on tinygrad_mm:")
        rows += nr.format_errors(ours, max_after=12)
    differences = [d for d in nr.compare_runs(theirs, ours) if d[0] not in torch_bad]
    if differences:
        rows.append(f"  {len(differences)} cell(s) print otherwise than torch:")
        rows += nr.format_differences(differences, max_lines=2, candidate=ours)
    return rows, bool(ours.errors())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="a local clone of karpathy/nn-zero-to-hero")
    parser.add_argument("--only", action="append", choices=sorted(NOTEBOOKS), help="run only these parts")
    parser.add_argument("--max-steps", type=int, default=1000, help="cap on literal loop lengths (1000)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per notebook and side (900)")
    parser.add_argument("--keep", help="write the cell scripts to this folder and keep them")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.path):
        parser.error(f"no folder {args.path!r}: give the path of a local nn-zero-to-hero clone")
    if args.max_steps < 1:
        parser.error(f"--max-steps must be at least 1, not {args.max_steps}")
    folder = args.keep or tempfile.mkdtemp(prefix="real_notebooks_")
    os.makedirs(folder, exist_ok=True)
    short = False
    for part in args.only or sorted(NOTEBOOKS):
        path = find_notebook(args.path, NOTEBOOKS[part])
        if path is None:
            print(f"== {part}: {NOTEBOOKS[part]} not found under {args.path}")
            short = True
            continue
        cells = code_cells(path)
        script = os.path.join(folder, f"real_{part}.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(to_script(cells, args.max_steps))
        rows, fell_short = report(f"{part} ({NOTEBOOKS[part]}, script {script})", cells,
                                  nr.run_script(script, timeout=args.timeout))
        print("\n".join(rows), flush=True)
        short |= fell_short
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())

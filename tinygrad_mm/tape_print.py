"""`print(tape)`: the tape as a table a learner can read, each input named by its source."""
import math

import numpy as np

from . import backend
from .tape_graph import input_shapes, namer, sources


def saved_nbytes(entry):
    """Bytes of the arrays an entry's op holds for its backward (each distinct array counted once)."""
    if entry.freed:
        return 0
    distinct = {id(a): a for _, a in entry.function.saved_arrays()}
    return sum(int(a.nbytes) for a in distinct.values())


def human_bytes(n):
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _shape(s):
    return str(tuple(int(n) for n in s))  # Python's own spelling: (), (200,), (4, 27)


def _grad_norm(entry):
    g = entry.grad_out
    if g is None:
        return "—"
    norm = float(np.sqrt(float((g.astype("float64") ** 2).sum()))) if g.size else 0.0
    return f"{norm:.4g}" if math.isfinite(norm) else str(norm)


def source_label(source, name, entry_names):
    """'#3 Tanh', 'leaf lin1.weight' ('leaf' unnamed), 'constant' or '#3 of another tape': an input's source."""
    if source.kind == "entry":
        op = entry_names.get(source.index)
        return f"#{source.index} {op}" if op else f"#{source.index}"
    if source.kind == "outside":
        return f"#{source.index} of another tape"
    if source.kind == "leaf":
        n = name(source.tensor)
        return f"leaf {n}" if n else "leaf"
    return "constant"


def entry_row(entry, name=None, entry_names=None):
    """The table row of one entry: index, op, inputs (source and shape) → output, dtype, device,
    saved bytes, grad norm. `name` names leaves (see tape_graph.namer); `entry_names` maps index -> op."""
    name = name or (lambda t: None)
    entry_names = {} if entry_names is None else entry_names
    if entry.freed:
        saved, dev = "freed", entry.device
    else:
        dev = backend.device_of(entry.inputs[0].array) if entry.inputs else "cpu"
        saved = human_bytes(saved_nbytes(entry))
    ins = [f"{source_label(src, name, entry_names)} {_shape(s)}"
           for src, s in zip(sources(entry), input_shapes(entry))]
    shapes = ", ".join(ins) + " → " + _shape(entry.out_shape)
    return (str(entry.index), entry.name, shapes, str(entry.out_dtype), dev, saved, _grad_norm(entry))


HEADER = ("#", "op", "inputs → output", "dtype", "device", "saved", "|grad out|")


def format_table(rows, header=HEADER):
    """Left-aligned text columns, numbers right-aligned."""
    rows = [header] + list(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {0, 5, 6}
    lines = []
    for k, r in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_tape(tape, names=None):
    """The whole tape: a summary line and one row per entry (leaves named from `names` or label())."""
    entries = tape.entries
    live = [e for e in entries if not e.freed]
    total = sum(saved_nbytes(e) for e in live)
    head = (f"Tape with {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
            f"({len(live)} live, {len(entries) - len(live)} freed), {human_bytes(total)} saved for backward")
    if not entries:
        return head
    name, entry_names = namer(tape, names), {e.index: e.name for e in entries}
    return head + "\n" + format_table(entry_row(e, name, entry_names) for e in entries)

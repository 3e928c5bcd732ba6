"""`print(tape)`: the tape as a table a learner can read."""
import math

import numpy as np

from . import backend


def saved_nbytes(entry):
    """Bytes of the arrays an entry's op holds for its backward (each distinct array counted once)."""
    if entry.freed:
        return 0
    seen, total = set(), 0
    stack = list(vars(entry.function).values())
    while stack:
        v = stack.pop()
        if isinstance(v, (tuple, list)):
            stack.extend(v)
        elif hasattr(v, "nbytes") and hasattr(v, "dtype") and id(v) not in seen:
            seen.add(id(v))
            total += int(v.nbytes)
    return total


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


def entry_row(entry):
    """The table row of one entry: index, op, shapes, dtype, device, saved bytes, grad norm."""
    if entry.freed:
        ins, saved, dev = entry.in_shapes, "freed", entry.device
    else:
        ins = tuple(t.array.shape for t in entry.inputs)
        dev = backend.device_of(entry.inputs[0].array) if entry.inputs else "cpu"
        saved = human_bytes(saved_nbytes(entry))
    shapes = ", ".join(_shape(s) for s in ins) + " → " + _shape(entry.out_shape)
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


def format_tape(tape):
    """The whole tape: a summary line and one row per entry."""
    entries = tape.entries
    live = [e for e in entries if not e.freed]
    total = sum(saved_nbytes(e) for e in live)
    head = (f"Tape with {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
            f"({len(live)} live, {len(entries) - len(live)} freed), {human_bytes(total)} saved for backward")
    if not entries:
        return head
    return head + "\n" + format_table(entry_row(e) for e in entries)

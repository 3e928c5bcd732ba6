"""repr(tensor) as torch prints it: tensor([0.8730, 1.5000], dtype=torch.float64, grad_fn=<...>).

torch's number format (torch/_tensor_str.py): floats that are all whole print as `2.`; otherwise
four decimals, or scientific `1.0000e-05` when the magnitudes span more than 1000x or leave
[1e-4, 1e8]; every entry padded to one width.
"""
import numpy as np

from . import backend

_DEFAULT = (np.dtype("float32"), np.dtype("int64"), np.dtype("bool"))


def _float_formatter(a):
    finite = np.abs(a[np.isfinite(a)]).astype(np.float64)
    if finite.size and np.all(finite == np.round(finite)) and finite.max() < 1e8:
        fmt = "{:.0f}."
    else:
        nonzero = finite[finite != 0]
        sci = nonzero.size and (nonzero.max() / nonzero.min() > 1000 or nonzero.max() > 1e8 or nonzero.min() < 1e-4)
        fmt = "{:.4e}" if sci else "{:.4f}"
    width = max(len(fmt.format(v) if np.isfinite(v) else str(v)) for v in a.ravel().tolist())
    return lambda v: (fmt.format(v) if np.isfinite(v) else str(v)).rjust(width)


def _shown(a, edge=3):
    """The entries a summarized print shows (torch picks the number format from these only)."""
    if a.size <= 1000:
        return a
    return a[np.ix_(*[np.r_[0:edge, n - edge:n] if n > 2 * edge else np.arange(n) for n in a.shape])]


def format_tensor(t):
    a = backend.to_numpy(t.array)
    formatter = None
    if a.dtype.kind == "f" and a.size:
        formatter = {"float_kind": _float_formatter(_shown(a))}
    elif a.dtype.kind == "b" and a.size:  # numpy leaves room for False even when none is printed
        width = 5 if not a.all() else 4
        formatter = {"bool": lambda v: str(v).rjust(width)}
    body = np.array2string(a, separator=", ", threshold=1000, edgeitems=3, prefix="tensor(", formatter=formatter,
                           max_line_width=80 + max(a.ndim - 1, 0))  # torch's linewidth, rows indented
    body = body.replace(", ..., ", ",  ..., ")  # torch's elided entries print as " ..."
    suffixes = [f"dtype={t.dtype!r}"] if t.array.dtype not in _DEFAULT else []
    if t.device != "cpu":
        suffixes.append(f"device='{t.device}'")
    if t.entry is not None:
        suffixes.append(f"grad_fn=<{t.entry.torch_name}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    # torch (_tensor_str._str_intern): a suffix that would pass column 80 starts a new line
    text = "tensor(" + body
    last = len(text) - text.rfind("\n") + 1  # torch's count: the last line's length + 2
    for suffix in suffixes:
        if last + len(suffix) + 2 > 80:
            text += ",\n" + " " * len("tensor(") + suffix
            last = len("tensor(") + len(suffix)
        else:
            text += ", " + suffix
            last += len(suffix) + 2
    return text + ")"

"""repr(tensor) in torch's style: tensor([...], dtype=..., grad_fn=<...>)."""
import numpy as np

from . import backend

_DEFAULT = (np.dtype("float32"), np.dtype("int64"), np.dtype("bool"))


def format_tensor(t):
    body = np.array2string(backend.to_numpy(t.array), separator=", ", precision=4, threshold=1000,
                           edgeitems=3, prefix="tensor(")
    extra = [f"dtype={t.dtype}"] if t.dtype not in _DEFAULT else []
    if t.device != "cpu":
        extra.append(f"device='{t.device}'")
    if t.entry is not None:
        extra.append(f"grad_fn=<{t.entry.name}>")
    elif t.requires_grad:
        extra.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extra) + ")"

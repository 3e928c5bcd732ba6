"""The graph a tape holds, as plain data for printing and drawing: which entry feeds which.

An entry knows its inputs only while it is live; a sweep frees them and keeps `entry.sources`
instead (one per input: the index of the entry that made it, the leaf tensor, or None for
a constant). `sources(entry)` reads either, so a picture drawn after a backward
has the same edges as one drawn before.

Leaves get names from a Module (its `named_parameters()`) or a dict name -> tensor, passed
to `names=`, or registered once on the tape with `label(tape, model)`.
"""
import weakref

import numpy as np

_labels = weakref.WeakKeyDictionary()  # tape -> {id(tensor): (weakref to it, name)}


class Source:
    """Where one input of an entry came from: kind "entry" (index), "outside" (an entry of another
    tape, by its index there), "leaf" (the tensor) or "constant"."""
    __slots__ = ("kind", "index", "tensor")

    def __init__(self, kind, index=None, tensor=None):
        self.kind, self.index, self.tensor = kind, index, tensor


def sources(entry):
    """One Source per input of `entry`, live or freed."""
    if entry.inputs is not None:
        return [Source("entry" if t._entry.tape is entry.tape else "outside", t._entry.index)
                if t._entry is not None else
                Source("leaf", tensor=t) if t.requires_grad else Source("constant") for t in entry.inputs]
    out = []
    for s in entry.sources:
        if s is None:
            out.append(Source("constant"))
        elif type(s) is int:
            out.append(Source("entry", s))
        else:
            out.append(Source("leaf", tensor=s))
    return out


def input_shapes(entry):
    return entry.in_shapes if entry.inputs is None else tuple(t.array.shape for t in entry.inputs)


def label(tape, model):
    """Register parameter names for the leaves on `tape` (a Module or a dict name -> tensor); returns tape."""
    table = _labels.setdefault(tape, {})
    for name, t in _named(model):
        table[id(t)] = (weakref.ref(t), name)
    return tape


def _named(names):
    if names is None:
        return []
    if hasattr(names, "named_parameters"):
        return list(names.named_parameters())
    if isinstance(names, dict):
        return list(names.items())
    raise TypeError(f"names must be a Module or a dict name -> tensor, got {type(names).__name__}")


def namer(tape, names=None):
    """A function tensor -> its name or None: from `names` first, then from what label() registered."""
    table = dict(_labels.get(tape, {}))
    for name, t in _named(names):
        table[id(t)] = (weakref.ref(t), name)

    def name(t):
        hit = table.get(id(t)) if t is not None else None
        return hit[1] if hit is not None and hit[0]() is t else None  # an id reused by another tensor: no name
    return name


def norm(a):
    """The 2-norm of an array in float64 (a host copy from cuda), or None."""
    if a is None:
        return None
    from . import backend
    a = np.asarray(backend.to_numpy(a), dtype=np.float64)
    return float(np.sqrt((a * a).sum())) if a.size else 0.0


def history(tensor):
    """The entries that made `tensor`, in execution order (an explicit stack: no recursion)."""
    root = tensor.entry
    if root is None:
        return []
    by_index = {e.index: e for e in root.tape.entries}
    by_index[root.index] = root
    seen, stack = {root.index: root}, [root]
    while stack:
        e = stack.pop()
        if e.inputs is not None:  # live: the inputs' own entries
            made_by = [t._entry for t in e.inputs if t._entry is not None and t._entry.tape is e.tape]
        else:                     # freed: look the recorded indices up on the tape
            made_by = [by_index[s] for s in e.sources or () if type(s) is int and s in by_index]
        for m in made_by:
            if m.index not in seen:
                seen[m.index] = m
                stack.append(m)
    return [seen[i] for i in sorted(seen)]

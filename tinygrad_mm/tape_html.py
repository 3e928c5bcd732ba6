"""`tape.save_html(path, loss)`: one self-contained page (no network) to step through the reverse sweep.

The page holds the tape's picture (tape_draw) and, as JSON, every Step of a sweep from
`loss` run here with retain_graph=True: the entry, its upstream gradient, and what it
added to each input. Leaves' .grad (and retain_grad() outputs, and each entry's grad_out)
are put back afterwards, so saving the page changes nothing; the tape stays live for
your own backward. Each array is shown by its values when it has at most SMALL elements,
otherwise by shape, norm and a heat strip (up to STRIP cells, each the mean of a chunk).

Open `path#step=3` to start three steps in (the browser tests use this).
"""
import html
import json
import os
import tempfile

import numpy as np

from . import backend
from .tape_draw import MAX_ENTRIES, svg
from .tape_graph import Source, namer
from .tape_page import TEMPLATE as _TEMPLATE
from .tape_print import source_label

SMALL = 16   # values printed in full up to this many elements (a 4x4 matrix still reads at a glance)
STRIP = 64   # heat-strip cells for larger arrays


def summarize(a):
    """A JSON-ready description of an array: shape, dtype, norm, and values or a heat strip."""
    a = np.asarray(backend.to_numpy(a))
    f = a.astype(np.float64).reshape(-1)
    out = {"shape": [int(n) for n in a.shape], "dtype": str(a.dtype),
           "norm": float(np.sqrt((f * f).sum())) if f.size else 0.0}
    if f.size <= SMALL:
        out["values"] = [float(v) for v in f]
    else:
        chunks = np.array_split(f, min(STRIP, f.size))
        out["strip"] = [float(c.mean()) for c in chunks]
        out["absmax"] = float(np.abs(f).max())
    return out


def sweep_steps(tape, loss, names=None):
    """Run a retained sweep from `loss` and describe each Step; restores every gradient it touched."""
    if loss.entry is None or loss.entry.tape is not tape:
        raise ValueError(f"loss must be a tensor recorded on this tape, got {loss.short()}"
                         + (" (a leaf)" if loss.entry is None else " (recorded on another tape)"))
    if loss.entry.freed:
        raise ValueError(f"entry #{loss.entry.index} ({loss.entry.name}) was already swept and freed: "
                         "save the page before calling backward (or use backward(retain_graph=True))")
    entries = tape.entries
    kept = []  # (tensor, its .grad, that grad's array) for every tensor the sweep may write to
    for e in entries:
        for t in (e.inputs or ()):
            if t._entry is None:
                kept.append((t, t._grad, None if t._grad is None else t._grad.array))
        if e.retains is not None:
            kept.append((e.retains, e.retains._grad, None if e.retains._grad is None else e.retains._grad.array))
    grad_outs = [(e, e.grad_out) for e in entries]
    name, entry_names = namer(tape, names), {e.index: e.name for e in entries}
    steps = []
    try:
        for step in tape.backward_steps(loss, retain_graph=True):
            e = step.entry
            used, incs = set(), []
            for t, g in step.increments:  # which input position each increment went to
                pos = next(p for p, x in enumerate(e.inputs) if x is t and p not in used)
                used.add(pos)
                src = Source("entry", t._entry.index) if t._entry is not None else Source("leaf", tensor=t)
                incs.append({"pos": pos, "to": source_label(src, name, entry_names),
                             "kind": "adjoint" if t._entry is not None else "grad", **summarize(g)})
            steps.append({"entry": e.index, "name": e.name, "grad_out": summarize(step.grad_out),
                          "increments": incs})
    finally:
        for t, g, array in reversed(kept):
            if g is not None:
                g.array = array
            t._grad = g
        for e, g in grad_outs:
            e.grad_out = g
    return steps


def page(tape, loss=None, names=None, max_entries=MAX_ENTRIES):
    """The page's HTML text."""
    steps = [] if loss is None else sweep_steps(tape, loss, names)
    picture = svg(tape, names, max_entries=max_entries)
    data = json.dumps({"steps": steps}).replace("</", "<\\/")  # never close the <script> early
    note = ("" if loss is not None else
            "<p>No loss was given (tape.save_html(path, loss=...)): the picture only, nothing to step.</p>")
    return _TEMPLATE.replace("@PICTURE@", picture).replace("@DATA@", data).replace("@NOTE@", note) \
        .replace("@TITLE@", html.escape(f"tape: {len(tape.entries)} entries"))


def save_html(tape, path, loss=None, names=None, max_entries=MAX_ENTRIES):
    """Write the page atomically (a temp file in the same folder, then os.replace); returns path."""
    text = page(tape, loss, names, max_entries)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tape-", suffix=".html.tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


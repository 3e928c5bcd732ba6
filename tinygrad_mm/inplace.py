"""History bookkeeping for recorded in-place writes (x += y, x[i] = v, v.mul_(2) on a view).

The tape reaches an input's entry through the input tensor, so after `a *= 3` an older entry
that read `a` would route its gradient into a's new history. Two fixes keep torch's gradients:

- entries recorded with `a` as an input get an alias carrying a's old history (`retarget`);
- a write into a recorded view (v = a[:2]; v.mul_(3)) also rebases the view's base: a's new
  value is "a with v's region replaced" (torch's CopySlices), recorded as one more entry.

What this engine cannot follow -- another live view of a written tensor (w = a[2:] while a is
written), a view made by an op other than basic indexing, reshape and permute -- raises a
clear error before anything is written, never a silently wrong gradient.
"""
import weakref

import numpy as np

from .grad_mode import _state, storage, tapes

_views = {}  # id(view) -> (weak view, base tensor, view op, creation entry id): views written at least once


def _live_entries():
    for tape in list(tapes):
        for r in tape._live:
            e = r() if r is not None else None
            if e is not None and e.inputs is not None:
                yield e


def _is_view_op(fn):
    from . import ops_index, ops_select, ops_shape
    if isinstance(fn, ops_index.Index):
        return fn.advanced is None
    return isinstance(fn, (ops_shape.Reshape, ops_shape.Permute, ops_select.Expand))


def _creation(view):
    """(base, view op, creation entry id) when `view` is a recorded view of another tensor's memory."""
    known = _views.get(id(view))
    if known is not None and known[0]() is view:
        return known[1:]
    entry = view._entry
    if entry is None or entry.freed or not _is_view_op(entry.function) or getattr(entry.function, "rebase", False):
        return None  # not a view, or the memory owner's own history after a rebase
    base = entry.inputs[0]
    if storage(view.array) is not storage(base.array):
        return None  # a reshape that had to copy
    key = id(view)
    _views[key] = (weakref.ref(view, lambda _, k=key, d=_views: d.pop(k, None)), base, entry.function, id(entry))
    return base, entry.function, id(entry)


def prepare(t, what):
    """Check that a recorded write into `t` can keep every gradient right, before anything is
    written; returns the views chain [(base, view op), ...] from t up to the memory's owner."""
    from .ops_select import Expand
    chain, through, x = [], set(), t
    while True:
        link = _creation(x)
        if link is None or any(link[0] is b for b, _ in chain) or link[0] is t:
            break
        base, fn, made = link
        if base.requires_grad and base._entry is None and _state.grad_enabled:
            raise RuntimeError(f"a view of a leaf Variable that requires grad is being used in an in-place "
                               f"operation ({what} on a view of {base.short()}); .clone() it first")
        if isinstance(fn, Expand):
            raise RuntimeError(f"unsupported operation: {what} writes into an expanded tensor, where several "
                               "elements share one memory location; .clone() it first")
        chain.append((base, fn))
        through.add(made)
        x = base
    written = [t] + [b for b, _ in chain]
    for e in _live_entries():  # another recorded view of the written memory would keep a stale history
        if id(e) not in through and _is_view_op(e.function) and not getattr(e.function, "rebase", False) \
                and any(e.inputs[0] is w for w in written):
            raise RuntimeError(f"{what} writes into memory that another recorded view reads (entry #{e.index}, "
                               f"{e.name}); this engine cannot update that view's history: .clone() the view, "
                               "or write before taking views")
    return chain


def retarget(t):
    """Entries that read `t` keep routing to its history before the write (an alias carries it)."""
    old = _alias(t)
    for e in _live_entries():
        if any(x is t for x in e.inputs):
            e.inputs = type(e.inputs)(old if x is t else x for x in e.inputs)


def _alias(t):
    old = t.__class__.__new__(t.__class__)
    old.array, old.requires_grad, old._grad, old._entry = t.array, t.requires_grad, None, t._entry
    return old


def rebased(view, base, fn):
    """The base's new value after a recorded write into `view`, with history: the base with the
    view's region replaced (basic indexing), or the view laid out again (reshape, permute)."""
    from . import ops_index, ops_shape
    if isinstance(fn, ops_index.Index):
        new = ops_index.IndexPut.apply(_alias(base), view, basic=fn.basic, advanced=None)
    elif isinstance(fn, ops_shape.Reshape):
        new = ops_shape.Reshape.apply(view, shape=base.array.shape)
    else:
        inverse = tuple(int(a) for a in np.argsort([a % max(view.ndim, 1) for a in fn.axes]))
        new = ops_shape.Permute.apply(view, axes=inverse)
    new._entry.function.rebase = True  # the base's history now: not a view of `view` (see _creation)
    return new

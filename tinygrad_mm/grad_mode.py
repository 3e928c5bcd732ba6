"""Recording state: which tape records, whether recording is on, and in-place modifications.

The bottom floor of the engine (tensor, function and tape all read it). Module-global and
single-threaded, like torch's grad mode.

In-place modifications (the version counter): an op's backward may need arrays its forward
saved, and an in-place op (`x += 1`, `x[i] = v`, an optimizer step) can overwrite them after
the fact. Each entry remembers the global `version` when it was recorded; each in-place op
bumps it and logs the storage it wrote. A backward whose entry is older than the newest
modification checks whether the op saved an array of a modified storage and, if so, raises
torch's "modified by an inplace operation" error instead of computing a wrong gradient.
The check costs one integer comparison per entry when nothing was modified.
"""
import weakref


class _State:
    __slots__ = ("tape", "grad_enabled", "version", "modified", "log_limit", "capture")

    def __init__(self):  # read by every op: slots, so each read is a specialized load
        self.tape = None           # the tape ops record on (set by tape.py)
        self.grad_enabled = True
        self.version = 0           # bumped by every in-place modification
        self.modified = []         # (version, weak reference to the modified storage, its description)
        self.log_limit = 256       # trim the log when it grows past this
        self.capture = None        # a compile recorder while tg.compile captures a step, else None


_state = _State()
tapes = weakref.WeakSet()  # every Tape registers here, for trimming the in-place log


class no_grad:
    """Context manager (and decorator) under which no op is recorded."""
    _mode = False

    def __enter__(self):
        self._prev = _state.grad_enabled
        _state.grad_enabled = self._mode

    def __exit__(self, *exc):
        _state.grad_enabled = self._prev

    def __call__(self, f):
        mode = type(self)

        def wrapper(*args, **kwargs):
            with mode():
                return f(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = f.__name__, f.__doc__
        return wrapper


class enable_grad(no_grad):
    """Context manager (and decorator) that turns recording back on, e.g. inside no_grad."""
    _mode = True


def is_grad_enabled():
    """Whether ops on tensors that require grad are being recorded."""
    return _state.grad_enabled


def set_grad_enabled(mode):
    """Turn recording on or off (as torch.set_grad_enabled, without the context-manager form)."""
    _state.grad_enabled = bool(mode)


def storage(a):
    """The array that owns `a`'s memory (numpy and cupy point every view at its owner)."""
    base = a.base
    return a if base is None else base


def mark_modified(a, what):
    """Record that array `a` was written in place (`what` names it for the error message)."""
    if _state.capture is not None:  # an in-place write inside a step being compiled
        _state.capture.modified(a, what)
    log_modified(a, what)


def log_modified(a, what):
    """mark_modified without the compile hook: for a write the caller already told tg.compile of."""
    _state.version += 1
    owner = storage(a)
    try:
        ref = weakref.ref(owner)
    except TypeError:  # an array type without weak references: hold it (the log is trimmed)
        ref = (lambda o: lambda: o)(owner)
    log = _state.modified
    log.append((_state.version, ref, what))
    if len(log) > _state.log_limit:
        trim_modified()


def log_writes(arrays, what):
    """Record one in-place update of several arrays (an optimizer step): one log entry for all."""
    log_storages(tuple([a if a.base is None else a.base for a in arrays]), what)  # storage(a) of each, inlined


def log_storages(owners, what):
    """log_writes with the storages already found (a compiled step's update writes the same ones each call)."""
    _state.version += 1
    log = _state.modified
    log.append((_state.version, lambda: owners, what))
    if len(log) > _state.log_limit:
        trim_modified()


def trim_modified():
    """Forget modifications no live entry can be affected by: older than every live entry, of
    storages gone, or followed by a newer one of the same storages (a check finds that one).
    The next trim waits until the log has doubled, so a graph held unswept across many steps
    (which keeps one entry per distinct storage) costs amortized O(1) per write, not O(log)."""
    oldest, seen, kept = oldest_live_stamp(), set(), []
    for m in reversed(_state.modified):
        if m[0] <= oldest:
            break  # the log is in version order
        owner = m[1]()
        if owner is None:
            continue
        key = tuple(map(id, owner)) if type(owner) is tuple else id(owner)
        if key not in seen:
            seen.add(key)
            kept.append(m)
    kept.reverse()
    _state.modified = kept
    _state.log_limit = max(256, 2 * len(kept))


def oldest_live_stamp():
    """The in-place version at which the oldest unswept entry on any tape was recorded."""
    oldest = _state.version
    for tape in list(tapes):
        for r in tape._live:
            e = r() if r is not None else None
            if e is not None:
                oldest = min(oldest, e.stamp)
                break  # entries are in recording order: the first live one is the oldest
    return oldest



def check_unmodified(entry):
    """Raise if an array entry's op saved was written in place after the entry was recorded."""
    newer = [m for m in _state.modified if m[0] > entry.stamp]
    if not newer:
        return
    saved = {id(storage(a)): a for _, a in entry.function.saved_arrays()}
    for version, ref, what in newer:
        owner = ref()
        if owner is None:
            continue
        if type(owner) is tuple and any(id(o) in saved for o in owner) or id(owner) in saved:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: {what} was written after entry #{entry.index} ({entry.name}) saved it for "
                f"backward (modification {version}, entry recorded at {entry.stamp}). Compute with an "
                "out-of-place op instead (x = x + 1, not x += 1), or .clone() the tensor before writing it")

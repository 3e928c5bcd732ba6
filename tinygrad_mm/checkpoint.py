"""Checkpoints: a nested dict of arrays and JSON values <-> one .npz file, atomically, without pickle.

Layout: each array at path a/b/c of the nested dict is an npz member "a/b/c"; everything
else (numbers, strings, lists, None, the RNG state) goes, JSON-encoded, into the member
"__meta__" as uint8 bytes, beside a format marker. Loading uses allow_pickle=False, reads
every member (so a truncated file fails its CRC check here, not later) and refuses anything
that is not such a file with one CheckpointError naming the file and the problem.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from . import backend

FORMAT = "tinygrad_mm-checkpoint"
VERSION = 1
_META = "__meta__"


class CheckpointError(ValueError):
    """A file could not be read as a tinygrad_mm checkpoint."""


def _flatten(tree, prefix, arrays):
    """Move arrays into `arrays` keyed by path; return the JSON-able rest with placeholders."""
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:  # load would take it for an array placeholder
            raise ValueError(f"checkpoint entry {prefix[:-1]!r}: a dict whose only key is '__array__' is reserved")
        out = {}
        for k, v in tree.items():
            k = str(k)
            if "/" in k:
                raise ValueError(f"checkpoint keys may not contain '/': {prefix + k!r}")
            out[k] = _flatten(v, prefix + k + "/", arrays)
        return out
    if hasattr(tree, "shape") and hasattr(tree, "dtype") and not isinstance(tree, np.generic):
        arr = backend.to_numpy(getattr(tree, "data", tree) if hasattr(tree, "requires_grad") else tree)
        if arr.dtype.kind == "O":
            raise TypeError(f"checkpoint entry {prefix[:-1]!r} is an object array; only numeric arrays are saved")
        arrays[prefix[:-1]] = arr
        return {"__array__": prefix[:-1]}
    if isinstance(tree, (list, tuple)):  # items by position, so a list of arrays works too (load rebuilds lists)
        return [_flatten(v, f"{prefix}{i}/", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, np.generic):
        tree = tree.item()
    try:
        json.dumps(tree)
    except TypeError:
        raise TypeError(f"checkpoint entry {prefix[:-1]!r} of type {type(tree).__name__} is neither an "
                        "array nor JSON-serializable") from None
    return tree


def _unflatten(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]]
        return {k: _unflatten(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, arrays) for v in tree]
    return tree


def save(path, state):
    """Write `state` (nested dict of arrays/JSON values) to `path` atomically.

    The bytes go to a temporary file in the same folder, are flushed to disk, and only then
    replace `path` (os.replace is atomic): a crash mid-save leaves the previous file intact.
    A file object is handed to numpy, which would otherwise append ".npz" to the temp name.
    """
    if not isinstance(state, dict):
        raise TypeError(f"checkpoint.save takes a dict, got {type(state).__name__}")
    arrays = {}
    meta = {"format": FORMAT, "version": VERSION, "state": _flatten(state, "", arrays)}
    if _META in arrays:
        raise ValueError(f"{_META!r} is reserved")
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def atomic_write(path, write, mode="wb"):
    """Call write(file) on a temp file in path's folder (".NAME.<random>.tmp"), fsync it, then
    os.replace it onto path: readers see the old file or the new one, never a partial one."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give the file the usual mode
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _umask():
    mask = os.umask(0)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def load(path):
    """Read a checkpoint written by save(); returns the nested dict (arrays as numpy arrays)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: the file is empty (an interrupted copy?)")
    with open(path, "rb") as f:
        magic = f.read(6)
    # checked before np.load: it would read a .npy (no context manager: TypeError) and call any
    # other file "pickled data", which allow_pickle=False then refuses with a misleading message
    if magic == b"\x93NUMPY":
        raise CheckpointError(f"{path}: a bare .npy array, not a checkpoint archive")
    if not magic.startswith(b"PK"):
        raise CheckpointError(f"{path}: not an .npz (zip) file")
    try:
        with np.load(path, allow_pickle=False) as z:
            members = {k: z[k] for k in z.files}  # reading every member verifies its CRC
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise CheckpointError(f"{path}: holds object arrays, which load only by unpickling; refused") from None
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{path}: truncated or corrupt ({type(e).__name__}: {e})") from None
    if _META not in members:
        raise CheckpointError(f"{path}: an .npz file, but not a tinygrad_mm checkpoint (no {_META!r} member)")
    try:
        meta = json.loads(members.pop(_META).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: its metadata is corrupt ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinygrad_mm checkpoint (format marker missing)")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')} is not supported "
                              f"(this library reads version {VERSION})")
    try:
        return _unflatten(meta["state"], members)
    except KeyError as e:
        raise CheckpointError(f"{path}: array {e} listed in the metadata is missing") from None
    except TypeError as e:  # a hand-edited __meta__, e.g. a non-string array reference
        raise CheckpointError(f"{path}: its metadata is corrupt ({e})") from None

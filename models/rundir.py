"""The run folder: one writer at a time (a pid lock file), atomic writes, no orphaned temp files."""
from __future__ import annotations

import errno
import glob
import os

from tinygrad_mm import checkpoint

from .config import RunError

LOCK_NAME = ".lock"
TMP_SUFFIX = ".tmp"  # temp files are ".NAME.<random>.tmp", as checkpoint.save makes them


def atomic_write(path, write, mode="wb"):
    """Call write(file) on a temp file in path's folder, fsync it, then os.replace it onto path:
    readers see the old file or the new one, never a partial one (a crash leaves a temp file,
    which clean_temp_files removes on the next start). The checkpoint's own writer."""
    return checkpoint.atomic_write(path, write, mode)


def clean_temp_files(out_dir) -> list[str]:
    """Remove temp files that killed runs left behind in out_dir; returns their paths.
    Call it only while holding the folder's lock, so no live writer's file is removed."""
    removed = []
    for p in glob.glob(os.path.join(glob.escape(os.fspath(out_dir)), "." + "*" + TMP_SUFFIX)):
        try:
            os.unlink(p)
            removed.append(p)
        except OSError:
            pass
    return removed


def _pid_alive(pid) -> bool:
    if os.name == "nt":  # os.kill would terminate it there; assume alive (delete the lock by hand)
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """`with RunLock(out_dir):` -- out_dir/.lock holds the writer's pid, created with O_EXCL so
    two runs can never both hold it. A lock whose pid is dead is taken over (with a note). Creating
    the folder and the lock file also proves the folder writable before any training starts."""

    def __init__(self, out_dir, log=print):
        self.out_dir, self.log = os.fspath(out_dir), log
        self.path = os.path.join(self.out_dir, LOCK_NAME)
        self.held = False

    def __enter__(self):
        try:
            os.makedirs(self.out_dir, exist_ok=True)
        except OSError as e:
            raise RunError(f"cannot create the run folder {self.out_dir!r}: {e.strerror}") from None
        for _ in range(2):  # the second try follows the removal of a stale lock
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = self._owner()
                if pid is not None and pid != os.getpid() and _pid_alive(pid):
                    raise RunError(f"another run (pid {pid}) is writing to {self.out_dir!r}; wait for it to "
                                   f"finish or use another --out-dir (if pid {pid} is no training run, "
                                   f"delete the lock file {self.path})") from None
                self.log(f"note: taking over the stale lock {self.path} (its process {pid} is gone)")
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                continue
            except OSError as e:
                raise RunError(f"the run folder {self.out_dir!r} is not writable: {e.strerror}") from None
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self.held = True
            return self
        raise RunError(f"could not take the lock {self.path}: another process keeps recreating it")

    def _owner(self):
        try:
            with open(self.path, encoding="ascii") as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None  # unreadable or half-written: treated as stale
        return pid if pid > 0 else None  # never os.kill(0 or -1, ...): those address process groups

    def __exit__(self, *exc):
        if self.held and self._owner() == os.getpid():
            try:
                os.unlink(self.path)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
        self.held = False

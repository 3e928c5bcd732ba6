"""The helper thread: two independent array calls on two cores (a large linear backward's
weight and bias gradients beside its input gradient, kernels.on_side_thread says when).

numpy lets go of the interpreter lock inside BLAS, so a job on this thread runs while the
caller computes. A job runs in the caller's context and numpy error state; jobs run one after
another, in the order they were started; an error path waits for every job it started before
unwinding past the arrays they read or write.
"""
import contextvars
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

import numpy as np

_side = None  # the helper thread (an executor of one), started on first use
_SIDE_NAME = "tinygrad_mm-side"


def beside(main, side):
    """(main(), side()), side() running on the helper thread meanwhile: numpy lets go of the
    interpreter lock inside BLAS, so two independent matmuls use two cores. An error in either
    is raised here, after both have finished (main's first)."""
    job = start_side(side)
    try:
        first = main()
    except BaseException:
        settle_sides([job])  # side() reads the caller's arrays: wait before unwinding
        raise
    return first, job.result()


def start_side(side):
    """side() started on the helper thread: a future whose result() waits (and raises its error).
    Jobs run one after another, in the order they were started."""
    global _side
    if threading.current_thread().name.startswith(_SIDE_NAME):  # from a job: it would wait behind itself
        return _done(side)
    if _side is None:
        _side = ThreadPoolExecutor(1, thread_name_prefix=_SIDE_NAME)
    err = np.geterr()  # numpy's error state (thread-local before numpy 2, a context variable since)

    def job():
        with np.errstate(**err):
            return side()
    try:  # in the caller's context
        return _side.submit(contextvars.copy_context().run, job)
    except RuntimeError:  # the interpreter is shutting down (an atexit handler): run it here
        return _done(side)


def _done(side):
    """side() run here, as a finished future."""
    job = Future()
    try:
        job.set_result(side())
    except BaseException as e:
        job.set_exception(e)
    return job


def join_sides(jobs):
    """Wait for every job in the list, emptying it, then raise the first one's error. A job
    leaves the list only once it has finished (a KeyboardInterrupt leaves the rest listed)."""
    error = None
    while jobs:
        e = jobs[0].exception()  # waits
        del jobs[0]
        error = error or e
    if error is not None:
        raise error


def settle_sides(jobs):
    """Wait for every job in the list, emptying it, whatever happens meanwhile (another Ctrl-C
    included), dropping their errors: on an error path, before the caller unwinds past arrays
    the jobs read or write. The caller's error is the one raised."""
    while jobs:
        try:
            join_sides(jobs)
        except BaseException:
            pass


def _forget_side():
    global _side
    _side = None  # a forked child has the executor but not its thread


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_side)


def start_into(jobs, fns):
    """The calls `fns` started on the helper thread as one job, appended to `jobs` (tg.compile's replay)."""
    jobs.append(start_side(partial(_run, fns)))


def _run(fns):
    for f in fns:
        f()

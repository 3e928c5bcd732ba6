"""What the user sees while training runs: a tqdm bar or a log line, and a Ctrl-C that stops cleanly."""
from __future__ import annotations

import signal
import time


class SigintFlag:
    """While active, the first Ctrl-C only sets .requested (the loop stops at a step boundary,
    so the checkpoint is consistent); a second one raises KeyboardInterrupt at once."""

    def __enter__(self):
        self.requested, self._prev = False, None
        try:
            self._prev = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C keeps its default behaviour
            pass
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._prev is not None:
            signal.signal(signal.SIGINT, self._prev)


class Progress:
    """tqdm bar when available (progress="auto"/"tqdm"), else a periodic log line ("log"), or nothing."""

    def __init__(self, mode, start, total, log=print):
        self.mode, self.start, self.total, self.log = mode, start, total, log
        self.bar, self.t0 = None, time.perf_counter()
        self.every = max(1, total // 20)
        if mode in ("auto", "tqdm"):
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, mininterval=0.5)
            except ImportError:
                if mode == "tqdm":
                    log("tqdm is not installed (pip install 'tinygrad_mm[progress]'); logging instead")
                self.mode = "log"

    def update(self, step, loss):
        if self.bar is not None:
            self.bar.update(1)
            if step % 100 == 0:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif self.mode == "log" and (step % self.every == 0 or step == self.total):
            rate = (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)
            eta = (self.total - step) / max(rate, 1e-9)
            self.log(f"step {step:>{len(str(self.total))}}/{self.total}  loss {loss:.4f}  "
                     f"{rate:,.0f} steps/s  ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}")

    def write(self, msg):
        (self.bar.write if self.bar is not None else self.log)(msg)

    def close(self):
        if self.bar is not None:
            self.bar.close()

"""CUDA graphs for compiled steps on cupy: `tg.compile(fn, cuda_graph=True)`.

Written without a GPU and NOT yet run on one: the segmenting below is tested on the CPU with
a stand-in recorder; `cupy_recorder` (the only cupy-specific code) is untested.

A replayed program on cupy is one kernel launch per array call, each a few µs of CPU time;
a CUDA graph records a run of launches once and replays it with one call
(`cupy.cuda.Stream.begin_capture` / `end_capture`, then `graph.launch`). Only instructions
that touch nothing but fixed device buffers can be recorded -- those the program marks
graph-safe. Any other instruction (a generic op, a range check that reads a value on the
host, the Python-side .grad bookkeeping) ends a run, so a program becomes segments: graphs
and plain instructions, in their original order. Scalars a kernel takes by value are frozen
into its graph: the SGD step's lr is, so a changed `key()` (opt.lr) records the graphs again.
Python-only instructions (setting a .grad to a fixed buffer, the optimizer's step counter)
do not end a run: no kernel reads them, so they run just before the run's graph.
"""


class Segments:
    """Run `instrs` with every maximal run of graph-safe ones replaced by one recorded graph."""

    def __init__(self, instrs, safe, python, record, key=lambda: None):
        self.runs = []                           # [is_graph, kernels, python-only] in program order
        for f in instrs:
            if id(f) in python and self.runs and self.runs[-1][0]:
                self.runs[-1][2].append(f)
            elif id(f) in safe and self.runs and self.runs[-1][0]:
                self.runs[-1][1].append(f)
            else:
                self.runs.append([id(f) in safe, [f], []])
        self.record, self.key = record, key
        self.compiled, self.recorded_key = None, None

    def __call__(self):
        key = self.key()
        if self.compiled is None or key != self.recorded_key:
            self.compiled = [(self.record(fs) if g else fs[0], py) for g, fs, py in self.runs]
            self.recorded_key = key
        for f, py in self.compiled:
            for p in py:
                p()
            f()

    @property
    def graphs(self):
        return sum(1 for g, _, _ in self.runs if g)


def cupy_recorder():
    """record(fns) -> a callable that launches fns' kernels as one CUDA graph (untested)."""
    import cupy
    stream = cupy.cuda.Stream()  # a blocking stream: ordered with the null stream the rest runs on

    def record(fns):
        cupy.cuda.get_current_stream().synchronize()
        with stream:
            stream.begin_capture()
            try:
                for f in fns:
                    f()
            except BaseException:
                try:
                    stream.end_capture()  # leave the stream usable; the error below is the one to see
                except Exception:
                    pass
                raise
            graph = stream.end_capture()
        return lambda: graph.launch(stream)
    return record

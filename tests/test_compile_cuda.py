"""The CUDA-graph segmenting of compiled steps, run on the CPU with a stand-in recorder.

cupy's own stream capture (compile_cuda.cupy_recorder) needs a GPU and is not exercised here.
"""
import numpy as np

import tinygrad_mm as tg
from tinygrad_mm import compile_cuda, compile_program
from tinygrad_mm.nn import functional as F


def test_segments_group_graph_safe_runs_and_record_again_when_the_key_changes():
    log, records, key = [], [], [1]
    fs = {n: (lambda n=n: log.append(n)) for n in "abcdef"}
    instrs = [fs[n] for n in "abcdef"]
    safe = {id(fs[n]) for n in "abde"}
    python = {id(fs["c"])}  # python-only inside a run: runs just before that run's graph

    def record(fns):
        records.append(len(fns))
        return lambda: [f() for f in fns]
    seg = compile_cuda.Segments(instrs, safe, python, record, key=lambda: key[0])
    seg()
    assert log == ["c", "a", "b", "d", "e", "f"] and records == [4] and seg.graphs == 1
    seg()
    assert records == [4]          # replayed, not recorded again
    key[0] = 2
    seg()
    assert records == [4, 4]


def test_a_graph_mode_program_gives_the_eager_results(monkeypatch):
    """With a recorder that just calls the kernels, graph mode on numpy must equal eager."""
    monkeypatch.setattr(compile_program, "on_cuda", lambda arrays: True)
    recorded = []

    def fake():
        def record(fns):
            recorded.append(len(fns))
            return lambda: [f() for f in fns]
        return record
    monkeypatch.setattr(compile_cuda, "cupy_recorder", fake)
    rng = np.random.default_rng(0)
    models = []
    for compiled in (False, True):
        g = tg.Generator(3)
        layers = [tg.nn.Linear(5, 7, generator=g), tg.nn.Linear(7, 3, generator=g)]
        opt = tg.optim.SGD([p for l in layers for p in l.parameters()], lr=0.1)

        def step(x, y):
            loss = F.cross_entropy(layers[1](layers[0](x).tanh()), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        f = tg.compile(step, cuda_graph=True) if compiled else step
        rng = np.random.default_rng(0)
        losses = []
        for i in range(6):
            opt.lr = 0.1 if i < 4 else 0.05  # a new lr records the graphs again
            x = tg.tensor(rng.standard_normal((4, 5)).astype(np.float32))
            losses.append(f(x, tg.tensor(rng.integers(0, 3, 4))).item())
        models.append((losses, [p for l in layers for p in l.parameters()]))
    (la, pa), (lb, pb) = models
    assert la == lb
    assert all(np.array_equal(p.array, q.array) for p, q in zip(pa, pb))
    assert len(recorded) >= 2 and recorded[-1] == recorded[-1 - len(recorded) // 2]

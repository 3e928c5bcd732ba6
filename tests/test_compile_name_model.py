"""The compiled name-model step is bit-identical to the eager step: losses, parameters, gradients."""
import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import kernels
from models.dataset import make_splits
from models.mlp import MLPConfig, MLPLanguageModel
from models.train import train_step  # the step `python -m models train` compiles


@pytest.fixture(scope="module")
def data():
    return make_splits()


def _run_both(data, batch, steps, make_opt, seed=0, lr_at=None):
    rng = np.random.default_rng(seed)
    ix = rng.integers(0, len(data.Xtr), (steps, batch))
    runs = []
    for compiled in (False, True):
        model = MLPLanguageModel(MLPConfig(), generator=tg.Generator(1))
        opt = make_opt(model.parameters())
        step = tg.compile(train_step) if compiled else train_step
        losses = []
        for i in range(steps):
            if lr_at is not None:
                opt.lr = lr_at(i)
            Xb, Yb = tg.tensor(data.Xtr[ix[i]]), tg.tensor(data.Ytr[ix[i]])
            losses.append(step(model, opt, Xb, Yb).item())
        runs.append((np.array(losses, np.float64), model, step))
    return runs


def _assert_identical(a, b):
    (la, ma, _), (lb, mb, _) = a, b
    assert np.array_equal(la, lb), f"first differing step: {np.flatnonzero(la != lb)[:1]}"
    for (name, p), q in zip(ma.named_parameters(), mb.parameters()):
        assert np.array_equal(p.detach().cpu().numpy(), q.detach().cpu().numpy()), name
        assert np.array_equal(p.grad.cpu().numpy(), q.grad.cpu().numpy()), name


def test_two_thousand_sgd_steps_are_bit_identical_with_the_lecture_lr_decay(data):
    runs = _run_both(data, 32, 2000, lambda ps: tg.optim.SGD(ps, lr=0.1), lr_at=lambda i: 0.1 if i < 1000 else 0.01)
    _assert_identical(*runs)
    assert runs[0][0][-1] < runs[0][0][0] - 0.5  # and it trained
    assert len(runs[1][2].programs) == 1         # one capture, replayed 1998 times


@pytest.mark.parametrize("one_blas_thread", [True, False], ids=["1-thread", "threads"])
@pytest.mark.parametrize("side_thread", [True, False], ids=["side", "one-core"])
@pytest.mark.parametrize("batch", [1024, 4096, 16384])  # the kernels' size-dependent paths
def test_large_batches_take_the_same_kernel_paths_bit_for_bit(data, batch, one_blas_thread, side_thread,
                                                              monkeypatch):
    monkeypatch.setattr(kernels, "ONE_BLAS_THREAD", one_blas_thread)  # it flips two kernel choices
    monkeypatch.setattr(kernels, "SIDE_THREAD", side_thread)  # from batch 4096 the linear backwards split
    runs = _run_both(data, batch, 5, lambda ps: tg.optim.SGD(ps, lr=0.1))
    _assert_identical(*runs)
    split = side_thread and batch >= 4096 and not kernels.PLAIN
    assert repr(runs[1][2]).count("on a second thread") == (2 if split else 0)  # both Linear layers


def test_the_wide_weight_gradient_is_replayed_as_eager_takes_it(monkeypatch):
    """At the name model's shapes the wide and plain forms give the same bits, so a replay that
    drifted from eager's choice would pass the test above. In float64 at (64 -> 100) they differ
    where OpenBLAS runs two threads (not on one, where its kernel gives both forms the same bits):
    there the bits show a drift; everywhere the replay's program must hold the wide product."""
    monkeypatch.setattr(kernels, "ONE_BLAS_THREAD", True)
    monkeypatch.setattr(kernels, "PLAIN", False)  # this test is about the fast path, in both CI passes
    rng = np.random.default_rng(0)
    g, x = rng.standard_normal((4096, 100)), rng.standard_normal((4096, 64))
    assert kernels.wide_weight_grad(g, x)
    xs = [rng.standard_normal((4096, 64)) for _ in range(3)]
    ys = [rng.integers(0, 10, 4096) for _ in range(3)]
    runs = []
    for compiled in (False, True):
        net = tg.nn.Sequential(tg.nn.Linear(64, 100, dtype=tg.float64, generator=tg.Generator(2)), tg.nn.Tanh(),
                               tg.nn.Linear(100, 10, dtype=tg.float64, generator=tg.Generator(3)))
        opt = tg.optim.SGD(net.parameters(), lr=0.1)

        def step(xb, yb):
            loss = tg.nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        f = tg.compile(step) if compiled else step
        losses = [f(tg.tensor(xb), tg.tensor(yb)).item() for xb, yb in zip(xs, ys)]
        runs.append((losses, [p.array.copy() for p in net.parameters()],
                     [p.grad.array.copy() for p in net.parameters()]))
    (la, pa, ga), (lb, pb, gb) = runs
    assert la == lb
    assert all(np.array_equal(a, b) for a, b in zip(pa + ga, pb + gb))
    prog, = f.programs.values()
    wide = [i for i in prog.instrs if getattr(i, "func", None) is np.matmul and i.args[-1].shape == (64, 100)]
    assert len(wide) == 1  # (x.T @ g) into an (in, out) buffer, as eager's weight_grad computes it


def test_adam_steps_are_bit_identical(data):
    _assert_identical(*_run_both(data, 32, 50, lambda ps: tg.optim.Adam(ps, lr=3e-3, weight_decay=1e-4)))


def test_eager_code_after_compiled_steps_sees_the_updated_parameters(data):
    (_, m_eager, _), (_, m_comp, step) = _run_both(data, 32, 20, lambda ps: tg.optim.SGD(ps, lr=0.1))
    X, Y = tg.tensor(data.Xdev[:64]), tg.tensor(data.Ydev[:64])
    assert m_eager(X, Y)[1].item() == m_comp(X, Y)[1].item()
    assert "hidden.weight" in repr(step) and "Tanh.backward" in repr(step)


@pytest.mark.parametrize("cuda_graph", [False, True], ids=["replay", "cuda-graph"])
def test_compiled_step_on_each_device_is_bit_identical(data, device, cuda_graph):
    """On cpu, cuda_graph=True changes nothing; on a GPU it records CUDA graphs (compile_cuda)."""
    rng = np.random.default_rng(3)
    ix = rng.integers(0, len(data.Xtr), (30, 32))
    runs = []
    for compiled in (False, True):
        model = MLPLanguageModel(MLPConfig(), generator=tg.Generator(1), device=device)
        opt = tg.optim.SGD(model.parameters(), lr=0.1)
        step = tg.compile(train_step, cuda_graph=cuda_graph) if compiled else train_step
        losses = [step(model, opt, tg.as_tensor(data.Xtr[i], device=device),
                       tg.as_tensor(data.Ytr[i], device=device)).item() for i in ix]
        runs.append((np.array(losses), model, step))
    _assert_identical(*runs)

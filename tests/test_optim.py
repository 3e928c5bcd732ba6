"""tinygrad_mm.optim: SGD, Adam, AdamW step for step against torch.optim; schedules; state_dict."""
import numpy as np
import pytest
import torch

from tinygrad_mm import Tensor, checkpoint, optim

from ops_helpers import tol

SHAPES = [(4, 3), (3,), (2, 2, 2)]
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.5)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1)),
    ("AdamW", dict(lr=1e-2)),                       # default weight_decay 1e-2 in both libraries
    ("AdamW", dict(lr=1e-2, weight_decay=0.3, betas=(0.5, 0.9))),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CONFIGS]


def make_params(dtype, seed=0, device="cpu"):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    return ([Tensor(a, device=device, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


def grads(dtype, n_steps, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(n_steps)]


def run(opt, params, gs, skip=()):
    """Feed the gradient sequence; (step, i) in skip leaves parameter i without a gradient."""
    for step, g in enumerate(gs):
        for i, (p, gi) in enumerate(zip(params, g)):
            p.grad = None if (step, i) in skip else (gi.copy() if isinstance(p, Tensor) else torch.from_numpy(gi.copy()))
        opt.step()


def assert_params_match(ours, theirs, dtype, what=""):
    for i, (p, tp) in enumerate(zip(ours, theirs)):
        assert p.dtype == dtype
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), err_msg=f"{what} param {i}", **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_matches_torch_over_20_steps(name, kw, dtype, device):
    ours, theirs = make_params(dtype, device=device)
    opt = getattr(optim, name)(ours, **kw)
    topt = getattr(torch.optim, name)(theirs, **kw)
    for step, g in enumerate(grads(dtype, 20)):
        run(opt, ours, [g])
        run(topt, theirs, [g])
        assert_params_match(ours, theirs, dtype, f"step {step}")   # step for step, not just the end
    assert opt.steps == 20


@pytest.mark.parametrize("name, kw", [c for c in CONFIGS if c[0] != "SGD" or "momentum" in c[1]],
                         ids=[i for c, i in zip(CONFIGS, IDS) if c[0] != "SGD" or "momentum" in c[1]])
def test_parameters_without_grad_are_skipped_as_torch(name, kw):
    # parameter 1 gets no gradient on some steps: torch leaves it (and its step count) untouched
    skip = {(s, 1) for s in (0, 3, 4, 9)} | {(s, 0) for s in (5, 6)}
    ours, theirs = make_params(np.float64)
    opt, topt = getattr(optim, name)(ours, **kw), getattr(torch.optim, name)(theirs, **kw)
    gs = grads(np.float64, 20)
    run(opt, ours, gs, skip)
    run(topt, theirs, gs, skip)
    assert_params_match(ours, theirs, np.float64)


def test_changing_lr_between_steps_matches_torch():
    ours, theirs = make_params(np.float64)
    opt, topt = optim.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    for step, g in enumerate(grads(np.float64, 10)):
        opt.lr = 0.1 / (step + 1)
        for group in topt.param_groups:
            group["lr"] = 0.1 / (step + 1)
        run(opt, ours, [g])
        run(topt, theirs, [g])
    assert_params_match(ours, theirs, np.float64)


@pytest.mark.parametrize("wrap", [np.float64, np.array], ids=["scalar", "0-d array"])
@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_numpy_scalar_hyper_parameters_act_as_the_python_numbers_they_equal(name, kw, wrap):
    """An lr from np.linspace is a float64 scalar: torch takes it as a Python number; numpy would
    compute lr * g in float64 over float32 parameters. Every float32 update equals the one with
    Python numbers, bit for bit, and stores them back so."""
    (a, _), (b, _) = make_params(np.float32), make_params(np.float32)
    numpy_kw = {k: (tuple(wrap(x) for x in v) if type(v) is tuple else wrap(v) if type(v) is float else v)
                for k, v in kw.items()}
    opts = getattr(optim, name)(a, **kw), getattr(optim, name)(b, **numpy_kw)
    for g in grads(np.float32, 5):
        run(opts[0], a, [g])
        run(opts[1], b, [g])
    assert all(np.array_equal(p.array, q.array) for p, q in zip(a, b))
    assert type(opts[1].lr) is float


def test_update_is_in_place_and_zero_grad():
    ours, _ = make_params(np.float32)
    arrays = [p.array for p in ours]
    opt = optim.SGD(ours, lr=0.1, momentum=0.9)
    run(opt, ours, grads(np.float32, 3))
    assert all(p.array is a for p, a in zip(ours, arrays))   # the model's tensors keep their arrays
    opt.zero_grad()
    assert all(p.grad is None for p in ours)
    before = [p.detach().numpy().copy() for p in ours]
    opt.step()                                  # no gradients at all: nothing moves (momentum neither)
    assert all(np.array_equal(p.detach().numpy(), b) for p, b in zip(ours, before))


# -- schedules ---------------------------------------------------------------------------------------
def test_step_decay_lecture_schedule():
    fn = optim.step_decay([100_000], [0.1, 0.01])
    assert [fn(s) for s in (0, 1, 99_999, 100_000, 100_001, 199_999)] == [0.1, 0.1, 0.1, 0.01, 0.01, 0.01]
    fn = optim.step_decay([10, 20], [1.0, 0.5, 0.25])
    assert [fn(s) for s in (9, 10, 19, 20, 10**9)] == [1.0, 0.5, 0.5, 0.25, 0.25]
    for bad in (([100], [0.1]), ([100], [0.1, 0.01, 0.001]), ([20, 10], [1, 2, 3])):
        with pytest.raises(ValueError):
            optim.step_decay(*bad)


def test_step_decay_scheduler_drives_optimizer_lr():
    p, _ = make_params(np.float32)
    opt = optim.SGD(p, lr=123.0)
    sched = optim.StepDecay(opt, [100_000], [0.1, 0.01])
    assert opt.lr == 0.1                        # set at construction: step 0
    lrs = []
    for _ in range(100_000):
        lrs.append(opt.lr)                      # the lr used by update number len(lrs) - 1
        sched.step()
    assert lrs[0] == lrs[-1] == 0.1 and set(lrs) == {0.1}
    assert opt.lr == 0.01 and sched.last_step == 100_000
    sd = sched.state_dict()
    opt2 = optim.SGD(make_params(np.float32)[0], lr=1.0)
    sched2 = optim.StepDecay(opt2, [100_000], [0.1, 0.01])
    sched2.load_state_dict(sd)
    assert opt2.lr == 0.01 and sched2.last_step == 100_000


def test_lambda_lr():
    p, _ = make_params(np.float64)
    opt = optim.SGD(p, lr=1.0)
    sched = optim.LambdaLR(opt, lambda s: 0.5 ** s)
    assert opt.lr == 1.0
    sched.step(), sched.step()
    assert opt.lr == 0.25 and opt.state_dict()["hyper"]["lr"] == 0.25


# -- state_dict --------------------------------------------------------------------------------------
@pytest.mark.parametrize("via_checkpoint", [False, True])
@pytest.mark.parametrize("name, kw", [CONFIGS[5], CONFIGS[6], CONFIGS[9], CONFIGS[11]],
                         ids=[IDS[5], IDS[6], IDS[9], IDS[11]])
def test_state_dict_resume_equals_straight_run(name, kw, via_checkpoint, tmp_path):
    dtype = np.float32
    gs = grads(dtype, 20)
    straight, _ = make_params(dtype)
    run(getattr(optim, name)(straight, **kw), straight, gs)

    first, _ = make_params(dtype)
    opt = getattr(optim, name)(first, **kw)
    run(opt, first, gs[:10])
    sd = opt.state_dict()
    if via_checkpoint:
        path = tmp_path / "opt.npz"
        checkpoint.save(path, {"params": [p.data for p in first], "optim": sd})
        loaded = checkpoint.load(path)
        sd, weights = loaded["optim"], loaded["params"]
    else:
        weights = [p.detach().numpy().copy() for p in first]
    resumed = [Tensor(w, requires_grad=True) for w in weights]
    opt2 = getattr(optim, name)(resumed, lr=999.0)   # hyper-parameters come from the state dict
    opt2.load_state_dict(sd)
    assert opt2.steps == 10 and opt2.lr == kw["lr"]
    run(opt2, resumed, gs[10:])
    for p, q in zip(resumed, straight):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())   # bit for bit
    assert opt2.steps == 20


def test_state_dict_is_a_copy():
    p, _ = make_params(np.float64)
    opt = optim.SGD(p, lr=0.1, momentum=0.9)
    run(opt, p, grads(np.float64, 2))
    sd = opt.state_dict()
    sd["state"]["0"]["momentum_buffer"][:] = 0
    assert opt.state[0]["momentum_buffer"].any()


# -- errors ------------------------------------------------------------------------------------------
def test_constructor_errors():
    p, _ = make_params(np.float32)
    for cls in (optim.SGD, optim.Adam, optim.AdamW):
        with pytest.raises(ValueError, match="empty"):
            cls([])
        with pytest.raises(ValueError, match="empty"):
            cls(iter([]))
        with pytest.raises(ValueError, match="learning rate"):
            cls(p, lr=-0.1)
        with pytest.raises(ValueError, match="require grad"):
            cls([Tensor(np.zeros(3, np.float32))])
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, nesterov=True)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, momentum=0.9, nesterov=True, dampening=0.1)
    assert optim.SGD(p, lr=0.0).lr == 0.0


def snapshot(opt):
    return opt.steps, opt.lr, [{k: np.array(v, copy=True) for k, v in s.items()} for s in opt.state]


def assert_opt_unchanged(opt, snap):
    steps, lr, state = snap
    assert opt.steps == steps and opt.lr == lr
    assert [sorted(s) for s in opt.state] == [sorted(s) for s in state]
    for s, t in zip(opt.state, state):
        for k in s:
            np.testing.assert_array_equal(s[k], t[k])


def test_mismatched_state_raises_and_changes_nothing():
    p, _ = make_params(np.float64)
    opt = optim.Adam(p, lr=0.1)
    run(opt, p, grads(np.float64, 3))
    good = opt.state_dict()

    other, _ = make_params(np.float64, seed=5)
    target = optim.Adam(other, lr=0.01)
    run(target, other, grads(np.float64, 1))
    snap = snapshot(target)

    fewer = optim.Adam(p[:2]).state_dict()
    with pytest.raises(ValueError, match="3"):                 # 2 parameters vs 3
        target.load_state_dict(fewer)
    bad_shape = opt.state_dict()
    bad_shape["state"]["1"]["exp_avg"] = np.zeros(7)
    with pytest.raises(ValueError, match=r"shape \(7,\)"):
        target.load_state_dict(bad_shape)
    sgd_opt = optim.SGD(p, lr=0.5, momentum=0.9)
    run(sgd_opt, p, grads(np.float64, 1))
    with pytest.raises(ValueError, match="hyper-parameters"):  # another optimizer's state
        target.load_state_dict(sgd_opt.state_dict())
    renamed = opt.state_dict()
    renamed["state"] = {"a": {}, "b": {}, "c": {}}
    with pytest.raises(ValueError):
        target.load_state_dict(renamed)
    assert_opt_unchanged(target, snap)
    target.load_state_dict(good)                               # and the good one still loads
    assert target.steps == 3 and target.lr == 0.1

"""tg.compile and the state around a step: normalization statistics, running statistics rebound,
modes switched inside the step, and .grad after an error in sweeps of every kind."""
import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import nn
from tinygrad_mm.nn import functional as F


def norm_step(norm, lin, opt, X, Y):
    opt.zero_grad()
    loss = F.cross_entropy(lin(norm(X)), Y)
    loss.backward()
    opt.step()
    return loss


def twin_runs(make_norm, xs, Y, between=None):
    """Losses of an eager and a compiled twin over the batches xs (`between(i, norm)` runs before call i)."""
    runs = []
    for f in (norm_step, tg.compile(norm_step)):
        norm, lin = make_norm(), nn.Linear(4, 3, generator=tg.Generator(0))
        opt = tg.optim.SGD(list(norm.parameters()) + lin.parameters(), lr=0.1)
        losses = []
        for i, X in enumerate(xs):
            if between is not None:
                between(i, norm)
            losses.append(f(norm, lin, opt, X, Y).item())
        runs.append(losses)
    return runs


@pytest.mark.parametrize("make_norm", [lambda: nn.LayerNorm(4), lambda: nn.BatchNorm1d(4, track_running_stats=False)],
                         ids=["layer_norm", "batch_norm_batch_statistics"])
def test_batch_statistics_are_computed_on_every_replay(make_norm):
    """The statistics are the op's own (computed inside it), not constants frozen at capture:
    equal batches on the two capturing calls (a warm-up on one batch) and distinct ones after."""
    rng = np.random.default_rng(0)
    xs = [tg.tensor(rng.standard_normal((5, 4)).astype(np.float32)) for _ in range(4)]
    eager, compiled = twin_runs(make_norm, [xs[0], xs[0]] + xs[1:], tg.tensor(np.arange(5) % 3))
    assert eager == compiled


def test_running_statistics_rebound_after_capture_are_read():
    """BatchNorm in eval mode reads its running statistics as tensors: a load_state_dict that
    rebinds them captures again, as any rebound array does."""
    X = tg.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))

    def load(i, bn):
        if i == 3:
            bn.load_state_dict({"running_mean": np.full(4, 5.0, np.float32)}, strict=False)
    eager, compiled = twin_runs(lambda: nn.BatchNorm1d(4).eval(), [X] * 6, tg.tensor(np.arange(5) % 3), load)
    assert eager == compiled


def test_a_mode_switched_inside_the_step_and_back_still_replays():
    """eval() for a look, then train(), inside the step: each call finds the modes as the last
    left them, so the program replays."""
    net = nn.Sequential(nn.Linear(4, 3, generator=tg.Generator(0)), nn.Dropout(0.0))
    opt = tg.optim.SGD(net.parameters(), lr=0.1)

    def fn(X, Y):
        net.eval()
        look = F.cross_entropy(net(X), Y).detach()
        net.train()
        loss = F.cross_entropy(net(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return look
    cfn = tg.compile(fn)
    X, Y = tg.tensor(np.ones((5, 4), np.float32)), tg.tensor(np.arange(5) % 3)
    for _ in range(4):
        cfn(X, Y)
    assert len(cfn.programs) == 1


class FailingStep(tg.optim.SGD):
    """SGD whose step raises while `fail` is set."""
    fail = False

    def step(self):
        if self.fail:
            raise ValueError("step failed")
        return super().step()


@pytest.mark.parametrize("first", ["partial backward_steps", "backward from a leaf"])
def test_a_finished_sweep_stands_when_a_later_part_of_the_step_fails(first):
    """Only the failing sweep rolls back: a sweep stopped early (backward_steps closed) or one
    from a leaf has finished, and its .grad stands after a later error, as in eager."""
    def fn(net, opt, X, Y):
        opt.zero_grad()
        if first == "partial backward_steps":
            steps = tg.default_tape().backward_steps(F.cross_entropy(net(X), Y))
            next(steps)
            next(steps)
            steps.close()
        else:
            net.bias.backward(tg.ones(3))
        opt.step()
        return net.bias.grad
    X, Y = tg.tensor(np.ones((5, 4), np.float32)), tg.tensor(np.arange(5) % 3)
    grads = []
    for f in (fn, tg.compile(fn)):
        net = nn.Linear(4, 3, generator=tg.Generator(0))
        opt = FailingStep(net.parameters(), lr=0.1)
        for _ in range(3):
            f(net, opt, X, Y)
        opt.fail = True
        with pytest.raises(ValueError, match="step failed"):
            f(net, opt, X, Y)
        grads.append(None if net.bias.grad is None else net.bias.grad.array.copy())
    assert grads[0] is not None and grads[1] is not None and np.array_equal(grads[0], grads[1])

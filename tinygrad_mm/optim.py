"""Optimizers (SGD, Adam, AdamW) following torch's update rules, and learning-rate schedules.

Updates are in place on each parameter's array, so the Tensor objects a model holds stay
the same. An optimizer's state_dict() holds plain numbers and arrays, ready for checkpoint.save.
"""
import math

import numpy as np

from . import backend
from .grad_mode import _state, log_writes


class Optimizer:
    """Holds the parameters, the hyper-parameters and per-parameter state (e.g. momentum buffers)."""

    def __init__(self, params, **hyper):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if any(not p.requires_grad for p in self.params):
            raise ValueError("every optimized tensor must require grad")
        if hyper.get("lr", 0) < 0:
            raise ValueError(f"learning rate must be >= 0, got {hyper['lr']}")
        self.__dict__.update(hyper)
        self._hyper = tuple(hyper)
        self.state = [dict() for _ in self.params]  # per parameter: name -> array
        self.steps = 0

    def zero_grad(self):
        """Set every parameter's .grad to None."""
        for p in self.params:
            p._grad = None  # what `p.grad = None` does, without the setter's call
        if _state.capture is not None:  # tg.compile replays the resets here, where they happen
            for p in self.params:
                _state.capture.observe(p)

    def step(self):
        """Apply one update to every parameter that has a gradient."""
        if _state.capture is not None:  # tg.compile is capturing: the replay runs this update
            _state.capture.update(self)
        self.steps += 1
        for k in self._hyper:
            setattr(self, k, python_number(getattr(self, k)))
        written = []
        for p, state in zip(self.params, self.state):
            g = p._grad
            if g is not None:
                self.update(p.array, g.array, state)
                written.append(p.array)
        log_writes(written, f"a parameter ({type(self).__name__}.step)")  # a later backward checks it

    def update(self, w, g, state):
        raise NotImplementedError(f"{type(self).__name__} must define update(w, g, state) or step()")

    def state_dict(self):
        """Hyper-parameters, step count and per-parameter state (array copies, and numbers)."""
        return {"hyper": {k: getattr(self, k) for k in self._hyper}, "steps": self.steps,
                "state": {str(i): {k: (v.copy() if hasattr(v, "shape") else v) for k, v in s.items()}
                          for i, s in enumerate(self.state)}}

    def load_state_dict(self, sd):
        """Restore from state_dict(); checks the optimizer kind, parameter count and each buffer's
        shape first, so a mismatched state changes nothing."""
        state, hyper = sd["state"], sd["hyper"]
        if set(hyper) != set(self._hyper):  # e.g. SGD's state offered to Adam
            raise ValueError(f"optimizer state has hyper-parameters {sorted(hyper)}, "
                             f"{type(self).__name__} has {sorted(self._hyper)}")
        if sorted(state) != sorted(str(i) for i in range(len(self.params))):
            raise ValueError(f"optimizer state has {len(state)} parameters, this optimizer {len(self.params)}")
        for i, p in enumerate(self.params):
            for k, v in state[str(i)].items():
                if hasattr(v, "shape") and tuple(v.shape) != p.shape:
                    raise ValueError(f"optimizer state {i}.{k} has shape {tuple(v.shape)}, "
                                     f"parameter {i} has {p.shape}")
        for k, v in hyper.items():
            setattr(self, k, tuple(v) if isinstance(v, list) else v)  # a checkpoint turns betas into a list
        self.steps = int(sd["steps"])
        self.state = [{k: (backend.to_device(backend.to_numpy(v), p.device).astype(p.dtype)
                           if hasattr(v, "shape") else int(v))
                       for k, v in state[str(i)].items()} for i, p in enumerate(self.params)]


class SGD(Optimizer):
    """w -= lr * d, with d = g + wd*w, then momentum buffer b = mu*b + d (nesterov: d + mu*b)."""

    def __init__(self, params, lr=0.1, momentum=0.0, weight_decay=0.0, nesterov=False, dampening=0.0):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and no dampening")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         nesterov=nesterov, dampening=dampening)

    def step(self):
        if self.weight_decay or self.momentum:
            return super().step()
        if _state.capture is not None:
            _state.capture.update(self)
        self.steps += 1
        if type(self.lr) is not float:
            self.lr = python_number(self.lr)
        lr = self.lr
        written = []
        for p in self.params:  # plain SGD, the name model's hot path: one fused line per parameter
            g = p._grad
            if g is not None:
                w = p.array
                w -= lr * g.array
                written.append(w)
        log_writes(written, "a parameter (SGD.step)")  # a later backward through a saved one raises

    def update(self, w, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        w -= self.lr * g  # lr is a Python float: numpy keeps w's dtype


class Adam(Optimizer):
    """Adam (Kingma & Ba) with torch's bias correction; weight_decay is L2 added to the gradient."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def update(self, w, g, state):
        # per parameter, as torch: one that had no gradient on some steps keeps its own bias correction
        t = state["step"] = state.get("step", 0) + 1
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                w *= 1 - self.lr * self.weight_decay   # AdamW: shrink the weight itself
            else:
                g = g + self.weight_decay * w
        if "exp_avg" not in state:
            state["exp_avg"] = backend.xp_of(w).zeros_like(w)
            state["exp_avg_sq"] = backend.xp_of(w).zeros_like(w)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - b1) * (g - m)                        # m = b1 m + (1 - b1) g
        v *= b2
        v += (1 - b2) * g * g
        step_size = self.lr / (1 - b1 ** t)
        denom = backend.xp_of(v).sqrt(v) / math.sqrt(1 - b2 ** t)
        denom += self.eps
        w -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): w *= 1 - lr*wd before the Adam step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class LambdaLR:
    """Set optimizer.lr = fn(step) before each update: call scheduler.step() once per training step."""

    def __init__(self, optimizer, fn):
        self.optimizer, self.fn, self.last_step = optimizer, fn, 0
        optimizer.lr = fn(0)

    def step(self):
        self.last_step += 1
        self.optimizer.lr = self.fn(self.last_step)

    def state_dict(self):
        return {"last_step": self.last_step}

    def load_state_dict(self, sd):
        self.last_step = int(sd["last_step"])
        self.optimizer.lr = self.fn(self.last_step)


def step_decay(milestones, values):
    """fn(step) -> values[k] where k milestones are <= step: the lecture's 0.1 then 0.01 is
    step_decay([100_000], [0.1, 0.01])."""
    milestones, values = list(milestones), list(values)
    if len(values) != len(milestones) + 1 or milestones != sorted(milestones):
        raise ValueError("step_decay needs sorted milestones and one more value than milestones")

    def fn(step):
        return values[sum(1 for m in milestones if step >= m)]
    return fn


class StepDecay(LambdaLR):
    """Piecewise-constant learning rate: StepDecay(opt, [100_000], [0.1, 0.01])."""

    def __init__(self, optimizer, milestones, values):
        super().__init__(optimizer, step_decay(milestones, values))


def python_number(v):
    """A numpy scalar (or 0-d array) hyper-parameter as the Python number it equals, as torch takes it:
    numpy would compute `lr * g` in the scalar's own dtype (float64 for an lr from np.linspace,
    over a float32 model), a Python number in the gradient's. step() stores it back so."""
    if type(v) is tuple:  # betas
        return tuple(python_number(x) for x in v)
    if isinstance(v, np.generic) or isinstance(v, np.ndarray) and v.ndim == 0:  # np.float64, np.array(0.1)
        return v.item()
    return v

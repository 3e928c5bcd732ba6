"""Module: parameters found by walking attributes, state dicts that never half-load, a readable repr."""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..coerce import host_array
from ..grad_mode import _state
from ..tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])  # torch's return value


class Module:
    """Base class of layers and models: subclasses set Tensor/Module attributes and define forward.

    Parameters are the leaf tensors with requires_grad=True found in attributes (and in
    child modules, and in lists/tuples of modules); buffers are the other tensors (e.g.
    BatchNorm's running statistics). Both go into state_dict().
    """
    training = True

    def __call__(self, *args, **kwargs):
        if _state.capture is not None:  # tg.compile: the replay is valid only while .training stays
            _state.capture.module(self)
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # -- walking the tree ----------------------------------------------------------------
    def named_children(self):
        """(name, module) for direct children, lists of modules flattened as name.0, name.1, ..."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    if isinstance(v, Module):
                        yield f"{name}.{i}", v

    def _named_tensors(self, prefix=""):
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child._named_tensors(prefix + name + ".")

    def named_parameters(self, prefix=""):
        """(dotted name, tensor) for every parameter, in definition order; a shared one once."""
        seen = set()  # tied weights: listed twice, an optimizer would apply each step twice (torch dedups too)
        for name, t in self._named_tensors(prefix):
            if t.requires_grad and id(t) not in seen:
                seen.add(id(t))
                yield name, t

    def parameters(self, recurse=True):
        """The parameters as a list (torch returns an iterator over the same tensors)."""
        return [p for _, p in (self.named_parameters() if recurse else self._own_parameters())]

    def _own_parameters(self):
        """Parameters held directly by this module (not by children)."""
        return ((n, t) for n, t in vars(self).items() if isinstance(t, Tensor) and t.requires_grad)

    def named_buffers(self, prefix=""):
        """(dotted name, tensor) for every buffer: the tensors that are not parameters."""
        for name, t in self._named_tensors(prefix):
            if not t.requires_grad:
                yield name, t

    def buffers(self):
        """The buffers (BatchNorm's running statistics, ...) as a list."""
        return [t for _, t in self.named_buffers()]

    def children(self):
        """The direct child modules as a list."""
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module ("") and every descendant, depth first, as torch."""
        stack, seen = [(prefix, self)], set()
        while stack:
            name, m = stack.pop()
            if id(m) in seen:       # a module used twice is listed once, as torch
                continue
            seen.add(id(m))
            yield name, m
            stack.extend(reversed([(f"{name}.{n}" if name else n, c) for n, c in m.named_children()]))

    def modules(self):
        """This module and all descendants (depth first)."""
        return [m for _, m in self.named_modules()]

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())

    # -- state -----------------------------------------------------------------------------
    def zero_grad(self):
        """Reset every parameter's .grad to None (the next backward assigns it afresh)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        """Training mode (BatchNorm: batch statistics, Dropout: drops) for this module and every
        descendant; returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        """Evaluation mode (BatchNorm uses running statistics); returns self."""
        return self.train(False)

    def to(self, device=None, dtype=None):
        """Move/convert parameters and buffers in place (the same Tensor objects, so optimizers keep working)."""
        if device is not None:
            backend.module_for(device)
        for _, t in self._named_tensors():
            data = t.array if device is None else backend.to_device(t.array, device)
            if dtype is not None and data.dtype.kind == "f":
                data = data.astype(dtype)
            t.array = data
            t.grad = None
        return self

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def state_dict(self):
        """Name -> array copy of every parameter and buffer."""
        return OrderedDict((name, t.array.copy()) for name, t in self._named_tensors())

    def load_state_dict(self, state, strict=True):
        """Copy arrays (or torch tensors) into parameters/buffers. strict: any missing or unexpected
        key is an error; a mis-shaped entry always is. Every difference is listed, and raised
        before anything is assigned. Returns (missing_keys, unexpected_keys), as torch."""
        own = OrderedDict(self._named_tensors())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        mismatched = [f"{k}: checkpoint {tuple(np.shape(state[k]))} vs model {tuple(own[k].shape)}"
                      for k in own if k in state and tuple(np.shape(state[k])) != own[k].shape]
        if (missing or unexpected) and strict or mismatched:
            parts = []
            if missing and strict:
                parts.append("missing: " + ", ".join(missing))
            if unexpected and strict:
                parts.append("unexpected: " + ", ".join(unexpected))
            if mismatched:
                parts.append("shape mismatch: " + "; ".join(mismatched))
            raise ValueError(f"state dict does not fit {type(self).__name__}: " + " | ".join(parts))
        # convert everything first: a failing conversion must not leave the model half-loaded
        values = {k: backend.to_device(host_array(state[k]), t.device).astype(t.dtype, copy=True)
                  for k, t in own.items() if k in state}
        for k, t in own.items():
            if k in values:
                t.array = values[k]
                t.grad = None
        return IncompatibleKeys(missing, unexpected)

    # -- display -----------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(f"){'  # ' + format(self.num_parameters(), ',') + ' parameters' if self.parameters() else ''}")
        return "\n".join(lines)



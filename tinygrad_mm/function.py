"""The op contract: a Function is one op, `forward` and `backward` on raw arrays.

As in the 2020 tinygrad, the instance is the op's context: `forward` stores on `self`
what `backward` needs, and nothing else lives there. The tape's bookkeeping for a
recorded op (its inputs, index, adjoint, shapes) is a separate `tape.Entry`.
"""
import numpy as np

from . import backend
from .grad_mode import _state
from . import tensor as _tensor  # partly built while tensor.py imports its mixins

_new = object.__new__


class Function:
    """One op: `forward` and `backward` on raw arrays; the instance holds what forward saved.

    Subclass it, then call `MyOp.apply(*tensors, **params)`. `forward(*arrays, **params)`
    returns the output array and stores on `self` what backward needs. `backward(grad)`
    returns one gradient per tensor input (None where not needed; see
    `self.needs_input_grad`), each shaped like that input -- or, with `broadcasts = True`,
    shaped like the output, and the tape reduces it over the broadcast dimensions.
    Positional inputs are the differentiable tensors and must share one device and dtype;
    pass anything else (index arrays, axes, flags) as keyword parameters.
    """
    broadcasts = False
    needs_input_grad = ()
    torch_name = None  # torch's name for this op's backward node, when not f"{class name}Backward0"

    def saved_arrays(self):
        """(name, array) for every array forward saved on self (inside tuples and lists too):
        what print(tape) counts, what the in-place check inspects, what check_op guards."""
        out = []
        for k, v in vars(self).items():
            stack = [(f"self.{k}", v)]
            while stack:
                name, x = stack.pop()
                if isinstance(x, (tuple, list)):
                    stack.extend((f"{name}[{j}]", y) for j, y in enumerate(x))
                elif hasattr(x, "dtype") and hasattr(x, "nbytes") and hasattr(x, "base"):
                    out.append((name, x))
        return out

    def grad_fn_name(self):
        """torch's name for this op's backward node (AddBackward0): what repr(tensor) shows."""
        return self.torch_name or type(self).__name__ + "Backward0"

    def forward(self, *arrays, **params):
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, *arrays)")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__} must define backward(self, grad)")

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays and, if any input requires grad, record an entry."""
        fn, T = cls(), _tensor.Tensor
        if len(inputs) == 1:  # most ops: unpacked by hand, cheaper than the loop below
            x = inputs[0]
            if type(x) is not T:
                _check_inputs(cls, inputs)
            fn.needs_input_grad = needs = (x.requires_grad,)
            out = fn.forward(x.array, **params) if params else fn.forward(x.array)  # ** costs even when empty
        else:  # one loop, no comprehensions: each of those is a Python frame of its own
            needs, arrays = [], []
            try:
                a0 = inputs[0].array
                for t in inputs:
                    a = t.array
                    if type(a) is not type(a0) or a.dtype is not a0.dtype and a.dtype != a0.dtype:
                        _check_inputs(cls, inputs)      # a non-Tensor input is named first, as ever
                        _check_compatible(cls, inputs)  # one device, one dtype: no silent transfers or upcasts
                    arrays.append(a)
                    needs.append(t.requires_grad)
            except (AttributeError, IndexError):  # not Tensors, or no inputs at all
                _check_inputs(cls, inputs)
                if inputs:
                    raise
            fn.needs_input_grad = needs = tuple(needs)
            out = fn.forward(*arrays, **params)
        if type(out) is not np.ndarray:  # cupy arrays and numpy scalars pass; Tensors and lists do not
            out = _check_output(cls, out, inputs)
        t = _new(T)  # the output, as _tensor._wrap makes it (its checks are done just above)
        t.array = out
        t.requires_grad = False
        t._grad = t._entry = None
        if _state.capture is not None:  # tg.compile is capturing: note the op, its arrays and params
            _state.capture.forward(fn, inputs, params, out)
        if True in needs and _state.grad_enabled:
            _state.tape.record(fn, inputs, t)
        return t


def _check_inputs(cls, inputs):
    """Positional inputs are Tensors (a subclass too); constants go in as keyword parameters."""
    for x in inputs:
        if not isinstance(x, _tensor.Tensor):
            raise TypeError(f"{cls.__name__}.apply takes Tensors as positional inputs, got "
                            f"{type(x).__name__}; pass constants as keyword parameters")


def _check_output(cls, out, inputs):
    """forward must return an array: a Tensor (or a list) here would build an object-dtype tensor."""
    if isinstance(out, _tensor.Tensor):
        raise TypeError(f"{cls.__name__}.forward returned a Tensor; forward works on raw arrays and must "
                        "return an array (use .array inside forward, or build the op from Tensor ops instead)")
    if isinstance(out, np.generic):  # numpy ops on 0-d arrays return scalars
        return np.asarray(out)
    if hasattr(out, "dtype") and hasattr(out, "shape"):
        return out
    if isinstance(out, (int, float)) and not isinstance(out, bool) and inputs:
        first = inputs[0].array  # a Python number from a scalar custom op: an array like the inputs
        return backend.xp_of(first).asarray(out, dtype=first.dtype)
    raise TypeError(f"{cls.__name__}.forward returned {type(out).__name__}, not an array")


def _check_compatible(cls, inputs):
    """All inputs of one op must share a device and a dtype: no silent transfers or upcasts."""
    first = inputs[0].array
    for i, t in enumerate(inputs[1:], 1):
        d = t.array
        if type(d) is not type(first):
            raise TypeError(f"{cls.__name__}: input 0 is a {type(first).__module__}.{type(first).__name__} "
                            f"on {inputs[0].device} but input {i} is a {type(d).__module__}.{type(d).__name__} "
                            f"on {t.device}; move one with .to(device)")
        if d.dtype != first.dtype:
            raise TypeError(f"{cls.__name__}: input 0 is {first.dtype} {tuple(first.shape)} but input {i} is "
                            f"{d.dtype} {tuple(d.shape)}; convert one explicitly (.float(), .double()) "
                            "-- mixing would silently upcast")

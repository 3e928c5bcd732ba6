"""torch.nn.init: re-initialize a tensor in place and return it, with torch's signatures and formulas.

Each function writes into `tensor.array` (the same memory, so optimizers and modules holding
the tensor see the new values); the write is not recorded, as torch's init runs under
no_grad, but it is logged as an in-place write, so a backward through an op that saved the
old values raises. Random draws go through `_uniform` and `_normal` only.
"""
import math
import warnings

import numpy as np

from .. import backend, random
from ..grad_mode import mark_modified
from ..tensor import Tensor

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


# -- the one place random values are drawn ---------------------------------------------------------
def _uniform(shape, low, high, dtype, generator):
    """Host array of U[low, high) in `dtype`, drawn exactly as torch's uniform_ draws it."""
    return random.uniform_array(shape, dtype, generator, low, high)


def _normal(shape, mean, std, dtype, generator):
    """Host array of N(mean, std^2) in `dtype`, drawn exactly as torch's normal_ draws it
    (its serial float64 path below 16 elements, the vectorized one from 16 on)."""
    return random.normal_array(shape, dtype, generator, mean, std)



def _fill(tensor, values, what):
    a = tensor.array
    a[...] = backend.to_device(np.asarray(values), backend.device_of(a)) if type(a) is not np.ndarray else values
    mark_modified(a, f"{tensor.short()} ({what})")
    return tensor


def _float_tensor(tensor, what):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init.{what} takes a Tensor, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"nn.init.{what} fills floating point tensors, got {tensor.dtype}")
    return tensor


# -- fills ---------------------------------------------------------------------------------------
def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """torch.nn.init.uniform_: values from U[a, b)."""
    _float_tensor(tensor, "uniform_")
    if a > b:
        raise ValueError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
    return _fill(tensor, _uniform(tensor.shape, a, b, tensor.dtype, generator), "uniform_")


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """torch.nn.init.normal_: values from N(mean, std^2)."""
    _float_tensor(tensor, "normal_")
    if std < 0:
        raise ValueError(f"normal expects std >= 0.0, but found std {std}")
    return _fill(tensor, _normal(tensor.shape, mean, std, tensor.dtype, generator), "normal_")


def constant_(tensor, val):
    """torch.nn.init.constant_: every entry `val`."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init.constant_ takes a Tensor, got {type(tensor).__name__}")
    return _fill(tensor, val, "constant_")


def zeros_(tensor):
    """torch.nn.init.zeros_."""
    return constant_(tensor, 0)


def ones_(tensor):
    """torch.nn.init.ones_."""
    return constant_(tensor, 1)


# -- scaled to the layer's fan ---------------------------------------------------------------
def calculate_gain(nonlinearity, param=None):
    """torch.nn.init.calculate_gain: the recommended scale for a nonlinearity (tanh 5/3, relu sqrt 2, ...)."""
    if nonlinearity in _LINEAR or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight laid out as torch's: (out, in, *receptive field)."""
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _kaiming_std(tensor, a, mode, nonlinearity):
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """torch.nn.init.kaiming_uniform_: U(-b, b), b = gain * sqrt(3 / fan) (He et al. 2015)."""
    _float_tensor(tensor, "kaiming_uniform_")
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", UserWarning, stacklevel=2)
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """torch.nn.init.kaiming_normal_: N(0, std^2), std = gain / sqrt(fan) (He et al. 2015)."""
    _float_tensor(tensor, "kaiming_normal_")
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", UserWarning, stacklevel=2)
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """torch.nn.init.xavier_uniform_: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    _float_tensor(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * (gain * math.sqrt(2.0 / float(fan_in + fan_out)))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """torch.nn.init.xavier_normal_: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    _float_tensor(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)

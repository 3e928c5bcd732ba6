"""Normalization: layer_norm, batch_norm and their modules LayerNorm, BatchNorm1d, on one fused op.

Both are y = (x - mean) / sqrt(var + eps) * weight + bias; they differ only in the axes the
statistics run over (layer norm: the trailing `normalized_shape`; batch norm: every axis but
the channel axis 1) and, for batch norm in eval mode, in taking running statistics instead.
"""
import math

import numpy as np

from .. import creation
from ..backend import xp_of
from ..function import Function
from ..grad_mode import mark_modified
from .module import Module


class Normalize(Function):
    """(x - mean) * rstd * weight + bias, one tape entry; weight/bias (either may be absent) have
    `param_shape`, aligned with x's trailing axes. `batch=True`: mean and var are x's own
    (biased) statistics over `axes`, computed here unless given, so they take part in the
    gradient; else they are constants: the running statistics, as inputs after weight and bias
    (tensors, so that tg.compile reads them on every replay and sees them rebound).

    Computed in float64 whatever the dtype, results rounded once to it: the backward subtracts
    nearly equal terms (a row of 2 or 3 close values keeps only the eps-sized part), where float32
    intermediates would lose ~1e-6 of the gradient's scale (torch's float32 kernels: ~1e-9)."""

    def forward(self, x, *rest, axes, param_shape, has_weight, has_bias, eps, batch, mean=None, var=None):
        xp = xp_of(x)
        self.dtype = x.dtype
        affine, stats = rest[:has_weight + has_bias], rest[has_weight + has_bias:]
        self.n_stats = len(stats)
        x = x.astype(np.float64, copy=False)
        if stats:                   # the running statistics, (C,) against (N, C, ...)
            mean, var = (s.reshape(param_shape) for s in stats)
        elif mean is None:          # the batch's own, over `axes` (biased variance)
            mean = x.mean(axis=axes, keepdims=True)
            c = x - mean
            var = (c * c).mean(axis=axes, keepdims=True)
        mean, var = (a.astype(np.float64, copy=False) for a in (mean, var))
        w = affine[0].astype(np.float64) if has_weight else None
        b = affine[-1] if has_bias else None
        rstd = 1 / xp.sqrt(var + eps)
        xhat = (x - mean) * rstd
        out = xhat * w.reshape(param_shape) if has_weight else xhat
        if has_bias:
            out = out + b.reshape(param_shape)
        self.xhat, self.rstd, self.w, self.axes, self.batch = xhat, rstd, w, axes, batch
        self.param_shape, self.b_shape = param_shape, (b.shape if has_bias else None)
        return out.astype(self.dtype)       # a copy even in float64: xhat stays ours

    def backward(self, g):
        xhat, rstd = self.xhat, self.rstd
        g = g.astype(np.float64, copy=False)
        full = (1,) * (g.ndim - len(self.param_shape)) + tuple(self.param_shape)
        over = tuple(i for i, s in enumerate(full) if s == 1)       # the axes a parameter is shared over
        dxhat = g if self.w is None else g * self.w.reshape(self.param_shape)
        if self.batch:  # xhat = (x - mean(x)) rstd(x): the statistics' own slopes enter
            ax = self.axes
            dx = rstd * (dxhat - dxhat.mean(axis=ax, keepdims=True)
                         - xhat * (dxhat * xhat).mean(axis=ax, keepdims=True))
        else:           # constant statistics: a per-element affine map
            dx = dxhat * rstd
        grads = [dx.astype(self.dtype, copy=False)]
        if self.w is not None:
            grads.append((g * xhat).sum(axis=over).reshape(self.w.shape).astype(self.dtype, copy=False)
                         if self.needs_input_grad[1] else None)
        if self.b_shape is not None:
            grads.append(g.sum(axis=over).reshape(self.b_shape).astype(self.dtype, copy=False)
                         if self.needs_input_grad[len(grads)] else None)
        return tuple(grads) + (None,) * self.n_stats


def _normalize(x, weight, bias, axes, param_shape, eps, batch, stats=(), mean=None, var=None):
    inputs = [t for t in (weight, bias) if t is not None] + list(stats)
    return Normalize.apply(x, *inputs, axes=axes, param_shape=tuple(param_shape), has_weight=weight is not None,
                           has_bias=bias is not None, eps=eps, batch=batch, mean=mean, var=var)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """torch.nn.functional.layer_norm: normalize over the trailing `normalized_shape` axes (biased variance)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.shape[input.ndim - k:] != shape or input.ndim < k:
        raise ValueError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                         f"{', '.join(map(str, shape))}], but got input of size{list(input.shape)}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ValueError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of "
                             f"shape {list(p.shape)} and normalized_shape = {list(shape)}")
    axes = tuple(range(input.ndim - k, input.ndim))
    return _normalize(input, weight, bias, axes, shape, eps, batch=True)  # statistics made inside


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """torch.nn.functional.batch_norm: per channel (axis 1). Training: batch statistics, and the
    running ones (if given) move in place by `momentum` toward the batch mean and the unbiased
    variance. Eval: the running statistics."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects an input of shape (N, C, ...), got {input.shape}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and t.numel() != c:
            raise ValueError(f"{name} should contain {c} elements not {t.numel()}")
    axes = (0,) + tuple(range(2, input.ndim))
    shape = (c,) + (1,) * (input.ndim - 2)          # a (C,) parameter against (N, C, L): (C, 1)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean and running_var must be defined in evaluation mode")
        return _normalize(input, weight, bias, axes, shape, eps, batch=False, stats=(running_mean, running_var))
    n = input.numel() // c
    if n <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(input.shape)}")
    if running_mean is None and running_var is None:  # the statistics made inside, on every call
        return _normalize(input, weight, bias, axes, shape, eps, batch=True)
    x = input.array.astype(np.float64, copy=False)       # statistics in float64, as Normalize
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    sq = (centered * centered).sum(axis=axes, keepdims=True)
    var = sq / n
    for stat, new in ((running_mean, mean), (running_var, sq / (n - 1))):   # torch: unbiased here
        if stat is not None:
            a = stat.array
            a[...] = momentum * new.reshape(a.shape) + (1 - momentum) * a
            mark_modified(a, "running statistics (batch_norm)")
    return _normalize(input, weight, bias, axes, shape, eps, batch=True, mean=mean, var=var)


def _dtype(dtype):
    return np.float32 if dtype is None else dtype


class LayerNorm(Module):
    """torch.nn.LayerNorm: weight ones and bias zeros of `normalized_shape` (if elementwise_affine)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device="cpu", dtype=None):
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        kw = dict(dtype=_dtype(dtype), device=device, requires_grad=True)
        self.weight = creation.ones(shape, **kw) if elementwise_affine else None
        self.bias = creation.zeros(shape, **kw) if elementwise_affine and bias else None

    def forward(self, x):
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class BatchNorm1d(Module):
    """torch.nn.BatchNorm1d on (N, C) or (N, C, L): statistics per channel over the batch (and L).

    Training: batch mean and biased variance normalize; running_mean/running_var move by
    `momentum` toward the batch mean and unbiased variance (momentum=None: their cumulative
    average), and num_batches_tracked counts the batches. Eval: the running statistics.
    affine=False: no weight and bias; track_running_stats=False: no buffers, batch
    statistics always. Parameters and buffers are named as torch's, so state dicts port.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device="cpu", dtype=None, *, bias=True):
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        kw = dict(dtype=_dtype(dtype), device=device)
        self.weight = creation.ones(num_features, **kw, requires_grad=True) if affine else None
        self.bias = creation.zeros(num_features, **kw, requires_grad=True) if affine and bias else None
        if track_running_stats:
            self.running_mean = creation.zeros(num_features, **kw)
            self.running_var = creation.ones(num_features, **kw)
            self.num_batches_tracked = creation.zeros((), dtype=np.int64, device=device)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        if x.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.ndim}D input)")
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}) expects input (N, {self.num_features}) or "
                             f"(N, {self.num_features}, L), got {x.shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            if math.prod(x.shape) // x.shape[1] <= 1:      # refused before the counter moves
                raise ValueError("Expected more than 1 value per channel when training, got input size "
                                 f"{list(x.shape)}")
            count = self.num_batches_tracked.array
            count += 1
            mark_modified(count, "num_batches_tracked (BatchNorm1d)")
            if self.momentum is None:
                factor = 1.0 / float(count)
        use_batch = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if keep else None, self.running_var if keep else None,
                          self.weight, self.bias, use_batch, factor, self.eps)

    def extra_repr(self):   # torch's, word for word
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


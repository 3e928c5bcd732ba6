"""Losses with torch's signatures: cross_entropy (every form), nll_loss, mse_loss, and their modules.

cross_entropy of (N, C) logits and class indices without weights or smoothing is the fused
op in cross_entropy.py (the training hot path). Every other form is torch's own definition,
log_softmax followed by nll_loss (or the probability-target sum), built from recorded ops.
"""
import warnings

import numpy as np

from .. import backend
from ..backend import xp_of
from ..coerce import as_tensor
from ..function import Function
from ..tensor import Tensor
from .activation import log_softmax
from .cross_entropy import CrossEntropy
from .module import Module

REDUCTIONS = ("mean", "sum", "none")


def legacy_reduction(size_average, reduce):
    """torch's mapping of the deprecated size_average/reduce flags to a reduction, with its warning."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    out = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{out}' instead.",
                  UserWarning, stacklevel=3)
    return out


def _check_reduction(reduction):
    """'mean', 'sum' or 'none', else torch's ValueError."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction!r} is not a valid value for reduction (use 'mean', 'sum' or 'none')")


def _array_like(x, input):
    """A target/weight given as a Tensor, array or list, as an array on input's device."""
    arr = x.array if isinstance(x, Tensor) else x
    if not hasattr(arr, "dtype"):
        arr = np.asarray(arr)
    if type(arr) is not type(input.array):
        arr = backend.to_device(backend.to_numpy(arr), input.device)
    return arr


def _class_weight(weight, input, n_classes):
    """A class-weight array (C,) in input's dtype, or None."""
    if weight is None:
        return None
    w = _array_like(weight, input)
    if w.shape != (n_classes,):
        raise ValueError(f"weight tensor should be defined either for all {n_classes} classes or no classes "
                         f"but got weight tensor of shape: {list(w.shape)}")
    if w.dtype != input.dtype:
        raise TypeError(f"weight is {w.dtype} but the input is {input.dtype}; convert one (.float(), .double())")
    return w


class NLL(Function):
    torch_name = "NllLossBackward0"
    """-weight[t] * x[t] per sample (x holds log-probabilities), reduced; one tape entry.

    x is (C,), (N, C) or (N, C, d1, ...) with the class on axis 1; it is viewed as rows (M, C)
    with the class last, and the gradient is put back in x's layout.
    """

    def forward(self, x, target, weight=None, ignore_index=-100, reduction="mean"):
        xp = xp_of(x)
        self.shape, c = x.shape, x.shape[0 if x.ndim == 1 else 1]
        rows = x.reshape(1, c) if x.ndim == 1 else x if x.ndim == 2 else xp.moveaxis(x, 1, -1).reshape(-1, c)
        t = target.reshape(-1)
        valid = t != ignore_index
        bad = valid & ((t < 0) | (t >= c))
        if bool(bad.any()):
            raise IndexError(f"Target {int(t[bad][0])} is out of bounds: the input has {c} classes "
                             f"(valid 0..{c - 1}, or ignore_index={ignore_index})")
        safe = xp.where(valid, t, 0)
        idx = xp.arange(t.size)
        w = valid.astype(x.dtype) if weight is None else xp.where(valid, weight[safe], 0).astype(x.dtype)
        # where, not * valid: an ignored sample's stand-in class may hold -inf, and -inf * 0 is NaN
        loss = xp.where(valid, -(rows[idx, safe] * w), 0).astype(x.dtype, copy=False)
        self.safe, self.idx, self.w, self.valid, self.c = safe, idx, w, valid, c
        self.reduction, self.target_shape = reduction, target.shape
        if reduction == "none":
            return loss.reshape(target.shape)
        if reduction == "sum":
            return loss.sum()
        self.total = w.sum()
        with np.errstate(invalid="ignore", divide="ignore"):   # every sample ignored: 0/0 = NaN, as torch
            return loss.sum() / self.total

    def backward(self, g):          # d/dx[t] = -weight[t] * g (/ total weight for 'mean'), 0 elsewhere
        xp = xp_of(g)
        if self.reduction == "none":
            scale = g.reshape(-1)
        elif self.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):   # total 0: no sample counts
                scale = g / self.total
        else:
            scale = g
        d = xp.zeros((self.idx.size, self.c), dtype=g.dtype)
        with np.errstate(invalid="ignore"):      # 0 * inf at an ignored sample: replaced by 0 below
            d[self.idx, self.safe] = xp.where(self.valid, -(self.w * scale), 0)
        if len(self.shape) == 1:
            return d.reshape(self.shape)
        if len(self.shape) == 2:
            return d
        n, c, *rest = self.shape
        return xp.moveaxis(d.reshape(n, *rest, c), -1, 1)


def _check_nll_shapes(input, target):
    """Class-index targets have input's shape without the class axis: (C,) -> (), (N, C, d...) -> (N, d...)."""
    if input.ndim == 0:
        raise ValueError("Expected 1 or more dimensions (got 0)")
    want = () if input.ndim == 1 else input.shape[:1] + input.shape[2:]
    if target.shape != want:
        raise ValueError(f"expected target of shape {want} (class indices) for input of shape {input.shape}, "
                         f"got {target.shape}")


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """torch.nn.functional.nll_loss: -input[class] per sample, weighted; 'mean' divides by the
    summed weights of the counted samples (NaN when none count)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    _check_reduction(reduction)
    t = _array_like(target, input)
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss targets must be integer class indices, got dtype {t.dtype}")
    _check_nll_shapes(input, t)
    w = _class_weight(weight, input, input.shape[0 if input.ndim == 1 else 1])
    return NLL.apply(input, target=t, weight=w, ignore_index=ignore_index, reduction=reduction)


class _ZeroWhere(Function):
    """x with zeros where mask is set (torch's masked_fill_(mask, 0)); no gradient flows there."""

    def forward(self, x, mask):
        self.mask = mask
        return xp_of(x).where(mask, 0, x).astype(x.dtype, copy=False)

    def backward(self, g):
        return xp_of(g).where(self.mask, 0, g).astype(g.dtype, copy=False)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """torch.nn.functional.cross_entropy: class indices or class probabilities, class weights,
    ignore_index, label_smoothing, (C,), (N, C) or (N, C, d1, ...) logits (class on axis 1).

    (N, C) logits with (N,) class indices, no weight and no smoothing take the fused op.
    """
    t = target.array if type(target) is Tensor else target
    if (weight is None and label_smoothing <= 0 and size_average is None and reduce is None
            and input.array.ndim == 2 and getattr(t, "ndim", 1) != 2):      # the fused op: the hot path
        return CrossEntropy.apply(input, target=target, reduction=reduction, ignore_index=ignore_index)
    if size_average is not None or reduce is not None:
        return cross_entropy(input, target, weight, None, ignore_index, None, legacy_reduction(size_average, reduce),
                             label_smoothing)
    _check_reduction(reduction)
    if input.ndim == 0:
        raise ValueError("cross_entropy: Expected 1 or more dimensions (got 0)")
    if label_smoothing > 1:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    c = input.shape[class_dim]
    w = _class_weight(weight, input, c)
    w_b = None if w is None else as_tensor(w.reshape([c if d == class_dim else 1 for d in range(input.ndim)]))
    tgt = target if isinstance(target, Tensor) else as_tensor(_array_like(target, input))
    if tgt.shape == input.shape:                         # class probabilities, one row per sample
        if tgt.dtype.kind != "f":
            raise TypeError(f"Expected floating point type for target with class probabilities, got {tgt.dtype}")
        if ignore_index >= 0:
            raise ValueError("ignore_index is not supported for floating point target")
        logp = log_softmax(input, class_dim)
        if label_smoothing > 0:
            tgt = tgt * (1 - label_smoothing) + label_smoothing / c
        prod = logp * tgt if w_b is None else logp * tgt * w_b
        if reduction == "none":
            return -prod.sum(class_dim)
        if reduction == "sum":
            return -prod.sum()
        if input.numel() == 0:
            return -prod.sum() * float("nan")
        return -prod.sum() / (input.numel() // c)
    logp = log_softmax(input, class_dim)
    nll = nll_loss(logp, tgt, w, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing <= 0:
        return nll
    # torch: (1 - ε) nll + ε/C * (-sum_c w_c logp_c), the second term zero at ignored samples
    ignored = tgt.array == ignore_index
    smooth = -(logp.sum(class_dim) if w_b is None else (logp * w_b).sum(class_dim))
    smooth = _ZeroWhere.apply(smooth, mask=ignored)
    if reduction == "mean":
        counted = tgt.array[~ignored]
        denom = xp_of(counted).asarray(counted.size, dtype=input.dtype) if w is None else w[counted].sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            ret = smooth.sum() / as_tensor(denom)
    else:
        ret = smooth.sum() if reduction == "sum" else smooth
    return (1 - label_smoothing) * nll + ret * (label_smoothing / c)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """torch.nn.functional.mse_loss: (input - target)^2, reduced; `weight` (input's shape) weighs
    each element and 'mean' then divides by the summed weights. Differing shapes broadcast, with
    torch's warning."""
    tshape = tuple(np.shape(target.array if isinstance(target, Tensor) else target))
    if tshape != input.shape:
        warnings.warn(f"Using a target size ({tshape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=2)
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    _check_reduction(reduction)
    sq = (input - target) ** 2
    if weight is not None:
        if tuple(weight.shape) != input.shape:
            raise ValueError("Weights and input must have the same size.")
        sq = sq * weight
        return sq if reduction == "none" else sq.sum() if reduction == "sum" else sq.sum() / weight.sum()
    return sq if reduction == "none" else sq.sum() if reduction == "sum" else sq.mean()


# -- modules ----------------------------------------------------------------------------------
class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        if size_average is not None or reduce is not None:
            reduction = legacy_reduction(size_average, reduce)
        _check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """torch.nn.CrossEntropyLoss: loss_fn(logits, target) is cross_entropy with these arguments."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(size_average, reduce, reduction)
        self.weight, self.ignore_index, self.label_smoothing = weight, ignore_index, label_smoothing

    def forward(self, input, target):
        return cross_entropy(input, target, self.weight, None, self.ignore_index, None, self.reduction,
                             self.label_smoothing)


class NLLLoss(_Loss):
    """torch.nn.NLLLoss: loss_fn(log_probs, target) is nll_loss with these arguments."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input, target):
        return nll_loss(input, target, self.weight, None, self.ignore_index, None, self.reduction)


class MSELoss(_Loss):
    """torch.nn.MSELoss: loss_fn(input, target) is mse_loss with this reduction."""

    def forward(self, input, target):
        return mse_loss(input, target, reduction=self.reduction)

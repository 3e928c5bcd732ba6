"""The fused cross-entropy of (N, C) logits and class indices: one tape entry, stable for any finite logits.

This is the training hot path; nn.loss.cross_entropy sends every other case (weights, label
smoothing, probability targets, (N, C, d1, ...) logits) through log_softmax and nll_loss, as torch.

Infinite logits, the chosen behaviour: -inf marks a class as impossible (probability 0);
a row whose target is such a class has loss +inf. A row with a +inf or NaN logit, or with
every logit -inf, has no defined distribution: cross_entropy raises ValueError naming the
row instead of returning NaN.
"""

import numpy as np

from .. import backend, kernels
from ..backend import xp_of
from ..function import Function
from ..tensor import Tensor
from .activation import _stable_exp


def _check_targets(logits, target, ignore_index):
    """Targets must be integer, shape (N,), each in [0, C) or ignore_index: checked before computing.

    Returns the mask of counted rows, or None when every row counts (the common case).
    """
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got {logits.shape}")
    n, c = logits.shape
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy targets must be integer class indices, got dtype {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"cross_entropy targets must have shape ({n},) for logits {logits.shape}, "
                         f"got {target.shape}")
    # fast path, one reduction: viewed as unsigned, negatives become huge, so max < C means all in range
    if n and (ignore_index is None or not 0 <= ignore_index < c) and backend.largest_unsigned(target) < c:
        return None
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= c))
    if bool(bad.any()):
        first = int(target[bad][0])
        raise IndexError(f"Target {first} is out of bounds: logits have {c} classes (valid 0..{c - 1}"
                         f"{'' if ignore_index is None else f', or ignore_index={ignore_index}'})")
    return None if bool(valid.all()) else valid


class CrossEntropy(Function):
    torch_name = "NllLossBackward0"  # torch's cross_entropy ends in nll_loss
    """Mean (or sum, or per-row) of -log softmax(logits)[target], in one tape entry.

    forward: log-sum-exp with the row maximum subtracted; backward: (softmax - onehot) * g,
    divided by the number of counted rows for 'mean', from the probabilities saved in forward.
    """

    def forward(self, logits, target, reduction="mean", ignore_index=-100):
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        xp = xp_of(logits)
        target = _as_index(target, logits)
        valid = _check_targets(logits, target, ignore_index)
        n = logits.shape[0]
        rows = xp.arange(n)
        safe_t = target if valid is None else xp.where(valid, target, 0)
        m = kernels.row_max(logits)                     # (N, 1)
        if not kernels.all_finite(m):                   # checked before exp: inf - inf would warn
            raise ValueError(_bad_rows_message(m))
        e, m = _stable_exp(logits, 1, m)                # (N, C), (N, 1)
        s = kernels.row_sum(e)                          # (N, 1), >= 1 since the max maps to exp(0)
        e /= s
        # loss = lse - logit[t] = log(s) - (logit[t] - max): the shifted form stays exact when
        # the target is the max (logits [[1e4, 0]], target 0 -> exactly 0, not 1e4 - 1e4 rounding)
        loss = xp.log(s[:, 0]) - (logits[rows, safe_t] - m[:, 0])   # (N,)
        count = n
        if valid is not None:
            # where, not loss * valid: an ignored row's stand-in target 0 may sit on a -inf logit,
            # and inf * 0 would be NaN
            loss = xp.where(valid, loss, 0).astype(logits.dtype, copy=False)
            count = int(valid.sum())
        self.p, self.t, self.valid, self.rows = e, safe_t, valid, rows
        self.reduction, self.count = reduction, count
        if reduction == "none":
            return loss
        total = loss.sum()
        if reduction == "sum":
            return total
        if count == 0:                                  # mean over 0 rows: NaN, as torch (without 0/0 warnings)
            return xp.full((), xp.nan, dtype=logits.dtype)
        return total / count

    def backward(self, g):          # dL/dlogits = (softmax - onehot(target)) * g / count
        if self.count == 0:             # every row ignored: no row depends on the logits (torch: zeros)
            return xp_of(self.p).zeros_like(self.p)
        if self.reduction == "none":
            scale = g[:, None]                          # (N, 1): each row its own upstream
        else:
            scale = g / self.count if self.reduction == "mean" else g
        d = kernels.softmax_xent_grad(self.p, self.t, self.rows, scale)
        if self.valid is not None:
            d *= self.valid[:, None]                    # ignored rows get no gradient
        return d


def _as_index(target, logits):
    # a Tensor's array itself: its .data is another Tensor, which would be moved through the host
    arr = target.array if isinstance(target, Tensor) else target
    if not hasattr(arr, "dtype"):
        arr = np.asarray(arr)
    if type(arr) is not type(logits):
        arr = backend.to_device(backend.to_numpy(arr), backend.device_of(logits))
    return arr


def _bad_rows_message(m):
    m = backend.to_numpy(m)[:, 0]
    rows = np.flatnonzero(~np.isfinite(m))
    kinds = {"+inf or NaN logit" if not (v == -np.inf) else "all logits -inf" for v in m[rows]}
    return (f"cross_entropy: logits rows {rows[:5].tolist()}{'...' if rows.size > 5 else ''} have "
            f"{' / '.join(sorted(kinds))}: no probability distribution is defined there")

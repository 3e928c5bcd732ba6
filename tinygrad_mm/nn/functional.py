"""torch.nn.functional: the functional forms, with torch's signatures and defaults.

`import tinygrad_mm.nn.functional as F` then F.cross_entropy(logits, Y), F.one_hot(x, 27).float(),
F.softmax(logits, dim=1), ... as in the lectures. Activations, losses and normalization
live in activation.py, loss.py and norm.py; the layer functions (linear, embedding,
one_hot, dropout) are here.
"""
import numpy as np

from .. import backend, creation, ops, ops_index
from ..backend import xp_of
from ..coerce import index_array
from ..grad_mode import _state, mark_modified
from ..tensor import Tensor, _wrap
from .activation import log_softmax, relu, sigmoid, softmax, tanh
from .loss import cross_entropy, mse_loss, nll_loss
from .norm import batch_norm, layer_norm


def linear(input, weight, bias=None):
    """torch.nn.functional.linear: input @ weight.T + bias, weight (out_features, in_features)."""
    if weight.ndim == 1:                 # torch also takes a 1-D weight (no bias): a dot product per row
        if bias is not None:
            raise ValueError(f"linear: a 1-D weight {weight.shape} takes no bias; pass a 2-D weight")
        return input @ weight
    if bias is None:
        return ops.Affine.apply(input, weight)
    return ops.Affine.apply(input, weight, bias)


class EmbeddingRows(ops_index.GatherRows):
    torch_name = "EmbeddingBackward0"
    """weight[idx] whose backward leaves the padding row at zero and, with scale_grad_by_freq,
    divides each lookup's gradient by how often its index occurs in idx."""

    def forward(self, table, idx, padding_idx=None, scale_grad_by_freq=False):
        self.padding_idx, self.scale = padding_idx, scale_grad_by_freq
        return super().forward(table, idx)

    def backward(self, g):
        if self.scale:
            counts = xp_of(self.idx).bincount(self.idx.ravel(), minlength=self.n)
            g = g / counts[self.idx][..., None].astype(g.dtype)
        d = super().backward(g)          # a fresh array: ours to write
        if self.padding_idx is not None:
            d[self.padding_idx] = 0
        return d


def _padding_index(padding_idx, n):
    if padding_idx is None:
        return None
    if not -n <= padding_idx < n:
        raise ValueError(f"Padding_idx must be within num_embeddings: got {padding_idx} for {n} embeddings")
    return padding_idx % n


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """torch.nn.functional.embedding: rows of `weight` (num_embeddings, dim) gathered by integer ids of
    any shape; ids outside [0, num_embeddings) are refused (negatives too, as torch). The padding_idx
    row gets no gradient; max_norm renormalizes the looked-up rows of weight in place, as torch."""
    if sparse or weight.array.ndim != 2:
        if sparse:
            raise NotImplementedError("embedding(sparse=True): sparse gradients are not supported")
        raise ValueError(f"'weight' must be 2-D, got shape {weight.shape}")
    ids = embedding_ids(input, weight)
    if max_norm is not None:
        backend.check_index_range(ids, weight.array.shape[0], "index")  # before any row is renormed
        _renorm_rows(weight, ids, max_norm, norm_type)
    if padding_idx is None and not scale_grad_by_freq:
        return ops_index.GatherRows.apply(weight, idx=ids)
    return EmbeddingRows.apply(weight, idx=ids, padding_idx=_padding_index(padding_idx, weight.array.shape[0]),
                               scale_grad_by_freq=scale_grad_by_freq)


def embedding_ids(input, weight):
    """The ids as an integer array on weight's device (GatherRows checks that each lies in
    [0, num_embeddings))."""
    arr = input.array if type(input) is Tensor else input
    if type(arr) is not type(weight.array) or arr.dtype.kind not in "iu":   # lists, other devices
        kind = getattr(arr, "dtype", np.dtype(np.int64)).kind
        arr = index_array(weight, input, "embedding indices") if kind in "iu" else arr
        if arr.dtype.kind not in "iu":
            raise TypeError(f"Embedding indices must be integers, got dtype {arr.dtype}")
    return arr


def _renorm_rows(weight, idx, max_norm, norm_type):
    """torch.embedding_renorm_: looked-up rows with norm > max_norm scaled to max_norm / (norm + 1e-7)."""
    if _state.capture is not None:  # which rows it scales depends on their values: a replay cannot follow
        _state.capture.unsupported("Embedding's max_norm (renormalizing rows by their values)")
    w = weight.array
    xp = xp_of(w)
    rows = xp.unique(idx.ravel())
    norms = (xp.abs(w[rows]) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    big = norms > max_norm
    if bool(big.any()):
        r = rows[big]
        w[r] *= (max_norm / (norms[big] + 1e-7))[:, None].astype(w.dtype)
        mark_modified(w, f"{weight.short()} (embedding max_norm)")


def one_hot(tensor, num_classes=-1):
    """torch.nn.functional.one_hot: int64 indices (any shape) -> int64 (..., num_classes) of 0/1;
    num_classes=-1 takes max + 1."""
    arr = tensor.array if isinstance(tensor, Tensor) else np.asarray(tensor)
    if arr.dtype != np.int64:
        raise TypeError(f"one_hot is only applicable to index tensor of type LongTensor (int64), got {arr.dtype}")
    if num_classes == -1:
        if arr.size == 0:
            raise ValueError("Can not infer total number of classes from empty tensor.")
        num_classes = int(arr.max()) + 1
    if arr.size and int(arr.min()) < 0:
        raise ValueError(f"Class values must be non-negative, got {int(arr.min())}.")
    if arr.size and int(arr.max()) >= num_classes:
        raise ValueError(f"Class values must be smaller than num_classes: got {int(arr.max())} for "
                         f"num_classes={num_classes}.")
    xp = xp_of(arr)
    return _wrap((arr[..., None] == xp.arange(num_classes)).astype(np.int64))


def dropout(input, p=0.5, training=True, inplace=False):
    """torch.nn.functional.dropout: in training, zero each entry with probability p and scale the
    rest by 1 / (1 - p); otherwise return `input` itself. The keep mask is U[0, 1) < 1 - p, drawn
    in float64 from the default generator, as torch's CPU bernoulli_ draws it."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0 or input.numel() == 0:
        return input
    xp = xp_of(input.array)
    if p == 1:
        noise = xp.zeros((), dtype=input.dtype)
    else:
        u = creation.rand(*input.shape, dtype=np.float64, device=input.device).array
        # torch: noise = bernoulli(1 - p) in the input's dtype, then noise /= (1 - p) in that dtype
        noise = (u < 1 - p).astype(input.dtype) / input.dtype.type(1 - p)
    if inplace:
        return input.mul_(_wrap(noise))
    return input * _wrap(noise)


__all__ = ["relu", "tanh", "sigmoid", "softmax", "log_softmax", "linear", "embedding", "one_hot", "dropout",
           "layer_norm", "batch_norm", "cross_entropy", "nll_loss", "mse_loss"]

"""Layers with torch's constructors and initialization: Embedding, Linear, Dropout, Flatten, Sequential,
and the activation modules."""
import math

import numpy as np

from .. import creation, ops, ops_shape
from ..ops_index import GatherRows
from ..tensor import _wrap
from . import activation, functional as F, init
from .module import Module


class Embedding(Module):
    """torch.nn.Embedding: a (num_embeddings, embedding_dim) table; forward(ids) gathers rows,
    ids (...) -> (..., dim). Initialized N(0, 1) (nn.init.normal_), the padding_idx row zero and
    never updated by a gradient. `generator=` (ours) seeds the initialization.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device="cpu", dtype=None,
                 *, generator=None):
        if sparse:
            raise NotImplementedError("Embedding(sparse=True): sparse gradients are not supported")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = F._padding_index(padding_idx, num_embeddings)
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = max_norm, norm_type, scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = creation.zeros(num_embeddings, embedding_dim, dtype=dtype or np.float32, device=device)
            self.reset_parameters(generator)
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Shape of weight {tuple(_weight.shape)} does not match num_embeddings and "
                                 f"embedding_dim ({num_embeddings}, {embedding_dim})")
            self.weight = _wrap(_weight.array)      # shares memory with _weight, as torch's Parameter does
        self.weight.requires_grad = not _freeze

    def reset_parameters(self, generator=None):
        """N(0, 1), then the padding row zero (torch's order)."""
        init.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """torch.nn.Embedding.from_pretrained: a layer around `embeddings` (shared, not copied)."""
        if embeddings.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=embeddings,
                   _freeze=freeze)

    def forward(self, input):
        if self.padding_idx is None and self.max_norm is None and not self.scale_grad_by_freq:
            return GatherRows.apply(self.weight, idx=F.embedding_ids(input, self.weight))   # the hot path
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        return s + (", scale_grad_by_freq=True" if self.scale_grad_by_freq else "")


class Linear(Module):
    """torch.nn.Linear: y = x @ weight.T + bias, weight (out_features, in_features), one tape entry.

    Initialized as torch: weight by kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)),
    then bias U(-1/sqrt(in), 1/sqrt(in)). `generator=` (ours) seeds it.
    (The name model rescales its layers for tanh; see models/mlp.py.)
    """

    def __init__(self, in_features, out_features, bias=True, device="cpu", dtype=None, *, generator=None):
        self.in_features, self.out_features = in_features, out_features
        kw = dict(dtype=dtype or np.float32, device=device, requires_grad=True)
        self.weight = creation.zeros(out_features, in_features, **kw)
        self.bias = creation.zeros(out_features, **kw) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x):
        if self.bias is None:
            return ops.Affine.apply(x, self.weight)
        return ops.Affine.apply(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features} → {self.out_features}{'' if self.bias is not None else ', bias=False'}"


class Dropout(Module):
    """torch.nn.Dropout: F.dropout in training mode, the identity in eval mode."""

    def __init__(self, p=0.5, inplace=False):
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Flatten(Module):
    """torch.nn.Flatten: dims start_dim..end_dim into one; (B, d1, d2, ...) -> (B, d1*d2*...) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        shape = x.array.shape
        if self.end_dim == -1 and all(shape):     # the common case, one reshape
            return ops_shape.Reshape.apply(x, shape=shape[:self.start_dim] + (-1,))
        return x.flatten(self.start_dim, self.end_dim)


class Sequential(Module):
    """torch.nn.Sequential: layers applied in order; indexable (slices give a Sequential), append."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def named_children(self):
        for i, layer in enumerate(self.layers):  # "0.weight", as torch names them
            yield str(i), layer

    def append(self, module):
        self.layers.append(module)
        return self

    def __getitem__(self, i):
        return Sequential(*self.layers[i]) if isinstance(i, slice) else self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)


# -- activations ----------------------------------------------------------------------------
class ReLU(Module):
    """torch.nn.ReLU."""

    def __init__(self, inplace=False):
        self.inplace = inplace

    def forward(self, x):
        return activation.relu(x, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    """torch.nn.Tanh."""

    def forward(self, x):   # integers become float32, as torch (inline: this is on the hot path)
        return ops.Tanh.apply(x if x.array.dtype.kind == "f" else x.float())


class Sigmoid(Module):
    """torch.nn.Sigmoid."""

    def forward(self, x):
        return activation.sigmoid(x)


class Softmax(Module):
    """torch.nn.Softmax(dim)."""

    def __init__(self, dim=None):
        self.dim = dim

    def forward(self, x):
        return activation.softmax(x, self.dim, _stacklevel=5)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """torch.nn.LogSoftmax(dim)."""

    def forward(self, x):
        return activation.log_softmax(x, self.dim, _stacklevel=5)

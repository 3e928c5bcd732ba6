"""Layers: Embedding, Linear, Tanh, Flatten, Sequential, BatchNorm1d."""
import math

import numpy as np

from .. import backend, creation, ops, ops_index, ops_shape
from ..grad_mode import no_grad
from ..tensor import Tensor
from .module import Module


def _uniform(shape, bound, generator, dtype, device):
    """U(-bound, bound) as a leaf that requires grad."""
    rng = (generator or creation.default_generator).rng
    host = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return Tensor(backend.to_device(host, device), requires_grad=True)


class Embedding(Module):
    """A (num_embeddings, embedding_dim) table; forward(idx) gathers rows: idx (...) -> (..., dim).

    Initialized N(0, 1) as torch.nn.Embedding. Indices are range-checked on every backend
    (numpy would wrap negatives, cupy wraps everything); repeated indices accumulate.
    """

    def __init__(self, num_embeddings, embedding_dim, generator=None, dtype=np.float32, device="cpu"):
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = creation.randn(num_embeddings, embedding_dim, generator=generator, dtype=dtype,
                                     device=device, requires_grad=True)

    def forward(self, idx):
        arr = idx.array if type(idx) is Tensor else idx
        if type(arr) is not type(self.weight.array) or arr.dtype.kind not in "iu":  # lists, other devices
            arr = ops_index.index_array(self.weight, idx, "embedding indices")
            if arr.dtype.kind not in "iu":
                raise TypeError(f"Embedding indices must be integers, got dtype {arr.dtype}")
        backend.check_index_range(arr, self.num_embeddings, what="index")  # torch refuses negatives here
        return ops_index.GatherRows.apply(self.weight, idx=arr)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features) as in torch, one tape entry.

    Initialization: weight and bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features)), the
    same distribution as torch.nn.Linear, so a model ported from torch starts alike.
    (The name model rescales its layers for tanh; see models/mlp.py.)
    """

    def __init__(self, in_features, out_features, bias=True, generator=None, dtype=np.float32, device="cpu"):
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        self.weight = _uniform((out_features, in_features), bound, generator, dtype, device)
        self.bias = _uniform((out_features,), bound, generator, dtype, device) if bias else None

    def forward(self, x):
        if self.bias is None:
            return ops.Affine.apply(x, self.weight)
        return ops.Affine.apply(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features} → {self.out_features}{'' if self.bias is not None else ', bias=False'}"


class Tanh(Module):
    def forward(self, x):
        return ops.Tanh.apply(x)


class Flatten(Module):
    """(B, d1, d2, ...) -> (B, d1*d2*...): concatenates the context embeddings."""

    def __init__(self, start_dim=1):
        self.start_dim = start_dim

    def forward(self, x):
        shape = x.array.shape
        return ops_shape.Reshape.apply(x, shape=shape[:self.start_dim] + (-1,))


class Sequential(Module):
    """Layers applied in order; indexable like a list."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def named_children(self):
        for i, layer in enumerate(self.layers):  # "0.weight", as torch names them
            yield str(i), layer

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)


class BatchNorm1d(Module):
    """Normalize each feature over the batch (makemore part 3); running statistics in eval mode.

    Training: batch mean and biased variance normalize; running_mean/running_var (unbiased,
    as torch) move by `momentum`. Eval: the running statistics normalize.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32, device="cpu"):
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = creation.ones(num_features, dtype=dtype, device=device, requires_grad=True)
        self.bias = creation.zeros(num_features, dtype=dtype, device=device, requires_grad=True)
        self.running_mean = creation.zeros(num_features, dtype=dtype, device=device)
        self.running_var = creation.ones(num_features, dtype=dtype, device=device)

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}) expects input (N, {self.num_features}), "
                             f"got {x.shape}")
        if self.training:
            n = x.shape[0]
            if n < 2:
                raise ValueError("BatchNorm1d in training mode needs a batch of at least 2 rows")
            mean = x.mean(0, keepdim=True)                       # (1, C)
            centered = x - mean
            var = (centered * centered).mean(0, keepdim=True)    # (1, C), biased
            with no_grad():
                m = self.momentum
                self.running_mean.array = (1 - m) * self.running_mean.array + m * mean.array[0]
                self.running_var.array = (1 - m) * self.running_var.array + m * var.array[0] * (n / (n - 1))
            xhat = centered * (var + self.eps) ** -0.5
        else:
            xhat = (x - self.running_mean) * (self.running_var + self.eps) ** -0.5
        return xhat * self.weight + self.bias

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}"

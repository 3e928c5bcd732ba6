"""Neural-network modules built on the engine: layers, the fused cross-entropy, functional forms."""
from . import functional
from .functional import softmax, log_softmax, cross_entropy
from .layers import Embedding, Linear, Tanh, Flatten, Sequential, BatchNorm1d
from .module import Module


class CrossEntropyLoss(Module):
    """The fused cross-entropy as a module: loss_fn(logits (N, C), targets (N,))."""

    def __init__(self, reduction="mean", ignore_index=-100):
        self.reduction, self.ignore_index = reduction, ignore_index

    def forward(self, logits, target):
        return cross_entropy(logits, target, self.reduction, self.ignore_index)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


__all__ = ["Module", "Embedding", "Linear", "Tanh", "Flatten", "Sequential", "BatchNorm1d",
           "CrossEntropyLoss", "functional", "softmax", "log_softmax", "cross_entropy"]

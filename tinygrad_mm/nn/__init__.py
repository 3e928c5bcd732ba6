"""torch.nn for tinygrad_mm: Module, layers, losses, normalization, functional forms and init."""
from . import functional, init
from .functional import softmax, log_softmax, cross_entropy
from .layers import (Embedding, Linear, Dropout, Flatten, Sequential, ReLU, Tanh, Sigmoid, Softmax,
                     LogSoftmax)
from .loss import CrossEntropyLoss, NLLLoss, MSELoss
from .module import Module
from .norm import BatchNorm1d, LayerNorm

__all__ = ["Module", "Embedding", "Linear", "Dropout", "Flatten", "Sequential", "ReLU", "Tanh", "Sigmoid",
           "Softmax", "LogSoftmax", "BatchNorm1d", "LayerNorm", "CrossEntropyLoss", "NLLLoss", "MSELoss",
           "functional", "init", "softmax", "log_softmax", "cross_entropy"]

"""tinygrad_mm: a tape-based reverse-mode autodiff library on numpy (CPU) and cupy (GPU)."""
from .tensor import Tensor
from .grad_mode import no_grad, enable_grad, is_grad_enabled, set_grad_enabled
from .tape import Tape, Entry, default_tape
from .sweep import Step
from .function import Function
from .coerce import as_tensor
from .creation import (Generator, manual_seed, seed, initial_seed, default_generator, tensor,
                       zeros, ones, zeros_like, ones_like, randn, rand, randint, randperm,
                       multinomial, normal, randn_like, rand_like, randint_like, arange)
from .functions import (dtype, float16, half, float32, float, float64, double, uint8, int8, int16, int32, int,
                        int64, long, bool, tanh, exp, log, sqrt, abs, sigmoid, relu, sin, cos, log2, log10,
                        clamp, clip, matmul, where, cat, stack, unbind, all, any, sum, mean, max, min, argmax, argmin,
                        std, var, norm, numel, allclose, full, empty, full_like, empty_like, eye, linspace,
                        histogram)
from .backend import cuda_available
from .gradcheck import gradcheck, GradcheckError, GradcheckReport
from .compare import compare_with_torch, cmp, format_comparisons, TorchMismatch
from . import nn, optim, checkpoint
from .compile import compile, CompileError

__version__ = "0.2.0"

__all__ = ["Tensor", "Tape", "Entry", "Function", "Step", "no_grad", "enable_grad", "is_grad_enabled",
           "set_grad_enabled", "default_tape", "as_tensor",
           "Generator", "manual_seed", "seed", "initial_seed", "default_generator", "tensor", "zeros",
           "ones", "zeros_like", "ones_like", "randn", "rand", "randint", "randperm", "multinomial",
           "normal", "randn_like", "rand_like", "randint_like", "arange", "cat", "stack", "cuda_available",
           "gradcheck", "GradcheckError", "GradcheckReport", "compare_with_torch", "cmp", "format_comparisons",
           "TorchMismatch", "dtype", "float16", "half", "float32", "float", "float64", "double", "uint8", "int8",
           "int16", "int32", "int", "int64", "long", "bool", "tanh", "exp", "log", "sqrt", "abs", "sigmoid",
           "relu", "sin", "cos", "log2", "log10", "clamp", "clip", "matmul", "where", "unbind", "all", "any", "sum",
           "mean", "max", "min", "argmax", "argmin", "std", "var", "norm", "numel", "allclose", "full", "empty",
           "full_like", "empty_like", "eye", "linspace", "histogram", "compile", "CompileError"]

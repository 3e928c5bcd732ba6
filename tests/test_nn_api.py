"""The nn API surface: torch's signatures and defaults, and a one-line docstring naming torch's counterpart."""
import inspect

import pytest
import torch
import torch.nn.functional as F

from tinygrad_mm import nn
from tinygrad_mm.nn import functional as tF, init

FUNCTIONS = ["relu", "sigmoid", "tanh", "embedding", "dropout", "layer_norm", "batch_norm", "nll_loss", "mse_loss",
             "cross_entropy", "softmax", "log_softmax"]
MODULES = ["Embedding", "Linear", "Dropout", "Flatten", "ReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
           "BatchNorm1d", "LayerNorm", "CrossEntropyLoss", "NLLLoss", "MSELoss"]
OURS_ONLY = {"generator"}          # our seeding keyword; torch draws from its global generator


def params(fn):
    return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()
            if p.name not in OURS_ONLY and p.name != "self"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functional_signatures_are_torchs(name):
    assert params(getattr(tF, name)) == params(getattr(F, name))


@pytest.mark.parametrize("name", MODULES)
def test_module_constructors_take_torchs_arguments(name):
    ours = params(getattr(nn, name).__init__)
    theirs = params(getattr(torch.nn, name).__init__)
    # same names in the same order; defaults too, except device/dtype: ours say "cpu" and float32 (or
    # None for float32) where torch says None for its defaults
    assert [p[0] for p in ours] == [p[0] for p in theirs]
    for (n, d, k), (_, td, tk) in zip(ours, theirs):
        assert k == tk, n
        if n not in ("device", "dtype"):
            assert d == td, n


def test_one_hot_and_linear_take_torchs_arguments():
    assert params(tF.one_hot) == [("tensor", inspect.Parameter.empty, inspect.Parameter.POSITIONAL_OR_KEYWORD),
                                  ("num_classes", -1, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    assert [p[0] for p in params(tF.linear)] == ["input", "weight", "bias"]


@pytest.mark.parametrize("obj", [getattr(tF, n) for n in FUNCTIONS + ["one_hot", "linear"]]
                         + [getattr(nn, n) for n in MODULES + ["Sequential", "Module"]]
                         + [getattr(init, n) for n in ["uniform_", "normal_", "constant_", "zeros_", "ones_",
                                                       "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                                                       "xavier_normal_", "calculate_gain"]],
                         ids=lambda o: o.__name__)
def test_documented_against_torch(obj):
    doc = inspect.getdoc(obj)
    assert doc and ("torch" in doc.splitlines()[0] or obj is nn.Module), obj

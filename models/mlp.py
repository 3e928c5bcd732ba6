"""The makemore part-2 MLP language model (Bengio et al. 2003), built only from tinygrad_mm.nn.

    idx (B, T) --Embedding--> (B, T, C) --Flatten--> (B, T*C) --Linear--> (B, H) --Tanh-->
    (B, H) --Linear--> logits (B, V)

Initialization (makemore part 3) so that training starts near the uniform loss
ln(V) = ln 27 ≈ 3.30 instead of ~27: the hidden layer gets Kaiming's tanh gain,
W1 ~ N(0, 1) * (5/3) / sqrt(T*C), b1 ~ N(0, 1) * 0.01, so tanh starts out of saturation;
the output layer starts tiny, W2 ~ N(0, 1) * 0.01 and b2 = 0, so the first logits are
near zero and the first predictions near uniform.
"""
from dataclasses import asdict, dataclass

import numpy as np

import tinygrad_mm as tg
from tinygrad_mm import nn


@dataclass
class MLPConfig:
    """Model shape. The lecture's model is the default; `wide` is the bigger recipe."""
    vocab_size: int = 27
    block_size: int = 3     # context length: how many previous characters predict the next
    n_embd: int = 10        # embedding dimension per character
    n_hidden: int = 200     # neurons in the tanh layer

    def to_dict(self):
        return asdict(self)


class MLPLanguageModel(nn.Module):
    """Embedding -> Flatten -> Linear -> Tanh -> Linear; forward(idx, targets=None) -> (logits, loss)."""

    def __init__(self, config: MLPConfig, generator=None, dtype=np.float32, device="cpu"):
        self.config = config
        V, T, C, H = config.vocab_size, config.block_size, config.n_embd, config.n_hidden
        g = generator or tg.Generator(0)
        self.embedding = nn.Embedding(V, C, generator=g, dtype=dtype, device=device)
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(T * C, H, generator=g, dtype=dtype, device=device)
        self.tanh = nn.Tanh()
        self.output = nn.Linear(H, V, generator=g, dtype=dtype, device=device)

        def init(t, scale):
            # re-draw N(0, 1) * scale: drawn and scaled in float64, then rounded once to `dtype`
            # (the same values as numpy's standard_normal(shape) * scale, whatever the dtype)
            with tg.no_grad():
                t.data = (tg.randn(*t.shape, generator=g, dtype=np.float64, device=device) * scale).to(dtype=dtype)

        init(self.hidden.weight, (5 / 3) / (T * C) ** 0.5)
        init(self.hidden.bias, 0.01)
        init(self.output.weight, 0.01)
        init(self.output.bias, 0.0)

    def forward(self, idx, targets=None):
        x = self.embedding(idx)           # (B, T, C)
        x = self.flatten(x)               # (B, T*C)
        x = self.tanh(self.hidden(x))     # (B, H)
        logits = self.output(x)           # (B, V)
        loss = None if targets is None else nn.functional.cross_entropy(logits, targets)
        return logits, loss

    def extra_repr(self):
        c = self.config
        return f"vocab={c.vocab_size}, block={c.block_size}, n_embd={c.n_embd}, n_hidden={c.n_hidden}"

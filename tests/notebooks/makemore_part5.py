"""A hierarchical (WaveNet-style) character model built from small layer classes of our own.

Our own program in the style of makemore part 5 (see README.md): eight characters of context, merged two
at a time by FlattenConsecutive, BatchNorm1d that normalises (N, C) and (N, L, C) inputs, a Sequential
container, a short training run, eval mode and sampling, on 500 names.
"""
# %% data: eight characters of context
import random
import torch
import torch.nn.functional as F

names = open('names.txt').read().splitlines()
alphabet = sorted(set(''.join(names)))
char_to_id = {ch: k + 1 for k, ch in enumerate(alphabet)}
char_to_id['.'] = 0
id_to_char = {k: ch for ch, k in char_to_id.items()}
CONTEXT, VOCAB = 8, 27


def windows(some_names):
    inputs, targets = [], []
    for name in some_names:
        window = [0] * CONTEXT
        for ch in name + '.':
            inputs.append(window)
            targets.append(char_to_id[ch])
            window = window[1:] + [char_to_id[ch]]
    return torch.tensor(inputs), torch.tensor(targets)


subset = names[:500]
random.seed(11)
random.shuffle(subset)
Xtr, Ytr = windows(subset[:450])
Xva, Yva = windows(subset[450:])
print(Xtr.shape, Ytr.shape, Xva.shape)
for row, target in zip(Xtr[:3].tolist(), Ytr[:3].tolist()):
    print(''.join(id_to_char[k] for k in row), '->', id_to_char[target])

# %% the layers
gen = torch.Generator().manual_seed(42)


class Layer:
    """Keeps its last output in .out; .params are what training updates; .training switches batch norm."""
    params = ()
    training = True

    def __call__(self, x):
        self.out = self.forward(x)
        return self.out


class Embedding(Layer):
    def __init__(self, count, dim):
        self.table = torch.randn((count, dim), generator=gen)
        self.params = [self.table]

    def forward(self, ix):
        return self.table[ix]


class Linear(Layer):
    def __init__(self, fan_in, fan_out, bias=True):
        self.w = torch.randn((fan_in, fan_out), generator=gen) / fan_in**0.5
        self.b = torch.zeros(fan_out) if bias else None
        self.params = [self.w] if self.b is None else [self.w, self.b]

    def forward(self, x):
        return x @ self.w if self.b is None else x @ self.w + self.b


class BatchNorm1d(Layer):
    """Statistics over the batch, and over the positions too when the input is (N, L, C)."""

    def __init__(self, channels, eps=1e-5, momentum=0.1):
        self.eps, self.momentum = eps, momentum
        self.scale, self.shift = torch.ones(channels), torch.zeros(channels)
        self.params = [self.scale, self.shift]
        self.mean_estimate, self.var_estimate = torch.zeros(channels), torch.ones(channels)

    def forward(self, x):
        if not self.training:
            mean, var = self.mean_estimate, self.var_estimate
        else:
            over = 0 if x.ndim == 2 else (0, 1)
            mean, var = x.mean(over, keepdim=True), x.var(over, keepdim=True)
            with torch.no_grad():
                keep = 1 - self.momentum
                self.mean_estimate = keep * self.mean_estimate + self.momentum * mean
                self.var_estimate = keep * self.var_estimate + self.momentum * var
        return self.scale * ((x - mean) / torch.sqrt(var + self.eps)) + self.shift


class Tanh(Layer):
    def forward(self, x):
        return torch.tanh(x)


class FlattenConsecutive(Layer):
    """(B, T, C) -> (B, T/n, C*n): n neighbouring positions side by side; (B, C*n) once one is left."""

    def __init__(self, n):
        self.n = n

    def forward(self, x):
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        return x.squeeze(1) if x.shape[1] == 1 else x


class Sequential(Layer):
    def __init__(self, layers):
        self.layers = layers
        self.params = [p for layer in layers for p in layer.params]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


# %% the model: three merges of two
n_embd, n_hidden = 10, 48


def merge(fan_in):
    """Two neighbours side by side, then a hidden layer over them."""
    return [FlattenConsecutive(2), Linear(fan_in * 2, n_hidden, bias=False), BatchNorm1d(n_hidden), Tanh()]


model = Sequential([Embedding(VOCAB, n_embd)] + merge(n_embd) + merge(n_hidden) + merge(n_hidden)
                   + [Linear(n_hidden, VOCAB)])
with torch.no_grad():
    model.layers[-1].w *= 0.1                     # a less confident start
params = model.params
for p in params:
    p.requires_grad = True
print('parameters', sum(p.nelement() for p in params))

# %% one batch through, layer by layer
ix = torch.randint(0, Xtr.shape[0], (4,), generator=gen)
logits = model(Xtr[ix])
print(Xtr[ix].shape, logits.shape)
for layer in model.layers:
    print(f'{layer.__class__.__name__:>18}: {tuple(layer.out.shape)}')
bn = model.layers[3]
print('per-channel estimates', bn.mean_estimate.shape, bn.var_estimate[0, 0, :3])

# %% a flatten by hand: the same as view
e = torch.randn(4, 8, 10, generator=gen)
by_cat = torch.cat([e[:, ::2, :], e[:, 1::2, :]], dim=2)
print(by_cat.shape, (e.view(4, 4, 20) == by_cat).all().item())

# %% training
losses = []
for step in range(60):
    ix = torch.randint(0, Xtr.shape[0], (32,), generator=gen)
    loss = F.cross_entropy(model(Xtr[ix]), Ytr[ix])
    for p in params:
        p.grad = None
    loss.backward()
    lr = 0.1 if step < 45 else 0.01
    for p in params:
        p.data += -lr * p.grad
    losses.append(loss.log10().item())
    if step % 15 == 0:
        print(step, loss.item())
avg = torch.tensor(losses).view(-1, 15).mean(1)
print('mean log10 loss per 15 steps', avg)

# %% eval mode: running statistics
for layer in model.layers:
    layer.training = False


@torch.no_grad()
def split_loss(inputs, targets):
    return F.cross_entropy(model(inputs), targets).item()


print('train', split_loss(Xtr, Ytr))
print('val', split_loss(Xva, Yva))

# %% sampling
for _ in range(5):
    window, out = [0] * CONTEXT, []
    while True:
        logits = model(torch.tensor([window]))
        probs = F.softmax(logits, dim=1)
        nxt = torch.multinomial(probs, num_samples=1, generator=gen).item()
        window = window[1:] + [nxt]
        if nxt == 0:
            break
        out.append(id_to_char[nxt])
    print(''.join(out))

"""Initialisation, batch normalisation and the statistics that show a net is healthy.

Our own program in the style of makemore part 3 (see README.md): first a one-hidden-layer MLP whose
batch norm is written out by hand (batch mean/std, running estimates under no_grad, a calibration pass),
then a deeper stack of small layer classes whose activations, gradients and update-to-data ratios we
measure, on 500 names and a few dozen steps.
"""
# %% data
import random
import torch
import torch.nn.functional as F

names = open('names.txt').read().splitlines()
alphabet = sorted(set(''.join(names)))
char_to_id = {ch: k + 1 for k, ch in enumerate(alphabet)}
char_to_id['.'] = 0
CONTEXT, VOCAB = 3, 27


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
random.seed(7)
random.shuffle(subset)
Xtr, Ytr = windows(subset[:400])
Xva, Yva = windows(subset[400:])
print(Xtr.shape, Xva.shape)

# %% what loss a uniform guess gives, and what a too-confident init gives
print('uniform', -torch.tensor(1 / VOCAB).log().item())
confident = torch.tensor([[0.0, 0.0, 8.0, 0.0]])
print('wrong and confident', F.cross_entropy(confident, torch.tensor([1])).item())
print('right and confident', F.cross_entropy(confident, torch.tensor([2])).item())

# %% a tanh layer fed by Kaiming-scaled weights keeps unit-ish statistics
gen = torch.Generator().manual_seed(2147483647)
x = torch.randn(1000, 30, generator=gen)
for scale in [1.0, (5 / 3) / 30**0.5]:
    w = torch.randn(30, 200, generator=gen) * scale
    pre = x @ w
    print(f'scale {scale:.4f}: pre std {pre.std().item():.4f}',
          f'tanh std {torch.tanh(pre).std().item():.4f}',
          f'saturated {(torch.tanh(pre).abs() > 0.97).float().mean().item():.4f}')

# %% parameters of the hand-written batch-norm MLP
n_embd, n_hidden = 10, 100
gen = torch.Generator().manual_seed(2147483647)
C = torch.randn((VOCAB, n_embd), generator=gen)
W1 = torch.randn((n_embd * CONTEXT, n_hidden), generator=gen) * (5 / 3) / (n_embd * CONTEXT)**0.5
W2 = torch.randn((n_hidden, VOCAB), generator=gen) * 0.01
b2 = torch.randn(VOCAB, generator=gen) * 0
bngain = torch.ones((1, n_hidden))
bnbias = torch.zeros((1, n_hidden))
bnmean_running = torch.zeros((1, n_hidden))
bnstd_running = torch.ones((1, n_hidden))
params = [C, W1, W2, b2, bngain, bnbias]
for p in params:
    p.requires_grad = True
print('parameters', sum(p.nelement() for p in params))

# %% training, with running statistics kept beside the batch ones
for step in range(80):
    ix = torch.randint(0, Xtr.shape[0], (32,), generator=gen)
    pre = C[Xtr[ix]].view(32, -1) @ W1            # no bias: the batch mean would remove it
    mean = pre.mean(0, keepdim=True)
    std = pre.std(0, keepdim=True)
    pre = bngain * (pre - mean) / std + bnbias
    with torch.no_grad():
        bnmean_running = 0.999 * bnmean_running + 0.001 * mean
        bnstd_running = 0.999 * bnstd_running + 0.001 * std
    h = torch.tanh(pre)
    loss = F.cross_entropy(h @ W2 + b2, Ytr[ix])
    for p in params:
        p.grad = None
    loss.backward()
    for p in params:
        p.data += -0.1 * p.grad
    if step % 20 == 0:
        print(step, loss.item(), 'batch mean[:3]', mean[0, :3].tolist())
print('gain and bias after training', bngain[0, :4], bnbias[0, :4])

# %% calibrate the statistics on the whole training set, compare with the running ones
with torch.no_grad():
    pre = C[Xtr].view(Xtr.shape[0], -1) @ W1
    bnmean = pre.mean(0, keepdim=True)
    bnstd = pre.std(0, keepdim=True)
print('calibrated', bnmean.shape, bnmean[0, :4], bnstd[0, :4])
print('running   ', bnmean_running[0, :4], bnstd_running[0, :4])


@torch.no_grad()
def split_loss(inputs, targets, mean, std):
    pre = C[inputs].view(inputs.shape[0], -1) @ W1
    h = torch.tanh(bngain * (pre - mean) / std + bnbias)
    return F.cross_entropy(h @ W2 + b2, targets).item()


print('val with calibrated stats', split_loss(Xva, Yva, bnmean, bnstd))
print('val with running stats', split_loss(Xva, Yva, bnmean_running, bnstd_running))

# %% the layer classes of a deeper net
class Layer:
    """Keeps its last output in .out (the statistics below read it); .params are what training updates."""
    params = ()
    training = True

    def __call__(self, x):
        self.out = self.forward(x)
        return self.out


class Linear(Layer):
    def __init__(self, fan_in, fan_out, gain=1.0):
        self.w = torch.randn((fan_in, fan_out), generator=gen) * gain / fan_in**0.5
        self.params = [self.w]                     # no bias: a batch norm follows every Linear here

    def forward(self, x):
        return x @ self.w


class BatchNorm1d(Layer):
    def __init__(self, channels, eps=1e-5, momentum=0.1):
        self.eps, self.momentum = eps, momentum
        self.scale, self.shift = torch.ones(channels), torch.zeros(channels)
        self.params = [self.scale, self.shift]
        self.mean_estimate, self.var_estimate = torch.zeros(channels), torch.ones(channels)

    def forward(self, x):
        if not self.training:
            return self.scale * (x - self.mean_estimate) / torch.sqrt(self.var_estimate + self.eps) + self.shift
        mean, var = x.mean(0, keepdim=True), x.var(0, keepdim=True)
        with torch.no_grad():
            keep = 1 - self.momentum
            self.mean_estimate = keep * self.mean_estimate + self.momentum * mean
            self.var_estimate = keep * self.var_estimate + self.momentum * var
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift


class Tanh(Layer):
    def forward(self, x):
        return torch.tanh(x)


gen = torch.Generator().manual_seed(2147483647)
width = 64
C = torch.randn((VOCAB, n_embd), generator=gen)
fan_ins = [n_embd * CONTEXT, width, width]
layers = []
for fan_in in fan_ins:
    layers += [Linear(fan_in, width, gain=5 / 3), BatchNorm1d(width), Tanh()]   # 5/3: tanh's gain
layers += [Linear(width, VOCAB), BatchNorm1d(VOCAB)]
with torch.no_grad():
    layers[-1].scale *= 0.1                        # a less confident last layer at the start
params = [C] + [p for layer in layers for p in layer.params]
for p in params:
    p.requires_grad = True
print('layers', len(layers), 'parameters', sum(p.nelement() for p in params))

# %% training the deeper net, keeping update-to-data ratios
ratios = []
for step in range(40):
    ix = torch.randint(0, Xtr.shape[0], (32,), generator=gen)
    x = C[Xtr[ix]].view(32, -1)
    for layer in layers:
        x = layer(x)
    loss = F.cross_entropy(x, Ytr[ix])
    for layer in layers:
        layer.out.retain_grad()                    # to look at the gradients of activations below
    for p in params:
        p.grad = None
    loss.backward()
    lr = 0.1
    for p in params:
        p.data += -lr * p.grad
    with torch.no_grad():
        ratios.append([((lr * p.grad).std() / p.data.std()).log10().item() for p in params if p.ndim == 2])
    if step % 10 == 0:
        print(step, loss.item())

# %% activation statistics of the tanh layers
for k, layer in enumerate(layers[:-1]):
    if isinstance(layer, Tanh):
        t = layer.out
        print(f'layer {k}: mean {t.mean().item():+.4f}, std {t.std().item():.4f},',
              f'saturated {(t.abs() > 0.97).float().mean().item() * 100:.2f}%')
        hist, edges = torch.histogram(t.detach(), density=True)
        print('   ', hist.shape, edges.shape, edges[0].item(), edges[-1].item(), hist[45:50])

# %% gradient statistics of the tanh layers
for k, layer in enumerate(layers[:-1]):
    if isinstance(layer, Tanh):
        t = layer.out.grad
        print(f'layer {k}: grad mean {t.mean().item():+e}, grad std {t.std().item():e}')
        hist, edges = torch.histogram(t, density=True)     # a .grad records nothing
        print('   ', hist.shape, hist.sum().item() * (edges[1] - edges[0]).item())

# %% weight gradients: their scale against the data's
for k, p in enumerate(params):
    if p.ndim == 2:
        print(f'param {k} {tuple(p.shape)}: grad mean {p.grad.mean().item():+e}',
              f'std {p.grad.std().item():e} grad:data {(p.grad.std() / p.data.std()).item():e}')
print('last update ratios (log10)', [round(r, 3) for r in ratios[-1]])
print('mean log10 ratio of the second Linear', sum(r[2] for r in ratios) / len(ratios))

# %% eval mode: the running statistics replace the batch ones
for layer in layers:
    if isinstance(layer, BatchNorm1d):
        layer.training = False
with torch.no_grad():
    x = C[Xva].view(Xva.shape[0], -1)
    for layer in layers:
        x = layer(x)
    print('val loss', F.cross_entropy(x, Yva).item())
print('variance estimate of layer 1', layers[1].var_estimate.shape, layers[1].var_estimate[0, :4])

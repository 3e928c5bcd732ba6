"""Backpropagation by hand through an MLP with batch norm, checked against autograd piece by piece.

Our own program in the style of makemore part 4 (see README.md): the forward pass is cut into small named
steps, each step's gradient is derived by hand (the local derivative times the gradient from above,
summed over broadcast dimensions), then the fused cross-entropy and batch-norm gradients, then a few
training steps with the hand-written backward alone.
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


subset = names[:400]
random.seed(3)
random.shuffle(subset)
Xtr, Ytr = windows(subset)
print(Xtr.shape, Ytr.shape)


def cmp(label, ours, tensor, exact=True):
    """Our gradient against the one autograd left in tensor.grad."""
    same = (ours == tensor.grad).all().item()
    close = torch.allclose(ours, tensor.grad)
    worst = (ours - tensor.grad).abs().max().item()
    flag = f'exact {same}' if exact else 'exact -'
    print(f'{label:>10}: {flag}, allclose {close}, max |diff| {worst:.3e}')


# %% parameters; the output bias and BN terms start random so that every gradient is visible
n_embd, n_hidden, n = 10, 64, 32
gen = torch.Generator().manual_seed(2147483647)
C = torch.randn((VOCAB, n_embd), generator=gen)
W1 = torch.randn((n_embd * CONTEXT, n_hidden), generator=gen) * (5 / 3) / (n_embd * CONTEXT)**0.5
W2 = torch.randn((n_hidden, VOCAB), generator=gen) * 0.1
b2 = torch.randn(VOCAB, generator=gen) * 0.1
gamma = torch.randn((1, n_hidden), generator=gen) * 0.1 + 1.0
beta = torch.randn((1, n_hidden), generator=gen) * 0.1
params = [C, W1, W2, b2, gamma, beta]
for p in params:
    p.requires_grad = True
print('parameters', sum(p.nelement() for p in params))
ix = torch.randint(0, Xtr.shape[0], (n,), generator=gen)
Xb, Yb = Xtr[ix], Ytr[ix]
print(Xb[:2], Yb[:6])

# %% the forward pass in small steps
emb = C[Xb]
flat = emb.view(n, -1)
z = flat @ W1                                    # no bias: the batch mean removes it
mu = 1 / n * z.sum(0, keepdim=True)
zc = z - mu
zc2 = zc**2
var = 1 / (n - 1) * zc2.sum(0, keepdim=True)     # Bessel's correction: divide by n - 1
rstd = (var + 1e-5)**-0.5
zhat = zc * rstd
act = gamma * zhat + beta
h = torch.tanh(act)
logits = h @ W2 + b2
row_max = logits.max(1, keepdim=True).values     # subtracted for stability; changes no probability
shifted = logits - row_max
expd = shifted.exp()
denom = expd.sum(1, keepdims=True)
log_denom = denom.log()
logprobs = shifted - log_denom                   # log softmax: log(e^s / sum e^s) = s - log sum e^s
loss = -logprobs[range(n), Yb].mean()
steps = [emb, flat, z, mu, zc, zc2, var, rstd, zhat, act, h, logits, row_max, shifted, expd, denom,
         log_denom, logprobs]
for t in params + steps:
    t.grad = None
for t in steps:
    t.retain_grad()
loss.backward()
print('loss', loss.item(), 'F.cross_entropy', F.cross_entropy(logits, Yb).item())
print([tuple(t.shape) for t in steps])

# %% the gradients by hand, from the loss back to the embedding table
d_logprobs = torch.zeros_like(logprobs)
d_logprobs[range(n), Yb] = -1.0 / n                 # only the picked entries reach the mean
d_log_denom = -d_logprobs.sum(1, keepdim=True)     # subtracted from a whole row: the row's sum
d_denom = d_log_denom / denom                       # d log(x) = 1/x
d_expd = torch.ones_like(expd) * d_denom            # every entry of a row adds to its denominator
d_shifted = d_logprobs + expd * d_expd              # directly, and through exp: d exp(x) = exp(x)
d_row_max = -d_shifted.sum(1, keepdim=True)
d_logits = d_shifted.clone()
d_logits += F.one_hot(logits.max(1).indices, num_classes=VOCAB) * d_row_max
d_h = d_logits @ W2.T
d_W2 = h.T @ d_logits
d_b2 = d_logits.sum(0)
d_act = (1.0 - h**2) * d_h                          # d tanh(x) = 1 - tanh(x)^2
d_gamma = (zhat * d_act).sum(0, keepdim=True)
d_beta = d_act.sum(0, keepdim=True)
d_zhat = gamma * d_act
d_rstd = (zc * d_zhat).sum(0, keepdim=True)
d_zc = rstd * d_zhat
d_var = -0.5 * (var + 1e-5)**-1.5 * d_rstd
d_zc2 = 1 / (n - 1) * torch.ones_like(zc2) * d_var
d_zc = d_zc + 2 * zc * d_zc2
d_mu = -d_zc.sum(0, keepdim=True)
d_z = d_zc + 1 / n * torch.ones_like(z) * d_mu
d_flat = d_z @ W1.T
d_W1 = flat.T @ d_z
d_emb = d_flat.view(emb.shape)
d_C = torch.zeros_like(C)
for row in range(n):
    for col in range(CONTEXT):
        d_C[Xb[row, col]] += d_emb[row, col]      # a repeated character adds up

# %% the comparison, step by step
# Steps whose gradient torch's autograd computes with exactly the operations written above: there the
# hand-written gradient is bit-equal; from tanh down its fused kernels round differently, and only
# closeness is a property of the maths.
EXACT = ('logprobs', 'log_denom', 'denom', 'expd', 'shifted', 'row_max', 'logits', 'h', 'W2', 'b2')
for label, ours, t in [('logprobs', d_logprobs, logprobs), ('log_denom', d_log_denom, log_denom),
                       ('denom', d_denom, denom),
                       ('expd', d_expd, expd), ('shifted', d_shifted, shifted), ('row_max', d_row_max, row_max),
                       ('logits', d_logits, logits), ('h', d_h, h), ('W2', d_W2, W2), ('b2', d_b2, b2),
                       ('act', d_act, act), ('gamma', d_gamma, gamma), ('beta', d_beta, beta),
                       ('zhat', d_zhat, zhat), ('rstd', d_rstd, rstd), ('var', d_var, var), ('zc2', d_zc2, zc2),
                       ('zc', d_zc, zc), ('mu', d_mu, mu), ('z', d_z, z), ('flat', d_flat, flat),
                       ('W1', d_W1, W1), ('emb', d_emb, emb), ('C', d_C, C)]:
    cmp(label, ours, t, exact=label in EXACT)
# the max only shifts every logit of its row: the loss does not depend on it
print('row_max gradient is rounding noise:', (d_row_max.abs() < 1e-6).all().item(), d_row_max.shape)

# %% cross entropy in one step: softmax minus the one-hot target, over n
with torch.no_grad():
    fused_loss = F.cross_entropy(logits, Yb)
    d_logits_fused = F.softmax(logits, 1)
    d_logits_fused[range(n), Yb] -= 1
    d_logits_fused /= n
print('fused loss', fused_loss.item(), 'difference', (fused_loss - loss).item())
cmp('logits*', d_logits_fused, logits, exact=False)
print('each row of the gradient sums to zero:', (d_logits_fused.sum(1).abs() < 1e-6).all().item())

# %% batch norm in one step
with torch.no_grad():
    act_fused = gamma * (z - z.mean(0, keepdim=True)) / torch.sqrt(z.var(0, keepdim=True) + 1e-5) + beta
    d_z_fused = gamma * rstd / n * (n * d_act - d_act.sum(0) - n / (n - 1) * zhat * (d_act * zhat).sum(0))
print('forward max |diff|', (act_fused - act).abs().max().item() < 1e-5)
print(d_z_fused.shape)
cmp('z*', d_z_fused, z, exact=False)

# %% training with the hand-written backward only
with torch.no_grad():
    for step in range(40):
        ix = torch.randint(0, Xtr.shape[0], (n,), generator=gen)
        Xb, Yb = Xtr[ix], Ytr[ix]
        emb = C[Xb]
        flat = emb.view(n, -1)
        z = flat @ W1
        mu = z.mean(0, keepdim=True)
        var = z.var(0, keepdim=True, unbiased=True)
        rstd = (var + 1e-5)**-0.5
        zhat = (z - mu) * rstd
        h = torch.tanh(gamma * zhat + beta)
        logits = h @ W2 + b2
        loss = F.cross_entropy(logits, Yb)
        d_logits = F.softmax(logits, 1)
        d_logits[range(n), Yb] -= 1
        d_logits /= n
        d_h = d_logits @ W2.T
        d_act = (1.0 - h**2) * d_h
        d_z = gamma * rstd / n * (n * d_act - d_act.sum(0) - n / (n - 1) * zhat * (d_act * zhat).sum(0))
        d_emb = (d_z @ W1.T).view(emb.shape)
        d_C = torch.zeros_like(C)
        for row in range(n):
            for col in range(CONTEXT):
                d_C[Xb[row, col]] += d_emb[row, col]
        grads = [d_C, flat.T @ d_z, h.T @ d_logits, d_logits.sum(0),
                 (zhat * d_act).sum(0, keepdim=True), d_act.sum(0, keepdim=True)]
        for p, g in zip(params, grads):
            p.data += -0.1 * g
        if step % 10 == 0:
            print(step, loss.item())
print('after training', loss.item(), [tuple(g.shape) for g in grads])

"""A character-level MLP: three previous characters, each embedded in 10 dimensions, one tanh layer.

Our own program in the style of makemore part 2 (see README.md): dataset of context windows, embedding
lookup, a learning-rate sweep, minibatch training, split losses and sampling, on 600 names.
"""
# %% data: context windows of three characters
import random
import torch
import torch.nn.functional as F

names = open('names.txt').read().splitlines()
alphabet = sorted(set(''.join(names)))
char_to_id = {ch: k + 1 for k, ch in enumerate(alphabet)}
char_to_id['.'] = 0
id_to_char = {k: ch for ch, k in char_to_id.items()}
CONTEXT = 3


def windows(some_names):
    inputs, targets = [], []
    for name in some_names:
        window = [0] * CONTEXT
        for ch in name + '.':
            inputs.append(window)
            targets.append(char_to_id[ch])
            window = window[1:] + [char_to_id[ch]]
    return torch.tensor(inputs), torch.tensor(targets)


X, Y = windows(names[:4])
print(X.shape, X.dtype, Y.shape, Y.dtype)
for row, target in zip(X[:6].tolist(), Y[:6].tolist()):
    print(''.join(id_to_char[k] for k in row), '->', id_to_char[target])

# %% train / dev / test splits of a shuffled subset
subset = names[:600]
random.seed(42)
random.shuffle(subset)
cut1, cut2 = int(0.8 * len(subset)), int(0.9 * len(subset))
Xtr, Ytr = windows(subset[:cut1])
Xdev, Ydev = windows(subset[cut1:cut2])
Xte, Yte = windows(subset[cut2:])
print('train', Xtr.shape, 'dev', Xdev.shape, 'test', Xte.shape)

# %% the embedding lookup
gen = torch.Generator().manual_seed(2147483647)
C = torch.randn((27, 10), generator=gen)
print(C[5], F.one_hot(torch.tensor(5), num_classes=27).float() @ C)
emb = C[X]
print('emb', emb.shape, emb[2, 1], C[X[2, 1]])
print(emb.view(-1, 30).shape, emb.view(emb.shape[0], 30)[0, :4], torch.cat(torch.unbind(emb, 1), 1).shape)

# %% the network by hand for the small set
W1 = torch.randn((30, 100), generator=gen)
b1 = torch.randn(100, generator=gen)
h = torch.tanh(emb.view(-1, 30) @ W1 + b1)
W2 = torch.randn((100, 27), generator=gen)
b2 = torch.randn(27, generator=gen)
logits = h @ W2 + b2
counts = logits.exp()
prob = counts / counts.sum(1, keepdims=True)
by_hand = -prob[torch.arange(X.shape[0]), Y].log().mean()
print(h.shape, logits.shape, 'loss by hand', by_hand.item())
print('F.cross_entropy', F.cross_entropy(logits, Y).item())

# %% parameters of the real model
gen = torch.Generator().manual_seed(2147483647)
C = torch.randn((27, 10), generator=gen)
W1 = torch.randn((30, 200), generator=gen) * 0.2
b1 = torch.randn(200, generator=gen) * 0.01
W2 = torch.randn((200, 27), generator=gen) * 0.01
b2 = torch.randn(27, generator=gen) * 0
params = [C, W1, b1, W2, b2]
for p in params:
    p.requires_grad = True
print('parameters', sum(p.nelement() for p in params))


def forward(inputs):
    hidden = torch.tanh(C[inputs].view(-1, 30) @ W1 + b1)
    return hidden @ W2 + b2


def sgd_step(lr, batch=32):
    ix = torch.randint(0, Xtr.shape[0], (batch,), generator=gen)
    loss = F.cross_entropy(forward(Xtr[ix]), Ytr[ix])
    for p in params:
        p.grad = None
    loss.backward()
    for p in params:
        p.data += -lr * p.grad
    return loss


# %% sweep the learning rate exponent from -3 to 0
lre = torch.linspace(-3, 0, 40)
lrs = 10**lre
print(lre[:3], lrs[-3:])
swept = []
for k in range(40):
    swept.append(sgd_step(lrs[k].item()).item())
best = min(range(40), key=lambda k: swept[k])
print('losses', [round(v, 3) for v in swept[::8]])
print('best exponent', lre[best].item())

# %% minibatch training
for step in range(150):
    lr = 0.1 if step < 100 else 0.01
    loss = sgd_step(lr)
    if step % 30 == 0:
        print(step, loss.item())
print('last minibatch', loss)

# %% losses on each split, without recording
with torch.no_grad():
    for label, inputs, targets in [('train', Xtr, Ytr), ('dev', Xdev, Ydev), ('test', Xte, Yte)]:
        print(label, F.cross_entropy(forward(inputs), targets).item())
print('C.grad', C.grad.shape, C.grad.abs().sum().item() > 0)

# %% sampling
gen = torch.Generator().manual_seed(2147483647 + 10)
for _ in range(6):
    window, out = [0] * CONTEXT, []
    while True:
        logits = forward(torch.tensor([window]))
        probs = F.softmax(logits, dim=1)
        nxt = torch.multinomial(probs, num_samples=1, generator=gen).item()
        window = window[1:] + [nxt]
        if nxt == 0:
            break
        out.append(id_to_char[nxt])
    print(''.join(out))

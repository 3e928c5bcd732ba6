"""A bigram character model of names, two ways: a table of counts and a one-layer net on one-hot inputs.

Our own program in the style of makemore part 1 (see README.md): the same torch calls and the same kinds
of steps, on the first 250 names so that it runs in a second.
"""
# %% vocabulary
import torch
import torch.nn.functional as F

names = open('names.txt').read().splitlines()
alphabet = sorted(set(''.join(names)))           # the vocabulary comes from every name ...
names = names[:250]                              # ... the statistics from a few
char_to_id = {ch: k + 1 for k, ch in enumerate(alphabet)}
char_to_id['.'] = 0                              # one token both opens and closes a name
id_to_char = {k: ch for ch, k in char_to_id.items()}
V = len(char_to_id)
print('names:', len(names), 'vocabulary:', V)
print('shortest', min(map(len, names)), 'longest', max(map(len, names)))
print(names[:4], id_to_char[1], id_to_char[V - 1])

# %% count every bigram into an int32 table
N = torch.zeros((V, V), dtype=torch.int32)
for name in names:
    padded = '.' + name + '.'
    for first, second in zip(padded, padded[1:]):
        N[char_to_id[first], char_to_id[second]] += 1
print(N.dtype, N.shape, 'bigrams counted:', N.sum().item())
print('row of the start token:', N[0])
print('first column, first ten rows:', N[:10, 0])
ranked = sorted(((N[r, c].item(), id_to_char[r] + id_to_char[c]) for r in range(V) for c in range(V)),
                reverse=True)
print('most common:', ranked[:6])
print('bigrams never seen:', (N == 0).sum().item())

# %% rows normalised into next-character distributions
P = (N + 1).float()                              # add-one smoothing: no bigram has probability zero
P /= P.sum(1, keepdim=True)                      # each row sums to one
print(P.dtype, P.shape)
print('row sums:', P.sum(1)[:5])
print('after "a":', P[char_to_id['a'], :6])
print('largest entry', P.max().item(), 'smallest', P.min().item())

# %% draw from a small distribution with a seeded generator
gen = torch.Generator().manual_seed(2147483647)
weights = torch.rand(4, generator=gen)
weights = weights / weights.sum()
print('weights', weights)
draws = torch.multinomial(weights, num_samples=12, replacement=True, generator=gen)
print('draws', draws, draws.dtype)

# %% sample names from the table
gen = torch.Generator().manual_seed(2147483647)
for _ in range(6):
    current, out = 0, ''
    while True:
        current = torch.multinomial(P[current], num_samples=1, replacement=True, generator=gen).item()
        if current == 0:
            break
        out += id_to_char[current]
    print('sampled:', out)

# %% how well the table explains the data: the average negative log likelihood
total_logprob = 0.0
pairs = 0
for name in names[:3]:
    padded = '.' + name + '.'
    for first, second in zip(padded, padded[1:]):
        prob = P[char_to_id[first], char_to_id[second]]
        logprob = torch.log(prob)
        total_logprob += logprob
        pairs += 1
        print(f'{first}{second}: {prob.item():.4f} {logprob.item():.4f}')
nll = -total_logprob
print('nll', nll, 'per pair', (nll / pairs).item())

# %% the same for all names at once
xs, ys = [], []
for name in names:
    padded = '.' + name + '.'
    for first, second in zip(padded, padded[1:]):
        xs.append(char_to_id[first])
        ys.append(char_to_id[second])
xs = torch.tensor(xs)
ys = torch.tensor(ys)
count = xs.nelement()
print('examples', count, xs.dtype, xs.shape, ys[:8])
table_loss = -P.log()[xs, ys].mean()
print('table loss', table_loss.item())

# %% one-hot inputs and a random weight matrix
xenc = F.one_hot(xs, num_classes=V).float()
print(xenc.shape, xenc.dtype, xenc[:3].sum(1), xenc[0, :5])
gen = torch.Generator().manual_seed(2147483647)
W = torch.randn((V, V), generator=gen, requires_grad=True)
print(W.shape, W.requires_grad, W.is_leaf)
logits = xenc @ W                                # log-counts
counts = logits.exp()
probs = counts / counts.sum(1, keepdims=True)    # softmax, written out
print(probs.shape, probs[0, :4], probs[0].sum().item())

# %% gradient descent on the bigram net
for step in range(30):
    logits = xenc @ W
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    loss = -probs[torch.arange(count), ys].log().mean() + 0.01 * (W**2).mean()
    W.grad = None
    loss.backward()
    W.data += -50 * W.grad
    if step % 5 == 0:
        print(step, loss.item())
print('final loss', loss)
print('gradient', W.grad.shape, W.grad.abs().max().item(), W.grad[0, :4])

# %% the net's picks for the first three inputs, and the same via F.softmax
with torch.no_grad():
    first = F.softmax(xenc[:3] @ W, dim=1)
    by_hand = (xenc[:3] @ W).exp()
    by_hand = by_hand / by_hand.sum(1, keepdims=True)
print(first.argmax(1), first.max(1).values, first.requires_grad)
print(torch.allclose(first, by_hand), (first - by_hand).abs().max().item() < 1e-6)

# %% sample from the net
gen = torch.Generator().manual_seed(2147483647)
for _ in range(5):
    current, out = 0, []
    while True:
        row = F.one_hot(torch.tensor([current]), num_classes=V).float()
        p = (row @ W).exp()
        p = p / p.sum(1, keepdims=True)
        current = torch.multinomial(p, num_samples=1, replacement=True, generator=gen).item()
        if current == 0:
            break
        out.append(id_to_char[current])
    print('net sampled:', ''.join(out))

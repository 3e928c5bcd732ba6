"""A two-moons classifier trained with a max-margin loss, in the spirit of micrograd's demo.

Our own program (see README.md): the points come from numpy with a fixed seed, the 2-16-16-1 MLP lives
in tensors, the loss is the SVM hinge plus L2 regularisation, the optimiser plain SGD with a decaying
step.
"""
# %% data: two interleaved half circles with noise
import numpy as np
import torch

rng = np.random.default_rng(1337)
half = 50
angle = rng.uniform(0, np.pi, size=half)
upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
points = np.concatenate([upper, lower]) + rng.normal(scale=0.1, size=(2 * half, 2))
labels = np.concatenate([np.ones(half), -np.ones(half)])
X = torch.tensor(points, dtype=torch.float32)
y = torch.tensor(labels, dtype=torch.float32).view(-1, 1)
print(X.shape, X.dtype, y.shape, y[:3].view(-1), y.sum().item())
print('ranges', X.min(0).values, X.max(0).values)

# %% the model: 2-16-16-1, relu then tanh
gen = torch.Generator().manual_seed(1337)
sizes = [2, 16, 16, 1]
weights = [torch.randn((a, b), generator=gen) * (1 / a**0.5) for a, b in zip(sizes, sizes[1:])]
biases = [torch.zeros(b) for b in sizes[1:]]
params = weights + biases
for p in params:
    p.requires_grad = True
print('parameters', sum(p.nelement() for p in params))


def scores_of(inputs):
    h = (inputs @ weights[0] + biases[0]).relu()
    h = torch.tanh(h @ weights[1] + biases[1])
    return h @ weights[2] + biases[2]


def objective():
    scores = scores_of(X)
    margin_loss = (1 + -y * scores).relu().mean()
    reg = 1e-4 * sum((p * p).sum() for p in params)
    accuracy = ((scores > 0) == (y > 0)).float().mean()
    return margin_loss + reg, accuracy


loss, accuracy = objective()
print('initial', loss, accuracy)

# %% SGD with a step that decays from 1.0 to 0.1
steps = 40
for k in range(steps):
    loss, accuracy = objective()
    for p in params:
        p.grad = None
    loss.backward()
    lr = 1.0 - 0.9 * k / steps
    for p in params:
        p.data -= lr * p.grad
    if k % 5 == 0:
        print(f'step {k} loss {loss.item():.6f}, accuracy {accuracy.item() * 100:.1f}%')
print('final', loss.item(), accuracy.item())

# %% the decision boundary on a grid, without recording
xs, ys = np.meshgrid(np.linspace(-1.5, 2.5, 25), np.linspace(-1.0, 1.5, 20))
grid = torch.tensor(np.stack([xs.ravel(), ys.ravel()], axis=1), dtype=torch.float32)
with torch.no_grad():
    grid_scores = scores_of(grid)
print(grid.shape, grid_scores.shape, grid_scores.requires_grad)
print('share of the plane called positive', (grid_scores > 0).float().mean().item())
print('score range', grid_scores.min().item(), grid_scores.max().item())

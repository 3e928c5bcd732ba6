"""Scalar autograd checks in the spirit of micrograd's engine tests, on 0-d tensors.

Our own expressions (see README.md): each builds a small graph of scalars with +, -, *, /, **, relu and
tanh, runs backward, and prints the values and gradients, which a scalar engine must reproduce.
"""
# %% a neuron: two inputs, two weights, a bias, tanh
import torch

x1 = torch.tensor(2.0, requires_grad=True)
x2 = torch.tensor(0.0, requires_grad=True)
w1 = torch.tensor(-3.0, requires_grad=True)
w2 = torch.tensor(1.0, requires_grad=True)
b = torch.tensor(6.8813735870195432, requires_grad=True)
n = x1 * w1 + x2 * w2 + b
o = torch.tanh(n)
o.backward()
print('o', o.data.item(), o.shape, o.dtype, o.requires_grad)
for label, t in [('x1', x1), ('x2', x2), ('w1', w1), ('w2', w2), ('b', b)]:
    print(label, t.grad.item())

# %% the same neuron in float64, tanh through exp
x1, x2, w1, w2, b = (torch.tensor(v, dtype=torch.double, requires_grad=True)
                     for v in (2.0, 0.0, -3.0, 1.0, 6.8813735870195432))
n = x1 * w1 + x2 * w2 + b
e = (2 * n).exp()
o = (e - 1) / (e + 1)
o.backward()
print('o', o.data.item(), o.dtype)
print('grads', x1.grad.item(), x2.grad.item(), w1.grad.item(), w2.grad.item(), b.grad.item())

# %% relu, powers and reuse of one node
a = torch.tensor(-3.0, dtype=torch.double, requires_grad=True)
c = 2 * a + 1
d = c * a + c.relu()
d = d + (a * d).relu() + d * 3
e = (d - a).relu() ** 2
e.backward()
print('e', e.data.item(), 'a.grad', a.grad.item())

# %% a longer expression: division, negative powers, subtraction from a constant
p = torch.tensor(-2.5, dtype=torch.double, requires_grad=True)
q = torch.tensor(1.5, dtype=torch.double, requires_grad=True)
r = p * q + q**3
r = r + 1 + r + (-p)
s = r * 2 + (q + p).relu()
s = s + 3 * s + (q - p).relu()
t = s - r * r
t = t + t / 4
u = t / 3.0 + 10.0 / t + (1 - p) ** -2
u.backward()
print('u', u.data.item())
print('p.grad', p.grad.item(), 'q.grad', q.grad.item())

# %% gradients of intermediate nodes
m = torch.tensor(4.0, requires_grad=True)
k = m * m
k.retain_grad()
j = k / (m + 1)
j.retain_grad()
out = j.relu() - k.relu() * 0.5
out.backward()
print('out', out.item(), 'dk', k.grad.item(), 'dj', j.grad.item(), 'dm', m.grad.item())
print(k.is_leaf, m.is_leaf, out.grad_fn is not None)

# %% accumulation: two backward passes add up
w = torch.tensor(3.0, requires_grad=True)
(w * w).backward()
print('after one', w.grad.item())
(w * 5).backward()
print('after two', w.grad.item())
w.grad = None
(w ** 0.5).backward()
print('after reset', w.grad.item(), w.grad)

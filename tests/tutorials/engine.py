"""Scalar expressions built from double tensors, checked by their values and gradients (micrograd's torch half)."""

import torch

u = torch.Tensor([-3.0]).double()
print(u.dtype, torch.Tensor([1.5]).dtype, torch.Tensor(2, 3).shape)
u.requires_grad = True
s = 3 * u + 1 + u
q = s.relu() + s * u
h = (s * s).relu()
out = h + q + q * u
out.backward()
print("value:", out.data.item(), "grad:", u.grad.item())

m = torch.Tensor([-2.0]).double()
n = torch.Tensor([3.0]).double()
m.requires_grad = True
n.requires_grad = True
c = m + n
d = m * n + n ** 3
c = c + c + 1
c = c + 1 + c + (-m)
d = d + d * 2 + (n + m).relu()
d = d + 3 * d + (n - m).relu()
e = c - d
f = e ** 2
g = f / 2.0
g = g + 10.0 / f
g.backward()
print("g:", round(g.data.item(), 6))
print("dg/dm:", round(m.grad.item(), 6), "dg/dn:", round(n.grad.item(), 6))
print(g.grad_fn, g.grad_fn.next_functions[1][0])

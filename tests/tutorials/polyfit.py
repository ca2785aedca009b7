"""Fit a cubic to cos on [-pi, pi] by gradient descent on tensors (the tensors-and-autograd example's features)."""

import math

import torch

dtype = torch.float
device = torch.device("cpu")
print(device, repr(device), dtype)

xs = torch.linspace(-math.pi, math.pi, 500, device=device, dtype=dtype)
ys = torch.cos(xs)
print("samples:", xs.shape, xs.dtype, ys[0].item() < -0.99)

torch.manual_seed(3)
r = torch.randn((), device=device, dtype=dtype, requires_grad=True)
print("a random scalar:", r.shape, r.dtype, r.requires_grad)

coef = [torch.full((), v, device=device, dtype=dtype, requires_grad=True) for v in (0.5, 0.0, -0.2, 0.0)]
step = 2e-5
for it in range(300):
    pred = coef[0] + coef[1] * xs + coef[2] * xs ** 2 + coef[3] * xs ** 3
    loss = (pred - ys).pow(2).sum()
    if it % 60 == 59:
        print(it, round(loss.item(), 3))
    loss.backward()
    with torch.no_grad():
        for c in coef:
            c -= step * c.grad
            c.grad = None
a, b, c, d = (p.item() for p in coef)
print(f"Result: y = {a:.4f} + {b:.4f} x + {c:.4f} x^2 + {d:.4f} x^3")
print("still a leaf:", coef[0].is_leaf, coef[0].grad)

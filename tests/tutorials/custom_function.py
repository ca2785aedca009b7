"""A custom autograd Function: the cubic Chebyshev polynomial T3(x) = 4x^3 - 3x, with its own backward."""

import math

import torch


class Chebyshev3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 4 * x ** 3 - 3 * x

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        print("  needs_input_grad:", ctx.needs_input_grad)
        return grad_output * (12 * x ** 2 - 3)


t = torch.tensor([0.5, -0.25, 1.0], requires_grad=True)
out = Chebyshev3.apply(t)
print("out:", out)
print("grad_fn:", out.grad_fn)
print("name:", out.grad_fn.name())
print("next:", out.grad_fn.next_functions)
out.sum().backward()
print("grad:", t.grad)

T3 = Chebyshev3.apply
dtype = torch.float
xs = torch.linspace(-1, 1, 200, dtype=dtype)
ys = torch.sin(math.pi / 2 * xs)
a = torch.full((), 0.0, dtype=dtype, requires_grad=True)
b = torch.full((), 1.0, dtype=dtype, requires_grad=True)
c = torch.full((), 0.0, dtype=dtype, requires_grad=True)
d = torch.full((), 0.5, dtype=dtype, requires_grad=True)
lr = 1e-3
for it in range(100):
    pred = a + b * T3(c + d * xs)
    loss = (pred - ys).pow(2).sum()
    if it % 25 == 24:
        print(it, round(loss.item(), 3))
    loss.backward() if it else None
    if not it:
        print("first backward:")
        loss.backward()
    with torch.no_grad():
        for p in (a, b, c, d):
            p -= lr * p.grad
            p.grad = None
print(f"Result: y = {a.item():.3f} + {b.item():.3f} * T3({c.item():.3f} + {d.item():.3f} x)")

"""Which results join the graph: requires_grad propagates from any input that has it."""

import torch

torch.manual_seed(1)
p = torch.rand(3, 3)
q = torch.rand(3, 3)
r = torch.rand((3, 3), requires_grad=True)
print("rand in [0, 1):", bool(((p >= 0) & (p < 1)).all()), p.shape, p.dtype == torch.get_default_dtype())
s = p + q
print(f"p + q requires grad: {s.requires_grad}")
u = p * r
print(f"p * r requires grad: {u.requires_grad}")
print("leaves:", p.is_leaf, r.is_leaf, u.is_leaf)
frozen = torch.ones(2, 2)
print("frozen:", frozen.requires_grad, frozen)
w = torch.zeros((2, 2), requires_grad=True)
v = (frozen * 3 + w).sum()
v.backward()
print("w.grad:", w.grad)
print("frozen.grad:", frozen.grad)
w.requires_grad_(False)
print("after requires_grad_(False):", (w + 1).requires_grad)

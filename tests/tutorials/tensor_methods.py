"""Shape methods, (values, indices) reductions, in-place ops and torch's version counter."""

import torch

x = torch.tensor([[1., 3., 2.], [4., 0., 5.]], requires_grad=True)
print(x.max(dim=1))
print(x.min(0))
print(x.max(1, keepdim=True).values.shape)
print(x.argmax(), x.argmax(dim=0), x.detach().sort(dim=1, descending=True))
shaped = (x.view(3, 2), x.reshape(-1), x.unsqueeze(0), x.unsqueeze(-1).squeeze(-1), x.flatten(), x.mT, x.t(),
          x.square(), x.permute(1, 0))
for y in shaped:
    print(tuple(y.shape), y.grad_fn.name())
total = x.view(6).sum() + x.unsqueeze(0).square().sum() + x.mT.sum() * 2
total.backward()
print(x.grad)

a = torch.ones(3, dtype=torch.float)
w = torch.tensor([1., 2., 3.], dtype=torch.float, requires_grad=True)
loss = (w * a).sum()
a.add_(1)
try:
    loss.backward()
except RuntimeError as e:
    print(e)
a.zero_()
a.fill_(2.0)
a.mul_(3)
a.sub_(1)
a.div_(2)
a.add_(torch.ones(3), alpha=2)
print(a.tolist())
a.clamp_(min=2.0, max=4.0)
print(a.tolist())
a += 1
print(a.tolist())

loss = (w * w).sum()
with torch.no_grad():
    w.mul_(2)
try:
    loss.backward()
except RuntimeError as e:
    print(e)
try:
    w.add_(1)
except RuntimeError as e:
    print(e)

"""Watching and editing gradients with tensor hooks: logging an intermediate's gradient, clipping a
parameter's gradient, scaling a path, and removing a hook again."""

import torch

w = torch.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
b = torch.tensor([0.1, -0.3], requires_grad=True)
inputs = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [3.0, -2.0]])
targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])

log = []
clip = w.register_hook(lambda grad: grad.clamp(-1.0, 1.0))
hidden = inputs @ w + b
hidden.register_hook(lambda grad: log.append(("hidden", grad.norm().item())))
hidden.retain_grad()
act = hidden.tanh()
act.register_hook(lambda grad: grad * 0.5)  # halve the gradient through the activation
loss = ((act - targets) ** 2).mean()
loss.register_hook(lambda grad: print("loss grad:", grad))
loss.backward()
print("loss:", loss)
print("hidden grad norm logged:", [(name, round(v, 4)) for name, v in log])
print("hidden.grad:", hidden.grad)
print("w.grad (clipped):", w.grad)
print("b.grad:", b.grad)

clip.remove()
w.grad = None
b.grad = None
loss = ((inputs @ w + b).tanh() - targets).pow(2).mean()
loss.backward()
print("w.grad (unclipped):", w.grad)

# a hook sees the sum of the gradients from every use of its tensor
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x * 2
y.register_hook(lambda grad: print("y's whole gradient:", grad))
(y.sum() + (y * y).sum()).backward(retain_graph=True)
print(x.grad)
(gx,) = torch.autograd.grad((y ** 3).sum(), x, retain_graph=True)
print(gx)

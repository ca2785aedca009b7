"""A one-layer logistic model, its graph and its gradients (the features of the autograd quickstart)."""

import torch
import torch.nn.functional as F

torch.manual_seed(0)
features = torch.ones(4)
labels = torch.zeros(2)
weights = torch.randn(4, 2, requires_grad=True)
bias = torch.randn(2, requires_grad=True)
print("shapes:", weights.shape, bias.shape, weights.requires_grad)

with torch.no_grad():  # start from known numbers; randn only made the shapes
    weights.copy_(torch.full((4, 2), 0.25))
    bias.copy_(torch.tensor([0.5, -0.5]))

logits = torch.matmul(features, weights) + bias
loss = F.binary_cross_entropy_with_logits(logits, labels)
print("grad_fn of logits:", logits.grad_fn)
print("grad_fn of loss:", loss.grad_fn)
print("next of loss:", loss.grad_fn.next_functions)
print("loss:", loss)
loss.backward()
print("weights.grad:", weights.grad)
print("bias.grad:", bias.grad)

y = torch.matmul(features, weights) + bias
print("tracked:", y.requires_grad)
with torch.no_grad():
    y = torch.matmul(features, weights) + bias
print("inside no_grad:", y.requires_grad)
y = (torch.matmul(features, weights) + bias).detach()
print("detached:", y.requires_grad, y.grad_fn)

grid = torch.eye(3, 4, requires_grad=True)
out = (grid + 1).pow(2).t()
print("out:", out)
print("grad_fn of out:", out.grad_fn, out.grad_fn.name())
out.backward(torch.ones_like(out), retain_graph=True)
print("first call:", grid.grad)
out.backward(torch.ones_like(out), retain_graph=True)
print("second call:", grid.grad)
grid.grad.zero_()
out.backward(torch.ones_like(out), retain_graph=True)
print("after zero_:", grid.grad)

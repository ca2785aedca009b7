"""In-place ops inside a graph: what they record, torch's version counter, the error when backward
needs a value that was overwritten, and the clone() that fixes it."""

import torch

torch.set_default_dtype(torch.float32)  # torch's default (symgrad's is float64): the error texts name it
x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)

h = x * 2
print(h._version, h.grad_fn)
h.add_(1)                      # recorded: h's grad_fn is now an AddBackward0 whose input is the old h
print(h._version, h.grad_fn, h.grad_fn.next_functions[0][0])
h.mul_(x)
h.clamp_(min=-1.0)
h -= 0.25
h /= 2
print(h, h._version)
h.sum().backward()
print("x.grad:", x.grad)

# overwriting a value backward still needs
x.grad = None
e = x.exp()
s = e.sum()
e.zero_()
try:
    s.backward()
except RuntimeError as err:
    print(err)

y = x * 3
loss = (y * y).sum()           # saves y
y.add_(1)
y.mul_(2)
try:
    loss.backward()
except RuntimeError as err:
    print(err)

# the fix: change a copy
y = x * 3
loss = (y * y).sum()
z = y.clone()
z.add_(1)
(loss + z.sum()).backward()
print("x.grad:", x.grad)

# a plain tensor joins the graph through an in-place op
acc = torch.zeros(3)
for k in range(3):
    acc.add_(x * k)
print(acc, acc.is_leaf, acc.grad_fn.next_functions)
x.grad = None
acc.fill_(2.0)
(acc * x).sum().backward()
print("after fill_:", x.grad)

# a leaf that requires grad can only be changed with grad mode off
try:
    x.sub_(1)
except RuntimeError as err:
    print(err)
with torch.no_grad():
    x.sub_(1)
print(x, x._version, x.is_leaf)

# copy_ into a tensor of the graph: the gradient flows to the source, none to the old values
x.grad = None
buffer = x * 2
buffer.copy_(x.exp())
print(buffer.grad_fn, buffer.grad_fn.next_functions, buffer._version)
(buffer * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
print("after copy_:", x.grad)

# a second backward through freed saved values fails; through nodes that saved nothing it runs
s = (x * x).sum()
s.backward()
try:
    s.backward()
except RuntimeError as err:
    print(err)
t = (x + 1).sum()
t.backward()
t.backward()
print("twice:", x.grad)
with torch.set_grad_enabled(False):
    print((x * 2).requires_grad)

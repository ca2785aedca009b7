"""Standardising a batch, a margin loss on sorted scores and a top-1 pick: reductions with dim and
keepdim, std/var with torch's correction, norm, sort and max(dim) with gradients, fancy indexing."""

import torch

scores = torch.tensor([[0.5, 2.0, -1.0, 2.0],
                       [1.5, -0.5, 0.0, 3.0],
                       [-2.0, 1.0, 0.5, 0.25]], requires_grad=True)

centred = scores - scores.mean(dim=1, keepdim=True)
z = centred / scores.std(dim=1, keepdim=True)
print("z =", z)
print("grad_fn chain:", z.grad_fn, z.grad_fn.next_functions[1][0])
spread = scores.var(0, unbiased=False).sum() + scores.std(correction=0)
print("spread:", spread)
lengths = scores.norm(dim=1)
print("row norms:", lengths, lengths.grad_fn.name())
unit = scores / scores.norm(p=2, dim=1, keepdim=True)
print("unit rows:", [round(v, 4) for v in unit.norm(dim=1).tolist()])
peak = scores.amax(dim=(0, 1))
print("peak:", peak, scores.amin(1, keepdim=True).shape, scores.logsumexp(1, keepdim=True).grad_fn.name())

ranked = scores.sort(dim=1, descending=True)
print(ranked.indices)
margin = (ranked.values[:, 0] - ranked.values[:, 1]).clamp(max=1.0)
best = scores.max(dim=1)
print(best.values, best.indices, scores.argmax(dim=1), scores.argmax())
picked = scores[[0, 1, 2], best.indices]
print("picked:", picked)
positive = scores[scores > 0]
print("positive:", positive, positive.grad_fn)
loss = (z ** 2).sum() * 0.1 + spread + lengths.sum() - margin.sum() + picked.sum() + positive.mean() + peak
loss = loss + scores.norm(1) + scores[:, None].sum() + scores.prod(1, keepdim=True).sum() * 0.01
loss.backward()
print("loss:", loss.item())
print("d loss / d scores:", scores.grad)

# second derivatives through a sort and a norm
w = torch.tensor([3.0, 1.0, 2.0], requires_grad=True)
(g,) = torch.autograd.grad((w.sort().values * torch.tensor([1.0, 2.0, 3.0])).sum() * w.norm(), w,
                           create_graph=True)
print(g)
g.sum().backward()
print(w.grad)
print(torch.argmax(scores, dim=1), torch.sort(scores[0].detach()).indices, round(torch.norm(scores).item(), 4))

# the functions as torch spells them: torch.std(t) is the sample estimate, as t.std()
flat = scores.detach().flatten()
print(torch.std(flat), torch.var(flat), torch.std(flat, unbiased=False), torch.var(scores, 1, keepdim=True))
print(torch.std(scores, dim=0, correction=0), flat.std())
clipped = torch.clamp(scores, min=0.0) + torch.clip(scores, -0.5, 0.5) + torch.clamp(scores, max=1.0)
print(clipped.grad_fn.next_functions, torch.clamp_min(scores, 0.5).grad_fn, scores.clamp_max(1.0).grad_fn)

"""reference_twin.py - the paper's reference code, re-typed, for
spec/reference_spec.lua.

The functions below follow yangarbiter/robust-local-lipschitz statement for
statement (lolip/utils.py estimate_local_lip_v2, lolip/models/torch_utils/
llr.py and trades.py, called as lolip/models/torch_model.py calls them),
with one change: the random starting noise comes from the caller, so that
rllua and this file can be fed the same draw.  Each also has the textbook
form rllua gives with quirks = false, written here from the methods' papers.

usage: reference_twin.py CASE WEIGHTS INPUTS OUTPUT
  CASE: lip | lip_ascent | trades | trades_textbook | llr | llr_textbook
  WEIGHTS: the model's state_dict (safetensors), INPUTS: x, y, start, eps
  and the hyper-parameters (safetensors), OUTPUT: what the spec compares.
"""
from collections import OrderedDict
import os
import sys
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts'))

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

from torch_ref import MODELS, load_safetensors, save_safetensors

torch.set_num_threads(1)


def small_bn_net(channels, classes, side):
    """A convolution, batch norm, ReLU and a linear layer: the smallest
    model on which TRADES's second clean pass is visible."""
    return nn.Sequential(OrderedDict([
        ('conv', nn.Conv2d(channels, 4, 3, bias=False)), ('bn', nn.BatchNorm2d(4)), ('relu', nn.ReLU()),
        ('flat', nn.Flatten()), ('fc', nn.Linear(4 * (side - 2) ** 2, classes))]))


# --- lolip/utils.py -----------------------------------------------------------

def local_lip(model, x, xp, top_norm, btm_norm, reduction='mean'):
    model.eval()
    down = torch.flatten(x - xp, start_dim=1)
    top = torch.flatten(model(x), start_dim=1) - torch.flatten(model(xp), start_dim=1)
    ret = torch.norm(top, dim=1, p=top_norm) / torch.norm(down + 1e-6, dim=1, p=btm_norm)
    if reduction == 'mean':
        return torch.mean(ret)
    return torch.sum(ret)


def estimate_local_lip_v2(model, X, start, top_norm=1, btm_norm=float('inf'), batch_size=16,
                          perturb_steps=10, step_size=0.003, epsilon=0.01, sign=-1):
    """sign = -1 is the reference (loss = -r); +1 flips it, which makes the
    steps raise r (the spec's flipped-sign control, and rllua's 'max')."""
    model.eval()
    total = 0.
    for i in range(0, len(X), batch_size):
        x = X[i:i + batch_size]
        x_adv = start[i:i + batch_size].clone()  # the reference: x + 0.001 * randn
        for _ in range(perturb_steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                loss = sign * local_lip(model, x, x_adv, top_norm, btm_norm)
            loss.backward()
            eta = step_size * x_adv.grad.data.sign().detach()
            x_adv = x_adv.data.detach() + eta.detach()
            eta = torch.clamp(x_adv.data - x.data, -epsilon, epsilon)
            x_adv = x.data.detach() + eta.detach()
            x_adv = torch.clamp(x_adv, 0, 1.0)
        total += local_lip(model, x, x_adv, top_norm, btm_norm, reduction='sum').item()
    return total / len(X)


# --- lolip/models/torch_utils/trades.py (norm = inf, version = "sum") ---------

def trades_loss(model, loss_fn, x_natural, y, start, optimizer, step_size, epsilon,
                perturb_steps, beta, textbook=False):
    criterion_kl = nn.KLDivLoss(reduction='sum')
    model.eval()
    batch_size = len(x_natural)
    x_adv = start.clone()  # the reference: x_natural + 0.001 * randn
    for _ in range(perturb_steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = criterion_kl(F.log_softmax(model(x_adv), dim=1),
                                   F.softmax(model(x_natural), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x_natural - epsilon), x_natural + epsilon)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    x_adv = torch.clamp(x_adv, 0.0, 1.0).detach()
    optimizer.zero_grad()
    outputs = model(x_natural)
    loss_natural = loss_fn(outputs, y)
    if textbook:  # one clean pass: p(x) from the outputs of the CE term
        loss_robust = (1.0 / batch_size) * criterion_kl(F.log_softmax(model(x_adv), dim=1),
                                                        F.softmax(outputs, dim=1))
    else:
        loss_robust = (1.0 / batch_size) * criterion_kl(F.log_softmax(model(x_adv), dim=1),
                                                        F.softmax(model(x_natural), dim=1))
    return outputs, loss_natural + beta * batch_size * loss_robust


# --- lolip/models/torch_utils/llr.py (norm = inf, version = "sum") ------------

def locally_linearity_regularization(model, loss_fn, x, y, start, optimizer, step_size,
                                     epsilon, perturb_steps, lambd, mu):
    model.eval()
    batch_size = len(x)

    def model_grad(x):
        x.requires_grad_(True)
        lx = loss_fn(model(x), y)
        lx.backward()
        ret = x.grad
        x.grad.zero_()  # the reference's quirk: ret is this very tensor, now zero
        x.requires_grad_(False)
        return ret

    def grad_dot(x, delta, model_grad):
        ret = torch.matmul(model_grad.flatten(start_dim=1), delta.flatten(start_dim=1).T)
        return torch.mean(ret)

    def g(x, delta, model_grad):
        ret = loss_fn(model(x + delta), y) - grad_dot(x, delta, model_grad)
        return torch.abs(ret)

    mg = model_grad(x)
    delta = start.clone().requires_grad_(True)  # the reference: 0.001 * randn
    optimizer_delta = optim.SGD([delta], lr=step_size)
    for _ in range(perturb_steps):
        optimizer_delta.zero_grad()
        loss = (-1) * g(x, delta, mg)
        loss.backward()
        grad_norms = delta.grad.view(batch_size, -1).norm(p=float('inf'), dim=1)
        delta.grad.div_(grad_norms.view(-1, 1, 1, 1))
        if (grad_norms == 0).any():
            delta.grad[grad_norms == 0] = torch.randn_like(delta.grad[grad_norms == 0])
        optimizer_delta.step()
        delta.data.add_(x)
        delta.data.clamp_(0, 1).sub_(x)
        delta.data.renorm_(p=float('inf'), dim=0, maxnorm=epsilon)
    delta.requires_grad_(False)
    model.train()
    optimizer.zero_grad()
    outputs = model(x)
    loss_natural = loss_fn(outputs, y)
    loss = loss_natural + lambd * g(x, delta, mg) + mu * grad_dot(x, delta, mg) * len(x)
    return outputs, loss


def llr_textbook(model, x, y, start, step_size, epsilon, perturb_steps, lambd, mu):
    """Qin et al. (2019), summed over the batch: m_i = grad l_i(x_i),
    gamma = sum_i |l_i(x + delta) - l_i(x) - m_i . delta_i|, the same inner
    steps as the reference, and mu sum_i |m_i . delta_i|."""
    model.eval()
    B = len(x)
    xr = x.clone().requires_grad_(True)
    l0 = F.cross_entropy(model(xr), y, reduction='none')
    m, = torch.autograd.grad(l0.sum(), xr)
    l0 = l0.detach()

    def dots(d):
        return (m * d).flatten(1).sum(1)

    def gamma(d):
        return (F.cross_entropy(model(x + d), y, reduction='none') - l0 - dots(d)).abs().sum()

    delta = start.clone()
    for _ in range(perturb_steps):
        d = delta.clone().requires_grad_(True)
        gd, = torch.autograd.grad(gamma(d), d)
        n = gd.flatten(1).norm(p=float('inf'), dim=1).view(-1, 1, 1, 1)
        delta = delta + step_size * gd / n
        delta = (x + delta).clamp(0, 1) - x
        delta = delta.renorm(p=float('inf'), dim=0, maxnorm=epsilon)
    model.train()
    outputs = model(x)
    return outputs, F.cross_entropy(outputs, y, reduction='sum') + lambd * gamma(delta) \
        + mu * dots(delta).abs().sum()


def main():
    case, wpath, ipath, opath = sys.argv[1:5]
    io = load_safetensors(ipath)
    x, y, start = io['x'], io.get('y'), io['start']
    hp = {k: io[k].item() for k in ('eps', 'step_size', 'steps', 'beta', 'lambda', 'mu') if k in io}
    if case.startswith('lip'):
        model = MODELS['CNN001']().double()
    else:
        model = small_bn_net(x.shape[1], int(io['classes'].item()), x.shape[2]).double()
    res = model.load_state_dict(load_safetensors(wpath), strict=False)
    if res.unexpected_keys or res.missing_keys:
        print('KEYS', res.unexpected_keys, res.missing_keys)
        sys.exit(3)
    loss_fn = nn.CrossEntropyLoss(reduction='sum')
    sgd = optim.SGD(model.parameters(), lr=0.0)  # only its zero_grad is used
    out = {}
    if case in ('lip', 'lip_ascent'):
        v = estimate_local_lip_v2(model, x, start, epsilon=hp['eps'],
                                  sign=-1 if case == 'lip' else 1)
        out['value'] = torch.tensor([v], dtype=torch.float64)
    else:
        model.train()
        steps = int(hp['steps'])
        if case.startswith('trades'):
            _, loss = trades_loss(model, loss_fn, x, y, start, sgd, hp['step_size'], hp['eps'], steps,
                                  hp['beta'], textbook=case == 'trades_textbook')
        elif case == 'llr':
            _, loss = locally_linearity_regularization(model, loss_fn, x, y, start, sgd,
                                                       hp['step_size'], hp['eps'], steps,
                                                       hp['lambda'], hp['mu'])
        else:
            _, loss = llr_textbook(model, x, y, start, hp['step_size'], hp['eps'], steps,
                                   hp['lambda'], hp['mu'])
        sgd.zero_grad()
        loss.backward()
        out['loss'] = loss.detach().reshape(1)
        for k, p in model.named_parameters():
            out['grad.' + k] = p.grad
        for k, b in model.state_dict().items():
            if 'running' in k:
                out['buffer.' + k] = b
    save_safetensors(opath, out)
    print('OK')


if __name__ == '__main__':
    main()

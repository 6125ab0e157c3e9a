"""torch_ref.py - PyTorch twins of rllua's models and training objectives.

The benchmarks (scripts/bench.lua, bench_methods.lua, bench_gpu_torch.py)
time these beside rllua, and spec/crosscheck_spec.lua compares rllua's
logits, losses and gradients with them.  The models follow the paper's code
(yangarbiter/robust-local-lipschitz) down to the parameter names, so that a
state_dict goes from one side to the other (the reference WideResNet's
unused sub_block1 included).  The objectives are the paper's (docs/methods.md),
summed over the batch as rllua's rl.methods computes them.
"""
from collections import OrderedDict
import json
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


_DTYPES = {'F32': torch.float32, 'F64': torch.float64, 'I64': torch.int64, 'U8': torch.uint8,
           'BF16': torch.bfloat16, 'F16': torch.float16}


def load_safetensors(path):
    """A safetensors file as {name: tensor} (what the specs pass across)."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in head.items():
        if k == '__metadata__':
            continue
        b, e = v['data_offsets']
        dt = _DTYPES[v['dtype']]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=dt) if e > b else torch.zeros(0, dtype=dt)
        out[k] = t.reshape(v['shape']).clone()
    return out


def save_safetensors(path, tensors):
    """{name: tensor} as a safetensors file: i64, f64, bf16 and f16 kept, the rest f32."""
    head, blobs, off = {}, [], 0
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous()
        if t.dtype not in (torch.int64, torch.float64, torch.bfloat16, torch.float16):
            t = t.to(torch.float32)
        # numpy has no bfloat16: its bits go through int16 (f16's too, alike)
        half = t.dtype in (torch.bfloat16, torch.float16)
        b = (t.view(torch.int16) if half else t).numpy().tobytes()
        code = {torch.int64: 'I64', torch.float64: 'F64', torch.float32: 'F32',
                torch.bfloat16: 'BF16', torch.float16: 'F16'}[t.dtype]
        head[k] = {'dtype': code, 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(head).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


class CNN001(nn.Module):
    def __init__(self, n_classes=10, n_channels=1):
        super().__init__()
        self.conv1 = nn.Conv2d(n_channels, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, n_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(self.conv2(x), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return self.fc2(x)


class CNN002(nn.Module):
    def __init__(self, n_classes=10, n_channels=1):
        super().__init__()
        self.feature_extractor = nn.Sequential(OrderedDict([
            ('conv1', nn.Conv2d(n_channels, 32, 3)), ('relu1', nn.ReLU()),
            ('conv2', nn.Conv2d(32, 32, 3)), ('relu2', nn.ReLU()),
            ('maxpool1', nn.MaxPool2d(2, 2)),
            ('conv3', nn.Conv2d(32, 64, 3)), ('relu3', nn.ReLU()),
            ('conv4', nn.Conv2d(64, 64, 3)), ('relu4', nn.ReLU()),
            ('maxpool2', nn.MaxPool2d(2, 2))]))
        self.classifier = nn.Sequential(OrderedDict([
            ('fc1', nn.Linear(64 * 4 * 4, 200)), ('relu1', nn.ReLU()), ('drop', nn.Dropout(0.5)),
            ('fc2', nn.Linear(200, 200)), ('relu2', nn.ReLU()), ('fc3', nn.Linear(200, n_classes))]))

    def forward(self, x):
        return self.classifier(self.feature_extractor(x).view(-1, 64 * 4 * 4))


class BasicBlock(nn.Module):
    def __init__(self, i, o, stride, drop=0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(i)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.droprate = drop
        self.equalInOut = i == o
        self.convShortcut = None if self.equalInOut else nn.Conv2d(i, o, 1, stride, 0, bias=False)

    def forward(self, x):
        if self.equalInOut:
            out = self.relu1(self.bn1(x))
        else:
            x = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(out if self.equalInOut else x)))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    def __init__(self, n, i, o, stride, drop):
        super().__init__()
        self.layer = nn.Sequential(*[BasicBlock(i if k == 0 else o, o, stride if k == 0 else 1, drop)
                                     for k in range(n)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth, num_classes, widen_factor=1, dropRate=0.0, n_channels=3):
        super().__init__()
        w = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(n_channels, w[0], 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, w[0], w[1], 1, dropRate)
        self.sub_block1 = NetworkBlock(n, w[0], w[1], 1, dropRate)  # unused, as in the reference
        self.block2 = NetworkBlock(n, w[1], w[2], 2, dropRate)
        self.block3 = NetworkBlock(n, w[2], w[3], 2, dropRate)
        self.bn1 = nn.BatchNorm2d(w[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(w[3], num_classes)
        self.nChannels = w[3]

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.avg_pool2d(self.relu(self.bn1(out)), 8)
        return self.fc(out.view(-1, self.nChannels))


# rl.models.get's names
MODELS = {
    'CNN001': lambda: CNN001(),
    'CNN002': lambda: CNN002(),
    'WRN_16_4': lambda: WideResNet(16, 10, 4),
    'WRN_40_10': lambda: WideResNet(40, 10, 10),
}


def project(xa, x, eps):
    """Onto the l-inf ball of radius eps around x, within [0, 1]."""
    return torch.min(torch.max(xa, x - eps), x + eps).clamp(0, 1)


def natural(m, x, y, eps=0.1):
    m.train()
    return F.cross_entropy(m(x), y, reduction='sum')


def at(m, x, y, eps=0.1, steps=10):
    """Adversarial training: PGD from a uniform start, step eps/5, the
    attack in train mode (as the reference)."""
    m.train()
    xa = project(x + torch.empty_like(x).uniform_(-eps, eps), x, eps)
    for _ in range(steps):
        xa.requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(m(xa), y, reduction='sum'), xa)
        with torch.no_grad():
            xa = project(xa + eps / 5 * g.sign(), x, eps)
    return F.cross_entropy(m(xa), y, reduction='sum')


def trades(m, x, y, eps=0.1, steps=10, beta=6.0):
    """TRADES: the attack maximises KL(f(x) || f(x')) from x + 0.001 N(0, 1),
    step 2 eps / 10, in eval mode; the loss is CE(f(x), y) + beta KL."""
    m.eval()
    with torch.no_grad():
        p = F.softmax(m(x), 1)
    xa = x + 0.001 * torch.randn_like(x)
    for _ in range(steps):
        xa.requires_grad_(True)
        kl = F.kl_div(F.log_softmax(m(xa), 1), p, reduction='sum')
        g, = torch.autograd.grad(kl, xa)
        with torch.no_grad():
            xa = project(xa + 2 * eps / 10 * g.sign(), x, eps)
    m.train()
    logits = m(x)
    return F.cross_entropy(logits, y, reduction='sum') + beta * F.kl_div(
        F.log_softmax(m(xa), 1), F.softmax(logits, 1), reduction='sum')


METHODS = {'natural': natural, 'at': at, 'trades': trades}

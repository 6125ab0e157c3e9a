import sys, time, warnings
warnings.filterwarnings('ignore')
import torch, torch.nn as nn, torch.nn.functional as F
from collections import OrderedDict
N = int(sys.argv[1]); dev = 'cuda'
torch.backends.cudnn.benchmark = True
def cnn002():
    fe = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2))
    return nn.Sequential(fe, nn.Flatten(), nn.Linear(1024, 200), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 10))
class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.bn1 = nn.BatchNorm2d(i); s.conv1 = nn.Conv2d(i, o, 3, st, 1, bias=False)
        s.bn2 = nn.BatchNorm2d(o); s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        s.eq = i == o; s.sc = None if s.eq else nn.Conv2d(i, o, 1, st, 0, bias=False)
    def forward(s, x):
        if s.eq: out = F.relu(s.bn1(x))
        else: x = F.relu(s.bn1(x)); out = x
        out = s.conv2(F.relu(s.bn2(s.conv1(out))))
        return (x if s.eq else s.sc(x)) + out
def wrn(depth, k):
    n = (depth - 4) // 6; w = [16, 16 * k, 32 * k, 64 * k]
    L = [nn.Conv2d(3, 16, 3, 1, 1, bias=False)]
    for (i, o, st) in ((w[0], w[1], 1), (w[1], w[2], 2), (w[2], w[3], 2)):
        for b in range(n): L.append(Block(i if b == 0 else o, o, st if b == 0 else 1))
    L += [nn.BatchNorm2d(w[3]), nn.ReLU(), nn.AvgPool2d(8), nn.Flatten(), nn.Linear(w[3], 10)]
    return nn.Sequential(*L)
def proj(xa, x): return torch.min(torch.max(xa, x - 0.1), x + 0.1).clamp(0, 1)
def natural(m, x, y):
    m.train(); return F.cross_entropy(m(x), y, reduction='sum')
def at(m, x, y):
    m.train()
    xa = (x + torch.empty_like(x).uniform_(-0.1, 0.1)).clamp(0, 1)
    for _ in range(10):
        xa.requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(m(xa), y, reduction='sum'), xa)
        with torch.no_grad(): xa = proj(xa + 0.02 * g.sign(), x)
    return F.cross_entropy(m(xa), y, reduction='sum')
def trades(m, x, y):
    m.eval()
    with torch.no_grad(): p = F.softmax(m(x), 1)
    xa = x + 0.001 * torch.randn_like(x)
    for _ in range(10):
        xa.requires_grad_(True)
        g, = torch.autograd.grad(F.kl_div(F.log_softmax(m(xa), 1), p, reduction='sum'), xa)
        with torch.no_grad(): xa = proj(xa + 0.02 * g.sign(), x)
    m.train(); logits = m(x)
    return F.cross_entropy(logits, y, reduction='sum') + 6 * F.kl_div(F.log_softmax(m(xa), 1), F.softmax(logits, 1), reduction='sum')
def time_ms(fn):
    fn(); fn(); torch.cuda.synchronize(); ts = []
    for _ in range(N):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); ts.append((time.perf_counter() - t0) * 1000)
    ts.sort(); return ts[(N - 1) // 2]
for tf32 in (False, True):
  torch.backends.cudnn.allow_tf32 = tf32
  for name, make, B, shape in (('CNN002', cnn002, 64, (1, 28, 28)), ('WRN_16_4', lambda: wrn(16, 4), 128, (3, 32, 32))):
    torch.manual_seed(0)
    m = make().to(dev); opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
    x = torch.rand(B, *shape, device=dev); y = torch.randint(0, 10, (B,), device=dev)
    for meth in (natural, at, trades):
        def step():
            loss = meth(m, x, y); loss.item(); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        print(name, meth.__name__ + ('/tf32' if tf32 else ''), '%.3f' % time_ms(step), flush=True)

"""bench_torch.py THREADS BATCH STEPS [PRECISION] [MODELS] - PyTorch's side
of scripts/bench.lua: for each of MODELS (comma-separated, default
CNN001,CNN002; CNNs take 1x28x28 images, WRNs 3x32x32), the best ms of
STEPS natural training steps and of STEPS PGD steps (input gradient only,
then the l-inf step), on the CPU; PRECISION bf16 runs the forwards under
torch.autocast('cpu', dtype=torch.bfloat16)."""
import os, sys, time, warnings
warnings.filterwarnings('ignore')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import torch.nn.functional as F
from torch_ref import MODELS

THREADS, B, N = (int(a) for a in sys.argv[1:4])
PRECISION = sys.argv[4] if len(sys.argv) > 4 else 'fp32'
NAMES = sys.argv[5].split(',') if len(sys.argv) > 5 else ['CNN001', 'CNN002']
if PRECISION not in ('fp32', 'bf16'):
    sys.exit('bench_torch.py: PRECISION must be fp32 or bf16, not %r' % PRECISION)


def autocast():
    return torch.autocast('cpu', dtype=torch.bfloat16, enabled=PRECISION == 'bf16')

torch.set_num_threads(THREADS)
torch.manual_seed(0)


def best_ms(fn):
    fn(); fn(); best = 1e30
    for _ in range(N):
        t0 = time.perf_counter(); fn(); best = min(best, (time.perf_counter() - t0) * 1000)
    return best


for name in NAMES:
    m = MODELS[name](); opt = torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)
    shape = (1, 28, 28) if name.startswith('CNN') else (3, 32, 32)
    x = torch.rand(B, *shape); y = torch.randint(0, 10, (B,))

    def train():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(m(x), y)
        loss.backward(); opt.step()

    xadv = x.clone()

    def pgd():
        xa = xadv.detach().requires_grad_(True)
        with autocast():
            loss = F.cross_entropy(m(xa), y, reduction='sum')
        g, = torch.autograd.grad(loss, xa)
        with torch.no_grad():
            xadv.add_(0.02 * g.sign())
            xadv.copy_(torch.min(torch.max(xadv, x - 0.1), x + 0.1).clamp_(0, 1))

    m.train(); tt = best_ms(train); m.eval(); tp = best_ms(pgd)
    print(name, tt, tp)

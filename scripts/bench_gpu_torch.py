"""bench_gpu_torch.py N [MODEL ...] - PyTorch's side of scripts/bench_gpu.lua:
the median ms of N training steps (natural, AT, TRADES(6)) per model on the
GPU, in fp32 (cuDNN without TF32) and then with TF32 (PyTorch's default).
A step is the objective, zero_grad, backward and an SGD step, with no sync
inside it; the timer syncs once at its end, as rllua's side does."""
import os, sys, time, warnings
warnings.filterwarnings('ignore')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from torch_ref import MODELS, METHODS

N = int(sys.argv[1])
NAMES = sys.argv[2:] or ['CNN002', 'WRN_16_4']
torch.backends.cudnn.benchmark = True


def shape_of(name):
    return (64, (1, 28, 28)) if name.startswith('CNN') else (128, (3, 32, 32))


def time_ms(fn):
    fn(); fn(); torch.cuda.synchronize(); ts = []
    for _ in range(N):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return ts[(N - 1) // 2]


for tf32 in (False, True):
    torch.backends.cudnn.allow_tf32 = tf32
    for name in NAMES:
        B, shape = shape_of(name)
        torch.manual_seed(0)
        m = MODELS[name]().to('cuda')
        opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
        x = torch.rand(B, *shape, device='cuda'); y = torch.randint(0, 10, (B,), device='cuda')
        for meth in ('natural', 'at', 'trades'):
            def step():
                loss = METHODS[meth](m, x, y, eps=0.1)
                opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            print(name, meth + ('/tf32' if tf32 else ''), '%.3f' % time_ms(step), flush=True)

"""bench_gpu_torch.py N [--precision fp32|bf16] [--batch B] [MODEL ...] -
PyTorch's side of scripts/bench_gpu.lua: the median ms of N training steps
(natural, AT, TRADES(6)) per model on the GPU.  fp32: in fp32 (cuDNN without
TF32), then with TF32 (PyTorch's default), lines 'MODEL METHOD MS' and
'MODEL METHOD/tf32 MS'.  bf16: each objective (its attack included) under
torch.autocast('cuda', dtype=torch.bfloat16), lines 'MODEL METHOD/bf16 MS'.
A step is the objective, zero_grad, backward and an SGD step, with no sync
inside it; the timer syncs once at its end, as rllua's side does.  Batch B
for every model, else 64 for CNN* (1x28x28) and 128 for the others
(3x32x32)."""
import argparse, os, sys, time, warnings
warnings.filterwarnings('ignore')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from torch_ref import MODELS, METHODS

ap = argparse.ArgumentParser(prog='bench_gpu_torch.py')
ap.add_argument('n', type=int)
ap.add_argument('models', nargs='*', default=['CNN002', 'WRN_16_4'])
ap.add_argument('--precision', choices=('fp32', 'bf16'), default='fp32')
ap.add_argument('--batch', type=int)
args = ap.parse_intermixed_args()  # the models may follow the options
N = args.n
torch.backends.cudnn.benchmark = True


def shape_of(name):
    if name.startswith('CNN'):
        return args.batch or 64, (1, 28, 28)
    return args.batch or 128, (3, 32, 32)


def time_ms(fn):
    fn(); fn(); torch.cuda.synchronize(); ts = []
    for _ in range(N):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return ts[(N - 1) // 2]


def run(suffix, tf32, bf16):
    torch.backends.cudnn.allow_tf32 = tf32
    for name in args.models:
        B, shape = shape_of(name)
        torch.manual_seed(0)
        m = MODELS[name]().to('cuda')
        opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
        x = torch.rand(B, *shape, device='cuda'); y = torch.randint(0, 10, (B,), device='cuda')
        for meth in ('natural', 'at', 'trades'):
            def step():
                # no weight cache: TRADES's no_grad forward would cache bf16
                # weights without history, and the objective's backward would
                # then fail (rl.autocast casts on every use too)
                with torch.autocast('cuda', dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):
                    loss = METHODS[meth](m, x, y, eps=0.1)
                opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            print(name, meth + suffix, '%.3f' % time_ms(step), flush=True)
        del m, opt, x, y
        torch.cuda.empty_cache()


if args.precision == 'bf16':
    run('/bf16', False, True)
else:
    run('', False, False)
    run('/tf32', True, False)

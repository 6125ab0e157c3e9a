"""bench_conv_cpu.py THREADS STEPS LAYERS-JSON [DTYPE] - PyTorch's side of
scripts/bench_conv_cpu.lua: for each layer {n, c, o, size, k, stride, pad},
the median ms of its forward and of its forward + full backward (dx and
dW) on the CPU, where Debian's PyTorch runs oneDNN (MKL-DNN 2.6.3); DTYPE
bf16 makes every operand bfloat16 (oneDNN's bf16 kernels).
Prints one line per layer: 'fwd bwd'."""
import json, sys, time, warnings
warnings.filterwarnings('ignore')
import torch
import torch.nn.functional as F

THREADS, STEPS = int(sys.argv[1]), int(sys.argv[2])
LAYERS = json.loads(sys.argv[3])
DTYPE = {'f32': torch.float32, 'bf16': torch.bfloat16}[sys.argv[4] if len(sys.argv) > 4 else 'f32']
torch.set_num_threads(THREADS)
torch.manual_seed(0)


def median_ms(fn):
    fn(); fn()
    ts = []
    for _ in range(STEPS):
        t0 = time.perf_counter(); fn(); ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return ts[len(ts) // 2]


for l in LAYERS:
    x = torch.randn(l['n'], l['c'], l['size'], l['size']).to(DTYPE)
    w = torch.randn(l['o'], l['c'], l['k'], l['k']).to(DTYPE).requires_grad_()
    b = torch.zeros(l['o']).to(DTYPE).requires_grad_()
    kw = dict(stride=l['stride'], padding=l['pad'])
    with torch.no_grad():
        dy = torch.randn_like(F.conv2d(x, w, b, **kw))

    def fwd():
        with torch.no_grad():
            F.conv2d(x, w, b, **kw)

    def bwd():
        xa = x.detach().requires_grad_()
        torch.autograd.grad(F.conv2d(xa, w, b, **kw), (xa, w, b), dy)

    print('%.4f %.4f' % (median_ms(fwd), median_ms(bwd)), flush=True)

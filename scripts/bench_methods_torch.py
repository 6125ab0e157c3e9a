"""bench_methods_torch.py THREADS BATCHES [PRECISION] - PyTorch's side of
scripts/bench_methods.lua: seconds for BATCHES batches of 64 of AT and of
TRADES(6) training of CNN001 on Fashion-MNIST, on the CPU; PRECISION bf16
runs each objective (its attack included) under
torch.autocast('cpu', dtype=torch.bfloat16)."""
import gzip, os, sys, time, warnings
warnings.filterwarnings('ignore')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from torch_ref import CNN001, at, trades

THREADS, NB = int(sys.argv[1]), int(sys.argv[2])
PRECISION = sys.argv[3] if len(sys.argv) > 3 else 'fp32'
if PRECISION not in ('fp32', 'bf16'):
    sys.exit('bench_methods_torch.py: PRECISION must be fp32 or bf16, not %r' % PRECISION)
EPS = 0.1
torch.set_num_threads(THREADS)
torch.manual_seed(0)
with gzip.open('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz') as f:
    f.read(16); X = torch.frombuffer(bytearray(f.read(NB * 64 * 784)), dtype=torch.uint8)
with gzip.open('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz') as f:
    f.read(8); Y = torch.frombuffer(bytearray(f.read(NB * 64)), dtype=torch.uint8)
X = X.reshape(-1, 1, 28, 28).float() / 255; Y = Y.long()
for name, fn in (('at', at), ('trades6', trades)):
    m = CNN001(); opt = torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)
    t0 = time.perf_counter()
    for b in range(NB):
        x, y = X[b * 64:(b + 1) * 64], Y[b * 64:(b + 1) * 64]
        opt.zero_grad()
        # no weight cache: TRADES's no_grad forward would cache bf16 weights
        # without history, and the objective's backward would then fail
        # (rl.autocast casts on every use too)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=PRECISION == 'bf16', cache_enabled=False):
            loss = fn(m, x, y, eps=EPS)
        loss.backward(); opt.step()
    print(name, time.perf_counter() - t0)

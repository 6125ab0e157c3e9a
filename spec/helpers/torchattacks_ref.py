"""torchattacks_ref.py - AutoAttack's attacks as torchattacks 3.5.1 runs them,
on a model and images that rllua saved, for the AutoAttack cross-check.

usage: torchattacks_ref.py MODEL WEIGHTS DATA --eps E --attack NAME
           [--norm linf|l2] [--seed S] [--steps N] [--queries N]
           [--n-classes K] [--batch-size B] [--threads T]
           [--torchattacks-defaults]

  MODEL    an architecture of scripts/torch_ref.py (CNN001, CNN002, ...)
  WEIGHTS  its state_dict as safetensors (rllua's Module:save)
  DATA     safetensors with x (float [N, C, H, W] in [0, 1]) and y (i64 [N])
  NAME     apgd-ce | apgd-dlr | apgd-t | fab | fab-t | square
           | autoattack-standard

Prints one JSON object: robust_accuracy, robust (0/1 per sample, in DATA's
order), clean_accuracy, max_perturbation (in the attack's norm), seconds,
and the settings used.  The model runs in eval mode on the CPU, its
parameters frozen: the attacks differentiate with respect to the input only,
and FAB's backward passes (one per class in the untargeted FAB) would
otherwise also accumulate every weight's gradient, for nothing.

The attacks take fra31/auto-attack's settings for the standard version:
APGD-CE and APGD-T 100 steps (APGD-T over n_classes - 1 targets), FAB-T 100
steps over n_classes - 1 targets, Square 5000 queries with p_init 0.8, one
restart each.  Two more of the 'plus' version, also with --steps and one
restart (the 'plus' version itself runs five): apgd-dlr, APGD on the DLR
loss (torchattacks' APGD with loss='dlr'; DLR needs 3 classes or more), and
fab, the untargeted FAB (torchattacks' FAB with multi_targeted=False).
torchattacks' own AutoAttack class builds its APGD and FAB with their
default 10 steps instead; --torchattacks-defaults runs that class as it is
(autoattack-standard only).

Exit status: 0 done; 2 bad usage; 3 torch or torchattacks is not installed
(a message says which; the calling spec then marks itself pending).
"""
import argparse
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts'))

ATTACKS = ('apgd-ce', 'apgd-dlr', 'apgd-t', 'fab', 'fab-t', 'square', 'autoattack-standard')


def parse():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('model')
    p.add_argument('weights')
    p.add_argument('data')
    p.add_argument('--eps', type=float, required=True)
    p.add_argument('--attack', choices=ATTACKS, required=True)
    p.add_argument('--norm', choices=('linf', 'l2'), default='linf')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', type=int, default=100, help='APGD and FAB iterations (100)')
    p.add_argument('--queries', type=int, default=5000, help="Square's query budget (5000)")
    p.add_argument('--n-classes', type=int, default=10)
    p.add_argument('--batch-size', type=int, default=500)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: leave as is)')
    p.add_argument('--torchattacks-defaults', action='store_true',
                   help="autoattack-standard as torchattacks.AutoAttack builds it (10 steps)")
    a = p.parse_args()
    if a.torchattacks_defaults and a.attack != 'autoattack-standard':
        p.error('--torchattacks-defaults applies to autoattack-standard only')
    if a.eps < 0 or a.steps < 0 or a.queries < 0 or a.n_classes < 2 or a.batch_size < 1:
        p.error('eps, steps and queries must be >= 0, n-classes >= 2, batch-size >= 1')
    return a


def need(module):
    try:
        return __import__(module)
    except ImportError as e:
        print('torchattacks_ref: %s is not installed (%s); the cross-check is skipped' % (module, e),
              file=sys.stderr)
        sys.exit(3)


def build(ta, model, a):
    norm = {'linf': 'Linf', 'l2': 'L2'}[a.norm]
    common = dict(norm=norm, eps=a.eps, seed=a.seed, n_restarts=1)
    made = {
        'apgd-ce': lambda: ta.APGD(model, steps=a.steps, loss='ce', **common),
        'apgd-dlr': lambda: ta.APGD(model, steps=a.steps, loss='dlr', **common),
        'apgd-t': lambda: ta.APGDT(model, steps=a.steps, n_classes=a.n_classes, **common),
        'fab': lambda: ta.FAB(model, steps=a.steps, multi_targeted=False, n_classes=a.n_classes, **common),
        'fab-t': lambda: ta.FAB(model, steps=a.steps, multi_targeted=True, n_classes=a.n_classes, **common),
        'square': lambda: ta.Square(model, n_queries=a.queries, p_init=0.8, loss='margin', **common),
    }
    if a.attack != 'autoattack-standard':
        return made[a.attack]()
    if a.torchattacks_defaults:
        return ta.AutoAttack(model, norm=norm, eps=a.eps, version='standard', n_classes=a.n_classes,
                             seed=a.seed)
    return ta.MultiAttack([made[k]() for k in ('apgd-ce', 'apgd-t', 'fab-t', 'square')])


def main():
    a = parse()
    torch = need('torch')
    ta = need('torchattacks')
    from torch_ref import MODELS, load_safetensors
    if a.model not in MODELS:
        print('torchattacks_ref: unknown model %r; models: %s' % (a.model, ', '.join(sorted(MODELS))),
              file=sys.stderr)
        sys.exit(2)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    model = MODELS[a.model]()
    sd = load_safetensors(a.weights)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing:
        print('torchattacks_ref: %s lacks %s' % (a.weights, ', '.join(missing)), file=sys.stderr)
        sys.exit(2)
    model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    data = load_safetensors(a.data)
    if 'x' not in data or 'y' not in data:
        print('torchattacks_ref: %s must hold x and y' % a.data, file=sys.stderr)
        sys.exit(2)
    x, y = data['x'].float(), data['y'].long()
    if x.dim() != 4 or y.dim() != 1 or x.shape[0] != y.shape[0]:
        print('torchattacks_ref: x must be [N, C, H, W] and y [N], got %s and %s'
              % (list(x.shape), list(y.shape)), file=sys.stderr)
        sys.exit(2)
    atk = build(ta, model, a)
    t0 = time.time()
    robust, clean, worst = [], 0, 0.0
    for i in range(0, x.shape[0], a.batch_size):
        xb, yb = x[i:i + a.batch_size], y[i:i + a.batch_size]
        adv = atk(xb, yb)
        with torch.no_grad():
            clean += int((model(xb).argmax(1) == yb).sum())
            robust += (model(adv).argmax(1) == yb).long().tolist()
        d = (adv - xb).reshape(xb.shape[0], -1)
        n = d.abs().max(1)[0] if a.norm == 'linf' else d.norm(dim=1)
        worst = max(worst, float(n.max()) if n.numel() else 0.0)
    seconds = time.time() - t0
    n = len(robust)
    print(json.dumps({
        'attack': a.attack, 'model': a.model, 'norm': a.norm, 'eps': a.eps, 'seed': a.seed,
        'steps': a.steps, 'queries': a.queries, 'n_classes': a.n_classes,
        'torchattacks_defaults': a.torchattacks_defaults, 'torchattacks': ta.__version__,
        'n': n, 'clean_accuracy': clean / max(n, 1), 'robust_accuracy': sum(robust) / max(n, 1),
        'robust': robust, 'max_perturbation': worst, 'seconds': seconds,
        'threads': torch.get_num_threads(),
    }))


if __name__ == '__main__':
    main()

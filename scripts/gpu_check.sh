#!/usr/bin/env bash
# gpu_check.sh - one run that checks and measures the CUDA backend, bf16
# and f16 included (issue #15), for a GPU session with little device time.
#
# On the GPU machine, in the project root, after building (see
# ../shared/device/README.md: .device/ comes from `bash
# ../shared/device/bundle.sh` on a Debian machine and is carried along):
#
#   source .device/setup.sh && make -j16 && bash scripts/gpu_check.sh
#
# Steps, in order of importance; each runs under `timeout`, and one that
# fails or times out does not stop the next:
#   1. the machine: GPU, driver, nvcc, PyTorch, the tree      -> env.txt
#   1b. emu/selftest.cu's mma_product and ldmatrix_layout on the GPU:
#      whether the tensor cores lay out mma.sync's fragments, and ldmatrix
#      its, as the implicit GEMM reads them                   -> mma-layout.log
#   2. make test-cuda: spec/cuda_spec.lua, all of it, the
#      "bf16 and f16" section included                        -> test-cuda.log
#   3. ./rllua scripts/bench.lua --device cuda, bf16 rows (rl.autocast
#      against torch.autocast, attack steps in bf16 on both sides), each
#      bf16 convolution pass by the algorithm measured fastest on its
#      first use (im2col or the implicit GEMM)                -> bench-bf16.txt
#   4. bf16 convolutions per layer: the measured choice ('auto') beside
#      the implicit GEMM, Winograd and im2col, each forced    -> bench-conv-bf16.txt
#   5. the bf16 rows again with RL_CUDA_CONV=implicit (the implicit GEMM
#      for every forward, dW and stride-1 dx)                 -> bench-bf16-implicit.txt
#   6. the same models in fp32 (against PyTorch fp32 and TF32) -> bench-fp32.txt
#   7. spec/half_spec.lua and spec/autocast_spec.lua, whose CUDA cases
#      run only where a GPU is                                -> half-autocast-specs.log
# then a summary (summary.txt, also printed last): each step's outcome,
# test-cuda's count and failures, one table of the bf16 and fp32 rows
# with rllua / PyTorch ratios (issue #15's target: bf16 ratio <= 0.9),
# and the choices measured for the benchmark's convolutions.
#
# Output goes under $OUT when it is set (the device machine's run sets
# it), else ./gpu_check_out.  The exit status says whether make test-cuda
# passed (0) or not (1: failed or timed out); the benchmarks never change it.
#
# Both benchmarks use one batch size for every model, so that bf16 and fp32
# rows compare.  The whole script stays within a budget (7.5 minutes; with
# the build before it, the device run's 10-minute limit still holds), each
# step getting at most what is left of it (an estimate, as this script has
# not run on a GPU yet: about half of it on an H100).  Settings, from the
# environment:
#   GPU_CHECK_MODELS  models of the benchmark rows   CNN002,WRN_16_4,WRN_40_10
#   GPU_CHECK_BATCH   their batch size               128
#   GPU_CHECK_STEPS   timed steps per row (median)   5
#   GPU_CHECK_BUDGET  seconds for the whole script   450
#   GPU_CHECK_SCALE   each step's limit times this   1
#   GPU_CHECK_CONV_LAYERS  bench_conv's --layers       (all 8)
#   GPU_CHECK_EMU     an emulator build (build-emu): everything runs on
#                     it, the layout checks on its selftest, and test-cuda
#                     is cuda_spec on it (make gpu-check-emu sets this, so
#                     that the script is run end to end, small, before a
#                     GPU session spends device time on it)
set -u
cd "$(dirname "$0")/.." || exit 1

out=${OUT:-$PWD/gpu_check_out}
models=${GPU_CHECK_MODELS:-CNN002,WRN_16_4,WRN_40_10}
batch=${GPU_CHECK_BATCH:-128}
steps=${GPU_CHECK_STEPS:-5}
budget=${GPU_CHECK_BUDGET:-450}
scale=${GPU_CHECK_SCALE:-1}
emu=${GPU_CHECK_EMU:-}
conv_layers=()
[ -n "${GPU_CHECK_CONV_LAYERS:-}" ] && conv_layers=(--layers "$GPU_CHECK_CONV_LAYERS")
busted=$(command -v busted || echo /usr/bin/busted)
if [ -n "$emu" ]; then
  [ -x "$emu/rllua" ] && [ -x "$emu/build/emu/selftest" ] || {
    echo "GPU_CHECK_EMU=$emu: no emulator build there (make emu-build)" >&2
    exit 1
  }
  rllua=./$emu/rllua
  cpath="./$emu/lib/?.so"
  export RLLUA_BIN=$rllua # the specs' own rllua processes
  selftest=$emu/build/emu/selftest
  where='the emulator'
  test_cuda=(make --no-print-directory emu-cuda-spec EMU_DIR="$emu")
else
  rllua=./rllua
  cpath='./lib/?.so'
  selftest=build/emu-selftest-gpu
  where='the GPU'
  test_cuda=(make test-cuda)
fi
mkdir -p "$out" || exit 1
start=$SECONDS
outcomes=()

# step NAME LIMIT LOG COMMAND...: COMMAND with its output in LOG, killed
# after LIMIT seconds or when the budget runs out, whichever comes first.
# Returns COMMAND's status (124 or 137: timed out; 125: not started).
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local left=$((budget - (SECONDS - start)))
  if ((left < 15)); then
    echo "not run: the budget of ${budget}s was spent" >"$log"
    outcomes+=("$name: NOT RUN (budget spent)")
    return 125
  fi
  limit=$((limit * scale))
  ((limit > left)) && limit=$left
  echo "== $(date -u +%T) $name (at most ${limit}s) -> $log"
  local t0=$SECONDS rc
  # line-buffered (C stdio, which Lua's print uses), so that a step cut
  # short by its limit keeps the rows it printed
  timeout -k 10 "$limit" stdbuf -oL -eL "$@" >"$log" 2>&1
  rc=$?
  case $rc in
    0) outcomes+=("$name: ok ($((SECONDS - t0))s)") ;;
    124 | 137) outcomes+=("$name: TIMED OUT after $((SECONDS - t0))s") ;;
    *) outcomes+=("$name: FAILED, status $rc ($((SECONDS - t0))s)") ;;
  esac
  return $rc
}

# 1. the machine
{
  echo "date: $(date -u +%FT%TZ)   host: $(hostname)"
  if [ -n "$emu" ]; then
    echo "no GPU: the emulator build in $emu"
  else
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1
    nvidia-smi --query-gpu=mig.mode.current --format=csv,noheader 2>&1 | sed 's/^/MIG: /'
  fi
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  "$nvcc" --version 2>&1 | tail -2
  python3 -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN",
      torch.backends.cudnn.version(), torch.cuda.get_device_name(0))' 2>&1 | tail -1
  "$rllua" -e 'print("rllua:", rl.cuda.is_available(), rl.cuda.device_name())' 2>&1
  echo "CPUs: $(nproc)"
  git log -1 --format='commit %H %s' 2>/dev/null
  git status --short 2>/dev/null | head -40
} >"$out/env.txt" 2>&1
echo "== $(date -u +%T) the machine -> $out/env.txt"

# 1b. the tensor cores' mma.sync fragment layout and ldmatrix's, as
# kernels/cuda_igemm.cu and the emulator read them: emu/selftest.cu's
# mma_product (small integers, so the product is exact) and
# ldmatrix_layout, built by nvcc and run on the GPU
mkdir -p build
step 'mma.sync layout: build' 90 "$out/mma-layout-build.log" \
  "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" -std=c++17 -O2 -Ikernels \
  -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
  -o build/emu-selftest-gpu emu/selftest.cu -lcublas &&
  step "mma.sync layout: mma_product on $where" 30 "$out/mma-layout.log" \
    "$selftest" mma_product &&
  step "ldmatrix layout: ldmatrix_layout on $where" 30 "$out/ldmatrix-layout.log" \
    "$selftest" ldmatrix_layout

# 2. the CUDA specs; make rebuilds nothing after make -j16
# (each failure also goes to test-cuda-failures.txt as it happens, so a
# run cut short by its limit still names what failed)
: >"$out/test-cuda-failures.txt"
step 'make test-cuda' 300 "$out/test-cuda.log" \
  env RL_SPEC_STREAM="$out/test-cuda-failures.txt" "${test_cuda[@]}"
test_cuda=$?

# 3. the bf16 benchmark rows: the part that has never been timed.  The
# choices go to a file of this run's own, so that each pass is measured
# here (the warm-up steps do it), not read from an earlier run
export RL_CACHE_DIR="$out/cache"
step 'bench bf16' 180 "$out/bench-bf16.txt" \
  "$rllua" scripts/bench.lua --device cuda "$steps" "$models" --precision bf16 --batch "$batch"

# 4. bf16 convolutions per layer: the measured choice beside the implicit
# GEMM, Winograd and im2col, each forced
step 'bench_conv bf16' 90 "$out/bench-conv-bf16.txt" \
  "$rllua" scripts/bench_conv.lua --device cuda --dtype bf16 --steps "$steps" --batch "$batch" \
  ${conv_layers[@]+"${conv_layers[@]}"}

# 5. the bf16 rows with the implicit GEMM forced
step 'bench bf16, implicit GEMM' 180 "$out/bench-bf16-implicit.txt" \
  env RL_CUDA_CONV=implicit "$rllua" scripts/bench.lua --device cuda "$steps" "$models" --precision bf16 --batch "$batch"

# 6. fp32, as earlier GPU sessions measured it
step 'bench fp32' 180 "$out/bench-fp32.txt" \
  "$rllua" scripts/bench.lua --device cuda "$steps" "$models" --batch "$batch"

# 7. the CPU specs with CUDA cases (as make test runs them)
step 'half_spec, autocast_spec' 120 "$out/half-autocast-specs.log" \
  lua5.4 "$busted" --lpath='./lua/?.lua;./lua/?/init.lua;./spec/?.lua' --cpath="$cpath" \
  -o spec/summary.lua spec/half_spec.lua spec/autocast_spec.lua

# ---- the summary
# the last "N passed, N failed" of a busted log, or its tail when it has none
# (a build error, a spec that does not load)
count() {
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" 2>/dev/null | tail -1)
  if [ -n "$line" ]; then echo "$line"; else echo "no count; the log ends:"; tail -15 "$1" 2>/dev/null | sed 's/^/    /'; fi
}

# the bench rows of both files, joined by model and method
table() {
  awk -v B16="$out/bench-bf16.txt" -v B16I="$out/bench-bf16-implicit.txt" -v F32="$out/bench-fp32.txt" '
    function row(k) { if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
    $2 ~ /^(natural|at|trades)$/ && $3 ~ /^[0-9]+$/ {
      k = $1 " " $2; row(k); batch[k] = $3
      if (FILENAME == B16) { r16[k] = $4; p16[k] = $5; q16[k] = $6 }
      else if (FILENAME == B16I) { r16i[k] = $4; q16i[k] = $6 }
      else { r32[k] = $4; p32[k] = $5; q32[k] = $6; t32[k] = $7; qt[k] = $8 }
    }
    function v(a, k) { return (k in a) ? a[k] : "-" }
    END {
      if (n == 0) { print "  (no benchmark rows: see bench-bf16.txt and bench-fp32.txt)"; exit }
      printf "%-10s %-8s %5s | %9s %9s %7s | %9s %7s %5s | %9s %7s | %9s %7s %9s %7s\n", "model", "method", "batch",
        "rl fp32", "rl bf16", "speedup", "PyT bf16", "ratio", "<=0.9", "rl bf16 i", "ratio",
        "PyT fp32", "ratio", "PyT tf32", "ratio"
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, mm, " ")
        sp = (k in r16 && k in r32 && r16[k] > 0) ? sprintf("%.2f", r32[k] / r16[k]) : "-"
        ok = (k in q16 && q16[k] != "-") ? (q16[k] <= 0.9 ? "yes" : "NO") : "-"
        printf "%-10s %-8s %5s | %9s %9s %7s | %9s %7s %5s | %9s %7s | %9s %7s %9s %7s\n", mm[1], mm[2], batch[k],
          v(r32, k), v(r16, k), sp, v(p16, k), v(q16, k), ok, v(r16i, k), v(q16i, k),
          v(p32, k), v(q32, k), v(t32, k), v(qt, k)
      }
    }' "$out/bench-bf16.txt" "$out/bench-bf16-implicit.txt" "$out/bench-fp32.txt" 2>&1
}

{
  echo "gpu_check summary, $(date -u +%FT%TZ), $((SECONDS - start))s of a ${budget}s budget"
  echo "GPU: $(sed -n 2p "$out/env.txt")"
  grep -m1 '^PyTorch' "$out/env.txt" || echo 'PyTorch: not found (see env.txt)'
  for o in "${outcomes[@]}"; do echo "  $o"; done
  echo
  echo "make test-cuda: $(count "$out/test-cuda.log")"
  nfail=$(grep -cE '^(FAILED|ERROR): ' "$out/test-cuda-failures.txt" 2>/dev/null)
  nhalf=$(grep -cE '^(FAILED|ERROR): CUDA vs CPU: bf16 and f16' "$out/test-cuda-failures.txt" 2>/dev/null)
  echo "  failures: ${nfail:-0}, of which in the bf16 and f16 section: ${nhalf:-0}"
  # each failure's name and the first line of its message
  # (from the streamed list: complete even when the run was cut short)
  sed 's/^  /      /; s/^/  /' "$out/test-cuda-failures.txt" 2>/dev/null | cut -c1-220 | head -60
  echo "half_spec + autocast_spec: $(count "$out/half-autocast-specs.log")"
  grep -E '^(FAILED|ERROR): ' "$out/half-autocast-specs.log" 2>/dev/null | head -20 | sed 's/^/  /'
  echo
  echo "training steps, ms (median of $steps; rl = rllua; speedup = rl fp32 / rl bf16; ratios rllua / PyTorch;"
  echo "  rl bf16 i: with RL_CUDA_CONV=implicit):"
  table
  echo
  echo "bf16 convolutions, the measured choice and each algorithm forced (bench-conv-bf16.txt):"
  sed 's/^/  /' "$out/bench-conv-bf16.txt" 2>/dev/null | head -12
  echo
  echo "bf16 passes of batch $batch as measured in steps 3 and 4 (cache/cuda-conv-*.tsv):"
  cat "$out"/cache/cuda-conv-*.tsv 2>/dev/null | grep " n$batch " | awk -F'\t' '{print $2}' | sort | uniq -c | sed 's/^/  /'
  cat "$out"/cache/cuda-conv-*.tsv 2>/dev/null | grep " n$batch " | sed 's/^/  /' | head -40
} >"$out/summary.txt"
echo
cat "$out/summary.txt"
if [ "$test_cuda" -eq 0 ]; then exit 0; else exit 1; fi

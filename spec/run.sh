#!/bin/bash
# spec/run.sh - run spec files as parallel busted processes (make test).
#
#   bash spec/run.sh JOBS LOGDIR BUSTED-COMMAND... -- SPEC-FILE-OR-DIR...
#
# Runs one busted process per spec file, JOBS at a time, longest first, so
# that the slow specs (much of their time is spent in subprocesses: rllua,
# python3 with torch, sleeps waiting on a signal) overlap with the rest.
# The cores are shared out: each job gets OMP_NUM_THREADS = cores / JOBS
# (at least 1) unless OMP_NUM_THREADS is set.  Each file's output goes to
# LOGDIR/<its path, '/' as '.'>.log and, when it ends, one line
# "  12.3 s  spec/x_spec.lua  10 passed, 0 failed" to the terminal.  Then
# the failures of every file that had any, the pending tests, and as the
# last line the sum "N passed, N failed".  A busted process that dies
# without its summary line, or exits non-zero after a clean one (a crash
# in a finalizer at exit), counts as one failure, with its log's tail.
#
# Ctrl-C (or SIGTERM) ends every busted process and what it started: each
# runs in its own session, which is killed whole.
#
# The order comes from LOGDIR/times.tsv (the seconds each file took when
# it last ran), and for a file not in it from the table below (measured on
# the 2-core machine of 2026-12; a fresh clone has no times.tsv yet).
set -uo pipefail

usage="usage: bash spec/run.sh JOBS LOGDIR BUSTED-COMMAND... -- SPEC-FILE-OR-DIR..."
if [ $# -lt 4 ]; then echo "$usage" >&2; exit 2; fi
jobs=$1 logdir=$2
shift 2
if ! [[ $jobs =~ ^[1-9][0-9]*$ ]]; then
  echo "spec/run.sh: JOBS must be a positive integer, not '$jobs'" >&2
  exit 2
fi
busted=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do busted+=("$1"); shift; done
if [ $# -eq 0 ]; then echo "spec/run.sh: no '--' before the spec files; $usage" >&2; exit 2; fi
if [ ${#busted[@]} -eq 0 ]; then echo "spec/run.sh: no busted command before '--'; $usage" >&2; exit 2; fi
shift

# the files, each once, as given (a leading ./ dropped)
declare -A seen=()
files=()
add_file() {
  local f=${1#./}
  case $f in *$'\n'* | *$'\t'*) echo "spec/run.sh: a tab or newline in the file name '$f'" >&2; exit 2 ;; esac
  [ -n "${seen[$f]:-}" ] && return
  seen[$f]=1
  files+=("$f")
}
for f in "$@"; do
  if [ -d "$f" ]; then
    for g in "${f%/}"/*_spec.lua; do [ -e "$g" ] && add_file "$g"; done
  elif [ -f "$f" ]; then
    add_file "$f"
  else
    echo "spec/run.sh: no spec file or directory '$f'" >&2
    exit 2
  fi
done
if [ ${#files[@]} -eq 0 ]; then echo "spec/run.sh: no *_spec.lua files in: $*" >&2; exit 2; fi

# the cores shared out among the jobs: OpenMP threads that outnumber the
# cores spin at every barrier, and two 2-thread jobs on 2 cores ran slower
# together than one after the other (specs that test thread counts set them)
if [ -z "${OMP_NUM_THREADS:-}" ]; then
  OMP_NUM_THREADS=$(($(nproc) / jobs))
  [ "$OMP_NUM_THREADS" -ge 1 ] || OMP_NUM_THREADS=1
  export OMP_NUM_THREADS
fi

mkdir -p "$logdir" || exit 2
# a file's logs: LOGDIR/<its path, / as .> + .log, .rc, .sec, .pid
stem() {
  local s=${1%.lua}
  s=${s#/}
  printf '%s/%s' "$logdir" "${s//\//.}"
}
for f in "${files[@]}"; do s=$(stem "$f"); rm -f "$s.log" "$s.rc" "$s.sec" "$s.pid"; done

# seconds per file: the last run's, else these (the fixture's training on
# a fresh clone included: about 170 s of the natural cross-check's, 110 s
# of the AT one's)
declare -A weight=(
  [autoattack_crosscheck_natural_spec.lua]=230 [autoattack_crosscheck_at_spec.lua]=200
  [slurm_spec.lua]=45 [autoattack_spec.lua]=45
  [fab_spec.lua]=27 [reference_spec.lua]=28 [crash_resume_spec.lua]=20 [crosscheck_spec.lua]=23
  [poc_spec.lua]=23 [scripts_spec.lua]=18 [nn_spec.lua]=14 [cuda_spec.lua]=15
  [experiment_spec.lua]=16 [repl_spec.lua]=12 [tables_spec.lua]=12 [evaluate_spec.lua]=10
  [half_spec.lua]=11 [safetensors_spec.lua]=8 [report_spec.lua]=7
)
declare -A last=()
if [ -f "$logdir/times.tsv" ]; then
  while IFS=$'\t' read -r name sec; do
    [[ $sec =~ ^[0-9]+(\.[0-9]+)?$ ]] && last[$name]=$sec
  done < "$logdir/times.tsv"
fi
ordered=()
while IFS=$'\t' read -r _ f; do ordered+=("$f"); done < <(
  for f in "${files[@]}"; do
    w=${last[$f]:-${weight[${f##*/}]:-3}}
    printf '%s\t%s\n' "${w%.*}" "$f"
  done | sort -t $'\t' -k1,1nr -k2,2)

# One file, in a session of its own (so that Ctrl-C can end it and all it
# started): its log, exit status and seconds, then its line.
run_one() {
  local f=$1 s t0 t1 rc summary pid
  [ -e "$logdir/stop" ] && return # Ctrl-C: start no more
  s=$(stem "$f")
  t0=$(date +%s.%N)
  setsid "${busted[@]}" "$f" > "$s.log" 2>&1 &
  pid=$!
  echo "$pid" > "$s.pid"
  wait "$pid"
  rc=$?
  t1=$(date +%s.%N)
  rm -f "$s.pid"
  echo "$rc" > "$s.rc"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' > "$s.sec"
  summary=$(tail -n 1 "$s.log")
  if ! [[ $summary =~ ^[0-9]+\ passed,\ [0-9]+\ failed$ ]]; then
    summary="died (exit status $rc) before its summary"
  elif [ "$rc" -ne 0 ] && [[ $summary =~ \ 0\ failed$ ]]; then
    summary="$summary, but exited with status $rc"
  fi
  printf '%7s s  %-40s %s\n' "$(cat "$s.sec")" "$f" "$summary"
}
export -f run_one stem
export logdir
# the busted command goes to the workers as one quoted string
RL_SPEC_BUSTED=$(printf '%q ' "${busted[@]}")
export RL_SPEC_BUSTED

# Ctrl-C or SIGTERM: start no more files, and end the sessions of those
# running (twice: a worker may be starting one as xargs is stopped)
stop() {
  trap - INT TERM
  touch "$logdir/stop"
  kill -TERM "$xargs_pid" 2>/dev/null
  local p round
  for round in 1 2; do
    for p in "$logdir"/*.pid; do
      [ -f "$p" ] && kill -TERM -- "-$(cat "$p")" 2>/dev/null
    done
    sleep 0.3
  done
  rm -f "$logdir/stop"
  echo "spec/run.sh: interrupted; the spec files still running were ended" >&2
  exit 130
}
rm -f "$logdir/stop"
trap stop INT TERM

t_start=$(date +%s.%N)
printf '%s\0' "${ordered[@]}" |
  xargs -0 -n 1 -P "$jobs" bash -c 'eval "busted=($RL_SPEC_BUSTED)"; run_one "$1"' _ &
xargs_pid=$!
wait "$xargs_pid"
t_end=$(date +%s.%N)

passed=0 failed=0 pending=0
declare -A now=()
for f in "${ordered[@]}"; do
  s=$(stem "$f")
  [ -f "$s.sec" ] && now[$f]=$(cat "$s.sec")
  summary=$(tail -n 1 "$s.log" 2>/dev/null)
  rc=$(cat "$s.rc" 2>/dev/null)
  if [ -z "$rc" ]; then
    failed=$((failed + 1))
    printf '\n==== %s was not run\n' "$f"
  elif [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    nf=${BASH_REMATCH[2]}
    failed=$((failed + nf))
    p=$(grep -E '^[0-9]+ pending, ' "$s.log" | tail -n 1 | cut -d' ' -f1)
    pending=$((pending + ${p:-0}))
    if [ "$nf" -gt 0 ]; then
      # the failures as summary.lua printed them, from the first on
      printf '\n==== %s\n' "$f"
      awk '/^(FAILED|ERROR): / { on = 1 }
           on && !/^[0-9]+ pending, / && !/^[0-9]+ passed, [0-9]+ failed$/' "$s.log"
    elif [ "$rc" -ne 0 ]; then
      failed=$((failed + 1))
      printf '\n==== %s exited with status %s after a clean summary; its last lines:\n' "$f" "$rc"
      tail -n 30 "$s.log"
    fi
    while IFS= read -r line; do printf '%s: %s\n' "$f" "$line"; done < <(grep '^PENDING (not run): ' "$s.log")
  else
    failed=$((failed + 1))
    printf '\n==== %s died (exit status %s) before its summary; its last lines:\n' "$f" "$rc"
    tail -n 30 "$s.log" 2>/dev/null
  fi
done
# times.tsv: this run's seconds, and the earlier ones of files not run now
{
  for f in "${!now[@]}"; do printf '%s\t%s\n' "$f" "${now[$f]}"; done
  for f in "${!last[@]}"; do [ -n "${now[$f]:-}" ] || printf '%s\t%s\n' "$f" "${last[$f]}"; done
} | sort > "$logdir/times.tsv.new" && mv "$logdir/times.tsv.new" "$logdir/times.tsv"

printf '\n%d files, %d at a time on %s thread(s) each, logs in %s\n' "${#files[@]}" "$jobs" \
  "$OMP_NUM_THREADS" "$logdir"
awk -v a="$t_start" -v b="$t_end" -v p="$pending" 'BEGIN { printf "%d pending, %.1f s\n", p, b - a }'
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]

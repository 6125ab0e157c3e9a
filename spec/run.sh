#!/bin/bash
# spec/run.sh - run spec files as parallel busted processes (make test).
#
#   bash spec/run.sh JOBS LOGDIR BUSTED-COMMAND... -- SPEC-FILE...
#
# Runs one busted process per spec file, JOBS at a time, longest first, so
# that the slow specs (most of their time is spent in subprocesses: rllua,
# python3 with torch, sleeps waiting on a signal) overlap with the rest.
# Each file's output goes to LOGDIR/<name>.log and, when it ends, one line
# "  12.3 s  spec/x_spec.lua  10 passed, 0 failed" to the terminal.  Then
# the output of every file that failed, the pending tests, and as the last
# line the sum "N passed, N failed".  A busted process that dies without
# its summary line (a crash, a kill) counts as one failure, with the tail
# of its log shown.
#
# The order comes from LOGDIR/times.tsv (the seconds each file took last
# time), and for a file not in it from the table below (measured on the
# 2-core machine of 2026-12; a fresh clone has no times.tsv yet).
set -uo pipefail

if [ $# -lt 4 ]; then
  echo "usage: bash spec/run.sh JOBS LOGDIR BUSTED-COMMAND... -- SPEC-FILE..." >&2
  exit 2
fi
jobs=$1 logdir=$2
shift 2
case $jobs in '' | *[!0-9]* | 0) echo "spec/run.sh: JOBS must be a positive integer, not '$jobs'" >&2; exit 2 ;; esac
busted=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do busted+=("$1"); shift; done
if [ $# -eq 0 ]; then echo "spec/run.sh: no '--' before the spec files" >&2; exit 2; fi
shift
files=()
for f in "$@"; do
  if [ -d "$f" ]; then
    for g in "$f"/*_spec.lua; do [ -e "$g" ] && files+=("$g"); done
  elif [ -f "$f" ]; then
    files+=("$f")
  else
    echo "spec/run.sh: no spec file or directory '$f'" >&2
    exit 2
  fi
done
if [ ${#files[@]} -eq 0 ]; then echo "spec/run.sh: no *_spec.lua files in: $*" >&2; exit 2; fi

# the cores shared out among the jobs: OpenMP threads that outnumber the
# cores spin at every barrier, and two 2-thread jobs on 2 cores run slower
# together than one after the other (specs that test thread counts set them)
if [ -z "${OMP_NUM_THREADS:-}" ]; then
  OMP_NUM_THREADS=$(( $(nproc) / jobs ))
  [ "$OMP_NUM_THREADS" -ge 1 ] || OMP_NUM_THREADS=1
  export OMP_NUM_THREADS
fi

mkdir -p "$logdir"
rm -f "$logdir"/*.log "$logdir"/*.rc "$logdir"/*.sec

# seconds per file: last run's, else these (the fixture's training, about
# 150 s of autoattack_crosscheck on a fresh clone, included)
declare -A weight=(
  [autoattack_crosscheck_spec.lua]=240 [slurm_spec.lua]=67 [autoattack_spec.lua]=26
  [fab_spec.lua]=21 [reference_spec.lua]=20 [crash_resume_spec.lua]=17 [crosscheck_spec.lua]=16
  [poc_spec.lua]=13 [scripts_spec.lua]=11 [nn_spec.lua]=10 [cuda_spec.lua]=10
  [experiment_spec.lua]=9 [repl_spec.lua]=9 [tables_spec.lua]=8 [evaluate_spec.lua]=8
  [half_spec.lua]=8 [safetensors_spec.lua]=6 [report_spec.lua]=5
)
if [ -f "$logdir/times.tsv" ]; then
  while IFS=$'\t' read -r name sec; do
    [[ $sec =~ ^[0-9]+(\.[0-9]+)?$ ]] && weight[$name]=${sec%.*}
  done < "$logdir/times.tsv"
fi
ordered=$(for f in "${files[@]}"; do
  b=${f##*/}
  printf '%s\t%s\n' "${weight[$b]:-3}" "$f"
done | sort -t $'\t' -k1,1nr -k2,2 | cut -f2)

# one file: its log, exit status and seconds; then its line
run_one() {
  local f=$1 b=${1##*/}
  local log="$logdir/${b%.lua}.log" t0 t1 rc summary
  t0=$(date +%s.%N)
  "${busted[@]}" "$f" > "$log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  echo "$rc" > "$logdir/${b%.lua}.rc"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' > "$logdir/${b%.lua}.sec"
  summary=$(tail -n 1 "$log")
  [[ $summary =~ ^[0-9]+\ passed,\ [0-9]+\ failed$ ]] || summary="died (exit status $rc) before its summary"
  printf '%7s s  %-40s %s\n' "$(cat "$logdir/${b%.lua}.sec")" "$f" "$summary"
}
export -f run_one
export logdir
# the busted command goes to the children as one quoted string
export RL_SPEC_BUSTED
RL_SPEC_BUSTED=$(printf '%q ' "${busted[@]}")
t_start=$(date +%s.%N)
printf '%s\n' "$ordered" | xargs -P "$jobs" -I{} bash -c 'eval "busted=($RL_SPEC_BUSTED)"; run_one "$1"' _ {}
t_end=$(date +%s.%N)

passed=0 failed=0 pending=0
: > "$logdir/times.tsv.new"
while IFS= read -r f; do
  b=${f##*/}
  log="$logdir/${b%.lua}.log"
  summary=$(tail -n 1 "$log" 2>/dev/null)
  printf '%s\t%s\n' "$b" "$(cat "$logdir/${b%.lua}.sec" 2>/dev/null || echo 0)" >> "$logdir/times.tsv.new"
  if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    p=$(grep -E '^[0-9]+ pending, ' "$log" | tail -n 1 | cut -d' ' -f1)
    pending=$((pending + ${p:-0}))
    if [ "${BASH_REMATCH[2]}" -gt 0 ]; then
      printf '\n==== %s\n' "$f"
      # the failures as summary.lua printed them: after the marks line, up
      # to the pending/seconds line
      awk 'NR > 1 && !/^[0-9]+ pending, / && !/^[0-9]+ passed, [0-9]+ failed$/ && !/^PENDING \(not run\): /' "$log"
    fi
    grep '^PENDING (not run): ' "$log" | sed "s|^|$f: |"
  else
    failed=$((failed + 1))
    printf '\n==== %s died (exit status %s) before its summary; its last lines:\n' \
      "$f" "$(cat "$logdir/${b%.lua}.rc" 2>/dev/null || echo '?')"
    tail -n 30 "$log" 2>/dev/null
  fi
done <<< "$ordered"
mv "$logdir/times.tsv.new" "$logdir/times.tsv"

printf '\n%d files, %d at a time on %s thread(s) each, logs in %s\n' "${#files[@]}" "$jobs" "$OMP_NUM_THREADS" "$logdir"
awk -v a="$t_start" -v b="$t_end" -v p="$pending" 'BEGIN { printf "%d pending, %.1f s\n", p, b - a }'
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]

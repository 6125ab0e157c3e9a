#!/bin/bash
# run.sh - replay the regressions and fuzz every target: what `make fuzz` runs.
#
#   fuzz/run.sh BUILD_DIR TARGET...     (FUZZ_SECONDS, FUZZ_JOBS from the environment)
#
# BUILD_DIR holds bin/fuzz_<target> and seeds/<target>/.  Each target first
# runs every file of fuzz/regressions/<target>/ once, then fuzzes for
# FUZZ_SECONDS from its seeds and its own growing corpus (BUILD_DIR/corpus/,
# kept between runs), FUZZ_JOBS targets at a time.  Per input: at most
# FUZZ_TIMEOUT seconds (a hang like the .mat of issue #12 fails at once)
# and FUZZ_RSS_MB of memory.  The exit status is 1 when any target found a
# crash, leak, timeout or out-of-memory; its log and the input that did it
# (BUILD_DIR/artifacts/<target>/) are named.
set -u

dir=$1
shift
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-2}
timeout=${FUZZ_TIMEOUT:-5}
rss=${FUZZ_RSS_MB:-2048}
here=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$dir/logs"
# The harnesses write every input to a file: on tmpfs that costs a tenth
# of what it does on disk.  FUZZ_TMP overrides; removed at exit.
scratch=$(mktemp -d "${FUZZ_TMP:-$( [ -w /dev/shm ] && echo /dev/shm || echo "$dir")}/rllua-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# One target: replay, then fuzz; all output to logs/<target>.log.
one() {
  local t=$1 bin=$dir/bin/fuzz_$1 log=$dir/logs/$1.log
  local tmp=$scratch/$1 art=$dir/artifacts/$1/
  rm -rf "$tmp"
  mkdir -p "$tmp" "$art" "$dir/corpus/$t"
  : >"$log"
  local regs=("$here/regressions/$t"/*)
  if [ -e "${regs[0]}" ]; then
    echo "== replaying ${#regs[@]} regression inputs" >>"$log"
    if ! TMPDIR=$tmp "$bin" -timeout="$timeout" -rss_limit_mb="$rss" "${regs[@]}" >>"$log" 2>&1; then
      echo "FAIL" >"$dir/logs/$t.status"
      rm -rf "$tmp"
      return
    fi
  fi
  echo "== fuzzing for ${seconds}s" >>"$log"
  TMPDIR=$tmp "$bin" -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss" \
    -print_final_stats=1 -artifact_prefix="$art" "$dir/corpus/$t" "$dir/seeds/$t" >>"$log" 2>&1
  if [ $? -eq 0 ]; then echo "ok" >"$dir/logs/$t.status"; else echo "FAIL" >"$dir/logs/$t.status"; fi
  rm -rf "$tmp"
}

# Run the targets, at most $jobs at once.
running=0
for t in "$@"; do
  rm -f "$dir/logs/$t.status"
  one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

# The table: executions and speed from libFuzzer's final stats.
failed=0
printf '%-12s %12s %10s  %s\n' target executions 'exec/s' result
for t in "$@"; do
  log=$dir/logs/$t.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  status=$(cat "$dir/logs/$t.status" 2>/dev/null || echo FAIL)
  printf '%-12s %12s %10s  %s\n' "$t" "${runs:--}" "${speed:--}" "$status"
  if [ "$status" != ok ]; then
    failed=1
    echo "---- $t: $log" >&2
    grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20 >&2
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED (inputs under $dir/artifacts/; replay one with $dir/bin/fuzz_TARGET FILE)" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s with no crash, leak or timeout"

#!/bin/bash
# Run a command; every 0.2 s sum the resident memory (VmRSS) of it, its children and their
# children; print the wall time and the peak of that sum. Forked children share their
# parent's pages, so the sum overcounts what they use together.
# Run: bash benchmarks/peak_memory.sh .venv/bin/perf2score -q convert g100000.mid -o x.musicxml
"$@" &
pid=$!
peak=0
start=$(date +%s.%N)
while kill -0 "$pid" 2>/dev/null; do
  pids="$pid"
  for child in $(pgrep -P "$pid"); do pids+=" $child $(pgrep -d' ' -P "$child")"; done
  sum=0
  for p in $pids; do
    kb=$(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null)
    sum=$((sum + ${kb:-0}))
  done
  [ "$sum" -gt "$peak" ] && peak=$sum
  sleep 0.2
done
wait "$pid"
rc=$?
echo "wall $(echo "$(date +%s.%N) - $start" | bc) s, peak summed RSS $((peak / 1024)) MiB, exit $rc"
exit $rc

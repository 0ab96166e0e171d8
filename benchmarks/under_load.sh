#!/bin/bash
# Whole-process neural conversion of one MIDI file: median of 3 runs with --workers 1 and
# --workers 2, first on the idle machine, then beside two CPU-bound processes (a 2-process
# load on the 2 cores). Run: bash benchmarks/under_load.sh FILE.mid
set -e
file=$1
out=$(mktemp -d)
trap 'kill $busy 2>/dev/null; rm -rf "$out"' EXIT
median() {
  for _ in 1 2 3; do
    start=$(date +%s.%N)
    .venv/bin/perf2score -q convert "$file" -o "$out/x.musicxml" --backend neural --workers "$1" >/dev/null
    echo "$(date +%s.%N) - $start" | bc
  done | sort -n | sed -n 2p
}
echo "idle:   workers 1 $(median 1) s, workers 2 $(median 2) s"
python3 -c "while True: pass" & busy=$!
python3 -c "while True: pass" & busy="$busy $!"
sleep 1
echo "loaded: workers 1 $(median 1) s, workers 2 $(median 2) s"

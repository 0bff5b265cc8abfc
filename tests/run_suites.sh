#!/usr/bin/env bash
# Runs each Check suite binary given on the command line (after the build
# dir), echoes Check's own summary line, and ends with one plain total line.
set -u
dir=$1; shift
pass=0; fail=0; bad=()
for t in "$@"; do
  name=$(basename "$t")
  out=$(cd "$(dirname "$0")/.." && "$t" 2>&1); rc=$?
  echo "$out" | grep -E '^[0-9]+%: Checks' | sed "s/^/$name: /"
  line=$(echo "$out" | grep -E '^[0-9]+%: Checks' | tail -1)
  n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
  f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
  e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
  if [ -z "$line" ]; then n=0; f=0; e=1; fi
  pass=$((pass + n - f - e)); fail=$((fail + f + e))
  if [ $rc -ne 0 ] || [ $((f + e)) -ne 0 ]; then
    bad+=("$name"); echo "$out" | grep -vE '^[0-9]+%: Checks|^Running suite' | head -40
  fi
done
echo "checks: $pass passed, $fail failed"
[ ${#bad[@]} -eq 0 ] || { echo "failing suites: ${bad[*]}"; exit 1; }

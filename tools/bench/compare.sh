#!/usr/bin/env bash
# Ours against PyTorch, side by side: for each case of torch_bench.py, runs
# tools/bench/train (ours) and torch_bench.py (PyTorch) alternately, ROUNDS
# times each (ours first in odd rounds, PyTorch first in even ones, so
# neither side always runs on a machine the other just warmed up), and
# prints per case the median img/s of each side over the rounds, their
# ratio (ours / PyTorch), the lowest and highest ratio of a single round
# (ours / PyTorch of the same round) and the peak RSS of both. `make bench-compare`
# calls this. Each run is one process per case, as torch_bench.py asks.
#
# Environment:
#   CASES="a b"      cases to run (default: all eight)
#   ROUNDS=N         alternations per case (default 5)
#   THREADS=N        threads for both sides (default 2)
#   STEPS=N WARMUP=N timed / warm-up steps per run (default 10 / 3)
#   PYTHON=path      the interpreter with torch (default /usr/bin/python3)
#   TORCH_BENCH=path torch_bench.py (default ../shared/bench/torch_bench.py
#                    next to the repository, then shared/bench/torch_bench.py)
#   COMPARE_JSON=f   also write the summary as JSON to f
#
# Peak RSS like for like: torch_bench's peak includes the interpreter and
# the torch import; its "rss_before_steps" (model, data and optimizer built,
# no step run yet) is reported too, and both sides' "step" column is peak
# minus that baseline: the memory the training step itself adds.
#
# Exits non-zero if our benchmark is missing or a run fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ours="$here/train"
py=${PYTHON:-/usr/bin/python3}
rounds=${ROUNDS:-5}
threads=${THREADS:-2}
steps=${STEPS:-10}
warmup=${WARMUP:-3}
cases=${CASES:-"r18_train_64 r18_train_32 r18_train_224 r18_rrr_64 r18_gradmask_64 vit_train_32 vit_rrr_32 r18_infer_64"}
tb=${TORCH_BENCH:-}
if [ -z "$tb" ]; then
  for c in "$root/../shared/bench/torch_bench.py" "$root/shared/bench/torch_bench.py"; do
    [ -f "$c" ] && { tb=$c; break; }
  done
fi

if [ ! -x "$ours" ]; then
  echo "compare: $ours is not built (run make tools)" >&2
  exit 1
fi
have_torch=0
if [ -n "$tb" ] && [ -f "$tb" ] && "$py" -c 'import torch, torchvision' >/dev/null 2>&1; then
  have_torch=1
else
  echo "compare: PyTorch reference not available (need $py with torch and torchvision, and torch_bench.py;"
  echo "         apt-get install python3-torch python3-torchvision): running ours only"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
echo "compare: $rounds round(s) per case, $threads threads, $steps steps after $warmup warm-up; load average $load_start"

# vals FILE FIELD: the field of each line of $tmp/FILE, one per line.
# (one sed over the file: no shared scratch file, so two can run at once)
vals() { sed -n "s/.*\"$2\": \([-0-9.e]*\).*/\1/p" "$tmp/$1"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

status=0
run_ours() {
  "$ours" --case "$1" --threads "$threads" --steps "$steps" --warmup "$warmup" > "$tmp/o.txt" 2>&1 \
    || { echo "compare: ours failed on $1:" >&2; tail -3 "$tmp/o.txt" >&2; status=1; return 1; }
  grep '^JSON ' "$tmp/o.txt" | sed 's/^JSON //' >> "$tmp/$1.ours"
}
run_torch() {
  "$py" "$tb" "$1" --threads "$threads" --steps "$steps" --warmup "$warmup" > "$tmp/t.txt" 2>&1 \
    || { echo "compare: torch_bench failed on $1:" >&2; tail -3 "$tmp/t.txt" >&2; status=1; return 1; }
  grep '^JSON ' "$tmp/t.txt" | sed 's/^JSON //' >> "$tmp/$1.torch"
}

for c in $cases; do
  : > "$tmp/$c.ours"; : > "$tmp/$c.torch"
  for r in $(seq "$rounds"); do
    if [ $have_torch -eq 1 ] && [ $((r % 2)) -eq 0 ]; then run_torch "$c"; run_ours "$c"
    else run_ours "$c"; [ $have_torch -eq 1 ] && run_torch "$c"; fi
    echo "compare: $c round $r/$rounds done" >&2
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# Per case: medians over rounds of img/s, peak RSS and baseline RSS.
printf '\n%-16s %10s %10s %7s %13s  %9s %9s  %9s %9s\n' case "ours img/s" "torch" ratio "round ratios" "ours MiB" \
  "torch" "ours step" "torch"
json="{\"threads\": $threads, \"rounds\": $rounds, \"steps\": $steps, \"warmup\": $warmup, \"cpu\": \"$cpu\", \"cores\": $(nproc), \"load_start\": \"$load_start\", \"load_end\": \"$load_end\", \"torch\": $have_torch, \"cases\": ["
first=1
for c in $cases; do
  oi=$(vals "$c.ours" img_per_s | median)
  op=$(vals "$c.ours" peak_rss_mib | median)
  ob=$(vals "$c.ours" rss_before_steps_mib | median)
  ti=nan; tp=nan; tbb=nan; ratio=nan; rlo=nan; rhi=nan; tlo=nan; thi=nan
  if [ $have_torch -eq 1 ]; then
    ti=$(vals "$c.torch" img_per_s | median)
    tp=$(vals "$c.torch" peak_rss_mib | median)
    tbb=$(vals "$c.torch" rss_before_steps_mib | median)
    ratio=$(awk -v a="$oi" -v b="$ti" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "nan"}')
    # round r's ratio: ours / PyTorch of the same round (they ran back to back)
    paste <(vals "$c.ours" img_per_s) <(vals "$c.torch" img_per_s) |
      awk '$2 > 0 {printf "%.3f\n", $1 / $2}' > "$tmp/$c.ratios"
    rlo=$(sort -g "$tmp/$c.ratios" | head -1)
    rhi=$(sort -g "$tmp/$c.ratios" | tail -1)
    tlo=$(vals "$c.torch" img_per_s | sort -g | head -1)
    thi=$(vals "$c.torch" img_per_s | sort -g | tail -1)
  fi
  olo=$(vals "$c.ours" img_per_s | sort -g | head -1)
  ohi=$(vals "$c.ours" img_per_s | sort -g | tail -1)
  ostep=$(awk -v a="$op" -v b="$ob" 'BEGIN {printf "%.0f", a - b}')
  tstep=$(awk -v a="$tp" -v b="$tbb" 'BEGIN {if (a == a && b == b) printf "%.0f", a - b; else print "nan"}')
  printf '%-16s %10.1f %10s %7s %13s  %9.0f %9s  %9s %9s\n' "$c" "$oi" "$ti" "$ratio" "$rlo-$rhi" "$op" "$tp" \
    "$ostep" "$tstep"
  [ $first -eq 1 ] || json="$json, "
  first=0
  json="$json{\"case\": \"$c\", \"ours_img_per_s\": $oi, \"torch_img_per_s\": $ti, \"ratio\": $ratio, \"ours_peak_rss_mib\": $op, \"torch_peak_rss_mib\": $tp, \"ours_rss_before_steps_mib\": $ob, \"torch_rss_before_steps_mib\": $tbb, \"ours_img_per_s_min\": $olo, \"ours_img_per_s_max\": $ohi, \"torch_img_per_s_min\": $tlo, \"torch_img_per_s_max\": $thi, \"round_ratio_min\": $rlo, \"round_ratio_max\": $rhi}"
done
json="$json]}"
json=$(echo "$json" | sed 's/: nan/: null/g')
echo
echo "load average: $load_start at start, $load_end at end ($(nproc) cores, $cpu)"
echo "JSON $json"
[ -n "${COMPARE_JSON:-}" ] && echo "$json" > "$COMPARE_JSON"
exit $status

#!/usr/bin/env bash
# Runs every benchmark program in tools/bench/ (one per tools/bench/*.c,
# built by `make tools`); `make bench` calls this.
#
#   BENCH_JSON_DIR=DIR   also write DIR/<name>.json for each benchmark
#   BENCH_ARGS="..."     extra flags passed to every benchmark (e.g. --reps 9)
#
# Exits non-zero if a benchmark is missing or fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
status=0
for src in "$here"/*.c; do
  [ -e "$src" ] || continue
  name=$(basename "$src" .c)
  bin="$here/$name"
  if [ ! -x "$bin" ]; then
    echo "bench: $name is not built (run make tools)" >&2
    status=1
    continue
  fi
  args=()
  if [ -n "${BENCH_JSON_DIR:-}" ]; then
    mkdir -p "$BENCH_JSON_DIR" && args+=(--json "$BENCH_JSON_DIR/$name.json")
  fi
  echo "== $name"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of flags
  "$bin" "${args[@]}" ${BENCH_ARGS:-} || { echo "bench: $name failed" >&2; status=1; }
done
exit $status

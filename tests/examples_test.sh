#!/usr/bin/env bash
# Installs libtensor into a temporary prefix, builds every docs/examples
# program against the *installed* library through pkg-config (static and
# shared), runs each and checks it exits 0 and prints what it should.
set -eu
cd "$(dirname "$0")/.."
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
make --no-print-directory -s install PREFIX="$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pass=0; fail=0
for src in docs/examples/*.c; do
  name=$(basename "$src" .c)
  for link in shared static; do
    if [ $link = static ]; then
      cc -std=c11 "$src" $(pkg-config --cflags libtensor) -o "$prefix/$name-$link" "$prefix/lib/libtensor.a" \
        $(pkg-config --libs-only-other --static libtensor) -lopenblas -lpng -lz -lcjson -lm -fopenmp
    else
      cc -std=c11 "$src" $(pkg-config --cflags --libs libtensor) -Wl,-rpath,"$prefix/lib" -o "$prefix/$name-$link"
    fi
    out=$("$prefix/$name-$link" 2>&1) && grep -q '=' <<<"$out" && ! grep -qi 'nan' <<<"$out" \
      && { pass=$((pass+1)); echo "example $name ($link): ok"; } \
      || { fail=$((fail+1)); echo "example $name ($link): FAILED"; echo "$out"; }
  done
done
echo "examples: $pass passed, $fail failed"
[ $fail -eq 0 ]

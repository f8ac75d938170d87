#!/usr/bin/env bash
# Run the backend-dependent part of the test suite with OpenBLAS really absent: hidden from the dynamic loader, so
# that dlopen("libopenblas.so.0") fails as on a machine without libopenblas0 (PTMST_BLAS=off is another code path:
# it never tries the library). CI installs OpenBLAS for the rest of the suite; this proves the other configuration.
#
#   bash scripts/test-without-blas.sh            the test files below, in a child that cannot load OpenBLAS
#   bash scripts/test-without-blas.sh --probe    print, from inside, the backend's JSON (blas must be null), and exit
#   bash scripts/test-without-blas.sh FILE...    these compiled test files instead (dist/test/...test.js)
#
# How: the script re-runs itself in a private mount namespace (unshare: root, or an unprivileged user namespace)
# and there covers every file the loader could resolve libopenblas to: an empty tmpfs over an OpenBLAS folder
# (Debian's openblas-pthread/ and openblas-openmp/), /dev/null bound over a file elsewhere. Nothing changes outside
# the namespace (other processes still load OpenBLAS). Before the tests it checks that OpenBLAS no longer loads,
# and fails if it still does. Needs `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."

# the backend-dependent test files: every product, gradient and stage the backend's configuration could change
default_files=(dist/test/backend dist/test/util dist/test/model dist/test/distill dist/test/evaluate dist/test/trajectory dist/test/features)

probe='require("./dist/src/backend").ready(() => undefined).then((i) => process.stdout.write(JSON.stringify(i) + "\n"))'

if [ "${PTMST_BLAS_HIDDEN:-}" != 1 ]; then
  [ -d dist/test ] || { echo "test-without-blas: no dist/test: run npm run build first" >&2; exit 1; }
  if [ "$(id -u)" = 0 ]; then ns=(unshare --mount --propagation private); else ns=(unshare --map-root-user --mount --propagation private); fi
  if ! "${ns[@]}" true 2>/dev/null; then
    echo "test-without-blas: cannot make a private mount namespace (${ns[*]}): run as root or allow user namespaces" >&2
    exit 1
  fi
  exec "${ns[@]}" env PTMST_BLAS_HIDDEN=1 bash "$0" "$@"
fi

# inside the namespace: hide every libopenblas the loader knows of (its cache, the usual folders, LD_LIBRARY_PATH)
mapfile -t found < <(
  {
    ldconfig -p 2>/dev/null | awk '/libopenblas/ { print $NF }'
    for d in /lib /usr/lib /usr/local/lib /lib/*-linux-gnu /usr/lib/*-linux-gnu /usr/lib/*-linux-gnu/openblas-* $(tr : " " <<< "${LD_LIBRARY_PATH:-}"); do
      [ -d "$d" ] && find "$d" -maxdepth 1 -name 'libopenblas*' 2>/dev/null
    done
  } | while read -r f; do readlink -f "$f" || true; done | sort -u
)
hidden=0
for f in "${found[@]}"; do
  [ -e "$f" ] || continue
  dir=$(dirname "$f")
  if [[ "$(basename "$dir")" == *openblas* ]]; then
    mountpoint -q "$dir" || mount -t tmpfs -o ro,size=1k ptmst-no-blas "$dir"
  else
    mount --bind /dev/null "$f"
  fi
  hidden=$((hidden + 1))
done

# OpenBLAS must not load now: the backend reports blas null (koffi's dlopen failed, not PTMST_BLAS=off)
info=$(env -u PTMST_BLAS node -e "$probe")
if ! node -e 'process.exit(JSON.parse(process.argv[1]).blas === null ? 0 : 1)' "$info"; then
  echo "test-without-blas: OpenBLAS still loads after hiding $hidden file(s): $info" >&2
  exit 1
fi
echo "test-without-blas: $hidden OpenBLAS file(s) hidden from the loader; backend: $info" >&2
if [ "${1:-}" = --probe ]; then
  echo "$info"
  exit 0
fi

files=("$@")
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(find "${default_files[@]}" -name '*.test.js' | sort)
# PTMST_REQUIRE_BLAS (set by .ci/run) would fail the BLAS tests, which skip here; unset PTMST_BLAS tries the library
exec env -u PTMST_REQUIRE_BLAS -u PTMST_BLAS \
  node node_modules/mocha/bin/mocha.js --no-config --require dist/test/hooks.js --timeout 120000 --reporter spec "${files[@]}"

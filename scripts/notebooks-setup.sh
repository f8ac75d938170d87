#!/usr/bin/env bash
# Everything the notebooks need on a fresh Debian machine, and nothing global beyond Debian's packages:
#  1. Debian's Jupyter (nbconvert + nbclient execute notebooks headless; notebook for interactive use),
#     run by /usr/bin/python3 — never the first python3 on PATH, which may be another install; and Debian's
#     chromium, which `npm run notebooks:browser` drives headless to check how the notebooks render;
#  2. a tslab kernel registered inside the project (.jupyter/kernels/tslab), found through JUPYTER_PATH;
#  3. node_modules/ptmst → the project, so notebooks import the built package by its name.
# Idempotent: a second run checks and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
PACKAGES=(jupyter-nbconvert python3-nbclient python3-ipython python3-ipykernel jupyter-notebook fonts-dejavu-core chromium)

bash scripts/apt-ensure.sh "${PACKAGES[@]}"
"$PY" -c 'import nbclient, nbconvert' || { echo "notebooks:setup: $PY cannot import nbclient/nbconvert" >&2; exit 1; }

[ -f node_modules/tslab/bin/tslab ] || { echo "notebooks:setup: node_modules/tslab is missing; run npm ci first" >&2; exit 1; }
[ -f dist/src/index.js ] || npm run build --silent

# the kernel: tslab from this project's node_modules, under this node
mkdir -p .jupyter/kernels/tslab
node -e '
const path = require("node:path");
const spec = {
  argv: [process.execPath, path.resolve("node_modules/tslab/bin/tslab"), "kernel", "--config-path", "{connection_file}"],
  display_name: "TypeScript (ptmst)",
  language: "typescript",
  metadata: { project: path.resolve(".") },
};
require("node:fs").writeFileSync(".jupyter/kernels/tslab/kernel.json", JSON.stringify(spec, null, 2) + "\n");
'
# the package by its name (npm ci removes this link; `npm run notebooks` restores it too)
[ "$(readlink node_modules/ptmst 2>/dev/null)" = ".." ] || { rm -rf node_modules/ptmst; ln -s .. node_modules/ptmst; }

found=$(JUPYTER_PATH="$PWD/.jupyter" "$PY" -c 'from jupyter_client.kernelspec import KernelSpecManager as K; print(K().find_kernel_specs().get("tslab", ""))')
[ "$found" = "$PWD/.jupyter/kernels/tslab" ] || { echo "notebooks:setup: Jupyter finds the tslab kernel at '$found', not in $PWD/.jupyter" >&2; exit 1; }
echo "notebooks:setup: ready (kernel $found; nbconvert $("$PY" -c 'import nbconvert; print(nbconvert.__version__)'))"

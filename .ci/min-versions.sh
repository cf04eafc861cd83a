#!/usr/bin/env bash
# The test suite against the lowest versions setup.cfg allows (`make test-min`).
#
# Reads the ">=" pins of setup.cfg's install_requires and test extra, turns each
# into "name==<min>.*" (numpy>=1.25 -> numpy==1.25.*, pytest>=7 -> pytest==7.0.*),
# installs exactly those into a fresh venv in a temp folder, the package into it
# with its test extra (editable, from this tree), and runs the whole suite there.
# Exit code: the suite's (or pip's, when the install fails).
#
# It downloads every package from PyPI (about 150 MB) and takes 5-10 minutes on
# 2 cores; .ci/run does not call it. Arguments go to pytest, e.g.
#   .ci/min-versions.sh -x tests/test_formats_mx.py
# PY=python3.11 picks the interpreter (default: python); KEEP=1 keeps the folder.
# The Numba cache goes into the temp folder, so the tree's own __pycache__
# (compiled by the current Numba) is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}

work=$(mktemp -d "${TMPDIR:-/tmp}/intsim-min.XXXXXX")
if [[ "${KEEP:-0}" == 1 ]]; then
    echo "min-versions: keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

"$PY" - setup.cfg > "$work/constraints.txt" <<'EOF'
import configparser
import re
import sys

cfg = configparser.ConfigParser()
cfg.read(sys.argv[1])
pins = (cfg["options"]["install_requires"].splitlines()
        + cfg["options.extras_require"]["test"].splitlines())
for line in pins:
    line = line.split("#")[0].strip()
    if not line:
        continue
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9]+(?:\.[0-9]+)*)", line)
    if m is None:
        sys.exit(f"min-versions: setup.cfg pin {line!r} is not of the form name>=X.Y")
    parts = m[3].split(".")
    if len(parts) == 1:
        parts.append("0")
    print(f"{m[1]}=={'.'.join(parts)}.*")   # a constraint names no extras
EOF
echo "min-versions: constraints from setup.cfg:"
sed 's/^/  /' "$work/constraints.txt"

"$PY" -m venv "$work/venv"
VPY="$work/venv/bin/python"
# the compiled packages from wheels only: no hour-long source build of an old release
"$VPY" -m pip install -q --disable-pip-version-check \
    --only-binary=numpy,scipy,numba,llvmlite,matplotlib,ml_dtypes \
    -c "$work/constraints.txt" -e ".[test]"
echo "min-versions: installed"
"$VPY" -m pip list --disable-pip-version-check 2>/dev/null \
    | grep -iE '^(numpy|numba|llvmlite|scipy|click|ml[-_]dtypes|matplotlib|dask|distributed|pytest|hypothesis) ' \
    | sed 's/^/  /'

set +e
NUMBA_CACHE_DIR="$work/numba-cache" "$VPY" -m pytest -q -p no:cacheprovider -rfE "$@"
rc=$?
set -e
echo "min-versions: pytest exit code $rc"
exit "$rc"

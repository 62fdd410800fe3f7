#!/usr/bin/env bash
# Python bindings tests (make test-python): installs pytest and the apmnet package into the current
# Python environment (PYTHON, default python3), then runs bindings/python/tests against the library in
# APMNET_LIBRARY, or else the newer of target/release and target/debug. Extra arguments go to pytest.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}

if [ -z "${APMNET_LIBRARY:-}" ]; then
  for candidate in "$root/target/release/libapmnet.so" "$root/target/debug/libapmnet.so"; do
    if [ -f "$candidate" ] && { [ -z "${APMNET_LIBRARY:-}" ] || [ "$candidate" -nt "$APMNET_LIBRARY" ]; }; then
      APMNET_LIBRARY=$candidate
    fi
  done
fi
if [ -z "${APMNET_LIBRARY:-}" ]; then
  echo "bindings/python/test.sh: no libapmnet.so; run 'cargo build --release' first or set APMNET_LIBRARY" >&2
  exit 1
fi
export APMNET_LIBRARY
echo "bindings/python/test.sh: testing $APMNET_LIBRARY" >&2

export PIP_ROOT_USER_ACTION=ignore  # CI containers run as root
pip=("$python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" pytest
# A copy of the package, not the source folder: the tests run against what users install.
"${pip[@]}" --force-reinstall --no-deps "$here" || "${pip[@]}" --force-reinstall --no-deps --no-build-isolation "$here"

# From inside tests/, so 'import apmnet' finds the installed package rather than ../apmnet.
cd "$here/tests"
exec "$python" -m pytest -p no:cacheprovider -q "$@"

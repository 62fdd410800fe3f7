#!/usr/bin/env bash
# Python bindings tests (make test-python): installs pytest and the apmnet package into the current
# Python environment (PYTHON, default python3), then runs bindings/python/tests against the library in
# APMNET_LIBRARY, or else the newer of target/release and target/debug. Extra arguments go to pytest.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-python3}

. "$here/../library.sh"
apmnet_library bindings/python/test.sh

export PIP_ROOT_USER_ACTION=ignore  # CI containers run as root
pip=("$python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" pytest "pyspnego==0.12.*"  # pyspnego: the independent NTLM peer of test_negotiate.py
# A copy of the package, not the source folder: the tests run against what users install.
"${pip[@]}" --force-reinstall --no-deps "$here" || "${pip[@]}" --force-reinstall --no-deps --no-build-isolation "$here"

# From inside tests/, so 'import apmnet' finds the installed package rather than ../apmnet.
cd "$here/tests"
exec "$python" -m pytest -p no:cacheprovider -q "$@"

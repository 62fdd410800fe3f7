#!/usr/bin/env bash
# Python bindings tests (make test-python): builds the wheel and installs it into a fresh venv
# (venv.sh), then runs bindings/python/tests with that venv's python, against the installed package
# and the libapmnet.so inside it. APMNET_LIBRARY, if set, still comes first (the package's lookup
# order). Extra arguments go to pytest. APMNET_PYTHON_VENV names an existing venv's python to use
# instead of building one (make test passes the one it built).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

python=${APMNET_PYTHON_VENV:-}
[ -n "$python" ] || python=$(bash "$here/venv.sh")
echo "bindings/python/test.sh: testing $("$python" -c 'import apmnet; print(apmnet.__file__, apmnet.library_path)')" >&2

# From inside tests/, so 'import apmnet' finds the installed package rather than ../apmnet.
cd "$here/tests"
exec "$python" -m pytest -p no:cacheprovider -q "$@"

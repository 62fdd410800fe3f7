#!/usr/bin/env bash
# venv.sh: a fresh virtual environment with the apmnet package installed from its wheel, as a user
# has it (make test-python and make test-readme use it). Builds the wheel with pip (setuptools-rust
# runs cargo; see setup.py), makes a new venv (python3 -m venv --clear; Debian: python3-venv) and
# installs the wheel, pytest, pyspnego (the NTLM peer of test_negotiate.py) and, if it installs, mypy. Everything goes to APMNET_PYTHON_BUILD
# (default: target/python of this checkout): venv/, wheel/, and cargo/ (cargo's target folder, kept
# between runs). Prints the venv's python.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
out=${APMNET_PYTHON_BUILD:-$root/target/python}

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore  # CI containers run as root
"$python" -m venv --clear "$out/venv" >&2
venv_python=$out/venv/bin/python
rm -rf "$out/wheel"
CARGO_TARGET_DIR=$out/cargo "$venv_python" -m pip wheel -q --no-deps -w "$out/wheel" "$here" >&2
"$venv_python" -m pip install -q "$out"/wheel/apmnet-*.whl pytest "pyspnego==0.12.*" >&2
"$venv_python" -m pip install -q mypy >&2 || echo "venv.sh: mypy did not install; the README's Python examples are not type-checked" >&2
echo "$venv_python"

#!/bin/bash
# setup.sh CACHE: the interop peers the C harness runs against, installed when missing and cached in
# CACHE (outside the repository): a real .NET 8 runtime and mcs (bindings/dotnet/dotnet.sh, which also
# installs gss-ntlmssp, .NET's NTLM on Linux), NnsPeer.exe (a .NET NegotiateStream peer, compiled
# from NnsPeer.cs), NegAuthPeer.exe (.NET 8's NegotiateAuthentication, from NegAuthPeer.cs) and
# pyspnego in a virtual environment (nns_pyspnego.py's peer). Prints the variables to export;
# make test-rust evaluates them. A peer that cannot be installed is left out (its tests then skip,
# saying so) and named on stderr.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$(mkdir -p "$1" && cd "$1" && pwd)
exports=()
if dotnet_env=$(bash "$here/../../bindings/dotnet/dotnet.sh" "$CACHE"); then
  eval "$dotnet_env"
  exports+=("${dotnet_env#export }")
  if [ ! -f "$CACHE/NnsPeer.exe" ] || [ "$here/NnsPeer.cs" -nt "$CACHE/NnsPeer.exe" ]; then
    mcs -noconfig -nologo -warnaserror -r:System.dll -r:System.Core.dll -out:"$CACHE/NnsPeer.exe" "$here/NnsPeer.cs" >&2 \
      || echo "setup.sh: NnsPeer.cs did not compile; the .NET interop tests will skip" >&2
  fi
  [ -f "$CACHE/NnsPeer.exe" ] && exports+=("APMNET_NNS_PEER=$CACHE/NnsPeer.exe")
  if [ ! -f "$CACHE/NegAuthPeer.exe" ] || [ "$here/NegAuthPeer.cs" -nt "$CACHE/NegAuthPeer.exe" ]; then
    mcs -noconfig -nologo -warnaserror -r:System.dll -r:System.Core.dll -out:"$CACHE/NegAuthPeer.exe" "$here/NegAuthPeer.cs" >&2 \
      || echo "setup.sh: NegAuthPeer.cs did not compile; the NegotiateAuthentication interop tests will skip" >&2
  fi
  [ -f "$CACHE/NegAuthPeer.exe" ] && exports+=("APMNET_NEGAUTH_PEER=$CACHE/NegAuthPeer.exe")
else
  echo "setup.sh: no .NET 8 runtime; the .NET interop tests will skip" >&2
fi
venv=$CACHE/pyspnego-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import spnego" 2>/dev/null; then
  python3 -m venv "$venv" >&2 && "$venv/bin/python" -m pip install -q "pyspnego==0.12.*" >&2 \
    || echo "setup.sh: pyspnego could not be installed; the pyspnego interop tests will skip" >&2
fi
# pyspnego's Kerberos: python-gssapi and krb5, which build against MIT krb5 (Debian libkrb5-dev, whose
# krb5-config they run). Without them pyspnego still does NTLM, and its Kerberos tests skip; the build
# is only tried where krb5-config is, so that a machine without libkrb5-dev does not retry (and fail)
# a two-minute build on every run.
if "$venv/bin/python" -c "import spnego" 2>/dev/null && ! "$venv/bin/python" -c "import gssapi, krb5" 2>/dev/null; then
  if command -v krb5-config >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install -q "pyspnego[kerberos]==0.12.*" >&2 \
      || echo "setup.sh: python-gssapi or krb5 did not build; the pyspnego Kerberos tests will skip" >&2
  else
    echo "setup.sh: no krb5-config (Debian libkrb5-dev); the pyspnego Kerberos tests will skip" >&2
  fi
fi
"$venv/bin/python" -c "import spnego" 2>/dev/null && exports+=("APMNET_PYSPNEGO_PYTHON=$venv/bin/python")
echo "export ${exports[*]}"

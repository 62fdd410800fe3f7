#!/usr/bin/env bash
# .NET wrapper tests (make test-dotnet): dotnet.sh provides Mono's mcs and a real .NET 8 runtime, cached in
# APMNET_PEERS_CACHE (default $HOME/.cache/apmnet-peers, outside the repository). The wrapper and its
# tests are compiled with mcs into target/dotnet and run on .NET 8 against APMNET_LIBRARY, or else the
# newer of target/release and target/debug. Arguments select tests by name. The declaration tests
# (tests/DeclarationTests.cs) read the header named by APMNET_HEADER, by default this checkout's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

eval "$(bash "$here/dotnet.sh" "${APMNET_PEERS_CACHE:-$HOME/.cache/apmnet-peers}")"

. "$here/../library.sh"
apmnet_library bindings/dotnet/test.sh
export APMNET_HEADER=${APMNET_HEADER:-$root/include/apmnet.h}

out=$root/target/dotnet
mkdir -p "$out"
references=(-noconfig -nologo -warnaserror -r:System.dll -r:System.Core.dll)
mcs "${references[@]}" -target:library -out:"$out/Apmnet.dll" "$here"/src/*.cs
mcs "${references[@]}" -r:"$out/Apmnet.dll" -out:"$out/Tests.exe" "$here"/tests/*.cs

# .NET's own NegotiateStream server (tests/NegotiateTests.cs) gets its NTLM users from gss-ntlmssp, which
# reads this file; no Kerberos (a krb5.conf naming distant KDCs would only delay NTLM).
printf 'TESTDOM:alice:Passw0rd!\n' >"$out/ntlm_users.txt"
export NTLM_USER_FILE=$out/ntlm_users.txt KRB5_CONFIG=${KRB5_CONFIG:-$out/no-krb5.conf}

# The library's default proxy is the environment's, loopback included (as .NET 8's): the tests talk to
# their peers directly unless one sets a proxy itself.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

cd "$out"
exec "$APMNET_DOTNET" exec --runtimeconfig "$APMNET_DOTNET_CONFIG" Tests.exe "$@"

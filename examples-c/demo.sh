#!/usr/bin/env bash
# Builds the C examples against the release library and runs them against each other on loopback.
# Run from anywhere (`make demo` runs it after `cargo build --release`); exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "$0")/.."
lib=${CARGO_TARGET_DIR:-target}/release
out=target/examples-c
CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2 -g}
warnings=(-std=c11 -Wall -Wextra -Werror -pedantic)

step() { printf '\n== %s\n' "$*"; }
passed=0
pass() { printf 'ok: %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf 'FAILED: %s\n' "$*" >&2; printf 'demo: %d passed, 1 failed\n' "$passed"; exit 1; }

[ -f "$lib/libapmnet.so" ] || cargo build --release

step "building the examples ($CC ${warnings[*]})"
mkdir -p "$out"
# The programs ask for the library by its soname, libapmnet.so.0, which cargo does not create:
# a link beside them, found through -rpath $ORIGIN, names the freshly built one (make install
# creates the same link in PREFIX/lib).
soname=$(readelf -d "$lib/libapmnet.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ -z "$soname" ] || ln -sfn "$(cd "$lib" && pwd)/libapmnet.so" "$out/$soname"
for prog in send_file_server send_file_client echo_server echo_client https_post negotiate_server negotiate_client cbt_auth; do
    # shellcheck disable=SC2086
    "$CC" "${warnings[@]}" $CFLAGS -Iinclude -o "$out/$prog" "examples-c/$prog.c" \
        -L"$lib" -Wl,-rpath,'$ORIGIN' -lapmnet -pthread
    echo "built $out/$prog"
done
pass "8 examples compile with -Wall -Wextra -Werror"

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$tmp/realm/kdc.pid" ] && kill "$(cat "$tmp/realm/kdc.pid")" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# Starts a server in the background and sets $port from its "listening on PORT" line.
start_server() {
    local log=$1; shift
    : >"$log"  # exists before the polling below reads it (the redirection below is the child's, later)
    "$@" >"$log" 2>&1 &
    pids+=($!)
    server_pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$log")
        [ -n "$port" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    fail "$1 did not start listening"
}

# Waits for the background server to exit; its output goes to the terminal, indented.
wait_server() {
    local log=$1 rc=0
    for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && { kill "$server_pid"; cat "$log" >&2; fail "the server did not exit"; }
    wait "$server_pid" || rc=$?
    sed 's/^/  server: /' "$log"
    return "$rc"
}

step "send a file: send_file_server <- send_file_client (BeginSendFile with a header and a trailer)"
head -c 8388608 /dev/urandom >"$tmp/payload.bin"
echo "made $tmp/payload.bin: 8 MiB of random bytes"
start_server "$tmp/server.log" "$out/send_file_server" 0 "$tmp/received.bin"
timeout 60 "$out/send_file_client" 127.0.0.1 "$port" "$tmp/payload.bin" >"$tmp/client.log" 2>&1 \
    || { cat "$tmp/client.log" >&2; fail "send_file_client"; }
sed 's/^/  client: /' "$tmp/client.log"
wait_server "$tmp/server.log" || fail "send_file_server"
sent=$(sed -n 's/^sent \([0-9]*\) bytes.*fnv1a64 \([0-9a-f]*\)$/\1 \2/p' "$tmp/client.log")
received=$(sed -n 's/^received \([0-9]*\) bytes, fnv1a64 \([0-9a-f]*\)$/\1 \2/p' "$tmp/server.log")
[ -n "$sent" ] && [ "$sent" = "$received" ] || fail "client sent '$sent' but the server received '$received'"
pass "byte count and checksum match: $sent"
{ printf 'HEADER\n'; cat "$tmp/payload.bin"; printf 'TRAILER\n'; } >"$tmp/expected.bin"
cmp "$tmp/expected.bin" "$tmp/received.bin" || fail "the received bytes differ from header + file + trailer"
pass "the server's copy is byte for byte header + file + trailer"
closed_port=$port

step "echo: echo_server <- echo_client (4 concurrent connections, 8 messages each)"
start_server "$tmp/echo.log" "$out/echo_server" 0 4
timeout 60 "$out/echo_client" 127.0.0.1 "$port" 4 8 >"$tmp/echo_client.log" 2>&1 \
    || { cat "$tmp/echo_client.log" >&2; fail "echo_client"; }
sed 's/^/  client: /' "$tmp/echo_client.log"
wait_server "$tmp/echo.log" || fail "echo_server"
pass "every echo matched and the server closed all 4 connections"

step "errors: a client connecting to a port nobody listens on any more"
if timeout 60 "$out/send_file_client" 127.0.0.1 "$closed_port" "$tmp/payload.bin" >"$tmp/refused.log" 2>&1; then
    cat "$tmp/refused.log" >&2
    fail "connecting to a closed port succeeded"
fi
sed 's/^/  client: /' "$tmp/refused.log"
grep -q 'APM_E_SOCKET' "$tmp/refused.log" || fail "expected APM_E_SOCKET (SocketException) from the refused connect"
pass "the refused connect is reported as APM_E_SOCKET with its message"

step "errors: BeginSendFile with a file that does not exist"
start_server "$tmp/server2.log" "$out/send_file_server" 0
if timeout 60 "$out/send_file_client" 127.0.0.1 "$port" "$tmp/no-such-file" >"$tmp/missing.log" 2>&1; then
    fail "sending a missing file succeeded"
fi
sed 's/^/  client: /' "$tmp/missing.log"
wait_server "$tmp/server2.log" || true
grep -q 'APM_E_FILE_NOT_FOUND' "$tmp/missing.log" || fail "expected APM_E_FILE_NOT_FOUND from BeginSendFile"
pass "BeginSendFile reports the missing file as APM_E_FILE_NOT_FOUND before sending anything"

step "https: https_post POSTs a file with HttpWebRequest to Python's https server (a throw-away CA)"
if ! command -v openssl >/dev/null || ! command -v python3 >/dev/null; then
    echo "skipped: needs openssl and python3"
else
    python3 ffi-tests/peers/make_pki.py "$tmp/pki" >/dev/null
    : >"$tmp/https.log"
    python3 ffi-tests/peers/http_peer.py --cert "$tmp/pki/server.pem" --key "$tmp/pki/server.key" --tls 1.2 --timeout 60 \
        >"$tmp/https.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$tmp/https.log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$tmp/https.log" >&2; fail "the https server did not start"; }
    head -c 1048576 /dev/urandom >"$tmp/upload.bin"
    timeout 60 "$out/https_post" "https://localhost:$port/echo" "$tmp/upload.bin" "$tmp/pki/ca.pem" >"$tmp/post.log" 2>&1 \
        || { cat "$tmp/post.log" >&2; fail "https_post"; }
    sed 's/^/  https_post: /' "$tmp/post.log"
    want=$(sha256sum "$tmp/upload.bin" | cut -d' ' -f1)
    grep -q "sha=$want" "$tmp/post.log" || fail "the server's SHA-256 of the body is not the file's"
    pass "the server received the file whole (SHA-256 $want)"
    grep -q "^tls-server-end-point: [0-9a-f]\{64\}$" "$tmp/post.log" || fail "no tls-server-end-point binding"
    pass "EndGetRequestStream's TransportContext carries the connection's channel bindings"
    if timeout 60 "$out/https_post" "https://localhost:$port/echo" "$tmp/upload.bin" >"$tmp/untrusted.log" 2>&1; then
        fail "an untrusted server certificate was accepted"
    fi
    sed 's/^/  https_post: /' "$tmp/untrusted.log"
    grep -q "WebExceptionStatus 9" "$tmp/untrusted.log" || fail "expected TrustFailure (9) without the CA"
    pass "without the CA the request fails with APM_E_WEB TrustFailure: validation is on by default"
fi
step "NegotiateStream: negotiate_server <- negotiate_client (NTLM, EncryptAndSign, Begin/End)"
# The server's users, in the DOMAIN:USER:PASSWORD format of gss-ntlmssp and pyspnego.
printf 'TESTDOM:alice:Passw0rd!\n' >"$tmp/users.txt"
# No Kerberos here: a krb5.conf naming KDCs elsewhere would only delay the fallback to NTLM.
export KRB5_CONFIG=$tmp/no-krb5.conf
# nego_echo NAME USER: negotiate_server and negotiate_client at EncryptAndSign, logs in $tmp/NAME*.log.
nego_echo() {
    start_server "$tmp/$1.log" "$out/negotiate_server" 0 "$tmp/users.txt" EncryptAndSign
    timeout 60 "$out/negotiate_client" 127.0.0.1 "$port" "$2" 'Passw0rd!' EncryptAndSign >"$tmp/$1_client.log" 2>&1 \
        || { cat "$tmp/$1_client.log" >&2; fail "negotiate_client ($1)"; }
    sed 's/^/  client: /' "$tmp/$1_client.log"
    wait_server "$tmp/$1.log" || fail "negotiate_server ($1)"
}
nego_echo nego 'TESTDOM\alice'
grep -q 'authenticated TESTDOM\\alice with NTLM (encrypted 1, signed 1)' "$tmp/nego.log" || fail "the server did not see TESTDOM\\alice, encrypted"
grep -q 'echoed intact' "$tmp/nego_client.log" || fail "the echo did not come back intact"
pass "NTLM authenticated, every message sealed, echoed and checked"

step "NegotiateStream: a wrong password"
start_server "$tmp/nego2.log" "$out/negotiate_server" 0 "$tmp/users.txt"
if timeout 60 "$out/negotiate_client" 127.0.0.1 "$port" 'TESTDOM\alice' 'wrong' >"$tmp/nego_bad.log" 2>&1; then
    fail "a wrong password was accepted"
fi
sed 's/^/  client: /' "$tmp/nego_bad.log"
wait_server "$tmp/nego2.log" || true
grep -q 'APM_E_INVALID_CREDENTIAL: The server has rejected the client credentials.' "$tmp/nego_bad.log" \
    || fail "expected APM_E_INVALID_CREDENTIAL with .NET's message"
pass "the server refused it: APM_E_INVALID_CREDENTIAL on the client, as .NET's InvalidCredentialException"

step "cbt_auth: the client's own Negotiate token, bound to EndGetRequestStream's TLS channel, checked by the server"
if ! command -v openssl >/dev/null || ! command -v python3 >/dev/null; then
    echo "skipped: needs openssl and python3"
else
    [ -d "$tmp/pki" ] || python3 ffi-tests/peers/make_pki.py "$tmp/pki" >/dev/null
    start_server "$tmp/cbt.log" "$out/cbt_auth" server "$tmp/users.txt" "$tmp/pki/server.pem" "$tmp/pki/server.key"
    timeout 60 "$out/cbt_auth" client "https://localhost:$port/cbt" "$tmp/pki/ca.pem" 'TESTDOM\alice' 'Passw0rd!' \
        >"$tmp/cbt_client.log" 2>&1 || { cat "$tmp/cbt_client.log" >&2; fail "cbt_auth client"; }
    sed 's/^/  client: /' "$tmp/cbt_client.log"
    wait_server "$tmp/cbt.log" || fail "cbt_auth server"
    grep -q 'authenticated TESTDOM\\alice, channel binding checked' "$tmp/cbt.log" || fail "the server did not authenticate the bound token"
    pass "NTLM in Authorization headers, bound to the TLS channel (tls-server-end-point), accepted"
    start_server "$tmp/cbt2.log" "$out/cbt_auth" server "$tmp/users.txt" "$tmp/pki/server.pem" "$tmp/pki/server.key"
    if timeout 60 "$out/cbt_auth" client "https://localhost:$port/cbt" "$tmp/pki/ca.pem" 'TESTDOM\alice' 'Passw0rd!' unbound \
        >"$tmp/cbt_unbound.log" 2>&1; then
        fail "a token without a channel binding was accepted"
    fi
    sed 's/^/  client: /' "$tmp/cbt_unbound.log"
    wait_server "$tmp/cbt2.log" || true
    grep -q 'refused: NegotiateAuthenticationStatusCode 3 (BadBinding)' "$tmp/cbt2.log" || fail "expected BadBinding for the unbound token"
    pass "the same credentials without the channel binding: refused with BadBinding"
fi

step "NegotiateStream: Kerberos on a loopback realm (ffi-tests/peers/krb5-loopback.sh)"
unset KRB5_CONFIG
realm_env=$(sh ffi-tests/peers/krb5-loopback.sh "$tmp/realm" "$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" 2>&1 | tail -n 1)
case $realm_env in
export\ *)
    eval "$realm_env"
    nego_echo krb 'alice@APMNET.TEST'
    grep -q 'authenticated alice@APMNET.TEST with Kerberos' "$tmp/krb.log" || fail "the server did not see alice@APMNET.TEST through Kerberos"
    pass "Kerberos: the ticket from the loopback KDC, the keytab on the server, sealed echo"
    ;;
*)
    echo "skipped: no loopback realm ($realm_env)"
    ;;
esac

printf '\ndemo: %d passed, 0 failed\n' "$passed"

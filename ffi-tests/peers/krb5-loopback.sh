#!/bin/sh
# krb5-loopback.sh DIR [PORT]: make a throw-away MIT Kerberos realm APMNET.TEST in DIR, with a KDC
# listening on 127.0.0.1:PORT only (default 18888), principals alice (password Passw0rd!)
# host/localhost and HTTP/localhost (the SPN HttpWebRequest asks for; keys in DIR/server.keytab).  Prints the environment to source.
# Needs Debian's krb5-kdc, krb5-admin-server and krb5-user (make deps installs them); prints
# "SKIP ..." when they are missing.
# Stop the KDC with: kill "$(cat DIR/kdc.pid)"
set -e
PATH=$PATH:/usr/sbin:/sbin
if ! command -v krb5kdc >/dev/null || ! command -v kdb5_util >/dev/null || ! command -v kadmin.local >/dev/null; then
  echo "SKIP the MIT KDC is not installed (Debian krb5-kdc krb5-admin-server krb5-user; make deps)"
  exit 0
fi
mkdir -p "$1"; DIR=$(cd "$1" && pwd); PORT=${2:-18888}
cat > "$DIR/krb5.conf" <<CONF
[libdefaults]
    default_realm = APMNET.TEST
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
[realms]
    APMNET.TEST = {
        kdc = 127.0.0.1:$PORT
    }
[domain_realm]
    localhost = APMNET.TEST
CONF
cat > "$DIR/kdc.conf" <<CONF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$PORT
    kdc_tcp_listen = 127.0.0.1:$PORT
[realms]
    APMNET.TEST = {
        database_name = $DIR/principal
        key_stash_file = $DIR/stash
        acl_file = $DIR/kadm5.acl
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }
[logging]
    kdc = FILE:$DIR/kdc.log
CONF
: > "$DIR/kadm5.acl"
export KRB5_CONFIG="$DIR/krb5.conf" KRB5_KDC_PROFILE="$DIR/kdc.conf"
[ -f "$DIR/principal" ] || kdb5_util create -s -r APMNET.TEST -P masterkey >/dev/null
kadmin.local -q "addprinc -pw Passw0rd! alice" >/dev/null 2>&1 || true
kadmin.local -q "addprinc -randkey host/localhost" >/dev/null 2>&1 || true
kadmin.local -q "addprinc -randkey HTTP/localhost" >/dev/null 2>&1 || true
rm -f "$DIR/server.keytab"
kadmin.local -q "ktadd -k $DIR/server.keytab host/localhost HTTP/localhost" >/dev/null
krb5kdc -n -P "$DIR/kdc.pid" </dev/null >"$DIR/kdc.out" 2>&1 &
echo $! > "$DIR/kdc.pid"
sleep 1
echo "export KRB5_CONFIG=$DIR/krb5.conf KRB5_KTNAME=$DIR/server.keytab KRB5CCNAME=FILE:$DIR/ccache"

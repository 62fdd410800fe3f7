/*
 * ffi-tests/negotiate.c - NegotiateStream: our client against our server over loopback with NTLM
 * at None, Sign and EncryptAndSign (1 B, 64511, 64512, 64513 B and 4 MiB each way, checked by
 * SHA-256), Begin/End, a second BeginWrite while one is pending, wrong passwords and unknown
 * users (INVALID_CREDENTIAL with .NET's messages on both sides), the retry rule, a protection
 * level the server refuses, an impersonation level out of range, calls before authentication,
 * the user file and the lookup callback, hostile handshake frames from a raw peer (truncated
 * header and payload, a short HandshakeError, an unknown id, an NTLM CHALLENGE with absurd
 * offsets), hostile data frames through a relay (frames of 4 and 65537 bytes, a forged and a
 * replayed signature), and channel binding over an SslStream (match accepted, mismatch and
 * absence refused when the server's policy requires it). Kerberos on a loopback MIT realm
 * (peers/krb5-loopback.sh). Against real peers (peers/setup.sh): .NET 8's NegotiateStream both ways
 * with NTLM at every level and Kerberos at Sign and EncryptAndSign, and pyspnego both ways with NTLM
 * at every level and Kerberos at Sign and EncryptAndSign (SPNEGO both ways, raw Kerberos from its
 * client), each with messages of 1 B, 64511, 64512, 64513 B and 16 MiB checked by SHA-256.
 * NegotiateAuthentication with the blobs carried by the test: NTLM, Negotiate and Kerberos (loopback realm), wrap/unwrap and MICs both
 * ways, replays and altered MICs, a wrong password, a tampered blob, SecurityQosFailed, Unsupported,
 * channel bindings from TransportContexts (BadBinding across connections), and misuse; and against
 * .NET 8's NegotiateAuthentication (peers/NegAuthPeer.cs), each role, NTLM, Negotiate and Kerberos,
 * with wrapped messages and MICs accepted by the other side, and a wrong password both ways.
 */
#include "harness.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MIB (1024u * 1024u)

static const char bad_client_creds[] = "The server has rejected the client credentials.";
static const char noauth_message[] =
    "This operation is only allowed using a successfully authenticated context.";
static const char target_mismatch[] =
    "Either the target name is incorrect or the server has rejected the client credentials.";

/* ---- set-up --------------------------------------------------------------- */

/* The loopback realm's directory, once a test started one. */
static char g_realm[512];

/* Tests without a realm see none: the host's krb5.conf may name KDCs far away, and Kerberos
 * would wait for them before NTLM takes over. */
static void no_foreign_kdc(void)
{
    if (g_realm[0] == '\0')
        setenv("KRB5_CONFIG", "/nonexistent/krb5.conf", 1);
}

static apm_credential *user_cred(const char *user, const char *password)
{
    apm_credential *c = NULL;
    ASSERT_OK(apm_credential_create(user, password, NULL, &c));
    return c;
}

/* Two NegotiateStreams over a connected pair of network streams (all owned). */
static void nego_pair(apm_stream **client, apm_stream **server)
{
    apm_stream *a = NULL, *b = NULL;
    no_foreign_kdc();
    hx_stream_pair(&a, &b);
    ASSERT_OK(apm_negotiate_stream_create(a, 0, client));
    ASSERT_OK(apm_negotiate_stream_create(b, 0, server));
}

typedef struct server_auth {
    apm_stream *s;
    apm_credential *cred;
    int32_t enforcement;
    const uint8_t *binding;
    size_t binding_len;
    int32_t level;
    apm_status st;
    char message[512];
} server_auth;

static void *server_auth_main(void *arg)
{
    server_auth *a = (server_auth *)arg;
    a->st = apm_negotiate_stream_authenticate_as_server(a->s, a->cred, a->enforcement, a->binding,
                                                        a->binding_len, NULL, 0, a->level,
                                                        APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION);
    if (a->st != APM_OK)
        snprintf(a->message, sizeof a->message, "%s", hx_last_message());
    return NULL;
}

static pthread_t server_start(server_auth *a, apm_stream *s, apm_credential *cred, int32_t level)
{
    memset(a, 0, sizeof *a);
    a->s = s;
    a->cred = cred;
    a->level = level;
    return hx_thread_start(server_auth_main, a);
}

/* The client authenticates here, the server in a thread; the client's status. */
static apm_status authenticate(apm_stream *c, apm_stream *s, const char *user, const char *password,
                               apm_credential *server_cred, int32_t level, server_auth *a)
{
    apm_credential *cc = user_cred(user, password);
    pthread_t t = server_start(a, s, server_cred, level);
    apm_status st = apm_negotiate_stream_authenticate_as_client(
        c, cc, "host/localhost", NULL, 0, level, APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION);
    hx_thread_join(t);
    ASSERT_OK(apm_credential_close(cc));
    return st;
}

static void authenticate_ok(apm_stream *c, apm_stream *s, int32_t level)
{
    apm_credential *users = user_cred("TESTDOM\\alice", "Passw0rd!");
    server_auth a;
    ASSERT_OK(authenticate(c, s, "TESTDOM\\alice", "Passw0rd!", users, level, &a));
    ASSERT_OK(a.st);
    ASSERT_OK(apm_credential_close(users));
}

/* ---- transfers ------------------------------------------------------------ */

typedef struct echo {
    apm_stream *s;
    const size_t *sizes;
    size_t count;
    apm_status st;
} echo;

/* Reads each size in full and writes it back. */
static void *echo_main(void *arg)
{
    echo *e = (echo *)arg;
    size_t i;
    for (i = 0; i < e->count; i++) {
        size_t n = e->sizes[i], got = 0, k = 0;
        uint8_t *buf = hx_xmalloc(n);
        while (got < n) {
            e->st = apm_stream_read(e->s, buf, n, got, n - got, &k);
            if (e->st != APM_OK || k == 0) {
                free(buf);
                return NULL;
            }
            got += k;
        }
        e->st = apm_stream_write(e->s, buf, n, 0, n);
        free(buf);
        if (e->st != APM_OK)
            return NULL;
    }
    return NULL;
}

static void sha_hex(const uint8_t *d, size_t n, char out[65])
{
    hx_sha256 c;
    hx_sha256_init(&c);
    hx_sha256_update(&c, d, n);
    hx_sha256_hex(&c, out);
}

static void read_exactly(apm_stream *st, uint8_t *buf, size_t n)
{
    size_t got = 0, k = 0;
    while (got < n) {
        ASSERT_OK(apm_stream_read(st, buf, n, got, n - got, &k));
        ASSERT_GT(k, 0);
        got += k;
    }
}

/* Writes `out` (n bytes, after `head` of head_len bytes, if any), reads n bytes back and compares
 * them by SHA-256; frees `out`. */
static void out_and_back(apm_stream *st, const uint8_t *head, size_t head_len, uint8_t *out, size_t n)
{
    uint8_t *back = hx_xmalloc(n);
    char h1[65], h2[65];
    if (head_len > 0)
        ASSERT_OK(apm_stream_write(st, head, head_len, 0, head_len));
    ASSERT_OK(apm_stream_write(st, out, n, 0, n));
    read_exactly(st, back, n);
    sha_hex(out, n, h1);
    sha_hex(back, n, h2);
    ASSERT_STR_EQ(h1, h2);
    free(out);
    free(back);
}

/* Sends each size from the client, the server echoes it, the client checks the SHA-256; the
 * last size (4 MiB) only when `big`. */
static void round_trips(apm_stream *c, apm_stream *s, int big)
{
    static const size_t sizes[] = {1, 64511, 64512, 64513, 4 * MIB};
    size_t count = sizeof sizes / sizeof sizes[0] - (big ? 0 : 1), i;
    echo e;
    pthread_t t;
    e.s = s;
    e.sizes = sizes;
    e.count = count;
    e.st = APM_OK;
    t = hx_thread_start(echo_main, &e);
    for (i = 0; i < count; i++) {
        uint8_t *out = hx_xmalloc(sizes[i]);
        hx_pattern_fill(out, sizes[i], 40 + i, 0);
        out_and_back(c, NULL, 0, out, sizes[i]);
    }
    hx_thread_join(t);
    ASSERT_OK(e.st);
}

/* RemoteIdentity: its name (unless NULL) and authentication type. */
static void assert_identity(apm_stream *st, const char *name, const char *package)
{
    char text[128];
    if (name != NULL) {
        ASSERT_OK(apm_negotiate_stream_get_remote_identity_name(st, text, sizeof text, NULL));
        ASSERT_STR_EQ(text, name);
    }
    ASSERT_OK(apm_negotiate_stream_get_remote_identity_authentication_type(st, text, sizeof text, NULL));
    ASSERT_STR_EQ(text, package);
}

static void check_properties(apm_stream *c, apm_stream *s, int32_t level)
{
    int32_t v = -1;
    ASSERT_OK(apm_negotiate_stream_is_authenticated(c, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_negotiate_stream_is_server(s, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_negotiate_stream_is_server(c, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_negotiate_stream_is_encrypted(c, &v));
    ASSERT_EQ(v, level == APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    ASSERT_OK(apm_negotiate_stream_is_signed(s, &v));
    ASSERT_EQ(v, level != APM_PROTECTION_LEVEL_NONE);
    ASSERT_OK(apm_negotiate_stream_is_mutually_authenticated(c, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_negotiate_stream_get_impersonation_level(s, &v));
    ASSERT_EQ(v, APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION);
    assert_identity(s, "TESTDOM\\alice", "NTLM");
    assert_identity(c, "host/localhost", "NTLM");
}

static void ntlm_level(int32_t level)
{
    apm_stream *c = NULL, *s = NULL;
    nego_pair(&c, &s);
    authenticate_ok(c, s, level);
    check_properties(c, s, level);
    round_trips(c, s, 1);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(ntlm_none_both_ways) { ntlm_level(APM_PROTECTION_LEVEL_NONE); }
TEST(ntlm_sign_both_ways) { ntlm_level(APM_PROTECTION_LEVEL_SIGN); }
TEST(ntlm_encrypt_and_sign_both_ways) { ntlm_level(APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN); }

/* ---- Begin/End -------------------------------------------------------------- */

TEST(begin_end_authenticate_and_a_second_begin_write)
{
    apm_stream *c = NULL, *s = NULL;
    apm_credential *cc = user_cred("alice", "Passw0rd!"), *sc = user_cred("alice", "Passw0rd!");
    apm_async_result *rc = NULL, *rs = NULL, *w1 = NULL, *w2 = NULL;
    hx_cb cbc, cbs;
    size_t n = 8 * MIB;
    uint8_t *big = hx_xmalloc(n);
    echo e;
    static size_t sizes[1];
    pthread_t t;
    hx_cb_init(&cbc);
    hx_cb_init(&cbs);
    nego_pair(&c, &s);
    ASSERT_OK(apm_negotiate_stream_begin_authenticate_as_server(
        s, sc, APM_POLICY_ENFORCEMENT_NEVER, NULL, 0, NULL, 0, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN,
        APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION, hx_cb_record, &cbs, &rs));
    ASSERT_OK(apm_negotiate_stream_begin_authenticate_as_client(
        c, cc, "host/localhost", NULL, 0, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN,
        APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION, hx_cb_record, &cbc, &rc));
    ASSERT_EVENT(&cbc.done, 1);
    ASSERT_EVENT(&cbs.done, 1);
    ASSERT_OK(apm_negotiate_stream_end_authenticate_as_client(c, rc));
    ASSERT_OK(apm_negotiate_stream_end_authenticate_as_server(s, rs));
    ASSERT_EQ(HX_CB_CALLS(&cbc), 1);
    /* A second End is refused; an End of the wrong kind too. */
    ASSERT_STATUS(apm_negotiate_stream_end_authenticate_as_client(c, rc), APM_E_INVALID_OPERATION);
    /* 8 MiB with nobody reading stays pending: a second BeginWrite fails from Begin. */
    hx_pattern_fill(big, n, 9, 0);
    ASSERT_OK(apm_stream_begin_write(c, big, n, 0, n, NULL, NULL, &w1));
    ASSERT_STATUS(apm_stream_begin_write(c, big, n, 0, 1, NULL, NULL, &w2), APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE(" The BeginWrite method cannot be called when another write operation is pending.");
    sizes[0] = n;
    e.s = s;
    e.sizes = sizes;
    e.count = 1;
    e.st = APM_OK;
    t = hx_thread_start(echo_main, &e);
    ASSERT_OK(apm_stream_end_write(c, w1));
    {
        uint8_t *back = hx_xmalloc(n);
        read_exactly(c, back, n);
        ASSERT_EQ(hx_pattern_check(back, n, 9, 0), n);
        free(back);
    }
    hx_thread_join(t);
    ASSERT_OK(e.st);
    free(big);
    ASSERT_OK(apm_credential_close(cc));
    ASSERT_OK(apm_credential_close(sc));
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    hx_cb_destroy(&cbc);
    hx_cb_destroy(&cbs);
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- failures --------------------------------------------------------------- */

static void refused_login(const char *user, const char *password)
{
    apm_stream *c = NULL, *s = NULL;
    apm_credential *users = user_cred("TESTDOM\\alice", "Passw0rd!");
    server_auth a;
    uint8_t b[4];
    size_t k;
    nego_pair(&c, &s);
    ASSERT_STATUS(authenticate(c, s, user, password, users, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN, &a),
                  APM_E_INVALID_CREDENTIAL);
    ASSERT_LAST_MESSAGE(bad_client_creds);
    ASSERT_EQ(a.st, APM_E_INVALID_CREDENTIAL);
    ASSERT_STR_EQ(a.message, bad_client_creds);
    /* The failure is stored and reported by later calls. */
    ASSERT_STATUS(apm_stream_read(c, b, 4, 0, 4, &k), APM_E_INVALID_CREDENTIAL);
    ASSERT_STATUS(apm_stream_write(s, b, 4, 0, 4), APM_E_INVALID_CREDENTIAL);
    /* The client was told by the peer: no retry. */
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_client(c, users, "", NULL, 0, 2, 2),
                  APM_E_INVALID_CREDENTIAL);
    /* The server told the client (HandshakeError): it may try again, in the same role. */
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_client(s, users, "", NULL, 0, 2, 2),
                  APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("Once authentication is attempted as the client or server, additional "
                        "authentication attempts must use the same client or server role.");
    ASSERT_OK(apm_credential_close(users));
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(wrong_password_is_invalid_credential_on_both_sides) { refused_login("TESTDOM\\alice", "wrong"); }
TEST(unknown_user_is_invalid_credential_on_both_sides) { refused_login("TESTDOM\\mallory", "Passw0rd!"); }

TEST(a_server_requiring_encrypt_and_sign_refuses_sign)
{
    apm_stream *c = NULL, *s = NULL;
    apm_credential *users = user_cred("alice", "Passw0rd!"), *cc = user_cred("alice", "Passw0rd!");
    server_auth a;
    pthread_t t;
    nego_pair(&c, &s);
    t = server_start(&a, s, users, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_client(c, cc, "host/localhost", NULL, 0,
                                                              APM_PROTECTION_LEVEL_SIGN,
                                                              APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION),
                  APM_E_AUTHENTICATION);
    ASSERT_LAST_MESSAGE("A remote side security requirement was not fulfilled during authentication. "
                        "Try increasing the ProtectionLevel and/or ImpersonationLevel.");
    hx_thread_join(t);
    ASSERT_EQ(a.st, APM_E_AUTHENTICATION);
    ASSERT_STR_EQ(a.message, "A security requirement was not fulfilled during authentication. Required: "
                             "EncryptAndSign, negotiated: Sign.");
    ASSERT_OK(apm_credential_close(users));
    ASSERT_OK(apm_credential_close(cc));
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(arguments_and_calls_before_authentication)
{
    apm_stream *c = NULL, *s = NULL, *x = NULL;
    apm_credential *cc = user_cred("alice", "p");
    uint8_t b[4] = {0};
    size_t k;
    int32_t v = -1;
    char text[64];
    nego_pair(&c, &s);
    ASSERT_STATUS(apm_negotiate_stream_create(NULL, 0, &x), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_client(c, cc, "t", NULL, 0, 2, 7),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_LAST_MESSAGE("The supported values are Identification, Impersonation or Delegation. "
                        "(Parameter 'impersonationLevel')");
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_client(c, cc, "t", NULL, 0, 2,
                                                              APM_TOKEN_IMPERSONATION_LEVEL_ANONYMOUS),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_client(c, NULL, "t", NULL, 0, 2, 2), APM_E_ARGUMENT_NULL);
    ASSERT_LAST_MESSAGE("Value cannot be null. (Parameter 'credential')");
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_client(c, cc, NULL, NULL, 0, 2, 2), APM_E_ARGUMENT_NULL);
    ASSERT_LAST_MESSAGE("Value cannot be null. (Parameter 'servicePrincipalName')");
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_server(s, NULL, APM_POLICY_ENFORCEMENT_ALWAYS, NULL, 0,
                                                              NULL, 0, 2, 2),
                  APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("An extended protection policy must specify either a custom channel binding or a "
                        "custom service name collection. (Parameter 'policy')");
    /* Not an SslStream's functions, nor a NegotiateStream's on another stream. */
    ASSERT_STATUS(apm_ssl_stream_is_authenticated(c, &v), APM_E_ARGUMENT);
    /* Before authentication. */
    ASSERT_STATUS(apm_stream_read(c, b, 4, 0, 4, &k), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE(noauth_message);
    ASSERT_STATUS(apm_stream_write(c, b, 4, 0, 4), APM_E_INVALID_OPERATION);
    /* NegotiateStream checks the buffer before the state (.NET's order; SslStream after). */
    ASSERT_STATUS(apm_stream_write(c, NULL, 4, 0, 4), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_read(c, b, 4, 2, 3, &k), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_OK(apm_negotiate_stream_is_authenticated(c, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_negotiate_stream_is_encrypted(c, &v));
    ASSERT_EQ(v, 0);
    ASSERT_STATUS(apm_negotiate_stream_get_impersonation_level(c, &v), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_negotiate_stream_get_remote_identity_name(c, text, sizeof text, NULL),
                  APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE(noauth_message);
    ASSERT_OK(apm_credential_close(cc));
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    /* Closed. */
    ASSERT_STATUS(apm_negotiate_stream_is_authenticated(c, &v), APM_E_OBJECT_DISPOSED);
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- where the server's users come from ------------------------------------ */

static int32_t lookup_hash(const char *user, const char *domain, char *password, size_t size,
                           uint8_t *nt_hash, void *state)
{
    /* MD4(UTF-16LE("Passw0rd!")) for bob, a password for carol, nobody else. */
    static const uint8_t hash[16] = {0xfc, 0x52, 0x5c, 0x96, 0x83, 0xe8, 0xfe, 0x06,
                                     0x70, 0x95, 0xba, 0x2d, 0xdc, 0x97, 0x18, 0x89};
    (void)domain;
    ++*(int *)state;
    if (strcmp(user, "bob") == 0) {
        memcpy(nt_hash, hash, 16);
        return APM_CREDENTIAL_NT_HASH;
    }
    if (strcmp(user, "carol") == 0) {
        snprintf(password, size, "%s", "s3cret");
        return APM_CREDENTIAL_PASSWORD;
    }
    return APM_CREDENTIAL_UNKNOWN;
}

TEST(server_users_from_a_file_and_a_callback)
{
    apm_stream *c = NULL, *s = NULL;
    apm_credential *users = NULL;
    server_auth a;
    char *path = NULL;
    int fd = hx_temp_file(&path), calls = 0;
    char text[64];
    const char lines[] = "# test users\nTESTDOM:alice:Passw0rd!\n:dave:x:y\n";
    ASSERT_EQ(write(fd, lines, strlen(lines)), (ssize_t)strlen(lines));
    close(fd);
    ASSERT_OK(apm_credential_create_from_file(path, &users));
    nego_pair(&c, &s);
    ASSERT_OK(authenticate(c, s, "dave", "x:y", users, APM_PROTECTION_LEVEL_SIGN, &a));
    ASSERT_OK(a.st);
    ASSERT_OK(apm_negotiate_stream_get_remote_identity_name(s, text, sizeof text, NULL));
    ASSERT_STR_EQ(text, "dave");
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_credential_close(users));
    unlink(path);
    hx_temp_forget(path);
    free(path);
    ASSERT_STATUS(apm_credential_create_from_file("/nonexistent/users", &users), APM_E_FILE_NOT_FOUND);
    /* A callback: an NT hash, a password, an unknown user. */
    ASSERT_OK(apm_credential_create_lookup(lookup_hash, &calls, &users));
    nego_pair(&c, &s);
    ASSERT_OK(authenticate(c, s, "bob", "Passw0rd!", users, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN, &a));
    ASSERT_OK(a.st);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    nego_pair(&c, &s);
    ASSERT_OK(authenticate(c, s, "carol@REALM", "s3cret", users, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN, &a));
    ASSERT_OK(apm_negotiate_stream_get_remote_identity_name(s, text, sizeof text, NULL));
    ASSERT_STR_EQ(text, "REALM\\carol");
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    nego_pair(&c, &s);
    ASSERT_STATUS(authenticate(c, s, "eve", "x", users, APM_PROTECTION_LEVEL_SIGN, &a), APM_E_INVALID_CREDENTIAL);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_EQ(calls, 3);
    ASSERT_OK(apm_credential_get_user_name(users, text, sizeof text, NULL));
    ASSERT_STR_EQ(text, "");
    ASSERT_OK(apm_credential_close(users));
    /* A user list cannot authenticate a client; name forms split. */
    ASSERT_OK(apm_credential_create("alice@APMNET.TEST", "p", NULL, &users));
    ASSERT_OK(apm_credential_get_domain(users, text, sizeof text, NULL));
    ASSERT_STR_EQ(text, "APMNET.TEST");
    ASSERT_OK(apm_credential_close(users));
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- hostile peers ------------------------------------------------------------ */

/* A NegotiateStream client over a raw peer fd, authenticating in a thread. */
typedef struct raw_client {
    apm_stream *c;
    apm_credential *cred;
    int peer;
    apm_status st;
    char message[512];
} raw_client;

static void *raw_client_main(void *arg)
{
    raw_client *r = (raw_client *)arg;
    r->st = apm_negotiate_stream_authenticate_as_client(r->c, r->cred, "host/localhost", NULL, 0,
                                                        APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN,
                                                        APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION);
    snprintf(r->message, sizeof r->message, "%s", r->st == APM_OK ? "" : hx_last_message());
    return NULL;
}

/* Runs a client against a peer that reads its first frame, then sends `reply` (and closes when
 * `hang_up`); the client's status and message. */
static apm_status against_raw(const uint8_t *reply, size_t len, int hang_up, char *message, size_t mlen)
{
    raw_client r;
    apm_socket *s;
    apm_stream *ns = NULL;
    uint8_t head[5], body[70000];
    pthread_t t;
    memset(&r, 0, sizeof r);
    no_foreign_kdc();
    s = hx_apm_connect_to_fd(&r.peer);
    ASSERT_OK(apm_network_stream_create(s, 1, &ns));
    ASSERT_OK(apm_negotiate_stream_create(ns, 0, &r.c));
    r.cred = user_cred("alice", "Passw0rd!");
    t = hx_thread_start(raw_client_main, &r);
    ASSERT_EQ(hx_read_full(r.peer, head, 5), 5);
    ASSERT_EQ(head[0], 0x16);
    ASSERT_EQ(hx_read_full(r.peer, body, (size_t)head[3] << 8 | head[4]), (size_t)head[3] << 8 | head[4]);
    hx_write_all(r.peer, reply, len);
    if (hang_up)
        shutdown(r.peer, SHUT_WR);
    hx_thread_join(t);
    snprintf(message, mlen, "%s", r.message);
    hx_close(r.peer);
    ASSERT_OK(apm_stream_close(r.c));
    ASSERT_OK(apm_credential_close(r.cred));
    return r.st;
}

TEST(hostile_handshake_frames)
{
    char m[512];
    static const uint8_t short_error[] = {0x15, 1, 0, 0, 3, 1, 2, 3};
    static const uint8_t truncated_header[] = {0x16, 1, 0};
    static const uint8_t truncated_payload[] = {0x16, 1, 0, 0, 40, 1, 2, 3};
    static const uint8_t unknown_id[] = {0x17, 1, 0, 0, 0};
    static const uint8_t be_logon_denied[] = {0x15, 1, 0, 0, 8, 0, 0, 0, 0, 0x80, 0x09, 0x03, 0x0c};
    static const uint8_t le_trust[] = {0x15, 1, 0, 0, 8, 0xfe, 0x06, 0, 0, 0, 0, 0, 0};
    ASSERT_EQ(against_raw(short_error, sizeof short_error, 0, m, sizeof m), APM_E_AUTHENTICATION);
    ASSERT_STR_EQ(m, "Authentication failed on the remote side (the stream might still be available for "
                     "additional authentication attempts).");
    ASSERT_EQ(against_raw(truncated_header, sizeof truncated_header, 1, m, sizeof m), APM_E_IO);
    ASSERT_STR_EQ(m, "Unable to read data from the transport connection: The connection was closed.");
    ASSERT_EQ(against_raw(truncated_payload, sizeof truncated_payload, 1, m, sizeof m), APM_E_IO);
    ASSERT_EQ(against_raw(NULL, 0, 1, m, sizeof m), APM_E_AUTHENTICATION);
    ASSERT_STR_EQ(m, "Authentication failed because the remote party has closed the transport stream.");
    ASSERT_EQ(against_raw(unknown_id, sizeof unknown_id, 0, m, sizeof m), APM_E_AUTHENTICATION);
    ASSERT_STR_EQ(m, "Found a wrong header field MessageId read : 23, expected : 22.");
    ASSERT_EQ(against_raw(be_logon_denied, sizeof be_logon_denied, 0, m, sizeof m), APM_E_INVALID_CREDENTIAL);
    ASSERT_STR_EQ(m, bad_client_creds);
    ASSERT_EQ(against_raw(le_trust, sizeof le_trust, 0, m, sizeof m), APM_E_AUTHENTICATION);
    ASSERT_STR_CONTAINS(m, "A remote side security requirement was not fulfilled");
    ASSERT_OK(apm_runtime_shutdown());
}

/* An SPNEGO NegTokenResp(accept-incomplete, NTLM) holding an NTLM CHALLENGE whose target-info
 * field claims 0xFFFF bytes at offset 0x7FFFFFF0. */
TEST(an_ntlm_challenge_with_absurd_offsets)
{
    static const uint8_t challenge[56] = {
        'N', 'T', 'L', 'M', 'S', 'S', 'P', 0, 2, 0, 0, 0,
        0xff, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0x7f, /* target name: 65535 bytes far away */
        0x35, 0x82, 0x8a, 0xe2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0,
        0xff, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0x7f, /* target info likewise */
        10, 0, 0x63, 0x45, 0, 0, 0, 15};
    uint8_t frame[5 + 100];
    size_t n = 0, i;
    char m[512];
    /* a1 LL 30 LL a0 03 0a 01 01 a1 0c 06 0a <NTLM OID> a2 LL 04 LL <challenge> */
    static const uint8_t oid[] = {0x2b, 6, 1, 4, 1, 0x82, 0x37, 2, 2, 10};
    uint8_t tok[100];
    size_t t = 0;
    tok[t++] = 0xa1;
    tok[t++] = 0; /* patched */
    tok[t++] = 0x30;
    tok[t++] = 0;
    tok[t++] = 0xa0; tok[t++] = 3; tok[t++] = 0x0a; tok[t++] = 1; tok[t++] = 1;
    tok[t++] = 0xa1; tok[t++] = 12; tok[t++] = 6; tok[t++] = 10;
    memcpy(tok + t, oid, 10);
    t += 10;
    tok[t++] = 0xa2; tok[t++] = 58; tok[t++] = 4; tok[t++] = 56;
    memcpy(tok + t, challenge, 56);
    t += 56;
    tok[1] = (uint8_t)(t - 2);
    tok[3] = (uint8_t)(t - 4);
    frame[n++] = 0x16; frame[n++] = 1; frame[n++] = 0; frame[n++] = 0; frame[n++] = (uint8_t)t;
    for (i = 0; i < t; i++)
        frame[n++] = tok[i];
    ASSERT_EQ(against_raw(frame, n, 0, m, sizeof m), APM_E_AUTHENTICATION);
    ASSERT_STR_EQ(m, "Authentication failed, see inner exception.");
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- hostile data frames through a relay ------------------------------------ */

/* client <-> [relay: a | b] <-> server: the relay passes the handshake on, then hands the
 * client's data frames to the test, which sends the server whatever it likes. */
typedef struct relay {
    int to_client, to_server;
    int stop;
    pthread_t up, down;
} relay;

static void *pass_main(void *arg)
{
    int *fds = (int *)arg;
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0)
            break;
        hx_write_all(fds[1], buf, (size_t)n);
    }
    return NULL;
}

/* Reads one whole handshake frame from fd into buf; its length. */
static size_t read_handshake_frame(int fd, uint8_t *buf)
{
    size_t len;
    ASSERT_EQ(hx_read_full(fd, buf, 5), 5);
    len = (size_t)buf[3] << 8 | buf[4];
    ASSERT_EQ(hx_read_full(fd, buf + 5, len), len);
    return 5 + len;
}

typedef struct relayed {
    apm_stream *c, *s;
    int cfd, sfd; /* the relay's ends: towards the client, towards the server */
    int down[2];  /* server to client, passed on by `down_thread` */
    pthread_t down_thread;
} relayed;

/* An authenticated pair whose bytes from client to server go through the test. */
static void relayed_pair(relayed *r, int32_t level)
{
    apm_socket *cs, *ss;
    apm_stream *cns = NULL, *sns = NULL;
    apm_credential *cc = user_cred("alice", "Passw0rd!"), *sc = user_cred("alice", "Passw0rd!");
    server_auth a;
    uint8_t f[70000];
    size_t n;
    pthread_t t;
    apm_status st;
    no_foreign_kdc();
    cs = hx_apm_connect_to_fd(&r->cfd);
    ss = hx_apm_connect_to_fd(&r->sfd);
    ASSERT_OK(apm_network_stream_create(cs, 1, &cns));
    ASSERT_OK(apm_network_stream_create(ss, 1, &sns));
    ASSERT_OK(apm_negotiate_stream_create(cns, 0, &r->c));
    ASSERT_OK(apm_negotiate_stream_create(sns, 0, &r->s));
    /* Server to client: passed on as it comes. */
    r->down[0] = r->sfd;
    r->down[1] = r->cfd;
    r->down_thread = hx_thread_start(pass_main, r->down);
    t = server_start(&a, r->s, sc, level);
    {
        raw_client rc;
        pthread_t ct;
        memset(&rc, 0, sizeof rc);
        rc.c = r->c;
        rc.cred = cc;
        ct = hx_thread_start(raw_client_main, &rc);
        /* NEGOTIATE, AUTHENTICATE: two client frames. */
        n = read_handshake_frame(r->cfd, f);
        hx_write_all(r->sfd, f, n);
        n = read_handshake_frame(r->cfd, f);
        hx_write_all(r->sfd, f, n);
        hx_thread_join(ct);
        st = rc.st;
    }
    hx_thread_join(t);
    ASSERT_OK(st);
    ASSERT_OK(a.st);
    ASSERT_OK(apm_credential_close(cc));
    ASSERT_OK(apm_credential_close(sc));
}

static size_t read_data_frame(int fd, uint8_t *buf)
{
    size_t len;
    ASSERT_EQ(hx_read_full(fd, buf, 4), 4);
    len = (size_t)buf[0] | (size_t)buf[1] << 8 | (size_t)buf[2] << 16 | (size_t)buf[3] << 24;
    ASSERT_LE(len, 65536);
    ASSERT_EQ(hx_read_full(fd, buf + 4, len), len);
    return 4 + len;
}

static apm_status server_read(relayed *r, char *m, size_t mlen)
{
    uint8_t b[100];
    size_t k = 0;
    apm_status st = apm_stream_read(r->s, b, sizeof b, 0, sizeof b, &k);
    snprintf(m, mlen, "%s", st == APM_OK ? "" : hx_last_message());
    return st;
}

static void relayed_close(relayed *r)
{
    ASSERT_OK(apm_stream_close(r->c));
    ASSERT_OK(apm_stream_close(r->s));
    hx_thread_join(r->down_thread);
    hx_close(r->cfd);
    hx_close(r->sfd);
}

TEST(hostile_data_frames)
{
    relayed r;
    uint8_t f[70000];
    size_t n;
    char m[512];
    static const uint8_t four[] = {4, 0, 0, 0, 1, 2, 3, 4};
    static const uint8_t big[] = {1, 0, 1, 0};
    static const char frame_size[] = "Cannot determine the frame size or a corrupted frame was received.";
    /* Frames of 4 and of 65537 bytes. */
    relayed_pair(&r, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    hx_write_all(r.sfd, four, sizeof four);
    ASSERT_EQ(server_read(&r, m, sizeof m), APM_E_IO);
    ASSERT_STR_EQ(m, frame_size);
    relayed_close(&r);
    relayed_pair(&r, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    hx_write_all(r.sfd, big, sizeof big);
    ASSERT_EQ(server_read(&r, m, sizeof m), APM_E_IO);
    ASSERT_STR_EQ(m, frame_size);
    relayed_close(&r);
    /* A forged frame (Sign: nothing is encrypted; change its last byte). That byte is the
     * plaintext's under NTLM, and the checksum's under Kerberos (RFC 4121 puts it last): flipping
     * a bit changes it either way, where writing a fixed value left it as it was once in 256. */
    relayed_pair(&r, APM_PROTECTION_LEVEL_SIGN);
    ASSERT_OK(apm_stream_write(r.c, (const uint8_t *)"pay 10", 6, 0, 6));
    n = read_data_frame(r.cfd, f);
    f[n - 1] ^= 1;
    hx_write_all(r.sfd, f, n);
    ASSERT_EQ(server_read(&r, m, sizeof m), APM_E_IO);
    ASSERT_STR_EQ(m, "The read operation failed, see inner exception.");
    relayed_close(&r);
    /* A replayed frame: the first is read, its copy refused. */
    relayed_pair(&r, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    ASSERT_OK(apm_stream_write(r.c, (const uint8_t *)"once", 4, 0, 4));
    n = read_data_frame(r.cfd, f);
    hx_write_all(r.sfd, f, n);
    ASSERT_OK(server_read(&r, m, sizeof m));
    hx_write_all(r.sfd, f, n);
    ASSERT_EQ(server_read(&r, m, sizeof m), APM_E_IO);
    relayed_close(&r);
    /* A truncated payload, then the end of the stream. */
    relayed_pair(&r, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    ASSERT_OK(apm_stream_write(r.c, (const uint8_t *)"cut", 3, 0, 3));
    n = read_data_frame(r.cfd, f);
    hx_write_all(r.sfd, f, n - 2);
    shutdown(r.sfd, SHUT_WR);
    ASSERT_EQ(server_read(&r, m, sizeof m), APM_E_IO);
    ASSERT_STR_EQ(m, " Received an unexpected EOF or 0 bytes from the transport stream.");
    relayed_close(&r);
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- channel binding over an SslStream -------------------------------------- */

typedef struct tls_server {
    apm_stream *s;
    apm_certificate *cert;
    apm_status st;
} tls_server;

static void *tls_server_main(void *arg)
{
    tls_server *t = (tls_server *)arg;
    t->st = apm_ssl_stream_authenticate_as_server(t->s, t->cert, 0, APM_SSL_PROTOCOLS_NONE, 0);
    return NULL;
}

/* The tls-server-end-point binding of an authenticated SslStream. */
static size_t endpoint_binding(apm_stream *ssl, uint8_t *buf, size_t cap)
{
    apm_transport_context *ctx = NULL;
    size_t n = 0;
    ASSERT_OK(apm_ssl_stream_get_transport_context(ssl, &ctx));
    ASSERT_OK(apm_transport_context_get_channel_binding(ctx, APM_CHANNEL_BINDING_KIND_ENDPOINT, buf, cap, &n));
    ASSERT_OK(apm_transport_context_close(ctx));
    ASSERT_GT(n, 32);
    ASSERT_LE(n, cap);
    return n;
}

/* The package a successful bound() must have used ("NTLM" or "Kerberos"). */
static const char *g_package = "NTLM";

/* NegotiateStreams over an authenticated SslStream pair; the client binds with `client_binding`
 * (NULL: none), the server's policy is `enforcement` with its own endpoint binding. */
static void bound(const uint8_t *client_binding_override, int send_binding, int32_t enforcement,
                  apm_status want_client, apm_status want_server)
{
    apm_stream *a = NULL, *b = NULL, *tc = NULL, *ts = NULL, *nc = NULL, *ns = NULL;
    apm_credential *cc = user_cred("alice@APMNET.TEST", "Passw0rd!"), *sc = user_cred("alice", "Passw0rd!");
    uint8_t cb[256], sb[256];
    size_t cn, sn;
    tls_server t;
    server_auth sa;
    pthread_t th;
    apm_status st;
    no_foreign_kdc();
    hx_stream_pair(&a, &b);
    ASSERT_OK(apm_ssl_stream_create(a, 0, &tc));
    ASSERT_OK(apm_ssl_stream_create(b, 0, &ts));
    t.s = ts;
    t.cert = hx_pki_load("server");
    th = hx_thread_start(tls_server_main, &t);
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(tc, hx_pki_file("ca.pem")));
    ASSERT_OK(apm_ssl_stream_authenticate_as_client(tc, "localhost", NULL, APM_SSL_PROTOCOLS_NONE, 0));
    hx_thread_join(th);
    ASSERT_OK(t.st);
    cn = endpoint_binding(tc, cb, sizeof cb);
    sn = endpoint_binding(ts, sb, sizeof sb);
    ASSERT_UEQ(cn, sn);
    ASSERT_MEM_EQ(cb, sb, cn);
    if (client_binding_override != NULL)
        memcpy(cb + cn - 4, client_binding_override, 4);
    ASSERT_OK(apm_negotiate_stream_create(tc, 0, &nc));
    ASSERT_OK(apm_negotiate_stream_create(ts, 0, &ns));
    memset(&sa, 0, sizeof sa);
    sa.s = ns;
    sa.cred = sc;
    sa.enforcement = enforcement;
    sa.binding = sb;
    sa.binding_len = sn;
    sa.level = APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN;
    th = hx_thread_start(server_auth_main, &sa);
    st = apm_negotiate_stream_authenticate_as_client(nc, cc, "host/localhost", send_binding ? cb : NULL,
                                                     send_binding ? cn : 0, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN,
                                                     APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION);
    hx_thread_join(th);
    ASSERT_EQ(st, want_client);
    ASSERT_EQ(sa.st, want_server);
    if (want_server != APM_OK)
        ASSERT_STR_EQ(sa.message, target_mismatch);
    if (st == APM_OK) {
        assert_identity(ns, NULL, g_package);
        round_trips(nc, ns, 0);
    }
    ASSERT_OK(apm_stream_close(nc));
    ASSERT_OK(apm_stream_close(ns));
    ASSERT_OK(apm_certificate_close(t.cert));
    ASSERT_OK(apm_credential_close(cc));
    ASSERT_OK(apm_credential_close(sc));
}

/* Every policy against a matching, a wrong and a missing binding, with `package`. */
static void binding_cases(const char *package)
{
    static const uint8_t other[4] = {1, 2, 3, 4};
    hx_pki_make();
    g_package = package;
    /* Match, required. */
    bound(NULL, 1, APM_POLICY_ENFORCEMENT_ALWAYS, APM_OK, APM_OK);
    /* Mismatch, refused when the policy checks at all. */
    bound(other, 1, APM_POLICY_ENFORCEMENT_ALWAYS, APM_E_AUTHENTICATION, APM_E_AUTHENTICATION);
    bound(other, 1, APM_POLICY_ENFORCEMENT_WHEN_SUPPORTED, APM_E_AUTHENTICATION, APM_E_AUTHENTICATION);
    /* No binding from the client: refused by Always, accepted by WhenSupported. */
    bound(NULL, 0, APM_POLICY_ENFORCEMENT_ALWAYS, APM_E_AUTHENTICATION, APM_E_AUTHENTICATION);
    bound(NULL, 0, APM_POLICY_ENFORCEMENT_WHEN_SUPPORTED, APM_OK, APM_OK);
    /* A mismatch with no policy: not checked (as .NET). */
    bound(other, 1, APM_POLICY_ENFORCEMENT_NEVER, APM_OK, APM_OK);
    hx_pki_remove();
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(channel_binding_over_an_ssl_stream) { binding_cases("NTLM"); }

/* ---- Kerberos on a loopback realm ------------------------------------------- */

/* The loopback KDC (harness.c's hx_realm_start); g_realm remembers that a test started one. */
static void realm_start(void)
{
    snprintf(g_realm, sizeof g_realm, "%s", hx_realm_start());
}

static void realm_stop(void)
{
    hx_realm_stop();
}

static void kerberos_level(int32_t level)
{
    apm_stream *c = NULL, *s = NULL;
    apm_credential *cc = user_cred("alice@APMNET.TEST", "Passw0rd!"), *def = NULL;
    server_auth a;
    pthread_t t;
    int32_t v = -1;
    realm_start();
    ASSERT_OK(apm_credential_create_default(&def));
    nego_pair(&c, &s);
    t = server_start(&a, s, def, level);
    ASSERT_OK(apm_negotiate_stream_authenticate_as_client(c, cc, "host/localhost", NULL, 0, level,
                                                          APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION));
    hx_thread_join(t);
    ASSERT_OK(a.st);
    assert_identity(s, "alice@APMNET.TEST", "Kerberos");
    assert_identity(c, "host/localhost", "Kerberos");
    ASSERT_OK(apm_negotiate_stream_is_mutually_authenticated(c, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_negotiate_stream_is_signed(s, &v));
    ASSERT_EQ(v, 1);
    round_trips(c, s, 1);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_credential_close(cc));
    ASSERT_OK(apm_credential_close(def));
    ASSERT_OK(apm_runtime_shutdown());
    realm_stop();
}

TEST(kerberos_sign_on_a_loopback_realm) { kerberos_level(APM_PROTECTION_LEVEL_SIGN); }
TEST(kerberos_encrypt_and_sign_on_a_loopback_realm) { kerberos_level(APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN); }

TEST(kerberos_channel_binding_over_an_ssl_stream)
{
    realm_start();
    binding_cases("Kerberos");
    realm_stop();
}

/* An NTLM authentication where Kerberos cannot be had; `with_realm` runs a KDC meanwhile. */
static void ntlm_without_kerberos(int with_realm)
{
    apm_stream *c = NULL, *s = NULL;
    if (with_realm)
        realm_start();
    nego_pair(&c, &s);
    authenticate_ok(c, s, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    assert_identity(s, "TESTDOM\\alice", "NTLM");
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    if (with_realm)
        realm_stop();
}

/* Without a ticket for the target (no realm at all), Negotiate falls back to NTLM. */
TEST(negotiate_falls_back_to_ntlm_without_kerberos)
{
    ntlm_without_kerberos(0);
}

/* Where the system's GSSAPI is absent the library works, and Negotiate is NTLM alone, even with
 * a realm at hand. */
TEST(negotiate_is_ntlm_alone_without_gssapi)
{
    setenv("APMNET_GSSAPI_LIBRARY", "none", 1);
    ntlm_without_kerberos(1);
}

/* ---- real peers: .NET 8's NegotiateStream and pyspnego --------------------- */

enum { DOTNET, PYSPNEGO };

static const char *const peer_names[] = {".NET 8", "pyspnego"};

/* Starts the peer: `role` "server" or "client", then the rest of NnsPeer.cs's arguments; `mech`
 * (pyspnego only, NULL: .NET's choice) is nns_pyspnego.py's MECH, "kerberos" or "negotiate-kerberos". */
static void peer_start(hx_peer *p, int kind, const char *role, int port, const char *level, const char *user,
                       const char *password, const char *domain, const char *mech)
{
    const char *argv[16];
    char port_text[16], script[1100];
    const char *dir = getenv("APMNET_FFI_DIR");
    int n = 0;
    snprintf(port_text, sizeof port_text, "%d", port);
    if (kind == DOTNET) {
        const char *dotnet = getenv("APMNET_DOTNET"), *config = getenv("APMNET_DOTNET_CONFIG");
        const char *peer = getenv("APMNET_NNS_PEER");
        if (dotnet == NULL || config == NULL || peer == NULL)
            hx_skip("no .NET 8 NegotiateStream peer: make test sets it up (ffi-tests/peers/setup.sh exports "
                    "APMNET_DOTNET, APMNET_DOTNET_CONFIG and APMNET_NNS_PEER)");
        argv[n++] = dotnet;
        argv[n++] = "exec";
        argv[n++] = "--runtimeconfig";
        argv[n++] = config;
        argv[n++] = peer;
    } else {
        const char *python = getenv("APMNET_PYSPNEGO_PYTHON");
        if (python == NULL)
            hx_skip("no pyspnego peer: make test sets it up (ffi-tests/peers/setup.sh exports APMNET_PYSPNEGO_PYTHON)");
        snprintf(script, sizeof script, "%s/peers/nns_pyspnego.py", dir ? dir : "ffi-tests");
        argv[n++] = python;
        argv[n++] = "-u";
        argv[n++] = script;
    }
    argv[n++] = role;
    argv[n++] = port_text;
    argv[n++] = level;
    if (user != NULL) {
        argv[n++] = user;
        argv[n++] = password;
        argv[n++] = domain;
        argv[n++] = "host/localhost";
    }
    if (mech != NULL && kind == PYSPNEGO)
        argv[n++] = mech;
    argv[n] = NULL;
    hx_ntlm_users_file();
    setenv("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1", 1);
    hx_process_start(p, argv);
}

static const char *level_name(int32_t level)
{
    return level == APM_PROTECTION_LEVEL_NONE ? "None" : level == APM_PROTECTION_LEVEL_SIGN ? "Sign" : "EncryptAndSign";
}

/* The messages of the echo protocol with a peer; the last is APMNET_NNS_LARGEST bytes (default
 * 16 MiB; the peers read it too), which tests/c_harness.rs lowers under valgrind, where 16 MiB of
 * crypto takes most of a test's time and adds no path that 1 MiB (17 frames) does not take. */
#define PEER_MESSAGES 5

static size_t peer_size(int i)
{
    static const size_t sizes[PEER_MESSAGES - 1] = {1, 64511, 64512, 64513};
    const char *largest = getenv("APMNET_NNS_LARGEST");
    if (i < PEER_MESSAGES - 1)
        return sizes[i];
    return largest != NULL && atol(largest) > 64513 ? (size_t)atol(largest) : 16 * MIB;
}

/* The echo protocol of NnsPeer.cs as its client: every size out and back, by SHA-256. */
static void echo_as_client(apm_stream *st)
{
    int i;
    uint8_t zero[8] = {0};
    for (i = 0; i < PEER_MESSAGES; i++) {
        size_t n = peer_size(i), j;
        uint8_t head[8], *out = hx_xmalloc(n);
        for (j = 0; j < 8; j++)
            head[j] = (uint8_t)((uint64_t)n >> (8 * j));
        for (j = 0; j < n; j++)
            out[j] = (uint8_t)(j * 31 + 7);
        out_and_back(st, head, 8, out, n);
    }
    ASSERT_OK(apm_stream_write(st, zero, 8, 0, 8));
}

/* The echo protocol as its server, until the length 0; how many messages came. */
static int echo_as_server(apm_stream *st)
{
    int count = 0;
    for (;;) {
        uint8_t head[8];
        uint64_t n = 0;
        int j;
        uint8_t *buf;
        read_exactly(st, head, 8);
        for (j = 0; j < 8; j++)
            n |= (uint64_t)head[j] << (8 * j);
        if (n == 0)
            return count;
        ASSERT_LE(n, 64 * MIB);
        buf = hx_xmalloc(n);
        read_exactly(st, buf, n);
        ASSERT_OK(apm_stream_write(st, buf, n, 0, n));
        free(buf);
        count++;
    }
}

/* Our client against the peer's server (`mech` as for peer_start); `user`@`domain` with `password`. */
static void client_vs_peer(int kind, const char *mech, int32_t level, const char *user, const char *password,
                           const char *domain, apm_status want, const char *package)
{
    hx_peer p;
    char line[512];
    int port = 0;
    apm_socket *s;
    apm_stream *ns = NULL, *st = NULL;
    apm_credential *cc = NULL;
    apm_status got;
    if (g_realm[0] == '\0')
        no_foreign_kdc();
    peer_start(&p, kind, "server", 0, level_name(level), NULL, NULL, NULL, mech);
    hx_peer_read_line(&p, line, sizeof line);
    if (strncmp(line, "SKIP", 4) == 0)
        hx_skip("%s", line + 5);
    ASSERT_EQ(sscanf(line, "listening %d", &port), 1);
    s = hx_apm_tcp4();
    ASSERT_OK(apm_socket_connect(s, "127.0.0.1", port));
    ASSERT_OK(apm_network_stream_create(s, 1, &ns));
    ASSERT_OK(apm_negotiate_stream_create(ns, 0, &st));
    ASSERT_OK(apm_credential_create(user, password, domain, &cc));
    got = apm_negotiate_stream_authenticate_as_client(st, cc, "host/localhost", NULL, 0, level,
                                                      APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION);
    if (got != want) {
        char message[512];
        snprintf(message, sizeof message, "%s", hx_last_message());
        hx_peer_read_line(&p, line, sizeof line);
        hx_fail(__FILE__, __LINE__, "client vs %s server at %s: %s (%s), expected %s; the peer said %s",
                peer_names[kind], level_name(level), hx_status_name(got), message, hx_status_name(want), line);
    }
    if (got == APM_OK) {
        assert_identity(st, "host/localhost", package);
        hx_peer_read_line(&p, line, sizeof line);
        ASSERT_STR_STARTS_WITH(line, "AUTH ");
        echo_as_client(st);
        ASSERT_EQ(hx_peer_wait(&p), 0);
    } else {
        ASSERT_OK(apm_stream_close(st));
        st = NULL;
        hx_peer_read_line(&p, line, sizeof line);
        ASSERT_STR_STARTS_WITH(line, "FAIL ");
        hx_peer_wait(&p);
    }
    if (st != NULL)
        ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_credential_close(cc));
    ASSERT_OK(apm_runtime_shutdown());
}

/* The peer's client against our server (users: TESTDOM\alice, or the keytab; `mech` as for peer_start). */
static void server_vs_peer(int kind, const char *mech, int32_t level, const char *user, const char *password,
                           const char *domain, apm_status want, const char *package, const char *client_says)
{
    hx_peer p;
    char line[512], name[300];
    int port = 0, i;
    apm_socket *l = hx_apm_listener(&port), *a = NULL;
    apm_stream *ns = NULL, *st = NULL;
    apm_credential *users = user_cred("TESTDOM\\alice", "Passw0rd!");
    apm_status got;
    if (g_realm[0] == '\0')
        no_foreign_kdc();
    peer_start(&p, kind, "client", port, level_name(level), user, password, domain, mech);
    ASSERT_OK(apm_socket_accept(l, &a));
    ASSERT_OK(apm_network_stream_create(a, 1, &ns));
    ASSERT_OK(apm_negotiate_stream_create(ns, 0, &st));
    got = apm_negotiate_stream_authenticate_as_server(st, users, APM_POLICY_ENFORCEMENT_NEVER, NULL, 0, NULL, 0, level,
                                                      APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION);
    hx_peer_read_line(&p, line, sizeof line);
    if (strncmp(line, "SKIP", 4) == 0)
        hx_skip("%s", line + 5);
    if (got != want)
        hx_fail(__FILE__, __LINE__, "%s client vs server at %s: %s (%s), expected %s; the peer said %s",
                peer_names[kind], level_name(level), hx_status_name(got), hx_last_message(), hx_status_name(want),
                line);
    if (got == APM_OK) {
        snprintf(name, sizeof name, "%s%s%s", domain[0] && strcmp(package, "NTLM") == 0 ? domain : "",
                 domain[0] && strcmp(package, "NTLM") == 0 ? "\\" : "", user);
        if (strcmp(package, "Kerberos") == 0)
            snprintf(name, sizeof name, "%s@%s", user, domain);
        assert_identity(st, name, package);
        ASSERT_STR_STARTS_WITH(line, "AUTH ");
        ASSERT_EQ(echo_as_server(st), PEER_MESSAGES);
        for (i = 0; i < PEER_MESSAGES; i++) {
            hx_peer_read_line(&p, line, sizeof line);
            ASSERT_STR_STARTS_WITH(line, "OK ");
        }
        ASSERT_EQ(hx_peer_wait(&p), 0);
    } else {
        if (client_says != NULL)
            ASSERT_STR_EQ(line, client_says);
        hx_peer_wait(&p);
    }
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_socket_close(l));
    ASSERT_OK(apm_credential_close(users));
    ASSERT_OK(apm_runtime_shutdown());
}

#define NTLM_PAIRING(kind, tag, level)                                                                \
    TEST(client_vs_##tag##_server_ntlm_##level)                                                       \
    {                                                                                                 \
        client_vs_peer(kind, NULL, APM_PROTECTION_LEVEL_##level, "alice", "Passw0rd!", "TESTDOM", APM_OK, "NTLM"); \
    }                                                                                                 \
    TEST(tag##_client_vs_server_ntlm_##level)                                                         \
    {                                                                                                 \
        server_vs_peer(kind, NULL, APM_PROTECTION_LEVEL_##level, "alice", "Passw0rd!", "TESTDOM", APM_OK, "NTLM", NULL); \
    }

NTLM_PAIRING(DOTNET, dotnet, NONE)
NTLM_PAIRING(DOTNET, dotnet, SIGN)
NTLM_PAIRING(DOTNET, dotnet, ENCRYPT_AND_SIGN)
NTLM_PAIRING(PYSPNEGO, pyspnego, NONE)
NTLM_PAIRING(PYSPNEGO, pyspnego, SIGN)
NTLM_PAIRING(PYSPNEGO, pyspnego, ENCRYPT_AND_SIGN)

TEST(dotnet_wrong_password_both_ways)
{
    client_vs_peer(DOTNET, NULL, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN, "alice", "wrong", "TESTDOM", APM_E_AUTHENTICATION, NULL);
    ASSERT_LAST_MESSAGE("Authentication failed on the remote side (the stream might still be available for additional "
                        "authentication attempts).");
    server_vs_peer(DOTNET, NULL, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN, "alice", "wrong", "TESTDOM", APM_E_INVALID_CREDENTIAL,
                   NULL, "FAIL InvalidCredentialException: The server has rejected the client credentials.");
}

TEST(dotnet_client_asking_sign_of_a_server_requiring_encrypt_and_sign)
{
    hx_peer p;
    char line[512];
    int port = 0;
    apm_socket *l = hx_apm_listener(&port), *a = NULL;
    apm_stream *ns = NULL, *st = NULL;
    apm_credential *users = user_cred("TESTDOM\\alice", "Passw0rd!");
    no_foreign_kdc();
    peer_start(&p, DOTNET, "client", port, "Sign", "alice", "Passw0rd!", "TESTDOM", NULL);
    ASSERT_OK(apm_socket_accept(l, &a));
    ASSERT_OK(apm_network_stream_create(a, 1, &ns));
    ASSERT_OK(apm_negotiate_stream_create(ns, 0, &st));
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_server(st, users, 0, NULL, 0, NULL, 0,
                                                              APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN,
                                                              APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION),
                  APM_E_AUTHENTICATION);
    hx_peer_read_line(&p, line, sizeof line);
    ASSERT_STR_EQ(line, "FAIL AuthenticationException: A remote side security requirement was not fulfilled during "
                        "authentication. Try increasing the ProtectionLevel and/or ImpersonationLevel.");
    hx_peer_wait(&p);
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_socket_close(l));
    ASSERT_OK(apm_credential_close(users));
    ASSERT_OK(apm_runtime_shutdown());
}

#define KERBEROS_PAIRING(level)                                                                       \
    TEST(client_vs_dotnet_server_kerberos_##level)                                                    \
    {                                                                                                 \
        realm_start();                                                                                \
        client_vs_peer(DOTNET, NULL, APM_PROTECTION_LEVEL_##level, "alice", "Passw0rd!", "APMNET.TEST", APM_OK, "Kerberos"); \
        realm_stop();                                                                                 \
    }                                                                                                 \
    TEST(dotnet_client_vs_server_kerberos_##level)                                                    \
    {                                                                                                 \
        realm_start();                                                                                \
        server_vs_peer(DOTNET, NULL, APM_PROTECTION_LEVEL_##level, "alice", "Passw0rd!", "APMNET.TEST", APM_OK, "Kerberos", NULL); \
        realm_stop();                                                                                 \
    }

KERBEROS_PAIRING(SIGN)
KERBEROS_PAIRING(ENCRYPT_AND_SIGN)

/* pyspnego with Kerberos (python-gssapi and krb5 on MIT), on the loopback realm: pyspnego's own SPNEGO
 * on both sides, settling on Kerberos, its preference ("negotiate-kerberos"); and its client sending
 * raw Kerberos tokens, no SPNEGO ("kerberos"), which our server takes. Not our client against its raw
 * Kerberos acceptor: that one holds krb5 credentials only and refuses SPNEGO ("No credentials were
 * supplied"), and a NegotiateStream client always sends SPNEGO at Sign and above, as .NET's does. */
#define PYSPNEGO_KERBEROS_CLIENT(tag, mech, level)                                                    \
    TEST(pyspnego_client_vs_server_##tag##_##level)                                                   \
    {                                                                                                 \
        realm_start();                                                                                \
        server_vs_peer(PYSPNEGO, mech, APM_PROTECTION_LEVEL_##level, "alice", "Passw0rd!", "APMNET.TEST", APM_OK, \
                       "Kerberos", NULL);                                                             \
        realm_stop();                                                                                 \
    }
#define PYSPNEGO_KERBEROS_PAIRING(tag, mech, level)                                                   \
    TEST(client_vs_pyspnego_server_##tag##_##level)                                                   \
    {                                                                                                 \
        realm_start();                                                                                \
        client_vs_peer(PYSPNEGO, mech, APM_PROTECTION_LEVEL_##level, "alice", "Passw0rd!", "APMNET.TEST", APM_OK, \
                       "Kerberos");                                                                   \
        realm_stop();                                                                                 \
    }                                                                                                 \
    PYSPNEGO_KERBEROS_CLIENT(tag, mech, level)

PYSPNEGO_KERBEROS_PAIRING(negotiate_kerberos, "negotiate-kerberos", SIGN)
PYSPNEGO_KERBEROS_PAIRING(negotiate_kerberos, "negotiate-kerberos", ENCRYPT_AND_SIGN)
PYSPNEGO_KERBEROS_CLIENT(kerberos, "kerberos", SIGN)
PYSPNEGO_KERBEROS_CLIENT(kerberos, "kerberos", ENCRYPT_AND_SIGN)

/* The default credential is the ticket cache: kinit first, then authenticate without a password. */
TEST(kerberos_from_the_ticket_cache)
{
    apm_stream *c = NULL, *s = NULL;
    apm_credential *def = NULL, *users = user_cred("TESTDOM\\alice", "Passw0rd!");
    server_auth a;
    pthread_t t;
    realm_start();
    if (system("echo 'Passw0rd!' | PATH=$PATH:/usr/sbin kinit alice@APMNET.TEST >/dev/null 2>&1") != 0)
        hx_skip("kinit could not get a ticket from the loopback KDC");
    ASSERT_OK(apm_credential_create_default(&def));
    nego_pair(&c, &s);
    t = server_start(&a, s, users, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    ASSERT_OK(apm_negotiate_stream_authenticate_as_client(c, def, "host/localhost", NULL, 0,
                                                          APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN,
                                                          APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION));
    hx_thread_join(t);
    ASSERT_OK(a.st);
    assert_identity(s, "alice@APMNET.TEST", "Kerberos");
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    /* Without a target there is no Kerberos, and NTLM is impossible with the default credential. */
    nego_pair(&c, &s);
    ASSERT_STATUS(apm_negotiate_stream_authenticate_as_client(c, def, "", NULL, 0, APM_PROTECTION_LEVEL_SIGN,
                                                              APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION),
                  APM_E_AUTHENTICATION);
    ASSERT_LAST_MESSAGE("Authentication failed, see inner exception.");
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_credential_close(def));
    ASSERT_OK(apm_credential_close(users));
    ASSERT_OK(apm_runtime_shutdown());
    realm_stop();
}

/* ---- NegotiateAuthentication: the mechanism layer, blobs carried by the test -------------- */

typedef apm_negotiate_authentication nauth;

enum { BLOB_MAX = 65536 };

/* A client of `package` as alice (NULL password: the default credential) for host/localhost. */
static nauth *na_client(const char *package, const char *user, const char *password, apm_transport_context *ctx,
                        int32_t level)
{
    nauth *a = NULL;
    apm_credential *c = password ? user_cred(user, password) : NULL;
    ASSERT_OK(apm_negotiate_authentication_create_client(package, c, "host/localhost", ctx,
                                                         APM_CHANNEL_BINDING_KIND_ENDPOINT, level, 1,
                                                         APM_TOKEN_IMPERSONATION_LEVEL_IMPERSONATION, &a));
    if (c != NULL)
        ASSERT_OK(apm_credential_close(c));
    return a;
}

/* A server of `package` accepting TESTDOM\alice (and the keytab's clients). */
static nauth *na_server(const char *package, apm_transport_context *ctx, int32_t enforcement, int32_t level)
{
    nauth *a = NULL;
    apm_credential *users = user_cred("TESTDOM\\alice", "Passw0rd!");
    ASSERT_OK(apm_negotiate_authentication_create_server(package, users, ctx, APM_CHANNEL_BINDING_KIND_ENDPOINT,
                                                         enforcement, NULL, 0, level,
                                                         APM_TOKEN_IMPERSONATION_LEVEL_NONE, &a));
    ASSERT_OK(apm_credential_close(users));
    return a;
}

/* Alters byte `g_tamper_at` of the client's blob of leg `g_tamper_leg` (0 first) before the server
 * sees it; -1: none. */
static int g_tamper_leg = -1;
static size_t g_tamper_at;

/* Carries the blobs between client and server until both stop; their last status codes. */
static void na_exchange(nauth *c, nauth *s, int32_t *client_status, int32_t *server_status)
{
    uint8_t *to_server = hx_xmalloc(BLOB_MAX), *to_client = hx_xmalloc(BLOB_MAX);
    size_t to_client_len = 0, n = 0;
    int32_t cs = APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED, ss = cs;
    int leg;
    for (leg = 0; leg < 8 && cs == APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED; leg++) {
        ASSERT_OK(apm_negotiate_authentication_get_outgoing_blob(c, to_client, to_client_len, to_server, BLOB_MAX, &n, &cs));
        ASSERT_LE(n, BLOB_MAX);
        if (cs > APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED || n == 0)
            break;
        if (leg == g_tamper_leg) {
            ASSERT_LT(g_tamper_at, n);
            to_server[g_tamper_at] ^= 0x20;
        }
        ASSERT_OK(apm_negotiate_authentication_get_outgoing_blob(s, to_server, n, to_client, BLOB_MAX, &to_client_len, &ss));
        if (ss > APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED)
            break;
        if (cs == APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED && to_client_len == 0)
            break;
    }
    g_tamper_leg = -1;
    *client_status = cs;
    *server_status = ss;
    free(to_server);
    free(to_client);
}

static int32_t na_flag(apm_status (*get)(nauth *, int32_t *), nauth *a)
{
    int32_t v = -1;
    ASSERT_OK(get(a, &v));
    return v;
}

static void na_text(apm_status (*get)(nauth *, char *, size_t, size_t *), nauth *a, const char *want)
{
    char buf[256];
    size_t n = 0;
    ASSERT_OK(get(a, buf, sizeof buf, &n));
    ASSERT_STR_EQ(buf, want);
}

/* `from` wraps `text`, `to` unwraps it. With `replay`, the same token again is refused:
 * MessageAltered (NTLM) or OutOfSequence (Kerberos); a failed unwrap leaves NTLM's RC4 stream out
 * of step, so it is the receiver's last call. */
static void na_wrap_to(nauth *from, nauth *to, const char *text, int32_t want_encrypted, int replay)
{
    uint8_t wire[512], plain[512];
    size_t wn = 0, pn = 0;
    int32_t enc = -1, was = -1, st = -1;
    ASSERT_OK(apm_negotiate_authentication_wrap(from, (const uint8_t *)text, strlen(text), 1, wire, sizeof wire, &wn,
                                                &enc, &st));
    ASSERT_EQ(st, APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
    ASSERT_EQ(enc, want_encrypted);
    ASSERT_GT(wn, strlen(text));
    ASSERT_OK(apm_negotiate_authentication_unwrap(to, wire, wn, plain, sizeof plain, &pn, &was, &st));
    ASSERT_EQ(st, APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
    ASSERT_EQ(was, want_encrypted);
    ASSERT_UEQ(pn, strlen(text));
    ASSERT_MEM_EQ(plain, text, pn);
    if (!replay)
        return;
    ASSERT_OK(apm_negotiate_authentication_unwrap(to, wire, wn, plain, sizeof plain, &pn, &was, &st));
    ASSERT(st == APM_NEGOTIATE_AUTHENTICATION_STATUS_MESSAGE_ALTERED ||
           st == APM_NEGOTIATE_AUTHENTICATION_STATUS_OUT_OF_SEQUENCE);
    ASSERT_UEQ(pn, 0);
}

/* A MIC of `from` verifies at `to`; with `altered`, then one of an altered message does not (the
 * receiver's last call, as for a replay). */
static void na_mic_to(nauth *from, nauth *to, int altered)
{
    static const uint8_t msg[] = "integrity";
    uint8_t mic[256];
    size_t n = 0;
    int32_t valid = -1;
    ASSERT_OK(apm_negotiate_authentication_compute_integrity_check(from, msg, sizeof msg, mic, sizeof mic, &n));
    ASSERT_GT(n, 0);
    ASSERT_OK(apm_negotiate_authentication_verify_integrity_check(to, msg, sizeof msg, mic, n, &valid));
    ASSERT_EQ(valid, 1);
    if (!altered)
        return;
    ASSERT_OK(apm_negotiate_authentication_compute_integrity_check(from, msg, sizeof msg, mic, sizeof mic, &n));
    ASSERT_OK(apm_negotiate_authentication_verify_integrity_check(to, msg, sizeof msg - 2, mic, n, &valid));
    ASSERT_EQ(valid, 0);
}

/* Our client against our server: complete, the properties, wrap/unwrap and MICs both ways. */
static void na_pair(const char *package, const char *user, const char *password, const char *want_package,
                    const char *want_identity)
{
    nauth *c = na_client(package, user, password, NULL, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    nauth *s = na_server(package, NULL, APM_POLICY_ENFORCEMENT_NEVER, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    int32_t cs, ss, mutual = strcmp(want_package, "Kerberos") == 0;
    na_text(apm_negotiate_authentication_get_package, c, package);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_is_authenticated, c), 0);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_is_server, s), 1);
    na_exchange(c, s, &cs, &ss);
    ASSERT_EQ(cs, APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
    ASSERT_EQ(ss, APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_is_authenticated, c), 1);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_is_authenticated, s), 1);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_is_encrypted, c), 1);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_is_signed, s), 1);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_is_mutually_authenticated, c), mutual);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_get_protection_level, s), APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    na_text(apm_negotiate_authentication_get_package, c, want_package);
    na_text(apm_negotiate_authentication_get_package, s, want_package);
    na_text(apm_negotiate_authentication_get_target_name, c, "host/localhost");
    na_text(apm_negotiate_authentication_get_remote_identity_name, s, want_identity);
    na_text(apm_negotiate_authentication_get_remote_identity_name, c, "host/localhost");
    na_text(apm_negotiate_authentication_get_remote_identity_authentication_type, s, want_package);
    na_mic_to(c, s, 0);
    na_mic_to(s, c, 0);
    na_wrap_to(c, s, "from the client", 1, 1);
    na_wrap_to(s, c, "from the server", 1, 0);
    na_mic_to(s, c, 1);
    ASSERT_OK(apm_negotiate_authentication_close(c));
    ASSERT_OK(apm_negotiate_authentication_close(s));
}

TEST(negotiate_authentication_ntlm_and_negotiate)
{
    no_foreign_kdc();
    na_pair("NTLM", "TESTDOM\\alice", "Passw0rd!", "NTLM", "TESTDOM\\alice");
    na_pair("Negotiate", "TESTDOM\\alice", "Passw0rd!", "NTLM", "TESTDOM\\alice");
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(negotiate_authentication_kerberos_on_a_loopback_realm)
{
    realm_start();
    na_pair("Kerberos", "alice@APMNET.TEST", "Passw0rd!", "Kerberos", "alice@APMNET.TEST");
    na_pair("Negotiate", "alice@APMNET.TEST", "Passw0rd!", "Kerberos", "alice@APMNET.TEST");
    realm_stop();
    ASSERT_OK(apm_runtime_shutdown());
}

/* Failures are status codes, as .NET reports them. */
TEST(negotiate_authentication_failures)
{
    nauth *c, *s;
    int32_t cs, ss;
    uint8_t out[64];
    size_t n = 0;
    no_foreign_kdc();
    /* A wrong password: the server says UnknownCredentials (SSPI's LogonDenied). */
    c = na_client("NTLM", "TESTDOM\\alice", "wrong", NULL, APM_PROTECTION_LEVEL_SIGN);
    s = na_server("NTLM", NULL, APM_POLICY_ENFORCEMENT_NEVER, APM_PROTECTION_LEVEL_SIGN);
    na_exchange(c, s, &cs, &ss);
    ASSERT_EQ(ss, APM_NEGOTIATE_AUTHENTICATION_STATUS_UNKNOWN_CREDENTIALS);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_is_authenticated, s), 0);
    /* The exchange is over: another step is a failure too. */
    ASSERT_OK(apm_negotiate_authentication_get_outgoing_blob(s, out, 1, out, sizeof out, &n, &ss));
    ASSERT_NE(ss, APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
    ASSERT_OK(apm_negotiate_authentication_close(c));
    ASSERT_OK(apm_negotiate_authentication_close(s));
    /* A tampered AUTHENTICATE: its MIC (offset 72, after the version) no longer verifies. */
    c = na_client("NTLM", "TESTDOM\\alice", "Passw0rd!", NULL, APM_PROTECTION_LEVEL_SIGN);
    s = na_server("NTLM", NULL, APM_POLICY_ENFORCEMENT_NEVER, APM_PROTECTION_LEVEL_SIGN);
    g_tamper_leg = 1;
    g_tamper_at = 72;
    na_exchange(c, s, &cs, &ss);
    ASSERT_EQ(ss, APM_NEGOTIATE_AUTHENTICATION_STATUS_MESSAGE_ALTERED);
    ASSERT_OK(apm_negotiate_authentication_close(c));
    ASSERT_OK(apm_negotiate_authentication_close(s));
    /* A tampered NEGOTIATE: its "NTLMSSP" signature is wrong, the token invalid. */
    c = na_client("NTLM", "TESTDOM\\alice", "Passw0rd!", NULL, APM_PROTECTION_LEVEL_SIGN);
    s = na_server("NTLM", NULL, APM_POLICY_ENFORCEMENT_NEVER, APM_PROTECTION_LEVEL_SIGN);
    g_tamper_leg = 0;
    g_tamper_at = 1;
    na_exchange(c, s, &cs, &ss);
    ASSERT_EQ(ss, APM_NEGOTIATE_AUTHENTICATION_STATUS_INVALID_TOKEN);
    ASSERT_OK(apm_negotiate_authentication_close(c));
    ASSERT_OK(apm_negotiate_authentication_close(s));
    /* Garbage for a first server step. */
    s = na_server("Negotiate", NULL, APM_POLICY_ENFORCEMENT_NEVER, APM_PROTECTION_LEVEL_NONE);
    ASSERT_OK(apm_negotiate_authentication_get_outgoing_blob(s, (const uint8_t *)"garbage", 7, out, sizeof out, &n, &ss));
    ASSERT_EQ(ss, APM_NEGOTIATE_AUTHENTICATION_STATUS_INVALID_TOKEN);
    ASSERT_OK(apm_negotiate_authentication_close(s));
    /* A server requiring EncryptAndSign of a Sign client: SecurityQosFailed. */
    c = na_client("NTLM", "TESTDOM\\alice", "Passw0rd!", NULL, APM_PROTECTION_LEVEL_SIGN);
    s = na_server("NTLM", NULL, APM_POLICY_ENFORCEMENT_NEVER, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    na_exchange(c, s, &cs, &ss);
    ASSERT_EQ(ss, APM_NEGOTIATE_AUTHENTICATION_STATUS_SECURITY_QOS_FAILED);
    ASSERT_OK(apm_negotiate_authentication_close(c));
    ASSERT_OK(apm_negotiate_authentication_close(s));
    /* An unknown package and NTLM with the default credential: Unsupported from the first step. */
    c = na_client("Digest", "alice", "x", NULL, APM_PROTECTION_LEVEL_NONE);
    ASSERT_OK(apm_negotiate_authentication_get_outgoing_blob(c, NULL, 0, out, sizeof out, &n, &cs));
    ASSERT_EQ(cs, APM_NEGOTIATE_AUTHENTICATION_STATUS_UNSUPPORTED);
    ASSERT_UEQ(n, 0);
    ASSERT_OK(apm_negotiate_authentication_close(c));
    c = na_client("NTLM", NULL, NULL, NULL, APM_PROTECTION_LEVEL_NONE);
    ASSERT_OK(apm_negotiate_authentication_get_outgoing_blob(c, NULL, 0, out, sizeof out, &n, &cs));
    ASSERT_EQ(cs, APM_NEGOTIATE_AUTHENTICATION_STATUS_UNSUPPORTED);
    ASSERT_OK(apm_negotiate_authentication_close(c));
    ASSERT_OK(apm_runtime_shutdown());
}

/* Misuse: clear errors, never a crash. */
TEST(negotiate_authentication_misuse)
{
    nauth *c = NULL;
    apm_socket *sock = hx_apm_tcp4();
    uint8_t out[8], big[256];
    size_t n = 0;
    int32_t st = -1, v = -1;
    no_foreign_kdc();
    ASSERT_STATUS(apm_negotiate_authentication_create_client("NTLM", NULL, NULL, NULL, 0, 0, 0, 0, NULL),
                  APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_negotiate_authentication_create_client("NTLM", NULL, NULL, NULL, 0, 7, 0, 0, &c),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_negotiate_authentication_create_server("NTLM", NULL, NULL, 0, 3, NULL, 0, 0, 0, &c),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_negotiate_authentication_create_server("NTLM", NULL, NULL, 0, 0, NULL, 2, 0, 0, &c),
                  APM_E_ARGUMENT_NULL);
    /* A socket is not a transport context, nor a NegotiateAuthentication. */
    ASSERT_STATUS(apm_negotiate_authentication_create_client("NTLM", NULL, NULL, (apm_transport_context *)sock,
                                                             APM_CHANNEL_BINDING_KIND_ENDPOINT, 0, 0, 0, &c),
                  APM_E_ARGUMENT);
    ASSERT_STATUS(apm_negotiate_authentication_is_authenticated((nauth *)sock, &v), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("The handle is not a valid apm_negotiate_authentication handle.");
    ASSERT_STATUS(apm_negotiate_authentication_get_outgoing_blob(NULL, NULL, 0, out, sizeof out, &n, &st),
                  APM_E_ARGUMENT_NULL);
    c = na_client("NTLM", "TESTDOM\\alice", "Passw0rd!", NULL, APM_PROTECTION_LEVEL_SIGN);
    ASSERT_STATUS(apm_negotiate_authentication_get_outgoing_blob(c, NULL, 5, out, sizeof out, &n, &st),
                  APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_negotiate_authentication_get_outgoing_blob(c, NULL, 0, out, sizeof out, &n, NULL),
                  APM_E_ARGUMENT_NULL);
    /* Before authentication: .NET's InvalidOperation. */
    ASSERT_STATUS(apm_negotiate_authentication_wrap(c, out, 1, 0, big, sizeof big, &n, NULL, &st),
                  APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE(noauth_message);
    ASSERT_STATUS(apm_negotiate_authentication_unwrap(c, out, 1, big, sizeof big, &n, NULL, &st),
                  APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_negotiate_authentication_compute_integrity_check(c, out, 1, big, sizeof big, &n),
                  APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_negotiate_authentication_verify_integrity_check(c, out, 1, out, 1, &v), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_negotiate_authentication_get_remote_identity_name(c, (char *)big, sizeof big, &n),
                  APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE(noauth_message);
    /* A blob larger than the buffer: the full length, and the whole blob from get_last_output. */
    ASSERT_OK(apm_negotiate_authentication_get_outgoing_blob(c, NULL, 0, out, sizeof out, &n, &st));
    ASSERT_EQ(st, APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED);
    ASSERT_GT(n, sizeof out);
    ASSERT_OK(apm_negotiate_authentication_get_last_output(c, big, sizeof big, &n));
    ASSERT_MEM_EQ(big, "NTLMSSP", 8);
    ASSERT_MEM_EQ(big, out, sizeof out);
    ASSERT_OK(apm_negotiate_authentication_close(c));
    ASSERT_OK(apm_negotiate_authentication_close(c));
    ASSERT_STATUS(apm_negotiate_authentication_is_authenticated(c, &v), APM_E_OBJECT_DISPOSED);
    ASSERT_OK(apm_socket_close(sock));
    ASSERT_OK(apm_runtime_shutdown());
}

/* Channel binding from an SslStream's TransportContext: the same channel completes, another TLS
 * connection's binding is BadBinding, no binding is refused when the policy is Always. */
static void tls_contexts(apm_transport_context **client, apm_transport_context **server)
{
    apm_stream *a = NULL, *b = NULL, *tc = NULL, *ts = NULL;
    tls_server t;
    pthread_t th;
    hx_stream_pair(&a, &b);
    ASSERT_OK(apm_ssl_stream_create(a, 0, &tc));
    ASSERT_OK(apm_ssl_stream_create(b, 0, &ts));
    t.s = ts;
    t.cert = hx_pki_load("server");
    th = hx_thread_start(tls_server_main, &t);
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(tc, hx_pki_file("ca.pem")));
    ASSERT_OK(apm_ssl_stream_authenticate_as_client(tc, "localhost", NULL, APM_SSL_PROTOCOLS_NONE, 0));
    hx_thread_join(th);
    ASSERT_OK(t.st);
    ASSERT_OK(apm_ssl_stream_get_transport_context(tc, client));
    ASSERT_OK(apm_ssl_stream_get_transport_context(ts, server));
    ASSERT_OK(apm_stream_close(tc));
    ASSERT_OK(apm_stream_close(ts));
    ASSERT_OK(apm_certificate_close(t.cert));
}

static void na_bound(apm_transport_context *client_ctx, apm_transport_context *server_ctx, int32_t enforcement,
                     int32_t want_server)
{
    nauth *c = na_client("Negotiate", "TESTDOM\\alice", "Passw0rd!", client_ctx, APM_PROTECTION_LEVEL_SIGN);
    nauth *s = na_server("Negotiate", server_ctx, enforcement, APM_PROTECTION_LEVEL_SIGN);
    int32_t cs, ss;
    na_exchange(c, s, &cs, &ss);
    ASSERT_EQ(ss, want_server);
    ASSERT_OK(apm_negotiate_authentication_close(c));
    ASSERT_OK(apm_negotiate_authentication_close(s));
}

TEST(negotiate_authentication_channel_binding)
{
    apm_transport_context *c1 = NULL, *s1 = NULL, *c2 = NULL, *s2 = NULL;
    no_foreign_kdc();
    hx_pki_make();
    tls_contexts(&c1, &s1);
    tls_contexts(&c2, &s2);
    na_bound(c1, s1, APM_POLICY_ENFORCEMENT_ALWAYS, APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
    /* The endpoint binding hashes the server certificate, the same for both connections: the
     * unique binding differs. */
    {
        nauth *c = NULL, *s = NULL;
        apm_credential *cred = user_cred("TESTDOM\\alice", "Passw0rd!");
        int32_t cs, ss;
        ASSERT_OK(apm_negotiate_authentication_create_client("NTLM", cred, "host/localhost", c2,
                                                             APM_CHANNEL_BINDING_KIND_UNIQUE, 1, 0, 3, &c));
        ASSERT_OK(apm_negotiate_authentication_create_server("NTLM", cred, s1, APM_CHANNEL_BINDING_KIND_UNIQUE,
                                                             APM_POLICY_ENFORCEMENT_WHEN_SUPPORTED, NULL, 0, 1, 0, &s));
        na_exchange(c, s, &cs, &ss);
        ASSERT_EQ(ss, APM_NEGOTIATE_AUTHENTICATION_STATUS_BAD_BINDING);
        ASSERT_OK(apm_negotiate_authentication_close(c));
        ASSERT_OK(apm_negotiate_authentication_close(s));
        ASSERT_OK(apm_credential_close(cred));
    }
    na_bound(NULL, s1, APM_POLICY_ENFORCEMENT_ALWAYS, APM_NEGOTIATE_AUTHENTICATION_STATUS_BAD_BINDING);
    na_bound(NULL, s1, APM_POLICY_ENFORCEMENT_WHEN_SUPPORTED, APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
    ASSERT_OK(apm_transport_context_close(c1));
    ASSERT_OK(apm_transport_context_close(s1));
    ASSERT_OK(apm_transport_context_close(c2));
    ASSERT_OK(apm_transport_context_close(s2));
    hx_pki_remove();
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- NegotiateAuthentication against .NET 8's (peers/NegAuthPeer.cs), blobs carried here ---- */

enum { NA_CONTINUE = 1, NA_COMPLETE = 2, NA_FAILURE = 3, NA_WRAPPED = 4, NA_MIC = 5 };

typedef struct na_link {
    hx_peer peer;
    int fd;
} na_link;

static void na_send(na_link *l, int kind, const uint8_t *data, size_t n)
{
    uint8_t head[5];
    head[0] = (uint8_t)kind;
    head[1] = (uint8_t)n;
    head[2] = (uint8_t)(n >> 8);
    head[3] = (uint8_t)(n >> 16);
    head[4] = (uint8_t)(n >> 24);
    hx_write_all(l->fd, head, 5);
    if (n > 0)
        hx_write_all(l->fd, data, n);
}

/* One frame from the peer. A closed connection fails the test with what the peer said; so does a
 * failure frame, unless `failure` takes its text. */
static size_t na_recv(na_link *l, int *kind, uint8_t *buf, size_t cap, char *failure, size_t failure_cap)
{
    uint8_t head[5];
    size_t n;
    char line[512];
    if (hx_read_full(l->fd, head, 5) != 5) {
        hx_peer_read_line(&l->peer, line, sizeof line);
        hx_fail(__FILE__, __LINE__, ".NET 8's NegotiateAuthentication stopped: %s", line);
    }
    n = (size_t)head[1] | (size_t)head[2] << 8 | (size_t)head[3] << 16 | (size_t)head[4] << 24;
    ASSERT_LE(n, cap);
    ASSERT_UEQ(hx_read_full(l->fd, buf, n), n);
    *kind = head[0];
    if (*kind == NA_FAILURE) {
        buf[n < cap ? n : cap - 1] = '\0';
        if (failure == NULL)
            hx_fail(__FILE__, __LINE__, ".NET 8's NegotiateAuthentication failed: %s", (char *)buf);
        snprintf(failure, failure_cap, "%s", (char *)buf);
    }
    return n;
}

/* Starts NegAuthPeer in `role` ("client" or "server"; a client as alice with `password`) and takes
 * its connection. */
static void na_dotnet_start_with(na_link *l, const char *role, const char *package, const char *domain,
                                 const char *password)
{
    const char *dotnet = getenv("APMNET_DOTNET"), *config = getenv("APMNET_DOTNET_CONFIG");
    const char *peer = getenv("APMNET_NEGAUTH_PEER");
    const char *argv[16];
    char port_text[16];
    int port = 0, lfd, n = 0;
    if (dotnet == NULL || config == NULL || peer == NULL)
        hx_skip("no .NET 8 NegotiateAuthentication peer: make test sets it up (ffi-tests/peers/setup.sh exports "
                "APMNET_DOTNET, APMNET_DOTNET_CONFIG and APMNET_NEGAUTH_PEER)");
    lfd = hx_tcp_listen(&port);
    snprintf(port_text, sizeof port_text, "%d", port);
    argv[n++] = dotnet;
    argv[n++] = "exec";
    argv[n++] = "--runtimeconfig";
    argv[n++] = config;
    argv[n++] = peer;
    argv[n++] = role;
    argv[n++] = port_text;
    argv[n++] = package;
    if (strcmp(role, "client") == 0) {
        argv[n++] = "alice";
        argv[n++] = password;
        argv[n++] = domain;
        argv[n++] = "host/localhost";
    }
    argv[n++] = "EncryptAndSign";
    argv[n] = NULL;
    hx_ntlm_users_file();
    setenv("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1", 1);
    hx_process_start(&l->peer, argv);
    {
        /* A peer that fails before it connects says why instead of leaving accept waiting. */
        struct pollfd p = {lfd, POLLIN, 0};
        char line[512];
        if (poll(&p, 1, hx_wait_ms()) != 1) {
            hx_peer_read_line(&l->peer, line, sizeof line);
            hx_fail(__FILE__, __LINE__, "NegAuthPeer did not connect: %s", line);
        }
    }
    l->fd = hx_tcp_accept(lfd);
    hx_close(lfd);
}

static void na_dotnet_start(na_link *l, const char *role, const char *package, const char *domain)
{
    na_dotnet_start_with(l, role, package, domain, "Passw0rd!");
}

/* The handshake as NegAuthPeer.cs runs it; our last status, or with the peer's failure (its status
 * name in `peer_failure`) -1. */
static int32_t na_dotnet_handshake(nauth *a, na_link *l, int ours_is_server, char *peer_failure, size_t cap)
{
    uint8_t *in = hx_xmalloc(BLOB_MAX), *out = hx_xmalloc(BLOB_MAX);
    size_t in_len = 0, out_len = 0;
    int mine = 0, theirs = 0, kind = 0, round;
    int32_t st = APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED;
    peer_failure[0] = '\0';
    if (ours_is_server) {
        in_len = na_recv(l, &kind, in, BLOB_MAX, peer_failure, cap);
        theirs = kind == NA_COMPLETE;
    }
    for (round = 0; round < 10 && kind != NA_FAILURE && !(mine && theirs); round++) {
        if (!mine) {
            ASSERT_OK(apm_negotiate_authentication_get_outgoing_blob(a, in, in_len, out, BLOB_MAX, &out_len, &st));
            if (st > APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED) {
                na_send(l, NA_FAILURE, (const uint8_t *)"apmnet", 6);
                break;
            }
            mine = st == APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED;
            na_send(l, mine ? NA_COMPLETE : NA_CONTINUE, out, out_len);
        }
        if (mine && theirs)
            break;
        in_len = na_recv(l, &kind, in, BLOB_MAX, peer_failure, cap);
        theirs = kind == NA_COMPLETE;
    }
    free(in);
    free(out);
    return kind == NA_FAILURE ? -1 : st;
}

/* Ours (`a`, client or server) against the peer: the handshake, then a wrapped message and a MIC
 * each way; what the peer printed is checked too. */
static void na_vs_dotnet(nauth *a, na_link *l, int ours_is_server, const char *want_package, const char *want_identity)
{
    uint8_t *in = hx_xmalloc(BLOB_MAX), *out = hx_xmalloc(BLOB_MAX);
    size_t in_len = 0, out_len = 0;
    int kind = 0, turn;
    int32_t st = 0, valid = 0, enc = 0;
    char line[512], want[256];
    static const uint8_t msg[] = "integrity";
    ASSERT_EQ(na_dotnet_handshake(a, l, ours_is_server, line, sizeof line), APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
    na_text(apm_negotiate_authentication_get_package, a, want_package);
    na_text(apm_negotiate_authentication_get_remote_identity_name, a, want_identity);
    ASSERT_EQ(na_flag(apm_negotiate_authentication_is_encrypted, a), 1);
    hx_peer_read_line(&l->peer, line, sizeof line);
    snprintf(want, sizeof want, "AUTH %s ", want_package);
    ASSERT_STR_STARTS_WITH(line, want);
    /* Wrapped messages: the client's first. */
    for (turn = 0; turn < 2; turn++) {
        if ((turn == 0) != ours_is_server) {
            const char *text = ours_is_server ? "wrapped by the server" : "wrapped by the client";
            ASSERT_OK(apm_negotiate_authentication_wrap(a, (const uint8_t *)text, strlen(text), 1, out, BLOB_MAX,
                                                        &out_len, &enc, &st));
            ASSERT_EQ(st, APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
            na_send(l, NA_WRAPPED, out, out_len);
        } else {
            const char *text = ours_is_server ? "wrapped by the client" : "wrapped by the server";
            in_len = na_recv(l, &kind, in, BLOB_MAX, NULL, 0);
            ASSERT_EQ(kind, NA_WRAPPED);
            ASSERT_OK(apm_negotiate_authentication_unwrap(a, in, in_len, out, BLOB_MAX, &out_len, &enc, &st));
            ASSERT_EQ(st, APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED);
            ASSERT_EQ(enc, 1);
            ASSERT_UEQ(out_len, strlen(text));
            ASSERT_MEM_EQ(out, text, out_len);
        }
    }
    hx_peer_read_line(&l->peer, line, sizeof line);
    ASSERT_STR_EQ(line, ours_is_server ? "UNWRAP wrapped by the server True" : "UNWRAP wrapped by the client True");
    /* MICs, the same way. */
    for (turn = 0; turn < 2; turn++) {
        if ((turn == 0) != ours_is_server) {
            ASSERT_OK(apm_negotiate_authentication_compute_integrity_check(a, msg, sizeof msg - 1, out, BLOB_MAX, &out_len));
            na_send(l, NA_MIC, out, out_len);
        } else {
            in_len = na_recv(l, &kind, in, BLOB_MAX, NULL, 0);
            ASSERT_EQ(kind, NA_MIC);
            ASSERT_OK(apm_negotiate_authentication_verify_integrity_check(a, msg, sizeof msg - 1, in, in_len, &valid));
            ASSERT_EQ(valid, 1);
        }
    }
    hx_peer_read_line(&l->peer, line, sizeof line);
    ASSERT_STR_EQ(line, "MIC True");
    ASSERT_EQ(hx_peer_wait(&l->peer), 0);
    hx_close(l->fd);
    free(in);
    free(out);
}

static void na_client_vs_dotnet(const char *package, const char *user, const char *domain, const char *want_package)
{
    na_link l;
    nauth *a;
    if (g_realm[0] == '\0')
        no_foreign_kdc();
    na_dotnet_start(&l, "server", package, domain);
    a = na_client(package, user, "Passw0rd!", NULL, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    na_vs_dotnet(a, &l, 0, want_package, "host/localhost");
    ASSERT_OK(apm_negotiate_authentication_close(a));
    ASSERT_OK(apm_runtime_shutdown());
}

static void na_dotnet_vs_server(const char *package, const char *domain, const char *want_package,
                                const char *want_identity)
{
    na_link l;
    nauth *a;
    if (g_realm[0] == '\0')
        no_foreign_kdc();
    na_dotnet_start(&l, "client", package, domain);
    a = na_server(package, NULL, APM_POLICY_ENFORCEMENT_NEVER, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    na_vs_dotnet(a, &l, 1, want_package, want_identity);
    ASSERT_OK(apm_negotiate_authentication_close(a));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(negotiate_authentication_client_vs_dotnet_server_ntlm)
{
    na_client_vs_dotnet("NTLM", "TESTDOM\\alice", "TESTDOM", "NTLM");
}
TEST(negotiate_authentication_dotnet_client_vs_server_ntlm)
{
    na_dotnet_vs_server("NTLM", "TESTDOM", "NTLM", "TESTDOM\\alice");
}
TEST(negotiate_authentication_client_vs_dotnet_server_negotiate)
{
    na_client_vs_dotnet("Negotiate", "TESTDOM\\alice", "TESTDOM", "NTLM");
}
TEST(negotiate_authentication_dotnet_client_vs_server_negotiate)
{
    na_dotnet_vs_server("Negotiate", "TESTDOM", "NTLM", "TESTDOM\\alice");
}
TEST(negotiate_authentication_client_vs_dotnet_server_kerberos)
{
    realm_start();
    na_client_vs_dotnet("Kerberos", "alice@APMNET.TEST", "APMNET.TEST", "Kerberos");
    realm_stop();
}
TEST(negotiate_authentication_dotnet_client_vs_server_kerberos)
{
    realm_start();
    na_dotnet_vs_server("Kerberos", "APMNET.TEST", "Kerberos", "alice@APMNET.TEST");
    realm_stop();
}

/* A wrong password both ways: our server says UnknownCredentials (SSPI's LogonDenied, as .NET's
 * Windows and managed NTLM map it); .NET 8's server on Linux says GenericFailure (gss-ntlmssp's
 * GSS_S_FAILURE). */
TEST(negotiate_authentication_dotnet_wrong_password_both_ways)
{
    na_link l;
    nauth *a;
    char failure[128], line[512];
    no_foreign_kdc();
    /* .NET's client, wrong password, against our server. */
    na_dotnet_start_with(&l, "client", "NTLM", "TESTDOM", "wrong");
    a = na_server("NTLM", NULL, APM_POLICY_ENFORCEMENT_NEVER, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    ASSERT_EQ(na_dotnet_handshake(a, &l, 1, failure, sizeof failure), APM_NEGOTIATE_AUTHENTICATION_STATUS_UNKNOWN_CREDENTIALS);
    hx_peer_wait(&l.peer);
    hx_close(l.fd);
    ASSERT_OK(apm_negotiate_authentication_close(a));
    /* Our client, wrong password, against .NET's server. */
    na_dotnet_start(&l, "server", "NTLM", "TESTDOM");
    a = na_client("NTLM", "TESTDOM\\alice", "wrong", NULL, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN);
    ASSERT_EQ(na_dotnet_handshake(a, &l, 0, failure, sizeof failure), -1);
    hx_peer_read_line(&l.peer, line, sizeof line);
    ASSERT_STR_EQ(failure, "GenericFailure");
    ASSERT_STR_EQ(line, "FAIL GenericFailure");
    hx_peer_wait(&l.peer);
    hx_close(l.fd);
    ASSERT_OK(apm_negotiate_authentication_close(a));
    ASSERT_OK(apm_runtime_shutdown());
}

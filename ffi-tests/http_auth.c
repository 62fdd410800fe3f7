/*
 * ffi-tests/http_auth.c - HttpWebRequest's Credentials with Negotiate and NTLM against a server
 * whose acceptor is pyspnego (peers/http_auth_peer.py, plain and TLS), which checks the channel
 * binding over TLS: NTLM over http and https (the legs on one connection, counted at the server; a
 * buffered POST body sent again on each leg and checked by SHA-256; the blocking and the Begin
 * forms), Negotiate settling on Kerberos on the loopback realm over http and https, with a
 * password and with UseDefaultCredentials (a ticket cache from kinit), a binding to another
 * channel and a missing binding refused, a wrong password, a server that loops on 401, a 401
 * without a supported scheme, streamed bodies sent again from their copy; a proxy that wants NTLM
 * (peers/http_proxy_peer.py --ntlm) for http and for a CONNECT tunnel; PreAuthenticate with Basic
 * (peers/http_peer.py).
 */
#include "harness.h"

#include <unistd.h>

static const char m401[] = "The remote server returned an error: (401) Unauthorized.";
/* The tls-server-end-point hash of some other certificate: the binding of another channel. */
#define OTHER_CHANNEL "5f0d6ac1e8b7a3f2c4d9e0b1a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5"

/* ---- peers ---------------------------------------------------------------------------------- */

typedef struct auth_server {
    hx_peer peer;
    int port;
    int tls;
} auth_server;

/* Starts a pyspnego-backed program of peers/ with `args` (NULL-terminated), skipping the test
 * when the pyspnego environment is missing; reads its "PORT n" line. */
static int pyspnego_start(hx_peer *p, const char *script, const char *const *args)
{
    const char *python = getenv("APMNET_PYSPNEGO_PYTHON"), *dir = getenv("APMNET_FFI_DIR");
    const char *argv[24];
    char path[1100], line[256];
    int n = 0, port = 0;
    if (python == NULL)
        hx_skip("no pyspnego: make test sets it up (ffi-tests/peers/setup.sh exports APMNET_PYSPNEGO_PYTHON)");
    snprintf(path, sizeof path, "%s/peers/%s", dir ? dir : "ffi-tests", script);
    argv[n++] = python;
    argv[n++] = "-u";
    argv[n++] = path;
    for (; args != NULL && *args != NULL && n < 23; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    hx_ntlm_users_file();
    hx_process_start(p, argv);
    hx_peer_read_line(p, line, sizeof line);
    if (strncmp(line, "SKIP", 4) == 0)
        hx_skip("%s", line + 5);
    ASSERT_EQ(sscanf(line, "PORT %d", &port), 1);
    return port;
}

/* http_auth_peer.py with `protocol` ("ntlm" or "negotiate"), `cbt` (--expect-cbt; NULL: own),
 * over TLS when `tls`. */
static void auth_start(auth_server *s, int tls, const char *protocol, const char *cbt)
{
    const char *args[12];
    int n = 0;
    args[n++] = "--protocol";
    args[n++] = protocol;
    if (cbt != NULL) {
        args[n++] = "--expect-cbt";
        args[n++] = cbt;
    }
    if (tls) {
        hx_pki_make();
        args[n++] = "--cert";
        args[n++] = hx_pki_file("server.pem");
        args[n++] = "--key";
        args[n++] = hx_pki_file("server.key");
    }
    args[n] = NULL;
    s->tls = tls;
    s->port = pyspnego_start(&s->peer, "http_auth_peer.py", args);
}

static apm_http_request *auth_request(auth_server *s, const char *path)
{
    apm_http_request *r = NULL;
    char uri[256];
    snprintf(uri, sizeof uri, "%s://localhost:%d%s", s->tls ? "https" : "http", s->port, path);
    ASSERT_OK(apm_http_request_create(uri, &r));
    if (s->tls)
        ASSERT_OK(apm_http_request_set_trusted_ca_file(r, hx_pki_file("ca.pem")));
    ASSERT_OK(apm_http_request_set_proxy(r, ""));
    return r;
}

/* GetResponse succeeds; returns the body (caller frees) and closes the request. */
static char *get_ok(apm_http_request *r)
{
    apm_http_response *resp = NULL;
    char *t;
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    t = hx_response_body(resp, NULL);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    return t;
}

/* GetResponse fails with ProtocolError `code`, the response attached and readable: its body
 * starts with `body`. Closes the request. */
static void get_refused(apm_http_request *r, int32_t code, const char *message, const char *body)
{
    apm_http_response *resp = NULL, *attached = NULL;
    char *t;
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_PROTOCOL_ERROR);
    ASSERT_EQ(apm_last_error_http_status(), code);
    ASSERT_LAST_MESSAGE(message);
    ASSERT_OK(apm_http_response_from_last_error(&attached));
    t = hx_response_body(attached, NULL);
    ASSERT_STR_STARTS_WITH(t, body);
    free(t);
    ASSERT_OK(apm_http_response_close(attached));
    ASSERT_OK(apm_last_error_clear());
    ASSERT_OK(apm_http_request_close(r));
}

static void with_credential(apm_http_request *r, const char *user, const char *password, const char *domain)
{
    apm_credential *c = NULL;
    ASSERT_OK(apm_credential_create(user, password, domain, &c));
    ASSERT_OK(apm_http_request_set_credential(r, c));
    /* The request keeps what it needs. */
    ASSERT_OK(apm_credential_close(c));
}

/* A "k=v" field of the server's /count. */
static int count_of(auth_server *s, const char *key)
{
    char *t = get_ok(auth_request(s, "/count"));
    int v = atoi(hx_field(t, key));
    free(t);
    return v;
}

/* Tests without a realm see none: the host's krb5.conf may name KDCs far away, and Negotiate
 * would wait for them before settling on NTLM. */
static void no_foreign_kdc(void)
{
    setenv("KRB5_CONFIG", "/nonexistent/krb5.conf", 1);
}

/* ---- NTLM ----------------------------------------------------------------------------------- */

static void ntlm_get(int tls)
{
    auth_server s;
    apm_http_request *r;
    char *t;
    no_foreign_kdc();
    auth_start(&s, tls, "ntlm", NULL);
    /* Without credentials the 401 is the answer. */
    get_refused(auth_request(&s, "/auth"), 401, m401, "credentials, please");
    r = auth_request(&s, "/auth");
    with_credential(r, "alice", "Passw0rd!", "TESTDOM");
    t = get_ok(r);
    ASSERT_STR_EQ(hx_field(t, "user"), "TESTDOM\\alice");
    ASSERT_STR_EQ(hx_field(t, "protocol"), "ntlm");
    ASSERT_STR_EQ(hx_field(t, "legs"), "2");
    free(t);
    /* The legacy user/password form, the domain in the user name; on the kept-alive connection. */
    r = auth_request(&s, "/auth");
    ASSERT_OK(apm_http_request_set_credentials(r, "TESTDOM\\alice", "Passw0rd!"));
    t = get_ok(r);
    ASSERT_STR_EQ(hx_field(t, "user"), "TESTDOM\\alice");
    free(t);
    /* One kept-alive connection for the unauthenticated try, both handshakes and the count. */
    ASSERT_EQ(count_of(&s, "connections"), 1);
    if (tls)
        hx_pki_remove();
}

TEST(auth_ntlm_over_http) { ntlm_get(0); }
TEST(auth_ntlm_over_https_carries_the_channel_binding) { ntlm_get(1); }

static void on_done(apm_async_result *ar, void *state)
{
    (void)ar;
    hx_event_signal(state);
}

enum body_mode { BUFFERED, CONTENT_LENGTH, CHUNKED };

/* A POST whose body is buffered (no ContentLength), or streamed out with a ContentLength or
 * chunked (the stream keeps a copy, as the request has credentials): sent again on each leg,
 * checked at the server by SHA-256 on the leg that authenticated; `async`:
 * Begin/EndGetResponse. */
static void ntlm_post(int tls, int async, enum body_mode mode)
{
    auth_server s;
    apm_http_request *r;
    apm_stream *st = NULL;
    apm_http_response *resp = NULL;
    size_t len = 300 * 1000 + 7;
    uint8_t *data = hx_xmalloc(len);
    hx_sha256 h;
    char want[65], *t;
    no_foreign_kdc();
    hx_pattern_fill(data, len, 11, 0);
    hx_sha256_init(&h);
    hx_sha256_update(&h, data, len);
    hx_sha256_hex(&h, want);
    auth_start(&s, tls, "ntlm", NULL);
    r = auth_request(&s, "/auth");
    with_credential(r, "alice", "Passw0rd!", "TESTDOM");
    ASSERT_OK(apm_http_request_set_method(r, "POST"));
    if (mode == CONTENT_LENGTH)
        ASSERT_OK(apm_http_request_set_content_length(r, (int64_t)len));
    if (mode == CHUNKED)
        ASSERT_OK(apm_http_request_set_send_chunked(r, 1));
    ASSERT_OK(apm_http_request_get_request_stream(r, &st, NULL));
    /* In two writes, so that the copy is made of more than one. */
    ASSERT_OK(apm_stream_write(st, data, len, 0, len / 3));
    ASSERT_OK(apm_stream_write(st, data, len, len / 3, len - len / 3));
    ASSERT_OK(apm_stream_close(st));
    if (async) {
        hx_event ev;
        apm_async_result *ar = NULL;
        hx_event_init(&ev);
        ASSERT_OK(apm_http_request_begin_get_response(r, on_done, &ev, &ar));
        ASSERT_EVENT(&ev, 1);
        ASSERT_OK(apm_http_request_end_get_response(r, ar, &resp));
        hx_event_destroy(&ev);
    } else {
        ASSERT_OK(apm_http_request_get_response(r, &resp));
    }
    t = hx_response_body(resp, NULL);
    ASSERT_STR_EQ(hx_field(t, "method"), "POST");
    ASSERT_EQ(strtoull(hx_field(t, "len"), NULL, 10), len);
    ASSERT_STR_EQ(hx_field(t, "sha"), want);
    ASSERT_STR_EQ(hx_field(t, "legs"), "2");
    ASSERT_STR_EQ(hx_field(t, "conn"), "1");
    free(t);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    free(data);
    /* All three sends (the try and both legs) on one connection. */
    ASSERT_EQ(count_of(&s, "connections"), 1);
    ASSERT_EQ(count_of(&s, "requests"), 5);
    if (tls)
        hx_pki_remove();
}

TEST(auth_ntlm_post_resends_a_buffered_body) { ntlm_post(0, 0, BUFFERED); }
TEST(auth_ntlm_https_post_begin_get_response) { ntlm_post(1, 1, BUFFERED); }
TEST(auth_ntlm_post_resends_a_content_length_body_from_its_copy) { ntlm_post(0, 0, CONTENT_LENGTH); }
TEST(auth_ntlm_https_post_resends_a_chunked_body_from_its_copy) { ntlm_post(1, 1, CHUNKED); }

/* NTLM to `path` of a server over TLS or not (`tls`) demanding the binding `cbt` (NULL: its own)
 * with `password`: ProtocolError 401, the response readable, its body starting with `body`. */
static void ntlm_refused(auth_server *s, int tls, const char *cbt, const char *path, const char *password, const char *body)
{
    apm_http_request *r;
    no_foreign_kdc();
    auth_start(s, tls, "ntlm", cbt);
    r = auth_request(s, path);
    with_credential(r, "alice", password, "TESTDOM");
    get_refused(r, 401, m401, body);
}

/* The server demands the binding of another certificate's TLS channel (a client that bound to
 * another connection, e.g. behind a TLS-terminating proxy): refused, the 401 readable. */
TEST(auth_ntlm_bound_to_another_channel_is_refused)
{
    auth_server s;
    ntlm_refused(&s, 1, OTHER_CHANNEL, "/auth", "Passw0rd!", "refused: ");
    hx_pki_remove();
}

/* Over plain http the client has no channel to bind to: a server that requires a binding (as a
 * TLS-terminating front end's would) refuses NTLM without one. */
TEST(auth_ntlm_without_a_binding_is_refused_where_one_is_required)
{
    auth_server s;
    ntlm_refused(&s, 0, OTHER_CHANNEL, "/auth", "Passw0rd!", "refused: ");
}

TEST(auth_wrong_password_is_a_readable_401)
{
    auth_server s;
    ntlm_refused(&s, 0, NULL, "/auth", "wrong", "refused: ");
    /* The try and two legs, no more. */
    ASSERT_EQ(count_of(&s, "requests"), 4);
}

/* A server that answers every token with a fresh challenge: the exchange stops once the context
 * is complete (NTLM: after its second token), with ProtocolError 401. */
TEST(auth_a_server_looping_on_401_is_bounded)
{
    auth_server s;
    ntlm_refused(&s, 0, NULL, "/loop", "Passw0rd!", "again");
    ASSERT_EQ(count_of(&s, "loops"), 3);
}

TEST(auth_a_401_without_a_supported_scheme_is_the_answer)
{
    auth_server s;
    ntlm_refused(&s, 0, NULL, "/digest", "Passw0rd!", "digest only");
    ASSERT_EQ(count_of(&s, "requests"), 2);
}

TEST(auth_settings_refuse_bad_input)
{
    apm_http_request *r = NULL;
    apm_credential *users = NULL;
    int32_t v = -1;
    ASSERT_OK(apm_http_request_create("http://localhost:1/", &r));
    ASSERT_OK(apm_http_request_get_use_default_credentials(r, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_http_request_set_use_default_credentials(r, 1));
    ASSERT_OK(apm_http_request_get_use_default_credentials(r, &v));
    ASSERT_EQ(v, 1);
    /* A NetworkCredential replaces the default; UseDefaultCredentials=false then leaves it. */
    with_credential(r, "alice", "p", "D");
    ASSERT_OK(apm_http_request_set_use_default_credentials(r, 0));
    ASSERT_OK(apm_http_request_get_use_default_credentials(r, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_http_request_set_credential(r, NULL));
    ASSERT_OK(apm_http_request_get_pre_authenticate(r, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_http_request_set_pre_authenticate(r, 1));
    ASSERT_OK(apm_http_request_get_pre_authenticate(r, &v));
    ASSERT_EQ(v, 1);
    ASSERT_STATUS(apm_http_request_get_pre_authenticate(r, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_http_request_set_pre_authenticate(NULL, 1), APM_E_ARGUMENT_NULL);
    /* A server's user list is no client credential. */
    hx_ntlm_users_file();
    ASSERT_OK(apm_credential_create_from_file(getenv("NTLM_USER_FILE"), &users));
    ASSERT_STATUS(apm_http_request_set_credential(r, users), APM_E_ARGUMENT);
    ASSERT_OK(apm_credential_close(users));
    ASSERT_STATUS(apm_http_request_set_credential(r, (apm_credential *)r), APM_E_ARGUMENT);
    ASSERT_OK(apm_last_error_clear());
    ASSERT_OK(apm_http_request_close(r));
}

/* ---- Negotiate: Kerberos on the loopback realm ----------------------------------------------- */

/* Negotiate settles on Kerberos (SPN HTTP/localhost from the realm's keytab); `tls`: bound to the
 * channel, which the acceptor checks. `use_default`: the ticket cache that kinit filled. */
static void kerberos_get(int tls, int use_default)
{
    auth_server s;
    apm_http_request *r;
    char *t;
    hx_realm_start();
    auth_start(&s, tls, "negotiate", NULL);
    r = auth_request(&s, "/auth");
    if (use_default) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "echo 'Passw0rd!' | kinit alice@APMNET.TEST >/dev/null 2>&1");
        ASSERT_EQ(system(cmd), 0);
        ASSERT_OK(apm_http_request_set_use_default_credentials(r, 1));
    } else {
        with_credential(r, "alice@APMNET.TEST", "Passw0rd!", NULL);
    }
    t = get_ok(r);
    ASSERT_STR_EQ(hx_field(t, "user"), "alice@APMNET.TEST");
    ASSERT_STR_EQ(hx_field(t, "protocol"), "kerberos");
    free(t);
    ASSERT_EQ(count_of(&s, "connections"), 1);
    ASSERT_OK(apm_runtime_shutdown());
    hx_realm_stop();
    if (tls)
        hx_pki_remove();
}

TEST(auth_negotiate_kerberos_over_http) { kerberos_get(0, 0); }
TEST(auth_negotiate_kerberos_over_https_bound_to_the_channel) { kerberos_get(1, 0); }
TEST(auth_use_default_credentials_takes_the_ticket_cache) { kerberos_get(0, 1); }

/* The acceptor demands another channel's binding: MIT's acceptor refuses a client whose
 * authenticator carries a different one (it would let a client without any through): so our
 * client binds the Kerberos token to its channel. */
TEST(auth_negotiate_kerberos_bound_to_another_channel_is_refused)
{
    auth_server s;
    apm_http_request *r;
    hx_realm_start();
    auth_start(&s, 1, "negotiate", OTHER_CHANNEL);
    r = auth_request(&s, "/auth");
    with_credential(r, "alice@APMNET.TEST", "Passw0rd!", NULL);
    get_refused(r, 401, m401, "refused: ");
    ASSERT_OK(apm_runtime_shutdown());
    hx_realm_stop();
    hx_pki_remove();
}

/* Begin/EndGetResponse with Kerberos: its GSSAPI steps run on the blocking pool. */
TEST(auth_negotiate_kerberos_begin_get_response)
{
    auth_server s;
    apm_http_request *r;
    apm_http_response *resp = NULL;
    apm_async_result *ar = NULL;
    hx_event ev;
    char *t;
    hx_realm_start();
    auth_start(&s, 1, "negotiate", NULL);
    r = auth_request(&s, "/auth");
    with_credential(r, "alice@APMNET.TEST", "Passw0rd!", NULL);
    hx_event_init(&ev);
    ASSERT_OK(apm_http_request_begin_get_response(r, on_done, &ev, &ar));
    ASSERT_EVENT(&ev, 1);
    ASSERT_OK(apm_http_request_end_get_response(r, ar, &resp));
    hx_event_destroy(&ev);
    t = hx_response_body(resp, NULL);
    ASSERT_STR_EQ(hx_field(t, "protocol"), "kerberos");
    free(t);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    ASSERT_OK(apm_runtime_shutdown());
    hx_realm_stop();
    hx_pki_remove();
}

/* ---- a proxy that wants NTLM ----------------------------------------------------------------- */

TEST(auth_proxy_ntlm_answers_407_for_http_and_connect)
{
    static const char *const proxy_args[] = {"--ntlm", NULL};
    hx_peer proxy, plain_peer, tls_peer;
    const char *plain_args[] = {NULL};
    const char *tls_args[] = {"--cert", NULL, "--key", NULL, NULL};
    int proxy_port, plain_port, tls_port;
    char proxy_uri[64], uri[128], line[128];
    apm_http_request *r = NULL;
    char *t;
    no_foreign_kdc();
    proxy_port = pyspnego_start(&proxy, "http_proxy_peer.py", proxy_args);
    snprintf(proxy_uri, sizeof proxy_uri, "http://127.0.0.1:%d", proxy_port);
    hx_peer_start(&plain_peer, "http_peer.py", plain_args);
    hx_peer_read_line(&plain_peer, line, sizeof line);
    ASSERT_EQ(sscanf(line, "PORT %d", &plain_port), 1);
    hx_pki_make();
    tls_args[1] = hx_pki_file("server.pem");
    tls_args[3] = hx_pki_file("server.key");
    hx_peer_start(&tls_peer, "http_peer.py", tls_args);
    hx_peer_read_line(&tls_peer, line, sizeof line);
    ASSERT_EQ(sscanf(line, "PORT %d", &tls_port), 1);
    for (int tls = 0; tls < 2; tls++) {
        snprintf(uri, sizeof uri, "%s://localhost:%d/echo", tls ? "https" : "http", tls ? tls_port : plain_port);
        /* Without proxy credentials the 407 is the answer. */
        ASSERT_OK(apm_http_request_create(uri, &r));
        ASSERT_OK(apm_http_request_set_trusted_ca_file(r, hx_pki_file("ca.pem")));
        ASSERT_OK(apm_http_request_set_proxy(r, proxy_uri));
        get_refused(r, 407, "The remote server returned an error: (407) Proxy Authentication Required.", "NTLM, please");
        ASSERT_OK(apm_http_request_create(uri, &r));
        ASSERT_OK(apm_http_request_set_trusted_ca_file(r, hx_pki_file("ca.pem")));
        ASSERT_OK(apm_http_request_set_proxy(r, proxy_uri));
        ASSERT_OK(apm_http_request_set_proxy_credentials(r, "TESTDOM\\alice", "Passw0rd!"));
        t = get_ok(r);
        ASSERT_STR_EQ(hx_field(t, "method"), "GET");
        free(t);
    }
    hx_pki_remove();
}

/* ---- PreAuthenticate ------------------------------------------------------------------------- */

static int basic_requests(int port)
{
    apm_http_request *r = NULL;
    char uri[96], *t;
    int v;
    snprintf(uri, sizeof uri, "http://localhost:%d/count", port);
    ASSERT_OK(apm_http_request_create(uri, &r));
    ASSERT_OK(apm_http_request_set_proxy(r, ""));
    t = get_ok(r);
    v = atoi(hx_field(t, "complete"));
    free(t);
    return v;
}

/* Basic credentials a server accepted go up front with later requests under the same prefix
 * (one request instead of two); without PreAuthenticate they wait for the 401. */
TEST(auth_pre_authenticate_sends_basic_up_front)
{
    hx_peer peer;
    const char *args[] = {NULL};
    char line[128], uri[96], *t;
    int port, before;
    apm_http_request *r = NULL;
    hx_peer_start(&peer, "http_peer.py", args);
    hx_peer_read_line(&peer, line, sizeof line);
    ASSERT_EQ(sscanf(line, "PORT %d", &port), 1);
    snprintf(uri, sizeof uri, "http://localhost:%d/basic", port);
    for (int i = 0; i < 3; i++) {
        before = basic_requests(port);
        ASSERT_OK(apm_http_request_create(uri, &r));
        ASSERT_OK(apm_http_request_set_proxy(r, ""));
        ASSERT_OK(apm_http_request_set_credentials(r, "user", "pass"));
        ASSERT_OK(apm_http_request_set_pre_authenticate(r, i < 2));
        t = get_ok(r);
        ASSERT_STR_EQ(t, "welcome");
        free(t);
        /* The first learns (401, then 200); the second goes up front; the third, without
         * PreAuthenticate, waits for the challenge again. The count request itself adds one. */
        ASSERT_EQ(basic_requests(port) - before, i == 1 ? 2 : 3);
    }
}

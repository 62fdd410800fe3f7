/*
 * ffi-tests/ssl.c - SslStream on OpenSSL: client against Python's ssl server and
 * `openssl s_server`, server against Python's ssl client and `openssl s_client`
 * (TLS 1.2 and 1.3, 16 MiB each way checked by SHA-256), SslStream over
 * SslStream and over a stream defined in C (a socketpair behind callbacks),
 * channel bindings against Python's, certificate validation failures (expired,
 * self-signed, wrong host) and the validation callback, client certificates,
 * the selection callback, the peer closing mid-handshake, a second BeginWrite
 * while one is pending, calls before authentication, close with a read
 * pending, shutdown, leaveInnerStreamOpen, certificate loading, session
 * resumption (against Python, openssl s_server and our own server; the cache
 * key, AllowTlsResume, resumed sessions validated as full handshakes).
 *
 * Certificates are made at run time by peers/make_pki.py in a temporary
 * directory; nothing secret is committed.
 */
#include "harness.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024u * 1024u)

static const char noauth_message[] =
    "This operation is only allowed using a successfully authenticated context.";
static const char nested_write_message[] =
    " The BeginWrite method cannot be called when another write operation is pending.";

/* ---- the temporary PKI (harness.c) -------------------------------------- */

#define pki_make hx_pki_make
#define pki_remove hx_pki_remove
#define pf hx_pki_file
#define load_cert hx_pki_load

/* ---- streams ------------------------------------------------------------ */

/* An SslStream over a NetworkStream to 127.0.0.1:port; both owned. */
static apm_stream *ssl_client_to(int port)
{
    apm_socket *s = hx_apm_tcp4();
    apm_stream *ns = NULL, *ssl = NULL;
    ASSERT_OK(apm_socket_connect(s, "127.0.0.1", port));
    ASSERT_OK(apm_network_stream_create(s, 1, &ns));
    ASSERT_OK(apm_ssl_stream_create(ns, 0, &ssl));
    return ssl;
}

/* A client trusting the test CA. */
static apm_stream *trusting_client_to(int port)
{
    apm_stream *ssl = ssl_client_to(port);
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(ssl, hx_pki_file("ca.pem")));
    return ssl;
}

/* Two SslStreams over a connected pair of network streams (not authenticated). */
static void ssl_pair(apm_stream **client, apm_stream **server)
{
    apm_stream *a = NULL, *b = NULL;
    hx_stream_pair(&a, &b);
    ASSERT_OK(apm_ssl_stream_create(a, 0, client));
    ASSERT_OK(apm_ssl_stream_create(b, 0, server));
}

typedef struct server_auth {
    apm_stream *s;
    apm_certificate *cert;
    int32_t require;
    int32_t protocols;
    apm_status st;
} server_auth;

static void *server_auth_main(void *arg)
{
    server_auth *a = (server_auth *)arg;
    a->st = apm_ssl_stream_authenticate_as_server(a->s, a->cert, a->require, a->protocols, 0);
    return NULL;
}

/* Authenticates both ends of an ssl_pair (server in a thread, client here). */
static void authenticate_pair(apm_stream *client, apm_stream *server, apm_certificate *server_cert,
                              int32_t protocols)
{
    server_auth a;
    pthread_t t;
    memset(&a, 0, sizeof a);
    a.s = server;
    a.cert = server_cert;
    a.protocols = protocols;
    t = hx_thread_start(server_auth_main, &a);
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(client, hx_pki_file("ca.pem")));
    ASSERT_OK(apm_ssl_stream_authenticate_as_client(client, "localhost", NULL, protocols, 0));
    hx_thread_join(t);
    ASSERT_OK(a.st);
}

/* ---- data movers ---------------------------------------------------------- */

/* A BeginWrite chain in the .NET idiom: a callback that completed
 * synchronously leaves the next Begin to the loop that called Begin. */
typedef struct writer {
    apm_stream *s;
    const uint8_t *data;
    size_t total, chunk, off;
    apm_async_result *sync_done;
    apm_status st;
    hx_event done;
} writer;

static void writer_loop(writer *w);

static int writer_end(writer *w, apm_async_result *r)
{
    apm_status st = apm_stream_end_write(w->s, r);
    if (st != APM_OK) {
        w->st = st;
        hx_event_signal(&w->done);
        return 0;
    }
    return 1;
}

static void writer_cb(apm_async_result *r, void *state)
{
    writer *w = (writer *)state;
    int32_t sync = 0;
    ASSERT_OK(apm_async_result_completed_synchronously(r, &sync));
    if (sync) {
        w->sync_done = r;
        return;
    }
    if (writer_end(w, r))
        writer_loop(w);
}

static void writer_loop(writer *w)
{
    while (w->off < w->total) {
        apm_async_result *r = NULL;
        size_t n = w->total - w->off < w->chunk ? w->total - w->off : w->chunk;
        size_t at = w->off;
        apm_status st;
        w->sync_done = NULL;
        w->off += n;
        st = apm_stream_begin_write(w->s, w->data, w->total, at, n, writer_cb, w, &r);
        if (st != APM_OK) {
            w->st = st;
            hx_event_signal(&w->done);
            return;
        }
        if (w->sync_done == NULL)
            return; /* the callback goes on */
        if (!writer_end(w, w->sync_done))
            return;
    }
    hx_event_signal(&w->done);
}

static void writer_start(writer *w, apm_stream *s, const uint8_t *data, size_t total, size_t chunk)
{
    memset(w, 0, sizeof *w);
    hx_event_init(&w->done);
    w->s = s;
    w->data = data;
    w->total = total;
    w->chunk = chunk;
    writer_loop(w);
}

static void writer_wait(writer *w)
{
    ASSERT_EVENT(&w->done, 1);
    ASSERT_OK(w->st);
    ASSERT_UEQ(w->off, w->total);
    hx_event_destroy(&w->done);
}

/* Reads until `want` bytes or end of stream (sync), hashing. */
static size_t read_hash(apm_stream *s, size_t want, char hex[65])
{
    uint8_t *buf = hx_xmalloc(MIB);
    hx_sha256 sha;
    size_t got = 0;
    hx_sha256_init(&sha);
    while (got < want) {
        size_t n = 0;
        size_t ask = want - got < MIB ? want - got : MIB;
        ASSERT_OK(apm_stream_read(s, buf, MIB, 0, ask, &n));
        if (n == 0)
            break;
        hx_sha256_update(&sha, buf, n);
        got += n;
    }
    hx_sha256_hex(&sha, hex);
    free(buf);
    return got;
}

typedef struct reader_thread {
    apm_stream *s;
    size_t want, got;
    char hex[65];
} reader_thread;

static void *reader_main(void *arg)
{
    reader_thread *r = (reader_thread *)arg;
    r->got = read_hash(r->s, r->want, r->hex);
    return NULL;
}

static uint8_t *pattern(size_t len, uint64_t seed, char hex[65])
{
    uint8_t *data = hx_xmalloc(len);
    hx_sha256 sha;
    hx_pattern_fill(data, len, seed, 0);
    hx_sha256_init(&sha);
    hx_sha256_update(&sha, data, len);
    hx_sha256_hex(&sha, hex);
    return data;
}

static void sha256_hex_of(const void *data, size_t len, char hex[65])
{
    hx_sha256 sha;
    hx_sha256_init(&sha);
    hx_sha256_update(&sha, data, len);
    hx_sha256_hex(&sha, hex);
}

/* ---- peers -------------------------------------------------------------- */

/* Reads a "WORD count hex" line of the peer. */
static void expect_count_hash(hx_peer *p, const char *word, size_t *count, char hex[65])
{
    char line[512], w[16];
    unsigned long long c = 0;
    hx_peer_read_line(p, line, sizeof line);
    if (sscanf(line, "%15s %llu %64s", w, &c, hex) != 3 || strcmp(w, word) != 0)
        hx_fail(__FILE__, __LINE__, "expected \"%s N HASH\" from the peer, got \"%s\"", word, line);
    *count = (size_t)c;
}

static int read_port(hx_peer *p)
{
    char line[128];
    int port = 0;
    hx_peer_read_line(p, line, sizeof line);
    if (sscanf(line, "PORT %d", &port) != 1)
        hx_fail(__FILE__, __LINE__, "expected PORT from the peer, got \"%s\"", line);
    return port;
}

typedef struct hs_line {
    char version[32];
    char unique[260];
    char alpn[64];
    char peer_sha[80];
} hs_line;

static void read_hs(hx_peer *p, hs_line *hs)
{
    char line[700];
    hx_peer_read_line(p, line, sizeof line);
    if (sscanf(line, "HS %31s %259s %63s %79s", hs->version, hs->unique, hs->alpn, hs->peer_sha) != 4)
        hx_fail(__FILE__, __LINE__, "expected HS from the peer, got \"%s\"", line);
}

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

/* The tls-unique token of a stream, as hex. */
static void unique_hex(apm_stream *s, char *out)
{
    apm_transport_context *ctx = NULL;
    uint8_t tok[128];
    size_t n = 0;
    ASSERT_OK(apm_ssl_stream_get_transport_context(s, &ctx));
    ASSERT_OK(apm_transport_context_get_channel_binding_token(ctx, APM_CHANNEL_BINDING_KIND_UNIQUE,
                                                              tok, sizeof tok, &n));
    ASSERT_GT(n, 0);
    ASSERT_LE(n, sizeof tok);
    hex_of(tok, n, out);
    ASSERT_OK(apm_transport_context_close(ctx));
}

/* Checks tls-server-end-point against SHA-256 of the server certificate's DER,
 * and the full .NET layout of both bindings. */
static void check_endpoint_binding(apm_stream *s, const char *server_cert_file)
{
    apm_certificate *cert = NULL;
    apm_transport_context *ctx = NULL;
    uint8_t der[4096], binding[256];
    size_t der_len = 0, n = 0;
    char want[65], got[65];
    uint32_t fields[8];

    ASSERT_OK(apm_certificate_load_pem_file(server_cert_file, NULL, &cert));
    ASSERT_OK(apm_certificate_get_raw_data(cert, der, sizeof der, &der_len));
    ASSERT_LE(der_len, sizeof der);
    sha256_hex_of(der, der_len, want);
    ASSERT_OK(apm_certificate_close(cert));

    ASSERT_OK(apm_ssl_stream_get_transport_context(s, &ctx));
    ASSERT_OK(apm_transport_context_get_channel_binding(ctx, APM_CHANNEL_BINDING_KIND_ENDPOINT,
                                                        binding, sizeof binding, &n));
    ASSERT_UEQ(n, 32 + strlen("tls-server-end-point:") + 32);
    memcpy(fields, binding, sizeof fields);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(fields[i], 0);
    ASSERT_EQ(fields[6], strlen("tls-server-end-point:") + 32);
    ASSERT_EQ(fields[7], 32);
    ASSERT_MEM_EQ(binding + 32, "tls-server-end-point:", strlen("tls-server-end-point:"));
    hex_of(binding + 32 + strlen("tls-server-end-point:"), 32, got);
    ASSERT_STR_EQ(got, want);

    ASSERT_OK(apm_transport_context_get_channel_binding(ctx, APM_CHANNEL_BINDING_KIND_UNIQUE,
                                                        binding, sizeof binding, &n));
    ASSERT_GT(n, 32 + strlen("tls-unique:"));
    ASSERT_MEM_EQ(binding + 32, "tls-unique:", strlen("tls-unique:"));
    /* An unknown kind is .NET's null. */
    n = 99;
    ASSERT_OK(apm_transport_context_get_channel_binding(ctx, 0, binding, sizeof binding, &n));
    ASSERT_UEQ(n, 0);
    ASSERT_OK(apm_transport_context_close(ctx));
}

/* ---- client against real servers ---------------------------------------- */

static void client_vs_python(const char *tls, int32_t protocols, int32_t expect_protocol,
                             size_t each_way)
{
    const char *args[16];
    hx_peer p;
    hs_line hs;
    apm_stream *ssl;
    int32_t v = -1;
    char sent_hex[65], peer_hex[65], got_hex[65], mine[260];
    size_t count = 0, got;
    uint8_t *data;
    writer w;
    apm_certificate *remote = NULL;
    char subject[256], thumb[64];
    size_t len = 0;
    uint8_t alpn[16];
    char sizes[32];
    const char *alpn_list[2] = {"h2", "http/1.1"};

    hx_pki_make();
    snprintf(sizes, sizeof sizes, "%zu", each_way);
    args[0] = "server"; args[1] = "--cert"; args[2] = hx_pki_file("server.pem");
    args[3] = "--key"; args[4] = hx_pki_file("server.key"); args[5] = "--tls"; args[6] = tls;
    args[7] = "--recv"; args[8] = sizes; args[9] = "--send"; args[10] = sizes;
    args[11] = "--alpn"; args[12] = "http/1.1,h2"; args[13] = NULL;
    hx_peer_start(&p, "tls_peer.py", args);
    ssl = trusting_client_to(read_port(&p));
    ASSERT_OK(apm_ssl_stream_set_application_protocols(ssl, alpn_list, 2));
    ASSERT_OK(apm_ssl_stream_authenticate_as_client(ssl, "localhost", NULL, protocols, 0));
    read_hs(&p, &hs);

    ASSERT_OK(apm_ssl_stream_is_authenticated(ssl, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_ssl_stream_is_server(ssl, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_ssl_stream_is_encrypted(ssl, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_ssl_stream_is_signed(ssl, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_ssl_stream_is_mutually_authenticated(ssl, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_ssl_stream_get_ssl_protocol(ssl, &v));
    ASSERT_EQ(v, expect_protocol);
    ASSERT_OK(apm_ssl_stream_get_cipher_suite_name(ssl, subject, sizeof subject, &len));
    ASSERT_STR_STARTS_WITH(subject, "TLS_");
    ASSERT_OK(apm_ssl_stream_get_cipher_suite(ssl, &v));
    ASSERT_GT(v, 0);
    /* The server prefers its own order: http/1.1 first. */
    ASSERT_OK(apm_ssl_stream_get_application_protocol(ssl, alpn, sizeof alpn, &len));
    ASSERT_UEQ(len, 8);
    ASSERT_MEM_EQ(alpn, "http/1.1", 8);
    ASSERT_STR_EQ(hs.alpn, "http/1.1");
    ASSERT_OK(apm_ssl_stream_get_target_host_name(ssl, subject, sizeof subject, &len));
    ASSERT_STR_EQ(subject, "localhost");

    ASSERT_OK(apm_ssl_stream_get_remote_certificate(ssl, &remote));
    ASSERT_NOT_NULL(remote);
    ASSERT_OK(apm_certificate_get_subject(remote, subject, sizeof subject, &len));
    ASSERT_STR_EQ(subject, "O=apmnet, CN=localhost");
    ASSERT_OK(apm_certificate_get_issuer(remote, subject, sizeof subject, &len));
    ASSERT_STR_EQ(subject, "CN=apmnet test CA");
    ASSERT_OK(apm_certificate_get_thumbprint(remote, thumb, sizeof thumb, &len));
    ASSERT_UEQ(len, 40);
    ASSERT_OK(apm_certificate_close(remote));
    ASSERT_OK(apm_ssl_stream_get_local_certificate(ssl, &remote));
    ASSERT_NULL(remote);

    /* tls-unique is the same on both ends. */
    unique_hex(ssl, mine);
    ASSERT_STR_EQ(mine, hs.unique);
    check_endpoint_binding(ssl, hx_pki_file("server.pem"));

    /* Our BeginWrite chain up, the peer's bytes down. */
    data = pattern(each_way, 7, sent_hex);
    writer_start(&w, ssl, data, each_way, 64 * 1024);
    writer_wait(&w);
    expect_count_hash(&p, "RECV", &count, peer_hex);
    ASSERT_UEQ(count, each_way);
    ASSERT_STR_EQ(peer_hex, sent_hex);
    got = read_hash(ssl, each_way, got_hex);
    ASSERT_UEQ(got, each_way);
    expect_count_hash(&p, "SENT", &count, peer_hex);
    ASSERT_STR_EQ(got_hex, peer_hex);

    ASSERT_OK(apm_stream_close(ssl));
    ASSERT_EQ(hx_peer_wait(&p), 0);
    ASSERT_OK(apm_runtime_shutdown());
    free(data);
    hx_pki_remove();
}

TEST(client_vs_python_tls13_16mib)
{
    client_vs_python("1.3", APM_SSL_PROTOCOLS_NONE, APM_SSL_PROTOCOLS_TLS13, 16 * MIB);
}

TEST(client_vs_python_tls12_16mib)
{
    client_vs_python("1.2", APM_SSL_PROTOCOLS_TLS12 | APM_SSL_PROTOCOLS_TLS13,
                     APM_SSL_PROTOCOLS_TLS12, 16 * MIB);
}

/* GET /data.bin from `openssl s_server -WWW` (it closes after the response): the body must be
 * `size` bytes hashing to `want_hex`. `all` holds the whole response (`cap` bytes at most). */
static void get_data_bin(apm_stream *ssl, uint8_t *all, size_t cap, unsigned long long size,
                         const char *want_hex)
{
    static const char request[] = "GET /data.bin HTTP/1.0\r\n\r\n";
    size_t got = 0, n = 0, body = 0;
    char got_hex[65];
    ASSERT_OK(apm_stream_write(ssl, (const uint8_t *)request, sizeof request - 1, 0,
                               sizeof request - 1));
    for (;;) {
        ASSERT_OK(apm_stream_read(ssl, all, cap, got, cap - got, &n));
        if (n == 0)
            break;
        got += n;
        ASSERT_LT(got, cap);
    }
    for (size_t i = 0; i + 4 <= got; i++) {
        if (memcmp(all + i, "\r\n\r\n", 4) == 0) {
            body = i + 4;
            break;
        }
    }
    ASSERT_GT(body, 0);
    ASSERT_UEQ(got - body, size);
    sha256_hex_of(all + body, got - body, got_hex);
    ASSERT_STR_EQ(got_hex, want_hex);
}

static void client_vs_s_server(const char *tls, int32_t protocols, int32_t expect_protocol)
{
    const char *args[12];
    hx_peer p;
    apm_stream *ssl;
    char sha_line[256], want_hex[65];
    unsigned long long size = 0;
    uint8_t *all = hx_xmalloc(17 * MIB + 4096);
    int32_t v = 0;
    char sizes[32];

    hx_pki_make();
    snprintf(sizes, sizeof sizes, "%u", 16 * MIB);
    args[0] = "s_server"; args[1] = "--cert"; args[2] = hx_pki_file("server-chain.pem");
    args[3] = "--key"; args[4] = hx_pki_file("server.key"); args[5] = "--tls"; args[6] = tls;
    args[7] = "--size"; args[8] = sizes; args[9] = NULL;
    hx_peer_start(&p, "openssl_peer.py", args);
    ssl = trusting_client_to(read_port(&p));
    hx_peer_read_line(&p, sha_line, sizeof sha_line);
    ASSERT_EQ(sscanf(sha_line, "SHA %llu %64s", &size, want_hex), 2);
    ASSERT_OK(apm_ssl_stream_authenticate_as_client(ssl, "localhost", NULL, protocols, 0));
    ASSERT_OK(apm_ssl_stream_get_ssl_protocol(ssl, &v));
    ASSERT_EQ(v, expect_protocol);
    get_data_bin(ssl, all, 17 * MIB + 4096, size, want_hex);
    ASSERT_OK(apm_stream_close(ssl));
    hx_peer_wait(&p);
    ASSERT_OK(apm_runtime_shutdown());
    free(all);
    hx_pki_remove();
}

TEST(client_vs_openssl_s_server_tls13)
{
    client_vs_s_server("1.3", APM_SSL_PROTOCOLS_NONE, APM_SSL_PROTOCOLS_TLS13);
}

TEST(client_vs_openssl_s_server_tls12)
{
    client_vs_s_server("1.2", APM_SSL_PROTOCOLS_NONE, APM_SSL_PROTOCOLS_TLS12);
}

/* ---- server against real clients ---------------------------------------- */

static apm_stream *accept_ssl(apm_socket *listener)
{
    apm_socket *s = NULL;
    apm_stream *ns = NULL, *ssl = NULL;
    ASSERT_OK(apm_socket_accept(listener, &s));
    ASSERT_OK(apm_network_stream_create(s, 1, &ns));
    ASSERT_OK(apm_ssl_stream_create(ns, 0, &ssl));
    return ssl;
}

static void server_vs_python(const char *tls, int32_t expect_protocol, size_t each_way)
{
    const char *args[16];
    char portbuf[16], sizes[32], mine[260], got_hex[65], peer_hex[65], sent_hex[65];
    int port = 0;
    apm_socket *l = hx_apm_listener(&port);
    hx_peer p;
    hs_line hs;
    apm_stream *ssl;
    apm_certificate *cert;
    int32_t v = 0;
    size_t got, count = 0;
    uint8_t *data;
    writer w;

    hx_pki_make();
    cert = load_cert("server");
    snprintf(portbuf, sizeof portbuf, "%d", port);
    snprintf(sizes, sizeof sizes, "%zu", each_way);
    args[0] = "client"; args[1] = "--port"; args[2] = portbuf; args[3] = "--ca"; args[4] = hx_pki_file("ca.pem");
    args[5] = "--tls"; args[6] = tls; args[7] = "--send"; args[8] = sizes; args[9] = "--recv";
    args[10] = sizes; args[11] = NULL;
    hx_peer_start(&p, "tls_peer.py", args);
    ssl = accept_ssl(l);
    ASSERT_OK(apm_ssl_stream_authenticate_as_server(ssl, cert, 0, APM_SSL_PROTOCOLS_NONE, 0));
    ASSERT_OK(apm_certificate_close(cert)); /* the stream keeps its own reference */
    read_hs(&p, &hs);
    ASSERT_OK(apm_ssl_stream_is_server(ssl, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_ssl_stream_get_ssl_protocol(ssl, &v));
    ASSERT_EQ(v, expect_protocol);
    unique_hex(ssl, mine);
    ASSERT_STR_EQ(mine, hs.unique);
    check_endpoint_binding(ssl, hx_pki_file("server.pem"));
    /* The SNI name the client sent. */
    ASSERT_OK(apm_ssl_stream_get_target_host_name(ssl, mine, sizeof mine, &got));
    ASSERT_STR_EQ(mine, "localhost");

    got = read_hash(ssl, each_way, got_hex);
    ASSERT_UEQ(got, each_way);
    expect_count_hash(&p, "SENT", &count, peer_hex);
    ASSERT_STR_EQ(got_hex, peer_hex);
    data = pattern(each_way, 9, sent_hex);
    writer_start(&w, ssl, data, each_way, 16 * 1024);
    writer_wait(&w);
    expect_count_hash(&p, "RECV", &count, peer_hex);
    ASSERT_UEQ(count, each_way);
    ASSERT_STR_EQ(peer_hex, sent_hex);
    ASSERT_OK(apm_stream_close(ssl));
    ASSERT_EQ(hx_peer_wait(&p), 0);
    ASSERT_OK(apm_socket_close(l));
    ASSERT_OK(apm_runtime_shutdown());
    free(data);
    hx_pki_remove();
}

TEST(server_vs_python_tls13_16mib)
{
    server_vs_python("1.3", APM_SSL_PROTOCOLS_TLS13, 16 * MIB);
}

TEST(server_vs_python_tls12_16mib)
{
    server_vs_python("1.2", APM_SSL_PROTOCOLS_TLS12, 16 * MIB);
}

static void server_vs_s_client(const char *tls, int32_t expect_protocol)
{
    const char *args[12];
    char portbuf[16], sizes[32], got_hex[65], peer_hex[65], sent_hex[65], line[128];
    int port = 0;
    apm_socket *l = hx_apm_listener(&port);
    hx_peer p;
    apm_stream *ssl;
    apm_certificate *cert;
    int32_t v = 0;
    size_t got, count = 0;
    uint8_t *data;
    writer w;

    hx_pki_make();
    cert = load_cert("server");
    snprintf(portbuf, sizeof portbuf, "%d", port);
    snprintf(sizes, sizeof sizes, "%u", 16 * MIB);
    args[0] = "s_client"; args[1] = "--port"; args[2] = portbuf; args[3] = "--ca"; args[4] = hx_pki_file("ca.pem");
    args[5] = "--tls"; args[6] = tls; args[7] = "--send"; args[8] = sizes; args[9] = NULL;
    hx_peer_start(&p, "openssl_peer.py", args);
    ssl = accept_ssl(l);
    ASSERT_OK(apm_ssl_stream_authenticate_as_server(ssl, cert, 0, APM_SSL_PROTOCOLS_NONE, 0));
    ASSERT_OK(apm_ssl_stream_get_ssl_protocol(ssl, &v));
    ASSERT_EQ(v, expect_protocol);
    expect_count_hash(&p, "SENT", &count, peer_hex);
    got = read_hash(ssl, 16 * MIB, got_hex);
    ASSERT_UEQ(got, 16 * MIB);
    ASSERT_STR_EQ(got_hex, peer_hex);
    data = pattern(16 * MIB, 11, sent_hex);
    writer_start(&w, ssl, data, 16 * MIB, 100 * 1000);
    writer_wait(&w);
    ASSERT_OK(apm_ssl_stream_shutdown(ssl));
    ASSERT_OK(apm_stream_close(ssl));
    expect_count_hash(&p, "RECV", &count, peer_hex);
    ASSERT_UEQ(count, 16 * MIB);
    ASSERT_STR_EQ(peer_hex, sent_hex);
    hx_peer_read_line(&p, line, sizeof line);
    ASSERT_STR_EQ(line, "EXIT 0");
    hx_peer_wait(&p);
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_socket_close(l));
    ASSERT_OK(apm_runtime_shutdown());
    free(data);
    hx_pki_remove();
}

TEST(server_vs_openssl_s_client_tls13)
{
    server_vs_s_client("1.3", APM_SSL_PROTOCOLS_TLS13);
}

TEST(server_vs_openssl_s_client_tls12)
{
    server_vs_s_client("1.2", APM_SSL_PROTOCOLS_TLS12);
}

/* ---- both ends ours: concurrency, layering -------------------------------- */

/* Both directions at once on both ends: a BeginWrite chain and a reader thread
 * per end. */
static void exchange(apm_stream *a, apm_stream *b, size_t each_way, size_t chunk)
{
    char ha[65], hb[65];
    uint8_t *da = pattern(each_way, 21, ha);
    uint8_t *db = pattern(each_way, 22, hb);
    reader_thread ra, rb;
    pthread_t ta, tb;
    writer wa, wb;
    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    ra.s = a;
    ra.want = each_way;
    rb.s = b;
    rb.want = each_way;
    ta = hx_thread_start(reader_main, &ra);
    tb = hx_thread_start(reader_main, &rb);
    writer_start(&wa, a, da, each_way, chunk);
    writer_start(&wb, b, db, each_way, chunk + 1);
    writer_wait(&wa);
    writer_wait(&wb);
    hx_thread_join(ta);
    hx_thread_join(tb);
    ASSERT_UEQ(ra.got, each_way);
    ASSERT_UEQ(rb.got, each_way);
    ASSERT_STR_EQ(ra.hex, hb);
    ASSERT_STR_EQ(rb.hex, ha);
    free(da);
    free(db);
}

TEST(ssl_pair_reads_and_writes_concurrently)
{
    apm_stream *c = NULL, *s = NULL;
    apm_certificate *cert;
    char cu[260], su[260];
    hx_pki_make();
    cert = load_cert("server");
    ssl_pair(&c, &s);
    authenticate_pair(c, s, cert, APM_SSL_PROTOCOLS_NONE);
    unique_hex(c, cu);
    unique_hex(s, su);
    ASSERT_STR_EQ(cu, su);
    exchange(c, s, 16 * MIB, 37 * 1000);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    hx_pki_remove();
}

TEST(ssl_over_ssl)
{
    apm_stream *c = NULL, *s = NULL, *oc = NULL, *os = NULL;
    apm_certificate *cert;
    int32_t v = 0;
    hx_pki_make();
    cert = load_cert("server");
    ssl_pair(&c, &s);
    authenticate_pair(c, s, cert, APM_SSL_PROTOCOLS_TLS12);
    ASSERT_OK(apm_ssl_stream_create(c, 0, &oc));
    ASSERT_OK(apm_ssl_stream_create(s, 0, &os));
    authenticate_pair(oc, os, cert, APM_SSL_PROTOCOLS_TLS13);
    ASSERT_OK(apm_ssl_stream_get_ssl_protocol(oc, &v));
    ASSERT_EQ(v, APM_SSL_PROTOCOLS_TLS13);
    ASSERT_OK(apm_ssl_stream_get_ssl_protocol(c, &v));
    ASSERT_EQ(v, APM_SSL_PROTOCOLS_TLS12);
    exchange(oc, os, 4 * MIB, 50 * 1000);
    /* Closing the outer streams closes (and releases) the inner ones. */
    ASSERT_OK(apm_stream_close(oc));
    ASSERT_OK(apm_stream_close(os));
    ASSERT_STATUS(apm_ssl_stream_is_authenticated(c, &v), APM_E_OBJECT_DISPOSED);
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    hx_pki_remove();
}

/* A stream defined in C: one end of a socketpair, each operation done by a
 * short-lived thread that calls apm_custom_stream_complete (so completions come
 * from a foreign thread), except small writes, completed inline. */
typedef struct cstream {
    int fd;
    atomic_int closed;
    atomic_int ops;
} cstream;

typedef struct cjob {
    cstream *cs;
    uint8_t *rbuf;
    const uint8_t *wbuf;
    size_t count;
    uint64_t token;
    apm_custom_complete_fn complete;
} cjob;

static void *cjob_main(void *arg)
{
    cjob *j = (cjob *)arg;
    ssize_t n;
    if (j->rbuf != NULL) {
        do {
            n = recv(j->cs->fd, j->rbuf, j->count, 0);
        } while (n < 0 && errno == EINTR);
    } else {
        /* A partial write on purpose: the library asks for the rest. */
        size_t part = j->count > 1000 ? j->count / 2 : j->count;
        do {
            n = send(j->cs->fd, j->wbuf, part, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
    }
    ASSERT_OK(j->complete(j->token, n < 0 ? APM_E_IO : APM_OK, n < 0 ? 0 : (size_t)n));
    atomic_fetch_sub(&j->cs->ops, 1);
    free(j);
    return NULL;
}

static apm_status cs_start(cstream *cs, uint8_t *rbuf, const uint8_t *wbuf, size_t count,
                           apm_custom_complete_fn complete, uint64_t token)
{
    cjob *j = hx_xmalloc(sizeof *j);
    pthread_t t;
    pthread_attr_t attr;
    j->cs = cs;
    j->rbuf = rbuf;
    j->wbuf = wbuf;
    j->count = count;
    j->token = token;
    j->complete = complete;
    atomic_fetch_add(&cs->ops, 1);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, cjob_main, j) != 0)
        hx_fail(__FILE__, __LINE__, "pthread_create failed");
    pthread_attr_destroy(&attr);
    return APM_OK;
}

static apm_status cs_begin_read(void *ctx, uint8_t *buffer, size_t count,
                                apm_custom_complete_fn complete, uint64_t token)
{
    return cs_start((cstream *)ctx, buffer, NULL, count, complete, token);
}

static apm_status cs_begin_write(void *ctx, const uint8_t *buffer, size_t count,
                                 apm_custom_complete_fn complete, uint64_t token)
{
    cstream *cs = (cstream *)ctx;
    if (count < 512) {
        /* Inline completion, from inside begin_write. */
        ssize_t n = send(cs->fd, buffer, count, MSG_NOSIGNAL);
        ASSERT_OK(complete(token, n < 0 ? APM_E_IO : APM_OK, n < 0 ? 0 : (size_t)n));
        return APM_OK;
    }
    return cs_start(cs, NULL, buffer, count, complete, token);
}

static void cs_close(void *ctx)
{
    cstream *cs = (cstream *)ctx;
    atomic_store(&cs->closed, 1);
    shutdown(cs->fd, SHUT_RDWR); /* ends any pending recv */
}

static const apm_stream_vtable cs_vtable = {cs_begin_read, cs_begin_write, cs_close};

TEST(ssl_over_custom_stream)
{
    int sv[2];
    cstream a, b;
    apm_stream *ca = NULL, *cb = NULL, *c = NULL, *s = NULL;
    apm_certificate *cert;
    apm_stream_vtable bad = {NULL, cs_begin_write, NULL};

    hx_pki_make();
    cert = load_cert("server");
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.fd = sv[0];
    b.fd = sv[1];
    ASSERT_STATUS(apm_stream_create_custom(&bad, &a, &ca), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_create_custom(NULL, &a, &ca), APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_stream_create_custom(&cs_vtable, &a, &ca));
    ASSERT_OK(apm_stream_create_custom(&cs_vtable, &b, &cb));
    /* A token that is not pending. */
    ASSERT_STATUS(apm_custom_stream_complete(0xdeadbeef, APM_OK, 0), APM_E_ARGUMENT);
    ASSERT_OK(apm_ssl_stream_create(ca, 0, &c));
    ASSERT_OK(apm_ssl_stream_create(cb, 0, &s));
    authenticate_pair(c, s, cert, APM_SSL_PROTOCOLS_NONE);
    exchange(c, s, 4 * MIB, 20 * 1000);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    /* close reached the C streams. */
    ASSERT_EQ(atomic_load(&a.closed), 1);
    ASSERT_EQ(atomic_load(&b.closed), 1);
    WAIT_FOR(atomic_load(&a.ops) == 0 && atomic_load(&b.ops) == 0);
    close(sv[0]);
    close(sv[1]);
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    hx_pki_remove();
}

/* ---- certificate validation ---------------------------------------------- */

typedef struct validation_seen {
    atomic_int calls;
    int32_t errors;
    int32_t accept;
    size_t chain_len;
    char subject[256];
    apm_stream *sender;
} validation_seen;

static int32_t validate_cb(apm_stream *sender, apm_certificate *certificate,
                           apm_certificate *const *chain, size_t chain_len, int32_t errors,
                           void *state)
{
    validation_seen *v = (validation_seen *)state;
    size_t len = 0;
    v->errors = errors;
    v->chain_len = chain_len;
    v->sender = sender;
    v->subject[0] = '\0';
    if (certificate != NULL)
        ASSERT_OK(apm_certificate_get_subject(certificate, v->subject, sizeof v->subject, &len));
    for (size_t i = 0; i < chain_len; i++)
        ASSERT_NOT_NULL(chain[i]);
    atomic_fetch_add(&v->calls, 1);
    return v->accept;
}

/* Connects to a Python server presenting `name`; returns the client's status. */
static apm_status try_server_cert(const char *name, validation_seen *v, int trust_ca,
                                  char *message, size_t message_len)
{
    const char *args[12];
    char cert[64], key[64], line[256];
    hx_peer p;
    apm_stream *ssl;
    apm_status st;
    snprintf(cert, sizeof cert, "%s.pem", name);
    snprintf(key, sizeof key, "%s.key", name);
    args[0] = "server"; args[1] = "--cert"; args[2] = hx_pki_file(cert); args[3] = "--key"; args[4] = hx_pki_file(key);
    args[5] = "--recv"; args[6] = "5"; args[7] = NULL;
    hx_peer_start(&p, "tls_peer.py", args);
    ssl = ssl_client_to(read_port(&p));
    if (trust_ca)
        ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(ssl, hx_pki_file("ca.pem")));
    if (v != NULL)
        ASSERT_OK(apm_ssl_stream_set_validation_callback(ssl, validate_cb, v));
    st = apm_ssl_stream_authenticate_as_client(ssl, "localhost", NULL, APM_SSL_PROTOCOLS_NONE, 0);
    snprintf(message, message_len, "%s", hx_last_message());
    if (st == APM_OK) {
        ASSERT_OK(apm_stream_write(ssl, (const uint8_t *)"hello", 5, 0, 5));
        read_hs(&p, &(hs_line){{0}, {0}, {0}, {0}});
        hx_peer_read_line(&p, line, sizeof line);
        ASSERT_STR_STARTS_WITH(line, "RECV 5 ");
    } else {
        uint8_t b[4];
        size_t n;
        /* Poisoned: every later call reports the stored failure. */
        ASSERT_STATUS(apm_stream_write(ssl, b, 4, 0, 4), st);
        ASSERT_LAST_MESSAGE(message);
        ASSERT_STATUS(apm_stream_read(ssl, b, 4, 0, 4, &n), st);
        ASSERT_STATUS(apm_ssl_stream_authenticate_as_client(ssl, "localhost", NULL, 0, 0), st);
        ASSERT_LAST_MESSAGE(message);
    }
    ASSERT_OK(apm_stream_close(ssl));
    hx_peer_wait(&p);
    return st;
}

TEST(bad_certificates_rejected_by_default_and_accepted_by_the_callback)
{
    validation_seen v;
    char message[512];
    char inner[512];
    size_t len = 0;

    hx_pki_make();
    /* Trusted and right: fine without a callback. */
    ASSERT_OK(try_server_cert("server", NULL, 1, message, sizeof message));

    /* Expired. */
    ASSERT_EQ(try_server_cert("expired", NULL, 1, message, sizeof message), APM_E_AUTHENTICATION);
    ASSERT_STR_EQ(message, "The remote certificate is invalid because of errors in the certificate chain: NotTimeValid");
    memset(&v, 0, sizeof v);
    v.accept = 1;
    ASSERT_OK(try_server_cert("expired", &v, 1, message, sizeof message));
    ASSERT_EQ(atomic_load(&v.calls), 1);
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_CHAIN_ERRORS);
    ASSERT_STR_EQ(v.subject, "CN=localhost");
    ASSERT_GE(v.chain_len, 1);
    ASSERT_NOT_NULL(v.sender);

    /* Self-signed (untrusted root). */
    ASSERT_EQ(try_server_cert("selfsigned", NULL, 1, message, sizeof message), APM_E_AUTHENTICATION);
    ASSERT_STR_CONTAINS(message, "errors in the certificate chain: UntrustedRoot");
    ASSERT_OK(apm_last_error_inner_message(inner, sizeof inner, &len));
    memset(&v, 0, sizeof v);
    v.accept = 1;
    ASSERT_OK(try_server_cert("selfsigned", &v, 1, message, sizeof message));
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_CHAIN_ERRORS);

    /* Right chain, wrong host. */
    ASSERT_EQ(try_server_cert("wronghost", NULL, 1, message, sizeof message), APM_E_AUTHENTICATION);
    ASSERT_STR_EQ(message, "The remote certificate is invalid according to the validation procedure: RemoteCertificateNameMismatch");
    memset(&v, 0, sizeof v);
    v.accept = 1;
    ASSERT_OK(try_server_cert("wronghost", &v, 1, message, sizeof message));
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_NAME_MISMATCH);

    /* A good certificate the callback rejects. */
    memset(&v, 0, sizeof v);
    v.accept = 0;
    ASSERT_EQ(try_server_cert("server", &v, 1, message, sizeof message), APM_E_AUTHENTICATION);
    ASSERT_STR_EQ(message, "The remote certificate was rejected by the provided RemoteCertificateValidationCallback.");
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_NONE);

    /* Our CA is not in the system store. */
    ASSERT_EQ(try_server_cert("server", NULL, 0, message, sizeof message), APM_E_AUTHENTICATION);
    ASSERT_STR_CONTAINS(message, "errors in the certificate chain");
    ASSERT_OK(apm_runtime_shutdown());
    hx_pki_remove();
}

TEST(client_certificate_required)
{
    int port = 0;
    apm_socket *l = hx_apm_listener(&port);
    const char *args[16];
    char portbuf[16], line[256], subject[256];
    hx_peer p;
    apm_stream *ssl;
    apm_certificate *cert, *client_cert, *remote = NULL;
    validation_seen v;
    int32_t mutual = 0;
    size_t len = 0;

    hx_pki_make();
    cert = load_cert("server");
    snprintf(portbuf, sizeof portbuf, "%d", port);

    /* No client certificate: our server refuses. */
    args[0] = "client"; args[1] = "--port"; args[2] = portbuf; args[3] = "--ca"; args[4] = hx_pki_file("ca.pem");
    args[5] = "--tls"; args[6] = "1.2"; args[7] = NULL;
    hx_peer_start(&p, "tls_peer.py", args);
    ssl = accept_ssl(l);
    ASSERT_STATUS(apm_ssl_stream_authenticate_as_server(ssl, cert, 1, 0, 0), APM_E_AUTHENTICATION);
    ASSERT_LAST_MESSAGE("The remote certificate is invalid according to the validation procedure: RemoteCertificateNotAvailable");
    ASSERT_OK(apm_stream_close(ssl));
    hx_peer_read_line(&p, line, sizeof line);
    ASSERT_STR_STARTS_WITH(line, "FAIL");
    hx_peer_wait(&p);

    /* ... unless the callback accepts its absence. */
    hx_peer_start(&p, "tls_peer.py", args);
    ssl = accept_ssl(l);
    memset(&v, 0, sizeof v);
    v.accept = 1;
    ASSERT_OK(apm_ssl_stream_set_validation_callback(ssl, validate_cb, &v));
    ASSERT_OK(apm_ssl_stream_authenticate_as_server(ssl, cert, 1, 0, 0));
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_NOT_AVAILABLE);
    ASSERT_OK(apm_stream_close(ssl));
    hx_peer_wait(&p);

    /* With one (TLS 1.3): mutually authenticated. */
    args[6] = "1.3"; args[7] = "--cert"; args[8] = hx_pki_file("client.pem"); args[9] = "--key";
    args[10] = hx_pki_file("client.key"); args[11] = NULL;
    hx_peer_start(&p, "tls_peer.py", args);
    ssl = accept_ssl(l);
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(ssl, hx_pki_file("ca.pem")));
    ASSERT_OK(apm_ssl_stream_authenticate_as_server(ssl, cert, 1, 0, 0));
    ASSERT_OK(apm_ssl_stream_is_mutually_authenticated(ssl, &mutual));
    ASSERT_EQ(mutual, 1);
    ASSERT_OK(apm_ssl_stream_get_remote_certificate(ssl, &remote));
    ASSERT_NOT_NULL(remote);
    ASSERT_OK(apm_certificate_get_subject(remote, subject, sizeof subject, &len));
    ASSERT_STR_EQ(subject, "CN=apmnet client");
    ASSERT_OK(apm_certificate_close(remote));
    read_hs(&p, &(hs_line){{0}, {0}, {0}, {0}});
    ASSERT_OK(apm_stream_close(ssl));
    hx_peer_wait(&p);

    /* Our client presenting a certificate to a Python server that requires one. */
    client_cert = load_cert("client");
    args[0] = "server"; args[1] = "--cert"; args[2] = hx_pki_file("server.pem"); args[3] = "--key";
    args[4] = hx_pki_file("server.key"); args[5] = "--ca"; args[6] = hx_pki_file("ca.pem"); args[7] = "--require-cert";
    args[8] = "--recv"; args[9] = "2"; args[10] = NULL;
    hx_peer_start(&p, "tls_peer.py", args);
    ssl = trusting_client_to(read_port(&p));
    ASSERT_OK(apm_ssl_stream_authenticate_as_client(ssl, "localhost", client_cert, 0, 0));
    ASSERT_OK(apm_stream_write(ssl, (const uint8_t *)"hi", 2, 0, 2));
    read_hs(&p, &(hs_line){{0}, {0}, {0}, {0}});
    hx_peer_read_line(&p, line, sizeof line);
    ASSERT_STR_STARTS_WITH(line, "RECV 2 ");
    ASSERT_OK(apm_ssl_stream_is_mutually_authenticated(ssl, &mutual));
    ASSERT_EQ(mutual, 1);
    ASSERT_OK(apm_stream_close(ssl));
    hx_peer_wait(&p);

    ASSERT_OK(apm_certificate_close(client_cert));
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_socket_close(l));
    ASSERT_OK(apm_runtime_shutdown());
    hx_pki_remove();
}

typedef struct selection_seen {
    apm_certificate *give;
    atomic_int calls;
    char host[128];
    size_t issuers;
    size_t locals;
} selection_seen;

static apm_certificate *select_cb(apm_stream *sender, const char *target_host,
                                  apm_certificate *const *local, size_t local_len,
                                  apm_certificate *remote, const char *const *issuers,
                                  size_t issuers_len, void *state)
{
    selection_seen *s = (selection_seen *)state;
    (void)sender;
    (void)local;
    (void)remote;
    snprintf(s->host, sizeof s->host, "%s", target_host);
    s->issuers = issuers_len;
    s->locals = local_len;
    for (size_t i = 0; i < issuers_len; i++)
        ASSERT_NOT_NULL(issuers[i]);
    atomic_fetch_add(&s->calls, 1);
    return s->give;
}

TEST(selection_callback_on_both_sides)
{
    apm_stream *c = NULL, *s = NULL;
    selection_seen cs, ss;
    server_auth a;
    pthread_t t;
    int32_t mutual = 0;

    hx_pki_make();
    memset(&cs, 0, sizeof cs);
    memset(&ss, 0, sizeof ss);
    cs.give = load_cert("client");
    ss.give = load_cert("server");
    ssl_pair(&c, &s);
    ASSERT_OK(apm_ssl_stream_set_selection_callback(c, select_cb, &cs));
    ASSERT_OK(apm_ssl_stream_set_selection_callback(s, select_cb, &ss));
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(s, hx_pki_file("ca.pem")));
    memset(&a, 0, sizeof a);
    a.s = s;
    a.cert = NULL; /* the selection callback chooses */
    a.require = 1;
    t = hx_thread_start(server_auth_main, &a);
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(c, hx_pki_file("ca.pem")));
    ASSERT_OK(apm_ssl_stream_authenticate_as_client(c, "localhost", NULL, 0, 0));
    hx_thread_join(t);
    ASSERT_OK(a.st);
    ASSERT_EQ(atomic_load(&ss.calls), 1);
    ASSERT_STR_EQ(ss.host, "localhost"); /* the SNI name */
    ASSERT_EQ(atomic_load(&cs.calls), 1);
    ASSERT_STR_EQ(cs.host, "localhost");
    ASSERT_OK(apm_ssl_stream_is_mutually_authenticated(s, &mutual));
    ASSERT_EQ(mutual, 1);
    ASSERT_OK(apm_ssl_stream_is_mutually_authenticated(c, &mutual));
    ASSERT_EQ(mutual, 1);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));

    /* A server whose callback finds nothing fails. */
    ssl_pair(&c, &s);
    ss.give = NULL;
    ASSERT_OK(apm_ssl_stream_set_selection_callback(s, select_cb, &ss));
    memset(&a, 0, sizeof a);
    a.s = s;
    t = hx_thread_start(server_auth_main, &a);
    ASSERT_NE(apm_ssl_stream_authenticate_as_client(c, "localhost", NULL, 0, 0), APM_OK);
    ASSERT_OK(apm_stream_close(c));
    hx_thread_join(t);
    ASSERT_EQ(a.st, APM_E_AUTHENTICATION);
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_certificate_close(cs.give));
    ASSERT_OK(apm_runtime_shutdown());
    hx_pki_remove();
}

/* ---- failures and state rules -------------------------------------------- */

TEST(peer_closes_mid_handshake)
{
    const char *args[] = {"server", "--mode", "close-in-handshake", NULL};
    hx_peer p;
    apm_stream *ssl;
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t b[4];
    char line[64];

    hx_pki_make();
    hx_cb_init(&cb);
    hx_peer_start(&p, "tls_peer.py", args);
    ssl = trusting_client_to(read_port(&p));
    ASSERT_OK(apm_ssl_stream_begin_authenticate_as_client(ssl, "localhost", NULL, 0, 0, hx_cb_record,
                                                          &cb, &r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_ssl_stream_end_authenticate_as_client(ssl, r), APM_E_IO);
    ASSERT_LAST_MESSAGE("Authentication failed because the remote party has closed the transport stream.");
    /* Stored: the next call reports it again. */
    ASSERT_STATUS(apm_stream_write(ssl, b, 4, 0, 4), APM_E_IO);
    ASSERT_LAST_MESSAGE("Authentication failed because the remote party has closed the transport stream.");
    hx_peer_read_line(&p, line, sizeof line);
    ASSERT_STR_EQ(line, "CLOSED");
    ASSERT_OK(apm_stream_close(ssl));
    hx_peer_wait(&p);
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
    ASSERT_OK(apm_runtime_shutdown());
    hx_pki_remove();
}

TEST(second_begin_write_while_one_is_pending)
{
    apm_stream *c = NULL, *s = NULL;
    apm_certificate *cert;
    apm_async_result *r1 = NULL, *r2 = (apm_async_result *)(uintptr_t)1, *rr = NULL;
    hx_cb cb1, cb2, cbr;
    enum { BIG = 64 * 1024 * 1024 };
    char h[65], got_hex[65];
    uint8_t *data;
    uint8_t small[8] = "12345678", in[16];
    size_t got;

    hx_pki_make();
    cert = load_cert("server");
    hx_cb_init(&cb1);
    hx_cb_init(&cb2);
    hx_cb_init(&cbr);
    ssl_pair(&c, &s);
    authenticate_pair(c, s, cert, APM_SSL_PROTOCOLS_NONE);
    data = pattern(BIG, 5, h);
    /* Nobody reads: 64 MiB cannot fit in the socket buffers, the write stays pending. */
    ASSERT_OK(apm_stream_begin_write(c, data, BIG, 0, BIG, hx_cb_record, &cb1, &r1));
    ASSERT_EQ(HX_CB_CALLS(&cb1), 0);
    ASSERT_STATUS(apm_stream_begin_write(c, small, 8, 0, 8, hx_cb_record, &cb2, &r2),
                  APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE(nested_write_message);
    ASSERT_PTR_EQ(r2, (apm_async_result *)(uintptr_t)1);
    ASSERT_STATUS(apm_stream_write(c, small, 8, 0, 8), APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE(" The Write method cannot be called when another write operation is pending.");
    /* A read at the same time is fine, and so is a second read refused. */
    ASSERT_OK(apm_stream_begin_read(c, in, sizeof in, 0, sizeof in, hx_cb_record, &cbr, &rr));
    ASSERT_STATUS(apm_stream_begin_read(c, in, sizeof in, 0, sizeof in, hx_cb_record, &cb2, &r2),
                  APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE(" The BeginRead method cannot be called when another read operation is pending.");
    /* Drain: the pending write completes with every byte in order. */
    got = read_hash(s, BIG, got_hex);
    ASSERT_UEQ(got, BIG);
    ASSERT_STR_EQ(got_hex, h);
    ASSERT_EVENT(&cb1.done, 1);
    ASSERT_OK(apm_stream_end_write(c, r1));
    /* Now a write is accepted again; the server answers the pending read. */
    ASSERT_OK(apm_stream_write(s, small, 8, 0, 8));
    ASSERT_EVENT(&cbr.done, 1);
    ASSERT_OK(apm_stream_end_read(c, rr, &got));
    ASSERT_GT(got, 0);
    ASSERT_EQ(HX_CB_CALLS(&cb2), 0);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    free(data);
    hx_cb_destroy(&cb1);
    hx_cb_destroy(&cb2);
    hx_cb_destroy(&cbr);
    hx_pki_remove();
}

TEST(calls_before_authentication)
{
    apm_stream *c = NULL, *s = NULL, *ns = NULL, *closed = NULL, *bad = (apm_stream *)(uintptr_t)1;
    apm_async_result *r = NULL;
    apm_certificate *cert = NULL;
    apm_transport_context *ctx = NULL;
    hx_cb cb;
    uint8_t b[8];
    size_t n = 0;
    int32_t v = -1;

    hx_cb_init(&cb);
    ssl_pair(&c, &s);
    ASSERT_STATUS(apm_stream_begin_write(c, b, 8, 0, 8, hx_cb_record, &cb, &r), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE(noauth_message);
    ASSERT_STATUS(apm_stream_begin_read(c, b, 8, 0, 8, hx_cb_record, &cb, &r), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE(noauth_message);
    ASSERT_STATUS(apm_stream_write(c, b, 8, 0, 8), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_stream_read(c, b, 8, 0, 8, &n), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_ssl_stream_shutdown(c), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE(noauth_message);
    /* The state check comes before the buffer checks, as in .NET. */
    ASSERT_STATUS(apm_stream_write(c, NULL, 8, 0, 8), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_ssl_stream_get_ssl_protocol(c, &v), APM_E_INVALID_OPERATION);
    ASSERT_OK(apm_ssl_stream_is_authenticated(c, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_stream_can_read(c, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_ssl_stream_get_remote_certificate(c, &cert));
    ASSERT_NULL(cert);
    ASSERT_OK(apm_ssl_stream_get_transport_context(c, &ctx));
    n = 99;
    ASSERT_OK(apm_transport_context_get_channel_binding(ctx, APM_CHANNEL_BINDING_KIND_UNIQUE, b, 8, &n));
    ASSERT_UEQ(n, 0);
    ASSERT_OK(apm_transport_context_close(ctx));
    ASSERT_OK(apm_transport_context_close(ctx));
    ASSERT_STATUS(apm_transport_context_get_channel_binding(ctx, 0x19, b, 8, &n), APM_E_OBJECT_DISPOSED);
    /* Server checks, from Begin. */
    ASSERT_STATUS(apm_ssl_stream_authenticate_as_server(s, NULL, 0, 0, 0), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_ssl_stream_authenticate_as_client(c, "localhost", NULL, 1, 0),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_ssl_stream_authenticate_as_client(c, "localhost", NULL, APM_SSL_PROTOCOLS_SSL3, 0),
                  APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE("The requested security protocol is not supported.");
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);

    /* Creation checks. */
    ASSERT_STATUS(apm_ssl_stream_create(NULL, 0, &ns), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_ssl_stream_create(bad, 0, &ns), APM_E_ARGUMENT);
    hx_stream_pair(&ns, &closed);
    ASSERT_OK(apm_stream_close(closed));
    ASSERT_STATUS(apm_ssl_stream_create(closed, 0, &closed), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_ssl_stream_create(ns, 0, NULL), APM_E_ARGUMENT_NULL);
    /* An SslStream function on a NetworkStream. */
    ASSERT_STATUS(apm_ssl_stream_is_authenticated(ns, &v), APM_E_ARGUMENT);
    ASSERT_OK(apm_stream_close(ns));

    ASSERT_OK(apm_stream_close(c));
    ASSERT_STATUS(apm_stream_write(c, b, 8, 0, 8), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_ssl_stream_is_authenticated(c, &v), APM_E_OBJECT_DISPOSED);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

TEST(close_with_a_read_pending)
{
    apm_stream *c = NULL, *s = NULL;
    apm_certificate *cert;
    apm_async_result *r = NULL, *ra = NULL;
    hx_cb cb, cba;
    uint8_t b[64];
    size_t n = 0;

    hx_pki_make();
    cert = load_cert("server");
    hx_cb_init(&cb);
    hx_cb_init(&cba);
    ssl_pair(&c, &s);
    /* Authentication via Begin/End on both sides. */
    ASSERT_OK(apm_ssl_stream_begin_authenticate_as_server(s, cert, 0, 0, 0, hx_cb_record, &cba, &ra));
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(c, hx_pki_file("ca.pem")));
    ASSERT_OK(apm_ssl_stream_authenticate_as_client(c, "localhost", NULL, 0, 0));
    ASSERT_EVENT(&cba.done, 1);
    ASSERT_STATUS(apm_ssl_stream_end_authenticate_as_client(s, ra), APM_E_ARGUMENT);
    ASSERT_OK(apm_ssl_stream_end_authenticate_as_server(s, ra));
    ASSERT_STATUS(apm_ssl_stream_end_authenticate_as_server(s, ra), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("EndAuthenticateAsServer can only be called once for each asynchronous operation.");
    ASSERT_STATUS(apm_ssl_stream_authenticate_as_server(s, cert, 0, 0, 0), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("This operation is not allowed on a security context that has already been authenticated.");

    ASSERT_OK(apm_stream_begin_read(c, b, sizeof b, 0, sizeof b, hx_cb_record, &cb, &r));
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_stream_end_read(c, r, &n), APM_E_OBJECT_DISPOSED);
    /* The peer sees the end of the stream (no close_notify was sent). */
    ASSERT_OK(apm_stream_read(s, b, sizeof b, 0, sizeof b, &n));
    ASSERT_UEQ(n, 0);
    ASSERT_OK(apm_stream_close(s));
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
    hx_cb_destroy(&cba);
    hx_pki_remove();
}

TEST(shutdown_and_leave_inner_stream_open)
{
    apm_stream *a = NULL, *b = NULL, *c = NULL, *s = NULL;
    apm_certificate *cert;
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t buf[16];
    size_t n = 9;
    int32_t v = 0;

    hx_pki_make();
    cert = load_cert("server");
    hx_cb_init(&cb);
    hx_stream_pair(&a, &b);
    ASSERT_OK(apm_ssl_stream_create(a, 1, &c));
    ASSERT_OK(apm_ssl_stream_create(b, 1, &s));
    authenticate_pair(c, s, cert, APM_SSL_PROTOCOLS_NONE);
    ASSERT_OK(apm_stream_write(c, (const uint8_t *)"bye", 3, 0, 3));
    ASSERT_OK(apm_ssl_stream_begin_shutdown(c, hx_cb_record, &cb, &r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_OK(apm_ssl_stream_end_shutdown(c, r));
    ASSERT_STATUS(apm_stream_write(c, buf, 1, 0, 1), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("Write operations are not allowed after the channel was shutdown.");
    ASSERT_OK(apm_stream_can_write(c, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_stream_read(s, buf, sizeof buf, 0, sizeof buf, &n));
    ASSERT_UEQ(n, 3);
    /* close_notify: a clean end of stream. */
    ASSERT_OK(apm_stream_read(s, buf, sizeof buf, 0, sizeof buf, &n));
    ASSERT_UEQ(n, 0);
    /* The other direction still works. */
    ASSERT_OK(apm_stream_write(s, (const uint8_t *)"ok", 2, 0, 2));
    ASSERT_OK(apm_stream_read(c, buf, sizeof buf, 0, sizeof buf, &n));
    ASSERT_UEQ(n, 2);
    /* leave_inner_stream_open: the network streams survive. */
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_stream_can_write(a, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_stream_write(a, (const uint8_t *)"raw", 3, 0, 3));
    ASSERT_OK(apm_stream_read(b, buf, sizeof buf, 0, sizeof buf, &n));
    ASSERT_UEQ(n, 3);
    ASSERT_MEM_EQ(buf, "raw", 3);
    ASSERT_OK(apm_stream_close(a));
    ASSERT_OK(apm_stream_close(b));
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
    hx_pki_remove();
}

TEST(certificate_loading)
{
    apm_certificate *c = NULL, *d = NULL;
    char text[256];
    uint8_t der[4096];
    size_t len = 0, der_len = 0;
    int32_t has = -1;
    int64_t nb = 0, na = 0;
    FILE *f;
    static char pem[8192], key[8192];
    size_t pem_len, key_len;
    char *missing;

    hx_pki_make();
    ASSERT_OK(apm_certificate_load_pem_file(hx_pki_file("server.pem"), hx_pki_file("server.key"), &c));
    ASSERT_OK(apm_certificate_has_private_key(c, &has));
    ASSERT_EQ(has, 1);
    ASSERT_OK(apm_certificate_get_subject(c, text, sizeof text, &len));
    ASSERT_STR_EQ(text, "O=apmnet, CN=localhost");
    /* Truncation keeps the NUL and reports the full length. */
    ASSERT_OK(apm_certificate_get_subject(c, text, 4, &len));
    ASSERT_STR_EQ(text, "O=a");
    ASSERT_UEQ(len, strlen("O=apmnet, CN=localhost"));
    ASSERT_OK(apm_certificate_get_validity(c, &nb, &na));
    ASSERT_LT(nb, na);
    ASSERT_OK(apm_certificate_get_raw_data(c, NULL, 0, &der_len));
    ASSERT_GT(der_len, 100);
    ASSERT_OK(apm_certificate_get_raw_data(c, der, sizeof der, &der_len));
    ASSERT_OK(apm_certificate_load_der(der, der_len, &d));
    ASSERT_OK(apm_certificate_has_private_key(d, &has));
    ASSERT_EQ(has, 0);
    ASSERT_OK(apm_certificate_get_thumbprint(d, text, sizeof text, &len));
    ASSERT_UEQ(len, 40);
    ASSERT_OK(apm_certificate_close(d));
    ASSERT_OK(apm_certificate_close(c));
    ASSERT_OK(apm_certificate_close(c));
    ASSERT_STATUS(apm_certificate_get_subject(c, text, sizeof text, &len), APM_E_OBJECT_DISPOSED);

    /* From memory. */
    f = fopen(hx_pki_file("server.pem"), "rb");
    ASSERT_NOT_NULL(f);
    pem_len = fread(pem, 1, sizeof pem, f);
    fclose(f);
    f = fopen(hx_pki_file("server.key"), "rb");
    ASSERT_NOT_NULL(f);
    key_len = fread(key, 1, sizeof key, f);
    fclose(f);
    ASSERT_OK(apm_certificate_load_pem((const uint8_t *)pem, pem_len, (const uint8_t *)key, key_len, &c));
    ASSERT_OK(apm_certificate_close(c));
    ASSERT_STATUS(apm_certificate_load_pem((const uint8_t *)"junk", 4, NULL, 0, &c), APM_E_ARGUMENT);

    /* PKCS#12. */
    ASSERT_OK(apm_certificate_load_pkcs12_file(hx_pki_file("server.p12"), "secret", &c));
    ASSERT_OK(apm_certificate_has_private_key(c, &has));
    ASSERT_EQ(has, 1);
    ASSERT_OK(apm_certificate_close(c));
    ASSERT_STATUS(apm_certificate_load_pkcs12_file(hx_pki_file("server.p12"), "wrong", &c), APM_E_INVALID_CREDENTIAL);
    ASSERT_LAST_MESSAGE("The certificate data cannot be read with the provided password, the password may be incorrect.");

    /* Failures. */
    ASSERT_STATUS(apm_certificate_load_pem_file(hx_pki_file("server.pem"), hx_pki_file("client.key"), &c), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("The certificate and the private key do not match.");
    missing = hx_temp_missing_path(".pem");
    ASSERT_STATUS(apm_certificate_load_pem_file(missing, NULL, &c), APM_E_FILE_NOT_FOUND);
    free(missing);
    ASSERT_STATUS(apm_certificate_load_pem_file(NULL, NULL, &c), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_certificate_load_pem_file(hx_pki_file("server.pem"), NULL, NULL), APM_E_ARGUMENT_NULL);
    hx_pki_remove();
}

TEST(cancel_a_pending_ssl_read_consumes_no_byte)
{
    apm_stream *c = NULL, *s = NULL;
    apm_certificate *cert;
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t buf[16];
    size_t n = 0;
    hx_pki_make();
    cert = load_cert("server");
    ssl_pair(&c, &s);
    authenticate_pair(c, s, cert, APM_SSL_PROTOCOLS_NONE);
    hx_cb_init(&cb);
    ASSERT_OK(apm_stream_begin_read(c, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    ASSERT_OK(apm_async_result_cancel(r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_stream_end_read(c, r, &n), APM_E_IO);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_OPERATION_ABORTED);
    /* What comes next is the next read's, whole: the cancelled one took nothing. */
    ASSERT_OK(apm_stream_write(s, (const uint8_t *)"after", 5, 0, 5));
    size_t got = 0;
    while (got < 5) {
        ASSERT_OK(apm_stream_read(c, buf + got, sizeof buf - got, 0, sizeof buf - got, &n));
        ASSERT_GT(n, 0);
        got += n;
    }
    ASSERT_MEM_EQ(buf, "after", 5);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
    hx_pki_remove();
}

TEST(a_blocking_ssl_read_honours_the_socket_receive_timeout)
{
    apm_socket *cs = NULL, *ss = NULL;
    apm_stream *a = NULL, *b = NULL, *c = NULL, *s = NULL;
    apm_certificate *cert;
    uint8_t buf[16];
    size_t n = 0;
    hx_pki_make();
    cert = load_cert("server");
    hx_apm_pair(&cs, &ss);
    ASSERT_OK(apm_network_stream_create(cs, 1, &a));
    ASSERT_OK(apm_network_stream_create(ss, 1, &b));
    ASSERT_OK(apm_ssl_stream_create(a, 0, &c));
    ASSERT_OK(apm_ssl_stream_create(b, 0, &s));
    authenticate_pair(c, s, cert, APM_SSL_PROTOCOLS_NONE);
    ASSERT_OK(apm_socket_set_receive_timeout(cs, 200));
    int64_t t0 = hx_now_ms();
    /* The peer sends nothing: the read fails after the socket's ReceiveTimeout. */
    ASSERT_STATUS(apm_stream_read(c, buf, sizeof buf, 0, sizeof buf, &n), APM_E_IO);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_TIMED_OUT);
    ASSERT_GE(hx_now_ms() - t0, 150);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    hx_pki_remove();
}

/* ---- session resumption (AllowTlsResume) --------------------------------- */

/* name_tls13 and name_tls12: the test function name(protocols) over each version. */
#define BOTH_VERSIONS(name)                                                    \
    TEST(name##_tls13) { name(APM_SSL_PROTOCOLS_TLS13); }                      \
    TEST(name##_tls12) { name(APM_SSL_PROTOCOLS_TLS12); }

static const char *version_of(int32_t protocols)
{
    return protocols == APM_SSL_PROTOCOLS_TLS13 ? "1.3" : "1.2";
}

static int32_t resumed_of(apm_stream *s)
{
    int32_t v = -1;
    ASSERT_OK(apm_ssl_stream_is_resumed(s, &v));
    return v;
}

/* The thumbprint of a stream's remote certificate (which must be there). */
static void remote_thumbprint(apm_stream *s, char thumb[64])
{
    apm_certificate *remote = NULL;
    size_t len = 0;
    ASSERT_OK(apm_ssl_stream_get_remote_certificate(s, &remote));
    ASSERT_NOT_NULL(remote);
    ASSERT_OK(apm_certificate_get_thumbprint(remote, thumb, 64, &len));
    ASSERT_OK(apm_certificate_close(remote));
}

/* The resumed flag (fifth field) of the peer's HS line. */
static int read_hs_resumed(hx_peer *p)
{
    char line[700];
    hs_line hs;
    int resumed = -1;
    hx_peer_read_line(p, line, sizeof line);
    if (sscanf(line, "HS %31s %259s %63s %79s %d", hs.version, hs.unique, hs.alpn, hs.peer_sha,
               &resumed) != 5)
        hx_fail(__FILE__, __LINE__, "expected HS with the resumed flag from the peer, got \"%s\"", line);
    return resumed;
}

static void resumes_against_python(int32_t protocols)
{
    const char *tls = version_of(protocols);
    const char *args[16];
    hx_peer p;
    int port;
    char first[64], thumb[64], hex[65];
    size_t count = 0;

    pki_make();
    args[0] = "server"; args[1] = "--cert"; args[2] = pf("server.pem");
    args[3] = "--key"; args[4] = pf("server.key"); args[5] = "--tls"; args[6] = tls;
    args[7] = "--send"; args[8] = "1"; args[9] = "--accept"; args[10] = "3"; args[11] = NULL;
    hx_peer_start(&p, "tls_peer.py", args);
    port = read_port(&p);
    for (int i = 0; i < 3; i++) {
        apm_stream *ssl = trusting_client_to(port);
        int32_t v = 0;
        ASSERT_OK(apm_ssl_stream_authenticate_as_client(ssl, "localhost", NULL, APM_SSL_PROTOCOLS_NONE, 0));
        ASSERT_OK(apm_ssl_stream_get_ssl_protocol(ssl, &v));
        ASSERT_EQ(v, protocols);
        /* Reading takes in the TLS 1.3 tickets that came after the handshake. */
        ASSERT_UEQ(read_hash(ssl, 1, hex), 1);
        ASSERT_EQ(read_hs_resumed(&p), i > 0);
        expect_count_hash(&p, "SENT", &count, hex);
        ASSERT_EQ(resumed_of(ssl), i > 0);
        /* A resumed session still reports the server's certificate. */
        remote_thumbprint(ssl, i == 0 ? first : thumb);
        if (i > 0)
            ASSERT_STR_EQ(thumb, first);
        ASSERT_OK(apm_stream_close(ssl));
    }
    ASSERT_EQ(hx_peer_wait(&p), 0);
    ASSERT_OK(apm_runtime_shutdown());
    pki_remove();
}

BOTH_VERSIONS(resumes_against_python)

static void resumes_against_openssl_s_server(int32_t protocols)
{
    const char *tls = version_of(protocols);
    const char *args[12];
    hx_peer p;
    int port;
    char sha_line[256], want_hex[65];
    unsigned long long size = 0;
    static uint8_t all[64 * 1024];

    pki_make();
    args[0] = "s_server"; args[1] = "--cert"; args[2] = pf("server-chain.pem");
    args[3] = "--key"; args[4] = pf("server.key"); args[5] = "--tls"; args[6] = tls;
    args[7] = "--size"; args[8] = "1000"; args[9] = "--naccept"; args[10] = "3"; args[11] = NULL;
    hx_peer_start(&p, "openssl_peer.py", args);
    port = read_port(&p);
    hx_peer_read_line(&p, sha_line, sizeof sha_line);
    ASSERT_EQ(sscanf(sha_line, "SHA %llu %64s", &size, want_hex), 2);
    for (int i = 0; i < 3; i++) {
        apm_stream *ssl = trusting_client_to(port);
        int32_t v = 0;
        ASSERT_OK(apm_ssl_stream_authenticate_as_client(ssl, "localhost", NULL, APM_SSL_PROTOCOLS_NONE, 0));
        ASSERT_OK(apm_ssl_stream_get_ssl_protocol(ssl, &v));
        ASSERT_EQ(v, protocols);
        ASSERT_EQ(resumed_of(ssl), i > 0);
        get_data_bin(ssl, all, sizeof all, size, want_hex);
        ASSERT_OK(apm_stream_close(ssl));
    }
    hx_peer_wait(&p);
    ASSERT_OK(apm_runtime_shutdown());
    pki_remove();
}

BOTH_VERSIONS(resumes_against_openssl_s_server)

/* One connection of our client to our server, each side configured by `o`. */
typedef struct round_opts {
    const char *host;          /* default "localhost" */
    const char *trust;         /* default ca.pem */
    apm_certificate *server_cert;
    apm_certificate *client_cert;
    int32_t require;
    int32_t protocols;
    int client_off, server_off; /* AllowTlsResume false */
    validation_seen *v;         /* the client's validation callback */
    apm_status expect;          /* of the client's authentication */
    int32_t server_resumed;     /* out */
    int32_t mutual;             /* out */
    char message[512];          /* out: the client's failure */
} round_opts;

/* Returns whether the client resumed (-1 when the authentication failed as expected). */
static int32_t own_round(round_opts *o)
{
    apm_stream *c = NULL, *s = NULL;
    server_auth a;
    pthread_t t;
    apm_status st;
    int32_t r = -1;
    char thumb[64];
    size_t n = 0;
    uint8_t b;

    ssl_pair(&c, &s);
    memset(&a, 0, sizeof a);
    a.s = s;
    a.cert = o->server_cert;
    a.require = o->require;
    a.protocols = o->protocols;
    if (o->server_off)
        ASSERT_OK(apm_ssl_stream_set_allow_tls_resume(s, 0));
    if (o->client_off)
        ASSERT_OK(apm_ssl_stream_set_allow_tls_resume(c, 0));
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(c, o->trust != NULL ? o->trust : pf("ca.pem")));
    ASSERT_OK(apm_ssl_stream_set_trusted_ca_file(s, pf("ca.pem")));
    if (o->v != NULL)
        ASSERT_OK(apm_ssl_stream_set_validation_callback(c, validate_cb, o->v));
    t = hx_thread_start(server_auth_main, &a);
    st = apm_ssl_stream_authenticate_as_client(c, o->host != NULL ? o->host : "localhost", o->client_cert,
                                               o->protocols, 0);
    snprintf(o->message, sizeof o->message, "%s", st == APM_OK ? "" : hx_last_message());
    ASSERT_STATUS(st, o->expect);
    if (st == APM_OK) {
        hx_thread_join(t);
        ASSERT_OK(a.st);
        /* The server writes: the client's read takes in the TLS 1.3 tickets first. */
        ASSERT_OK(apm_stream_write(s, (const uint8_t *)"x", 1, 0, 1));
        ASSERT_OK(apm_stream_read(c, &b, 1, 0, 1, &n));
        ASSERT_UEQ(n, 1);
        remote_thumbprint(c, thumb);
        r = resumed_of(c);
        o->server_resumed = resumed_of(s);
        ASSERT_EQ(o->server_resumed, r);
        ASSERT_OK(apm_ssl_stream_is_mutually_authenticated(c, &o->mutual));
    } else {
        ASSERT_STATUS(apm_ssl_stream_is_resumed(c, &r), st);
        ASSERT_OK(apm_stream_close(c));
        c = NULL;
        hx_thread_join(t);
        r = -1;
    }
    if (c != NULL)
        ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    return r;
}

static void resumes_against_our_own_server(int32_t protocols)
{
    apm_certificate *cert;
    round_opts o;
    validation_seen v;
    int32_t value = 0;
    apm_stream *c = NULL, *s = NULL;

    pki_make();
    cert = load_cert("server");
    memset(&o, 0, sizeof o);
    o.server_cert = cert;
    o.protocols = protocols;
    ASSERT_EQ(own_round(&o), 0);
    ASSERT_EQ(own_round(&o), 1);
    ASSERT_EQ(own_round(&o), 1);

    /* Another target host is another key: a full handshake, then its own session. */
    o.host = "127.0.0.1";
    ASSERT_EQ(own_round(&o), 0);
    ASSERT_EQ(own_round(&o), 1);
    o.host = NULL;
    ASSERT_EQ(own_round(&o), 1);

    /* Other trust settings: another trusted CA set, a validation callback. */
    o.trust = pf("server-chain.pem");
    ASSERT_EQ(own_round(&o), 0);
    o.trust = NULL;
    memset(&v, 0, sizeof v);
    v.accept = 1;
    o.v = &v;
    ASSERT_EQ(own_round(&o), 0);
    ASSERT_EQ(own_round(&o), 1);
    /* The callback judged the resumed session too, with what a full handshake shows. */
    ASSERT_EQ(atomic_load(&v.calls), 2);
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_NONE);
    ASSERT_STR_EQ(v.subject, "O=apmnet, CN=localhost");
    ASSERT_GE(v.chain_len, 2);
    o.v = NULL;

    /* AllowTlsResume off on the client: nothing offered, nothing kept. */
    o.client_off = 1;
    ASSERT_EQ(own_round(&o), 0);
    o.client_off = 0;
    ASSERT_EQ(own_round(&o), 1);
    /* Off on the server: the offered session is refused, no new one is issued. */
    o.server_off = 1;
    ASSERT_EQ(own_round(&o), 0);
    ASSERT_EQ(o.server_resumed, 0);
    o.server_off = 0;
    ASSERT_EQ(own_round(&o), 1);

    /* Before authentication there is no answer; after it the setting is fixed. */
    ssl_pair(&c, &s);
    ASSERT_STATUS(apm_ssl_stream_is_resumed(c, &value), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE(noauth_message);
    authenticate_pair(c, s, cert, protocols);
    ASSERT_STATUS(apm_ssl_stream_set_allow_tls_resume(c, 1), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_ssl_stream_set_allow_tls_resume(NULL, 1), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_ssl_stream_is_resumed(c, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_stream_close(c));
    ASSERT_OK(apm_stream_close(s));
    ASSERT_STATUS(apm_ssl_stream_is_resumed(c, &value), APM_E_OBJECT_DISPOSED);

    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    pki_remove();
}

BOTH_VERSIONS(resumes_against_our_own_server)

typedef struct concurrent_rounds {
    round_opts o;
    int resumed;
} concurrent_rounds;

static void *rounds_main(void *arg)
{
    concurrent_rounds *r = (concurrent_rounds *)arg;
    for (int i = 0; i < 6; i++)
        r->resumed += own_round(&r->o) == 1;
    return NULL;
}

/* Connections on several threads at once take the cached session (one SSL_SESSION set on
 * several SSLs) and store their new ones while the others read it: every one authenticates, and
 * most resume. (Not all: OpenSSL uses a TLS 1.3 ticket once, marking it not resumable when its
 * handshake ends; a connection that starts before that one's new ticket arrived finds none.) */
static void resumes_on_several_threads_at_once(int32_t protocols)
{
    apm_certificate *cert;
    concurrent_rounds r[4];
    pthread_t t[4];
    int total = 0;

    pki_make();
    cert = load_cert("server");
    memset(r, 0, sizeof r);
    for (int i = 0; i < 4; i++) {
        r[i].o.server_cert = cert;
        r[i].o.protocols = protocols;
    }
    ASSERT_EQ(own_round(&r[0].o), 0);
    for (int i = 0; i < 4; i++)
        t[i] = hx_thread_start(rounds_main, &r[i]);
    for (int i = 0; i < 4; i++) {
        hx_thread_join(t[i]);
        total += r[i].resumed;
    }
    ASSERT_GE(total, 12);
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
    pki_remove();
}

BOTH_VERSIONS(resumes_on_several_threads_at_once)

/* The validation policy and callback judge a resumed session as a full handshake: the same
 * certificate and SslPolicyErrors; a session whose validation failed is not kept. */
static void resumed_sessions_are_validated(int32_t protocols)
{
    apm_certificate *selfsigned, *wronghost, *server;
    round_opts o;
    validation_seen v;

    pki_make();
    selfsigned = load_cert("selfsigned");
    wronghost = load_cert("wronghost");
    server = load_cert("server");
    memset(&o, 0, sizeof o);
    memset(&v, 0, sizeof v);
    o.protocols = protocols;
    o.v = &v;

    /* Rejected by the callback: nothing is kept. */
    o.server_cert = selfsigned;
    o.expect = APM_E_AUTHENTICATION;
    ASSERT_EQ(own_round(&o), -1);
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_CHAIN_ERRORS);
    v.accept = 1;
    o.expect = APM_OK;
    ASSERT_EQ(own_round(&o), 0);
    ASSERT_EQ(atomic_load(&v.calls), 2);
    /* Accepted: resumed, and the callback sees the chain errors again. */
    v.errors = -1;
    ASSERT_EQ(own_round(&o), 1);
    ASSERT_EQ(atomic_load(&v.calls), 3);
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_CHAIN_ERRORS);
    ASSERT_STR_EQ(v.subject, "CN=localhost");
    ASSERT_GE(v.chain_len, 1);
    /* The callback now rejects the resumed session: the authentication fails as a full one
     * would, and the session is not offered again. */
    v.accept = 0;
    o.expect = APM_E_AUTHENTICATION;
    ASSERT_EQ(own_round(&o), -1);
    ASSERT_STR_EQ(o.message, "The remote certificate was rejected by the provided RemoteCertificateValidationCallback.");
    v.accept = 1;
    o.expect = APM_OK;
    ASSERT_EQ(own_round(&o), 0);
    /* Without the callback (another key) the policy rejects the self-signed certificate. */
    o.v = NULL;
    o.expect = APM_E_AUTHENTICATION;
    ASSERT_EQ(own_round(&o), -1);
    ASSERT_STR_STARTS_WITH(o.message, "The remote certificate is invalid because of errors in the certificate chain: UntrustedRoot");
    o.v = &v;
    o.expect = APM_OK;

    /* The name is checked again on resumption. */
    o.server_cert = wronghost;
    ASSERT_EQ(own_round(&o), 0);
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_NAME_MISMATCH);
    v.errors = -1;
    ASSERT_EQ(own_round(&o), 1);
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_NAME_MISMATCH);
    ASSERT_STR_EQ(v.subject, "CN=wrong.example");

    /* A server with another certificate does not resume what this one issued. */
    o.server_cert = server;
    ASSERT_EQ(own_round(&o), 0);
    ASSERT_EQ(v.errors, APM_SSL_POLICY_ERRORS_NONE);

    ASSERT_OK(apm_certificate_close(selfsigned));
    ASSERT_OK(apm_certificate_close(wronghost));
    ASSERT_OK(apm_certificate_close(server));
    ASSERT_OK(apm_runtime_shutdown());
    pki_remove();
}

BOTH_VERSIONS(resumed_sessions_are_validated)

/* A client certificate is part of the key; a resumed session authenticates the client as the
 * full handshake did. */
static void resumes_with_a_client_certificate(int32_t protocols)
{
    apm_certificate *server, *client;
    round_opts o;

    pki_make();
    server = load_cert("server");
    client = load_cert("client");
    memset(&o, 0, sizeof o);
    o.protocols = protocols;
    o.server_cert = server;
    o.client_cert = client;
    o.require = 1;
    ASSERT_EQ(own_round(&o), 0);
    ASSERT_EQ(o.mutual, 1);
    ASSERT_EQ(own_round(&o), 1);
    ASSERT_EQ(o.mutual, 1);
    /* Without the certificate: another key; the server (requiring one) does not resume for it
     * either. */
    o.client_cert = NULL;
    o.require = 0;
    ASSERT_EQ(own_round(&o), 0);
    ASSERT_EQ(o.mutual, 0);
    ASSERT_EQ(own_round(&o), 1);
    ASSERT_EQ(o.mutual, 0);
    ASSERT_OK(apm_certificate_close(server));
    ASSERT_OK(apm_certificate_close(client));
    ASSERT_OK(apm_runtime_shutdown());
    pki_remove();
}

BOTH_VERSIONS(resumes_with_a_client_certificate)

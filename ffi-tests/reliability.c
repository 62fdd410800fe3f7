/*
 * ffi-tests/reliability.c - a careless host and a confused or hostile peer
 * (issue 12): the runtime shut down from callbacks wherever they run, a custom
 * stream that reports more than it was asked for, garbage instead of a TLS
 * hello.
 */
#include "harness.h"

#include <sys/socket.h>
#include <unistd.h>

/* Wait until `s` has at least `n` bytes to read, so that a receive completes
 * inside Begin. */
static void wait_available(apm_socket *s, int32_t n)
{
    int32_t avail = 0;
    WAIT_FOR(apm_socket_get_available(s, &avail) == APM_OK && avail >= n);
}

/* ---- apm_runtime_shutdown from a callback, wherever it runs ------------- */

static const char shutdown_refused_message[] =
    "apm_runtime_shutdown cannot be called from a callback or an engine thread.";

/* A callback that tries to shut the runtime down and records what happened
 * (the operation is ended by the test afterwards). */
typedef struct shutdown_cb_ctx {
    atomic_int calls;
    pthread_t thread;
    int32_t completed_sync;
    apm_status status;
    char message[256];
} shutdown_cb_ctx;

static void shutdown_cb(apm_async_result *result, void *state)
{
    shutdown_cb_ctx *ctx = (shutdown_cb_ctx *)state;
    int32_t v = -1;
    ASSERT_OK(apm_async_result_completed_synchronously(result, &v));
    ctx->completed_sync = v;
    ctx->thread = pthread_self();
    ctx->status = apm_runtime_shutdown();
    snprintf(ctx->message, sizeof ctx->message, "%s", hx_last_message());
    atomic_fetch_add(&ctx->calls, 1);
}

static void assert_shutdown_refused(const shutdown_cb_ctx *ctx)
{
    ASSERT_EQ(atomic_load(&ctx->calls), 1);
    if (ctx->status != APM_E_INVALID_OPERATION)
        hx_fail(__FILE__, __LINE__, "apm_runtime_shutdown inside the callback returned %s, expected "
                "APM_E_INVALID_OPERATION", hx_status_name(ctx->status));
    ASSERT_STR_EQ(ctx->message, shutdown_refused_message);
}

/* Another connection with a receive pending while the callback runs: it must
 * not be aborted by the refused shutdown, and completes normally later. */
typedef struct witness {
    apm_socket *c, *s;
    apm_async_result *r;
    hx_cb cb;
    uint8_t buf[8];
} witness;

static void witness_start(witness *w)
{
    memset(w, 0, sizeof *w);
    hx_cb_init(&w->cb);
    hx_apm_pair(&w->c, &w->s);
    ASSERT_OK(apm_socket_begin_receive(w->c, w->buf, sizeof w->buf, 0, sizeof w->buf,
                                       hx_cb_record, &w->cb, &w->r));
    ASSERT_EQ(HX_CB_CALLS(&w->cb), 0);
}

static void witness_check(witness *w)
{
    size_t n = 0;
    /* Still pending: nothing aborted it. */
    hx_sleep_ms(20);
    ASSERT_EQ(HX_CB_CALLS(&w->cb), 0);
    ASSERT_OK(apm_socket_send(w->s, (const uint8_t *)"w", 1, 0, 1, &n));
    ASSERT_EVENT(&w->cb.done, 1);
    ASSERT_OK(apm_socket_end_receive(w->c, w->r, &n));
    ASSERT_UEQ(n, 1);
    ASSERT_EQ(w->buf[0], 'w');
    ASSERT_OK(apm_socket_close(w->c));
    ASSERT_OK(apm_socket_close(w->s));
    hx_cb_destroy(&w->cb);
}

TEST(shutdown_refused_in_callback_inline_in_begin)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    shutdown_cb_ctx ctx;
    witness w;
    size_t n = 0;
    uint8_t buf[8];

    memset(&ctx, 0, sizeof ctx);
    witness_start(&w);
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"x", 1, 0, 1, &n));
    wait_available(c, 1);
    /* Data waiting: the receive and its callback finish inside Begin, on this thread. */
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, shutdown_cb, &ctx, &r));
    ASSERT_EQ(atomic_load(&ctx.calls), 1);
    ASSERT(pthread_equal(ctx.thread, pthread_self()));
    ASSERT_EQ(ctx.completed_sync, 1);
    assert_shutdown_refused(&ctx);
    ASSERT_OK(apm_socket_end_receive(c, r, &n));
    ASSERT_UEQ(n, 1);

    witness_check(&w);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(shutdown_refused_in_callback_run_by_socket_close)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    shutdown_cb_ctx ctx;
    witness w;
    size_t n = 0;
    uint8_t buf[8];

    memset(&ctx, 0, sizeof ctx);
    witness_start(&w);
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, shutdown_cb, &ctx, &r));
    ASSERT_EQ(atomic_load(&ctx.calls), 0);
    /* Closing completes the pending receive: its callback runs inside apm_socket_close. */
    ASSERT_OK(apm_socket_close(c));
    ASSERT_EQ(atomic_load(&ctx.calls), 1);
    ASSERT(pthread_equal(ctx.thread, pthread_self()));
    ASSERT_EQ(ctx.completed_sync, 0);
    assert_shutdown_refused(&ctx);
    ASSERT_STATUS(apm_socket_end_receive(c, r, &n), APM_E_OBJECT_DISPOSED);

    witness_check(&w);
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

/* A custom stream whose reads the test completes by hand. */
typedef struct manual_stream {
    uint64_t token;
    uint8_t *buffer;
    size_t count;
    atomic_int pending;
} manual_stream;

static apm_status manual_begin_read(void *ctx, uint8_t *buffer, size_t count,
                                    apm_custom_complete_fn complete, uint64_t token)
{
    manual_stream *m = (manual_stream *)ctx;
    (void)complete;
    m->token = token;
    m->buffer = buffer;
    m->count = count;
    atomic_store(&m->pending, 1);
    return APM_OK;
}

static apm_status manual_begin_write(void *ctx, const uint8_t *buffer, size_t count,
                                     apm_custom_complete_fn complete, uint64_t token)
{
    (void)ctx;
    (void)buffer;
    return complete(token, APM_OK, count);
}

static const apm_stream_vtable manual_vtable = {manual_begin_read, manual_begin_write, NULL};

TEST(shutdown_refused_in_callback_run_by_custom_stream_complete)
{
    apm_stream *cs = NULL;
    apm_async_result *r = NULL;
    manual_stream m;
    shutdown_cb_ctx ctx;
    witness w;
    size_t n = 0;
    uint8_t buf[8];

    memset(&ctx, 0, sizeof ctx);
    memset(&m, 0, sizeof m);
    witness_start(&w);
    ASSERT_OK(apm_stream_create_custom(&manual_vtable, &m, &cs));
    ASSERT_OK(apm_stream_begin_read(cs, buf, sizeof buf, 0, sizeof buf, shutdown_cb, &ctx, &r));
    ASSERT_EQ(atomic_load(&m.pending), 1);
    ASSERT_EQ(atomic_load(&ctx.calls), 0);
    /* The completion runs the callback inside apm_custom_stream_complete, on this thread. */
    memcpy(m.buffer, "abc", 3);
    ASSERT_OK(apm_custom_stream_complete(m.token, APM_OK, 3));
    ASSERT_EQ(atomic_load(&ctx.calls), 1);
    ASSERT(pthread_equal(ctx.thread, pthread_self()));
    ASSERT_EQ(ctx.completed_sync, 0);
    assert_shutdown_refused(&ctx);
    ASSERT_OK(apm_stream_end_read(cs, r, &n));
    ASSERT_UEQ(n, 3);
    ASSERT_MEM_EQ(buf, "abc", 3);

    witness_check(&w);
    ASSERT_OK(apm_stream_close(cs));
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- certificates with malformed fields --------------------------------- */

/* A small self-signed certificate (ECDSA P-256 with SHA-256, "CN=a, O=b"). */
static const uint8_t sample_der[] = {
    0x30, 0x82, 0x01, 0x29, 0x30, 0x81, 0xd1, 0x02, 0x14, 0x67, 0x7b, 0xb8,
    0x8e, 0xe9, 0xdb, 0x0c, 0x14, 0x62, 0x41, 0x11, 0xf2, 0x07, 0xb1, 0x4e,
    0x45, 0x40, 0x27, 0x6d, 0x7a, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x04, 0x03, 0x02, 0x30, 0x18, 0x31, 0x0a, 0x30, 0x08, 0x06,
    0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, 0x61, 0x31, 0x0a, 0x30, 0x08, 0x06,
    0x03, 0x55, 0x04, 0x0a, 0x0c, 0x01, 0x62, 0x30, 0x1e, 0x17, 0x0d, 0x32,
    0x36, 0x31, 0x32, 0x30, 0x31, 0x30, 0x39, 0x32, 0x36, 0x34, 0x38, 0x5a,
    0x17, 0x0d, 0x33, 0x36, 0x31, 0x31, 0x32, 0x38, 0x30, 0x39, 0x32, 0x36,
    0x34, 0x38, 0x5a, 0x30, 0x18, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55,
    0x04, 0x03, 0x0c, 0x01, 0x61, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55,
    0x04, 0x0a, 0x0c, 0x01, 0x62, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x96, 0xa3, 0xc8, 0x30,
    0xe7, 0xf3, 0x61, 0x37, 0x5a, 0xd9, 0x66, 0x90, 0x80, 0x36, 0xab, 0x3d,
    0x4d, 0x68, 0x21, 0x9b, 0xa4, 0x81, 0x08, 0x24, 0xbb, 0x51, 0x79, 0x55,
    0x8b, 0x20, 0x45, 0x31, 0xdc, 0x30, 0xf9, 0xb4, 0xff, 0x6f, 0x28, 0xd7,
    0x77, 0x0f, 0x3d, 0x3e, 0x5d, 0x6c, 0x87, 0x21, 0xb8, 0x20, 0x85, 0x5e,
    0x4c, 0x76, 0x66, 0xdb, 0x88, 0xe6, 0x6b, 0xfb, 0x5a, 0xca, 0x16, 0xa8,
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    0x03, 0x47, 0x00, 0x30, 0x44, 0x02, 0x20, 0x0a, 0x42, 0xe5, 0xe7, 0xa8,
    0x5e, 0x9b, 0xe9, 0x94, 0x3b, 0x51, 0x46, 0x0b, 0x24, 0x22, 0x85, 0xf5,
    0xb2, 0x5b, 0xbf, 0xe9, 0xb2, 0x0d, 0x66, 0xe8, 0x64, 0x26, 0x2f, 0xf5,
    0xfc, 0x1b, 0xbe, 0x02, 0x20, 0x59, 0xbd, 0xee, 0xb8, 0x3e, 0x24, 0x3d,
    0xa7, 0x97, 0x68, 0x22, 0x94, 0xcb, 0xf8, 0xe6, 0x28, 0x7c, 0xd2, 0xc2,
    0x15, 0x26, 0xf3, 0xef, 0x63, 0x5a, 0xd1, 0xfe, 0x95, 0xc1, 0x91, 0xf3,
    0x59,
};

TEST(certificate_with_malformed_validity_date)
{
    uint8_t der[sizeof sample_der];
    apm_certificate *cert = NULL;
    int64_t before = 0, after = 0;
    char text[128];
    size_t len = 0;
    uint8_t *p;

    /* The intact certificate reads back. */
    ASSERT_OK(apm_certificate_load_der(sample_der, sizeof sample_der, &cert));
    ASSERT_OK(apm_certificate_get_validity(cert, &before, &after));
    ASSERT_EQ(before, 1796117208LL); /* 2026-12-01 09:26:48 UTC */
    ASSERT_EQ(after, 2111477208LL);
    ASSERT_OK(apm_certificate_close(cert));

    /* NotBefore's month "12" becomes "92": still DER that loads, not a date. */
    memcpy(der, sample_der, sizeof der);
    p = memmem(der, sizeof der, "\x17\x0d" "2612", 6);
    ASSERT_NOT_NULL(p);
    p[4] = '9';
    ASSERT_OK(apm_certificate_load_der(der, sizeof der, &cert));
    before = after = -1;
    ASSERT_STATUS(apm_certificate_get_validity(cert, &before, &after), APM_E_CRYPTOGRAPHIC);
    ASSERT_LAST_MESSAGE("The certificate data is not valid: its NotBefore date cannot be read.");
    /* Out-parameters are written only on success. */
    ASSERT_EQ(before, -1);
    ASSERT_EQ(after, -1);
    /* The other getters still answer. */
    ASSERT_OK(apm_certificate_get_subject(cert, text, sizeof text, &len));
    ASSERT_STR_EQ(text, "O=b, CN=a");
    ASSERT_OK(apm_certificate_get_thumbprint(cert, text, sizeof text, &len));
    ASSERT_UEQ(len, 40);
    ASSERT_OK(apm_certificate_get_raw_data(cert, NULL, 0, &len));
    ASSERT_UEQ(len, sizeof der);
    ASSERT_OK(apm_certificate_close(cert));

    /* The same for NotAfter (its month "11" becomes "19"). */
    memcpy(der, sample_der, sizeof der);
    p = memmem(der, sizeof der, "\x17\x0d" "3611", 6);
    ASSERT_NOT_NULL(p);
    p[4] = '9';
    ASSERT_OK(apm_certificate_load_der(der, sizeof der, &cert));
    ASSERT_STATUS(apm_certificate_get_validity(cert, &before, &after), APM_E_CRYPTOGRAPHIC);
    ASSERT_LAST_MESSAGE("The certificate data is not valid: its NotAfter date cannot be read.");
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- a custom stream that reports more bytes read than asked ------------- */

static const char read_too_much_message[] =
    "The custom stream reported more bytes read than it was asked for.";

TEST(custom_stream_read_reporting_more_than_asked_fails)
{
    static const size_t lies[] = {17, 116, (size_t)1 << 20, SIZE_MAX - 1, SIZE_MAX};
    apm_stream *cs = NULL;
    apm_async_result *r = NULL;
    manual_stream m;
    hx_cb cb;
    size_t n, i;
    uint8_t buf[32];

    memset(&m, 0, sizeof m);
    ASSERT_OK(apm_stream_create_custom(&manual_vtable, &m, &cs));
    for (i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        hx_cb_init(&cb);
        /* 16 bytes asked for, at offset 8 of a 32-byte buffer. */
        ASSERT_OK(apm_stream_begin_read(cs, buf, sizeof buf, 8, 16, hx_cb_record, &cb, &r));
        ASSERT_UEQ(m.count, 16);
        ASSERT_PTR_EQ(m.buffer, buf + 8);
        /* The completion itself is accepted; the read fails. */
        ASSERT_OK(apm_custom_stream_complete(m.token, APM_OK, lies[i]));
        ASSERT_EQ(HX_CB_CALLS(&cb), 1);
        n = 12345;
        ASSERT_STATUS(apm_stream_end_read(cs, r, &n), APM_E_IO);
        ASSERT_LAST_MESSAGE(read_too_much_message);
        ASSERT_UEQ(n, 12345);
        /* The token is used up. */
        ASSERT_STATUS(apm_custom_stream_complete(m.token, APM_OK, 1), APM_E_ARGUMENT);
        hx_cb_destroy(&cb);
    }

    /* Exactly what was asked for is fine, and the stream still works. */
    hx_cb_init(&cb);
    ASSERT_OK(apm_stream_begin_read(cs, buf, sizeof buf, 8, 16, hx_cb_record, &cb, &r));
    ASSERT_OK(apm_custom_stream_complete(m.token, APM_OK, 16));
    ASSERT_OK(apm_stream_end_read(cs, r, &n));
    ASSERT_UEQ(n, 16);
    hx_cb_destroy(&cb);
    ASSERT_OK(apm_stream_close(cs));
    ASSERT_OK(apm_runtime_shutdown());
}

/* A stream whose reads complete at once, inside begin_read, with one byte
 * more than asked. */
static apm_status liar_begin_read(void *ctx, uint8_t *buffer, size_t count,
                                  apm_custom_complete_fn complete, uint64_t token)
{
    (void)ctx;
    memset(buffer, 'z', count);
    ASSERT_OK(complete(token, APM_OK, count + 1));
    return APM_OK;
}

static const apm_stream_vtable liar_vtable = {liar_begin_read, manual_begin_write, NULL};

TEST(custom_stream_inline_read_reporting_more_than_asked_fails)
{
    apm_stream *cs = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    size_t n = 777;
    uint8_t buf[16];

    ASSERT_OK(apm_stream_create_custom(&liar_vtable, NULL, &cs));
    /* Blocking read. */
    ASSERT_STATUS(apm_stream_read(cs, buf, sizeof buf, 0, sizeof buf, &n), APM_E_IO);
    ASSERT_LAST_MESSAGE(read_too_much_message);
    ASSERT_UEQ(n, 777);
    /* Begin/End, completed synchronously. */
    hx_cb_init(&cb);
    ASSERT_OK(apm_stream_begin_read(cs, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    ASSERT_EQ(cb.completed_sync, 1);
    ASSERT_STATUS(apm_stream_end_read(cs, r, &n), APM_E_IO);
    ASSERT_LAST_MESSAGE(read_too_much_message);
    ASSERT_UEQ(n, 777);
    hx_cb_destroy(&cb);
    ASSERT_OK(apm_stream_close(cs));
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- garbage instead of a TLS hello -------------------------------------- */

static const char unexpected_packet_message[] =
    "The handshake failed due to an unexpected packet format.";

static void assert_inner_contains(const char *text)
{
    char inner[512];
    size_t len = 0;
    ASSERT_OK(apm_last_error_inner_message(inner, sizeof inner, &len));
    ASSERT_STR_CONTAINS(inner, text);
}

/* An SslStream over a connection whose other end is the plain fd *peer. */
static apm_stream *ssl_over_plain_peer(int *peer)
{
    apm_socket *sock = hx_apm_connect_to_fd(peer);
    apm_stream *ns = NULL, *ssl = NULL;
    ASSERT_OK(apm_network_stream_create(sock, 1, &ns));
    ASSERT_OK(apm_ssl_stream_create(ns, 0, &ssl));
    return ssl;
}

static const struct garbage_case {
    const char *data;
    size_t len;
    const char *reason; /* in OpenSSL's reason, the inner message */
} garbage_cases[] = {
    {"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 35, "http request"},
    {"CONNECT localhost:443 HTTP/1.1\r\n\r\n", 34, "https proxy request"},
    {"SSH-2.0-OpenSSH_9.2\r\n", 21, "wrong version number"},
    {"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16, "wrong version number"},
    {"\x16\x09\x09\x00\x10" "0123456789abcdef", 21, "wrong version number"},
    {"\x16\x03\x01\xff\xff" "0123456789abcdef", 21, "packet length too long"},
};

TEST(server_handshake_with_garbage_is_unexpected_packet_format)
{
    apm_certificate *cert = NULL;
    size_t i;

    ASSERT_OK(apm_certificate_load_pem((const uint8_t *)hx_test_cert_pem, strlen(hx_test_cert_pem),
                                       (const uint8_t *)hx_test_key_pem, strlen(hx_test_key_pem), &cert));
    for (i = 0; i < sizeof garbage_cases / sizeof garbage_cases[0]; i++) {
        const struct garbage_case *g = &garbage_cases[i];
        int peer = -1;
        apm_stream *ssl = ssl_over_plain_peer(&peer);
        hx_write_all(peer, g->data, g->len);
        if (i % 2 == 0) {
            ASSERT_STATUS(apm_ssl_stream_authenticate_as_server(ssl, cert, 0, APM_SSL_PROTOCOLS_NONE, 0),
                          APM_E_IO);
        } else {
            apm_async_result *r = NULL;
            hx_cb cb;
            hx_cb_init(&cb);
            ASSERT_OK(apm_ssl_stream_begin_authenticate_as_server(ssl, cert, 0, APM_SSL_PROTOCOLS_NONE, 0,
                                                                 hx_cb_record, &cb, &r));
            ASSERT_EVENT(&cb.done, 1);
            ASSERT_STATUS(apm_ssl_stream_end_authenticate_as_server(ssl, r), APM_E_IO);
            hx_cb_destroy(&cb);
        }
        ASSERT_LAST_MESSAGE(unexpected_packet_message);
        assert_inner_contains(g->reason);
        ASSERT_OK(apm_stream_close(ssl));
        hx_close(peer);
    }
    ASSERT_OK(apm_certificate_close(cert));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(client_handshake_with_garbage_is_unexpected_packet_format)
{
    static const char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    int peer = -1;
    apm_stream *ssl = ssl_over_plain_peer(&peer);

    /* A plain HTTP server answers the ClientHello. */
    hx_write_all(peer, reply, sizeof reply - 1);
    ASSERT_STATUS(apm_ssl_stream_authenticate_as_client(ssl, "localhost", NULL, APM_SSL_PROTOCOLS_NONE, 0),
                  APM_E_IO);
    ASSERT_LAST_MESSAGE(unexpected_packet_message);
    assert_inner_contains("wrong version number");
    ASSERT_OK(apm_stream_close(ssl));
    hx_close(peer);
    ASSERT_OK(apm_runtime_shutdown());
}

/*
 * ffi-tests/http.c - HttpWebRequest against Python's http.server (peers/http_peer.py, plain and
 * TLS): GET, HEAD, POST and PUT with ContentLength, chunked and buffered bodies of 0 B, 1 B and
 * 3 MiB checked by SHA-256 at the server, the request head on the wire, the ContentLength rules,
 * End's checks in the seed's order, Abort, redirects and their limit, 404/500 as ProtocolError
 * with a readable body, gzip and deflate, keep-alive reuse and the connection limit counted at
 * the server, idle expiry, Basic credentials, hostile servers (truncated status line, headers
 * past the limit, a bad chunk, a short body, a reset mid-body, silence -> Timeout, trickling ->
 * ReadWriteTimeout), refused connections, and the TransportContext's channel bindings against
 * what the Python ssl server computes for the same connection; proxies (peers/http_proxy_peer.py):
 * http in absolute form and https through a CONNECT tunnel, keep-alive through the proxy, the
 * environment's proxy and no_proxy, Basic proxy credentials against 407, a refused CONNECT, a
 * proxy that is down or whose name does not resolve; a server name that does not resolve.
 */
#include "harness.h"

#include <unistd.h>

#define MIB (1024u * 1024u)

/* ---- the server ------------------------------------------------------------ */

typedef struct server {
    hx_peer peer;
    int port;
    int tls;
    /* The proxy requests to it go through: NULL the default (the environment's), "" none. */
    const char *proxy;
} server;

static void server_start(server *s, int tls)
{
    char line[128];
    const char *args[8] = {NULL};
    s->tls = tls;
    s->proxy = NULL;
    if (tls) {
        hx_pki_make();
        args[0] = "--cert";
        args[1] = hx_pki_file("server.pem");
        args[2] = "--key";
        args[3] = hx_pki_file("server.key");
        args[4] = "--tls";
        args[5] = "1.2";
    }
    hx_peer_start(&s->peer, "http_peer.py", args);
    hx_peer_read_line(&s->peer, line, sizeof line);
    ASSERT_EQ(sscanf(line, "PORT %d", &s->port), 1);
}

/* http(s)://localhost:PORT/PATH (rotating static buffers). */
static const char *url(server *s, const char *path)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s://localhost:%d%s", s->tls ? "https" : "http", s->port, path);
    return b;
}

static apm_http_request *request(server *s, const char *path)
{
    apm_http_request *r = NULL;
    ASSERT_OK(apm_http_request_create(url(s, path), &r));
    if (s->tls)
        ASSERT_OK(apm_http_request_set_trusted_ca_file(r, hx_pki_file("ca.pem")));
    if (s->proxy != NULL)
        ASSERT_OK(apm_http_request_set_proxy(r, s->proxy));
    return r;
}

/* A blocking GET of PATH; returns the body (caller frees). */
static char *get_text(server *s, const char *path)
{
    apm_http_request *r = request(s, path);
    apm_http_response *resp = NULL;
    char *body;
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    body = hx_response_body(resp, NULL);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    return body;
}

static int count_field(server *s, const char *key)
{
    char *t = get_text(s, "/count");
    int v = atoi(hx_field(t, key));
    free(t);
    return v;
}

static void sha_of_pattern(size_t len, char hex[65])
{
    hx_sha256 c;
    uint8_t buf[65536];
    size_t done = 0;
    hx_sha256_init(&c);
    while (done < len) {
        size_t n = len - done < sizeof buf ? len - done : sizeof buf;
        hx_pattern_fill(buf, n, 7, done);
        hx_sha256_update(&c, buf, n);
        done += n;
    }
    hx_sha256_hex(&c, hex);
}

/* ---- bodies ------------------------------------------------------------------ */

enum body_mode { BY_LENGTH, CHUNKED, BUFFERED };

static void on_done(apm_async_result *result, void *state)
{
    (void)result;
    hx_event_signal((hx_event *)state);
}

/* Sends LEN pattern bytes with METHOD to /echo the way MODE says, with blocking or Begin/End
 * writes of at most 256 KiB, and checks what the server received. */
static void upload(server *s, const char *method, enum body_mode mode, size_t len, int async)
{
    apm_http_request *r = request(s, "/echo");
    apm_stream *st = NULL;
    apm_http_response *resp = NULL;
    uint8_t *data = hx_xmalloc(len + 1);
    size_t done = 0;
    char want[65], *body;
    hx_pattern_fill(data, len, 7, 0);
    sha_of_pattern(len, want);
    ASSERT_OK(apm_http_request_set_method(r, method));
    if (mode == BY_LENGTH)
        ASSERT_OK(apm_http_request_set_content_length(r, (int64_t)len));
    if (mode == CHUNKED)
        ASSERT_OK(apm_http_request_set_send_chunked(r, 1));
    ASSERT_OK(apm_http_request_get_request_stream(r, &st, NULL));
    while (done < len || (len == 0 && done == 0 && async < 2)) {
        size_t n = len - done < 256 * 1024 ? len - done : 256 * 1024;
        if (async) {
            hx_event ev;
            apm_async_result *ar = NULL;
            hx_event_init(&ev);
            ASSERT_OK(apm_stream_begin_write(st, data, len + 1, done, n, on_done, &ev, &ar));
            ASSERT_EVENT(&ev, 1);
            ASSERT_OK(apm_stream_end_write(st, ar));
            hx_event_destroy(&ev);
        } else {
            ASSERT_OK(apm_stream_write(st, data, len + 1, done, n));
        }
        done += n;
        if (len == 0)
            break;
    }
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    body = hx_response_body(resp, NULL);
    ASSERT_STR_EQ(hx_field(body, "method"), method);
    ASSERT_EQ(strtoull(hx_field(body, "len"), NULL, 10), len);
    ASSERT_STR_EQ(hx_field(body, "sha"), want);
    ASSERT_STR_EQ(hx_field(body, "te"), mode == CHUNKED ? "chunked" : "-");
    free(body);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    free(data);
}

static void upload_sizes(int tls, const char *method, enum body_mode mode, int async)
{
    server s;
    server_start(&s, tls);
    upload(&s, method, mode, 0, async);
    upload(&s, method, mode, 1, async);
    upload(&s, method, mode, 3 * MIB + 17, async);
    if (tls)
        hx_pki_remove();
}

TEST(post_content_length_0_1_3mib) { upload_sizes(0, "POST", BY_LENGTH, 0); }
TEST(put_content_length_0_1_3mib_begin_write) { upload_sizes(0, "PUT", BY_LENGTH, 1); }
TEST(post_chunked_0_1_3mib) { upload_sizes(0, "POST", CHUNKED, 1); }
TEST(put_chunked_0_1_3mib_blocking) { upload_sizes(0, "PUT", CHUNKED, 0); }
TEST(post_buffered_0_1_3mib) { upload_sizes(0, "POST", BUFFERED, 0); }
TEST(https_post_content_length_and_chunked) {
    upload_sizes(1, "POST", BY_LENGTH, 1);
}
TEST(https_put_buffered) { upload_sizes(1, "PUT", BUFFERED, 0); }

SLOW_TEST(post_64mib_by_length_chunked_and_buffered)
{
    server s;
    server_start(&s, 0);
    upload(&s, "POST", BY_LENGTH, 64 * MIB, 1);
    upload(&s, "POST", CHUNKED, 64 * MIB, 0);
    upload(&s, "POST", BUFFERED, 64 * MIB, 0);
}

/* ---- GET, HEAD, the head on the wire ------------------------------------------- */

TEST(get_and_the_response_properties)
{
    server s;
    apm_http_request *r;
    apm_http_response *resp = NULL;
    char text[256], *body;
    size_t len = 0, count = 0;
    int32_t code = 0, found = 0, major = 0, minor = 0;
    int64_t cl = 0;
    server_start(&s, 0);
    r = request(&s, "/echo?x=1");
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    ASSERT_OK(apm_http_response_get_status_code(resp, &code));
    ASSERT_EQ(code, 200);
    ASSERT_OK(apm_http_response_get_status_description(resp, text, sizeof text, &len));
    ASSERT_STR_EQ(text, "OK");
    ASSERT_OK(apm_http_response_get_content_type(resp, text, sizeof text, &len));
    ASSERT_STR_EQ(text, "text/plain; charset=utf-8");
    ASSERT_OK(apm_http_response_get_header(resp, "content-type", text, sizeof text, &len, &found));
    ASSERT_EQ(found, 1);
    ASSERT_OK(apm_http_response_get_header(resp, "X-None", text, sizeof text, &len, &found));
    ASSERT_EQ(found, 0);
    ASSERT_OK(apm_http_response_get_header_count(resp, &count));
    ASSERT_GE(count, 3);
    ASSERT_OK(apm_http_response_get_protocol_version(resp, &major, &minor));
    ASSERT_EQ(major * 10 + minor, 11);
    ASSERT_OK(apm_http_response_get_response_uri(resp, text, sizeof text, &len));
    ASSERT_STR_EQ(text, url(&s, "/echo?x=1"));
    ASSERT_OK(apm_http_response_get_content_length(resp, &cl));
    body = hx_response_body(resp, &len);
    ASSERT_EQ((int64_t)len, cl);
    ASSERT_STR_EQ(hx_field(body, "method"), "GET");
    ASSERT_STR_EQ(hx_field(body, "cl"), "-");
    ASSERT_STR_EQ(hx_field(body, "path"), "/echo?x=1");
    free(body);
    /* A second GetResponse hands out the same response. */
    {
        apm_http_response *again = NULL;
        ASSERT_OK(apm_http_request_get_response(r, &again));
        ASSERT_OK(apm_http_response_get_status_code(again, &code));
        ASSERT_EQ(code, 200);
        ASSERT_OK(apm_http_response_close(again));
    }
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    ASSERT_OK(apm_http_request_close(r)); /* idempotent */
}

TEST(head_has_no_body)
{
    server s;
    apm_http_request *r;
    apm_http_response *resp = NULL;
    size_t len = 1;
    int64_t cl = 0;
    char *body;
    server_start(&s, 0);
    r = request(&s, "/echo");
    ASSERT_OK(apm_http_request_set_method(r, "HEAD"));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    ASSERT_OK(apm_http_response_get_content_length(resp, &cl));
    ASSERT_EQ(cl, 1234);
    body = hx_response_body(resp, &len);
    ASSERT_EQ(len, 0);
    free(body);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    /* The connection was reused after the bodiless response. */
    ASSERT_EQ(count_field(&s, "connections"), 1);
}

TEST(the_request_head_on_the_wire)
{
    server s;
    apm_http_request *r;
    apm_http_response *resp = NULL;
    apm_stream *st = NULL;
    char expected[512], *body;
    server_start(&s, 0);
    r = request(&s, "/raw?q=1");
    ASSERT_OK(apm_http_request_set_method(r, "POST"));
    ASSERT_OK(apm_http_request_set_header_property(r, "Content-Type", "text/plain"));
    ASSERT_OK(apm_http_request_set_header(r, "X-Mine", "1"));
    ASSERT_OK(apm_http_request_add_header(r, "x-mine", "2"));
    ASSERT_OK(apm_http_request_set_content_length(r, 5));
    ASSERT_OK(apm_http_request_get_request_stream(r, &st, NULL));
    ASSERT_OK(apm_stream_write(st, (const uint8_t *)"hello", 5, 0, 5));
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    body = hx_response_body(resp, NULL);
    snprintf(expected, sizeof expected,
             "POST /raw?q=1 HTTP/1.1\r\nContent-Type: text/plain\r\nX-Mine: 1,2\r\n"
             "Host: localhost:%d\r\nContent-Length: 5\r\nConnection: Keep-Alive\r\n\r\n",
             s.port);
    ASSERT_STR_EQ(body, expected);
    free(body);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    /* The next request on the same connection no longer says Keep-Alive; GET has no length. */
    body = get_text(&s, "/raw");
    snprintf(expected, sizeof expected, "GET /raw HTTP/1.1\r\nHost: localhost:%d\r\n\r\n", s.port);
    ASSERT_STR_EQ(body, expected);
    free(body);
}

/* ---- the ContentLength rules ------------------------------------------------------ */

TEST(get_and_head_cannot_have_a_request_stream)
{
    server s;
    apm_http_request *r;
    apm_stream *st = NULL;
    apm_async_result *ar = NULL;
    const char *methods[] = {"GET", "HEAD"};
    server_start(&s, 0);
    for (int i = 0; i < 2; i++) {
        r = request(&s, "/echo");
        ASSERT_OK(apm_http_request_set_method(r, methods[i]));
        ASSERT_STATUS(apm_http_request_get_request_stream(r, &st, NULL), APM_E_PROTOCOL_VIOLATION);
        ASSERT_LAST_MESSAGE("Cannot send a content-body with this verb-type.");
        ASSERT_STATUS(apm_http_request_begin_get_request_stream(r, NULL, NULL, &ar), APM_E_PROTOCOL_VIOLATION);
        ASSERT_NULL(ar);
        ASSERT_OK(apm_http_request_set_content_length(r, 3));
        {
            apm_http_response *resp = NULL;
            ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_PROTOCOL_VIOLATION);
            ASSERT_LAST_MESSAGE("Content-Length or Chunked Encoding cannot be set for an operation that does not write data.");
        }
        ASSERT_OK(apm_http_request_close(r));
    }
}

TEST(a_write_past_content_length_fails_before_any_byte_is_sent)
{
    server s;
    apm_http_request *r;
    apm_stream *st = NULL;
    apm_async_result *ar = NULL;
    apm_http_response *resp = NULL;
    char *body;
    server_start(&s, 0);
    r = request(&s, "/echo");
    ASSERT_OK(apm_http_request_set_method(r, "POST"));
    ASSERT_OK(apm_http_request_set_content_length(r, 5));
    ASSERT_OK(apm_http_request_get_request_stream(r, &st, NULL));
    ASSERT_STATUS(apm_stream_write(st, (const uint8_t *)"toolong", 7, 0, 7), APM_E_PROTOCOL_VIOLATION);
    ASSERT_LAST_MESSAGE("Bytes to be written to the stream exceed the Content-Length bytes size specified.");
    ASSERT_OK(apm_stream_write(st, (const uint8_t *)"abc", 3, 0, 3));
    ASSERT_STATUS(apm_stream_begin_write(st, (const uint8_t *)"def", 3, 0, 3, NULL, NULL, &ar), APM_E_PROTOCOL_VIOLATION);
    ASSERT_NULL(ar);
    ASSERT_OK(apm_stream_write(st, (const uint8_t *)"de", 2, 0, 2));
    /* Setting ContentLength once the stream was taken. */
    ASSERT_STATUS(apm_http_request_set_content_length(r, 9), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("This property cannot be set after writing has started.");
    ASSERT_STATUS(apm_http_request_set_send_chunked(r, 1), APM_E_INVALID_OPERATION);
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    body = hx_response_body(resp, NULL);
    ASSERT_STR_EQ(hx_field(body, "len"), "5");
    free(body);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
}

TEST(closing_with_bytes_owed_fails_and_aborts_the_request)
{
    server s;
    apm_http_request *r;
    apm_stream *st = NULL;
    apm_http_response *resp = NULL;
    server_start(&s, 0);
    r = request(&s, "/echo");
    ASSERT_OK(apm_http_request_set_method(r, "PUT"));
    ASSERT_OK(apm_http_request_set_content_length(r, 10));
    ASSERT_OK(apm_http_request_get_request_stream(r, &st, NULL));
    ASSERT_OK(apm_stream_write(st, (const uint8_t *)"abc", 3, 0, 3));
    ASSERT_STATUS(apm_stream_close(st), APM_E_IO);
    ASSERT_LAST_MESSAGE("Cannot close stream until all bytes are written.");
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_REQUEST_CANCELED);
    ASSERT_LAST_MESSAGE("The request was aborted: The request was canceled.");
    ASSERT_OK(apm_http_request_close(r));
    /* The server saw the connection but no complete request (the /count is the only one). */
    ASSERT_EQ(count_field(&s, "complete"), 1);
}

TEST(a_length_without_a_body_is_refused)
{
    server s;
    apm_http_request *r;
    apm_http_response *resp = NULL;
    server_start(&s, 0);
    r = request(&s, "/echo");
    ASSERT_OK(apm_http_request_set_method(r, "POST"));
    ASSERT_OK(apm_http_request_set_content_length(r, 4));
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_PROTOCOL_VIOLATION);
    ASSERT_LAST_MESSAGE_CONTAINS("You must provide a request body");
    ASSERT_OK(apm_http_request_close(r));
    /* POST without a stream and without a length sends Content-Length: 0. */
    r = request(&s, "/echo");
    ASSERT_OK(apm_http_request_set_method(r, "POST"));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    {
        char *body = hx_response_body(resp, NULL);
        ASSERT_STR_EQ(hx_field(body, "cl"), "0");
        free(body);
    }
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
}

TEST(settings_refuse_what_dotnet_refuses)
{
    apm_http_request *r = NULL;
    ASSERT_STATUS(apm_http_request_create("ftp://localhost/", &r), APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE("The URI prefix is not recognized.");
    ASSERT_STATUS(apm_http_request_create("not a uri", &r), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_http_request_create(NULL, &r), APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_http_request_create("http://localhost:1/", &r));
    ASSERT_STATUS(apm_http_request_set_method(r, ""), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("Cannot set null or blank methods on request.");
    ASSERT_STATUS(apm_http_request_set_header(r, "Content-Type", "x"), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("The 'Content-Type' header must be modified using the appropriate property or method.");
    ASSERT_STATUS(apm_http_request_set_header(r, "X-A", "a\r\nb"), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("Specified value has invalid CRLF characters.");
    ASSERT_STATUS(apm_http_request_set_header_property(r, "Connection", "keep-alive"), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("Keep-Alive and Close may not be set using this property.");
    ASSERT_STATUS(apm_http_request_set_header_property(r, "Expect", "100-continue"), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_http_request_set_header_property(r, "Transfer-Encoding", "chunked"), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("Chunked encoding must be set via the SendChunked property.");
    ASSERT_STATUS(apm_http_request_set_header_property(r, "Transfer-Encoding", "gzip"), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_http_request_set_timeout(r, -2), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_LAST_MESSAGE_CONTAINS("Timeout can be only be set to 'System.Threading.Timeout.Infinite' or a value >= 0.");
    ASSERT_STATUS(apm_http_request_set_read_write_timeout(r, 0), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_http_request_set_protocol_version(r, 2, 0), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("Only HTTP/1.0 and HTTP/1.1 version requests are currently supported.");
    ASSERT_STATUS(apm_http_request_set_content_length(r, -1), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_http_request_set_maximum_automatic_redirections(r, 0), APM_E_ARGUMENT);
    {
        int64_t cl = 0;
        int32_t v = 0;
        ASSERT_OK(apm_http_request_get_content_length(r, &cl));
        ASSERT_EQ(cl, -1);
        ASSERT_OK(apm_http_request_get_timeout(r, &v));
        ASSERT_EQ(v, 100000);
        ASSERT_OK(apm_http_request_get_read_write_timeout(r, &v));
        ASSERT_EQ(v, 300000);
        ASSERT_OK(apm_http_request_get_maximum_automatic_redirections(r, &v));
        ASSERT_EQ(v, 50);
        ASSERT_OK(apm_http_request_get_maximum_response_headers_length(r, &v));
        ASSERT_EQ(v, 64);
        ASSERT_OK(apm_http_request_get_keep_alive(r, &v));
        ASSERT_EQ(v, 1);
    }
    ASSERT_OK(apm_http_request_close(r));
    ASSERT_STATUS(apm_http_request_set_timeout(r, 5), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_http_request_set_timeout((apm_http_request *)(void *)0x1234, 5), APM_E_ARGUMENT);
}

/* ---- Begin/End, Abort --------------------------------------------------------------- */

TEST(end_checks_follow_the_seed_order)
{
    server s;
    apm_http_request *a, *b;
    apm_async_result *ra = NULL, *rb = NULL;
    apm_stream *st = NULL;
    apm_transport_context *ctx = NULL;
    hx_cb cb;
    size_t blen = 99;
    server_start(&s, 0);
    a = request(&s, "/echo");
    b = request(&s, "/echo");
    ASSERT_OK(apm_http_request_set_method(a, "POST"));
    ASSERT_OK(apm_http_request_set_method(b, "POST"));
    hx_cb_init(&cb);
    ASSERT_OK(apm_http_request_begin_get_request_stream(a, hx_cb_record, &cb, &ra));
    ASSERT_OK(apm_http_request_begin_get_request_stream(b, NULL, NULL, &rb));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_http_request_begin_get_request_stream(a, NULL, NULL, &rb), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_http_request_end_get_request_stream(a, NULL, &st, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_http_request_end_get_request_stream(a, rb, &st, NULL), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE("The IAsyncResult object was not returned from the corresponding asynchronous method on this class.");
    ASSERT_OK(apm_http_request_end_get_request_stream(a, ra, &st, &ctx));
    ASSERT_STATUS(apm_http_request_end_get_request_stream(a, ra, &st, NULL), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("EndGetRequestStream can only be called once for each asynchronous operation.");
    /* http: the TransportContext has no channel binding (0 bytes, .NET's null). */
    ASSERT_OK(apm_transport_context_get_channel_binding(ctx, APM_CHANNEL_BINDING_KIND_UNIQUE, NULL, 0, &blen));
    ASSERT_EQ(blen, 0);
    ASSERT_OK(apm_transport_context_close(ctx));
    ASSERT_OK(apm_stream_close(st));
    /* Abort, then End of a completed operation: RequestCanceled. */
    {
        int32_t done = 0;
        ASSERT_OK(apm_async_result_wait(rb, -1, &done));
        ASSERT_OK(apm_http_request_abort(b));
        ASSERT_OK(apm_http_request_abort(b));
        ASSERT_STATUS(apm_http_request_end_get_request_stream(b, rb, &st, NULL), APM_E_WEB);
        ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_REQUEST_CANCELED);
        ASSERT_STATUS(apm_http_request_begin_get_response(b, NULL, NULL, &rb), APM_E_WEB);
    }
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
    ASSERT_OK(apm_http_request_close(a));
    ASSERT_OK(apm_http_request_close(b));
}

TEST(abort_completes_a_pending_get_response_once)
{
    server s;
    apm_http_request *r;
    apm_async_result *ar = NULL;
    apm_http_response *resp = NULL;
    hx_cb cb;
    server_start(&s, 0);
    r = request(&s, "/hostile/silent");
    hx_cb_init(&cb);
    ASSERT_OK(apm_http_request_begin_get_response(r, hx_cb_record, &cb, &ar));
    hx_sleep_ms(100);
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    ASSERT_OK(apm_http_request_abort(r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_OK(apm_http_request_abort(r));
    ASSERT_STATUS(apm_http_request_end_get_response(r, ar, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_REQUEST_CANCELED);
    hx_sleep_ms(50);
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
    ASSERT_OK(apm_http_request_close(r));
}

TEST(begin_get_response_and_begin_read)
{
    server s;
    apm_http_request *r;
    apm_async_result *ar = NULL;
    apm_http_response *resp = NULL;
    apm_stream *st = NULL;
    hx_cb cb;
    uint8_t buf[3000];
    size_t total = 0, n = 0;
    server_start(&s, 0);
    r = request(&s, "/chunked?n=2500");
    hx_cb_init(&cb);
    ASSERT_OK(apm_http_request_begin_get_response(r, hx_cb_record, &cb, &ar));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_OK(apm_http_request_end_get_response(r, ar, &resp));
    ASSERT_OK(apm_http_response_get_response_stream(resp, &st));
    for (;;) {
        hx_event ev;
        hx_event_init(&ev);
        ASSERT_OK(apm_stream_begin_read(st, buf, sizeof buf, total, sizeof buf - total, on_done, &ev, &ar));
        ASSERT_EVENT(&ev, 1);
        ASSERT_OK(apm_stream_end_read(st, ar, &n));
        hx_event_destroy(&ev);
        if (n == 0)
            break;
        total += n;
    }
    ASSERT_EQ(total, 2500);
    ASSERT_EQ(hx_pattern_check(buf, 0, 0, 0), 0);
    for (size_t i = 0; i < total; i++)
        ASSERT_EQ(buf[i], (uint8_t)((i * 7 + 3) & 0xff));
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_http_response_close(resp));
    hx_cb_destroy(&cb);
    ASSERT_OK(apm_http_request_close(r));
}

/* ---- redirects ------------------------------------------------------------------------ */

static char *post_to(server *s, const char *path, const char *body, apm_http_request **out, int32_t *code)
{
    apm_http_request *r = request(s, path);
    apm_stream *st = NULL;
    apm_http_response *resp = NULL;
    char *text;
    ASSERT_OK(apm_http_request_set_method(r, "POST"));
    ASSERT_OK(apm_http_request_get_request_stream(r, &st, NULL)); /* buffered */
    ASSERT_OK(apm_stream_write(st, (const uint8_t *)body, strlen(body), 0, strlen(body)));
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    ASSERT_OK(apm_http_response_get_status_code(resp, code));
    text = hx_response_body(resp, NULL);
    ASSERT_OK(apm_http_response_close(resp));
    *out = r;
    return text;
}

TEST(redirects_follow_the_method_and_body_rules)
{
    server s;
    apm_http_request *r;
    int32_t code = 0;
    char *text, addr[256];
    size_t len;
    struct { const char *path; const char *method; const char *len; } cases[] = {
        {"/redirect/301?to=/echo", "GET", "0"},
        {"/redirect/302?to=/echo", "GET", "0"},
        {"/redirect/303?to=/echo", "GET", "0"},
        {"/redirect/307?to=/echo", "POST", "4"},
        {"/redirect/308?to=/echo", "POST", "4"},
    };
    server_start(&s, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        text = post_to(&s, cases[i].path, "body", &r, &code);
        ASSERT_EQ(code, 200);
        ASSERT_STR_EQ(hx_field(text, "method"), cases[i].method);
        ASSERT_STR_EQ(hx_field(text, "len"), cases[i].len);
        ASSERT_OK(apm_http_request_get_address(r, addr, sizeof addr, &len));
        ASSERT_STR_EQ(addr, url(&s, "/echo"));
        free(text);
        ASSERT_OK(apm_http_request_close(r));
    }
    /* Without AllowAutoRedirect the 302 is the response. */
    {
        apm_http_request *q = request(&s, "/redirect/302?to=/echo");
        apm_http_response *resp = NULL;
        char loc[64];
        ASSERT_OK(apm_http_request_set_allow_auto_redirect(q, 0));
        ASSERT_OK(apm_http_request_get_response(q, &resp));
        ASSERT_OK(apm_http_response_get_status_code(resp, &code));
        ASSERT_EQ(code, 302);
        ASSERT_OK(apm_http_response_get_header(resp, "Location", loc, sizeof loc, &len, NULL));
        ASSERT_STR_EQ(loc, "/echo");
        ASSERT_OK(apm_http_response_close(resp));
        ASSERT_OK(apm_http_request_close(q));
    }
}

TEST(too_many_redirects_is_a_protocol_error)
{
    server s;
    apm_http_request *r;
    apm_http_response *resp = NULL;
    int32_t code = 0;
    server_start(&s, 0);
    r = request(&s, "/loop");
    ASSERT_OK(apm_http_request_set_maximum_automatic_redirections(r, 5));
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_PROTOCOL_ERROR);
    ASSERT_LAST_MESSAGE("Too many automatic redirections were attempted.");
    ASSERT_OK(apm_http_response_from_last_error(&resp));
    ASSERT_NOT_NULL(resp);
    ASSERT_OK(apm_http_response_get_status_code(resp, &code));
    ASSERT_EQ(code, 302);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    /* 1000 redirects with the default limit (50): the same clear error. */
    r = request(&s, "/loop");
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_PROTOCOL_ERROR);
    ASSERT_OK(apm_last_error_clear());
    ASSERT_OK(apm_http_request_close(r));
}

/* ---- errors with a response ----------------------------------------------------------- */

TEST(status_404_and_500_are_protocol_errors_with_a_readable_body)
{
    server s;
    int codes[] = {404, 500};
    const char *messages[] = {"The remote server returned an error: (404) Not Found.",
                              "The remote server returned an error: (500) Internal Server Error."};
    server_start(&s, 0);
    for (int i = 0; i < 2; i++) {
        char path[32], want[64], *body;
        apm_http_request *r;
        apm_http_response *resp = NULL;
        apm_async_result *ar = NULL;
        int32_t code = 0, done = 0;
        snprintf(path, sizeof path, "/status/%d", codes[i]);
        r = request(&s, path);
        ASSERT_OK(apm_http_request_begin_get_response(r, NULL, NULL, &ar));
        ASSERT_OK(apm_async_result_wait(ar, -1, &done));
        ASSERT_STATUS(apm_http_request_end_get_response(r, ar, &resp), APM_E_WEB);
        ASSERT_NULL(resp);
        ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_PROTOCOL_ERROR);
        ASSERT_EQ(apm_last_error_http_status(), codes[i]);
        ASSERT_LAST_MESSAGE(messages[i]);
        ASSERT_OK(apm_http_response_from_last_error(&resp));
        ASSERT_NOT_NULL(resp);
        ASSERT_OK(apm_http_response_get_status_code(resp, &code));
        ASSERT_EQ(code, codes[i]);
        body = hx_response_body(resp, NULL);
        snprintf(want, sizeof want, "status %d body", codes[i]);
        ASSERT_STR_EQ(body, want);
        free(body);
        ASSERT_OK(apm_http_response_close(resp));
        ASSERT_OK(apm_last_error_clear());
        ASSERT_OK(apm_http_response_from_last_error(&resp));
        ASSERT_NULL(resp);
        ASSERT_OK(apm_http_request_close(r));
    }
    /* Both bodies were read to their end: one connection served everything. */
    ASSERT_EQ(count_field(&s, "connections"), 1);
}

/* ---- decompression -------------------------------------------------------------------- */

TEST(gzip_and_deflate_are_decoded_when_asked)
{
    server s;
    const char *paths[] = {"/gzip", "/deflate", "/deflate-raw"};
    server_start(&s, 0);
    for (int i = 0; i < 3; i++) {
        apm_http_request *r = request(&s, paths[i]);
        apm_http_response *resp = NULL;
        int64_t cl = 0;
        size_t len = 0;
        char *body, ae[64];
        ASSERT_OK(apm_http_request_set_automatic_decompression(r, APM_DECOMPRESSION_METHODS_GZIP | APM_DECOMPRESSION_METHODS_DEFLATE));
        ASSERT_OK(apm_http_request_get_response(r, &resp));
        ASSERT_OK(apm_http_response_get_content_length(resp, &cl));
        ASSERT_EQ(cl, -1);
        ASSERT_OK(apm_http_response_get_header(resp, "X-Accept-Encoding", ae, sizeof ae, &len, NULL));
        ASSERT_STR_EQ(ae, "gzip, deflate");
        body = hx_response_body(resp, &len);
        ASSERT_EQ(len, 11000);
        ASSERT_EQ(strncmp(body, "hello gzip hello gzip ", 22), 0);
        free(body);
        ASSERT_OK(apm_http_response_close(resp));
        ASSERT_OK(apm_http_request_close(r));
    }
    /* Not asked: the compressed bytes, with their length. */
    {
        apm_http_request *r = request(&s, "/gzip");
        apm_http_response *resp = NULL;
        int64_t cl = 0;
        size_t len = 0;
        char *body;
        ASSERT_OK(apm_http_request_get_response(r, &resp));
        ASSERT_OK(apm_http_response_get_content_length(resp, &cl));
        body = hx_response_body(resp, &len);
        ASSERT_EQ((int64_t)len, cl);
        ASSERT_EQ((uint8_t)body[0], 0x1f);
        free(body);
        ASSERT_OK(apm_http_response_close(resp));
        ASSERT_OK(apm_http_request_close(r));
    }
}

/* ---- connections ------------------------------------------------------------------------ */

TEST(keep_alive_reuses_one_connection_counted_at_the_server)
{
    server s;
    server_start(&s, 0);
    for (int i = 0; i < 10; i++) {
        char *t = get_text(&s, i % 2 ? "/echo" : "/chunked?n=5000");
        free(t);
    }
    ASSERT_EQ(count_field(&s, "connections"), 1);
    /* KeepAlive off: a connection per request. */
    for (int i = 0; i < 3; i++) {
        apm_http_request *r = request(&s, "/echo");
        apm_http_response *resp = NULL;
        char *t;
        ASSERT_OK(apm_http_request_set_keep_alive(r, 0));
        ASSERT_OK(apm_http_request_get_response(r, &resp));
        t = hx_response_body(resp, NULL);
        free(t);
        ASSERT_OK(apm_http_response_close(resp));
        ASSERT_OK(apm_http_request_close(r));
    }
    /* (the /count itself went on the first, still idle, connection) */
    ASSERT_EQ(count_field(&s, "connections"), 4);
    /* A response closed before its end is not reused. */
    {
        apm_http_request *r = request(&s, "/chunked?n=100000");
        apm_http_response *resp = NULL;
        ASSERT_OK(apm_http_request_get_response(r, &resp));
        ASSERT_OK(apm_http_response_close(resp));
        ASSERT_OK(apm_http_request_close(r));
    }
    ASSERT_EQ(count_field(&s, "connections"), 5);
}

typedef struct slow_req {
    apm_http_request *r;
    hx_event done;
} slow_req;

TEST(the_connection_limit_queues_requests_in_order)
{
    server s;
    slow_req reqs[4];
    server_start(&s, 0);
    {
        apm_http_request *r = request(&s, "/echo");
        ASSERT_OK(apm_http_request_set_connection_limit(r, 1));
        ASSERT_OK(apm_http_request_close(r));
    }
    for (int i = 0; i < 4; i++) {
        apm_async_result *ar = NULL;
        reqs[i].r = request(&s, "/slow?ms=50");
        hx_event_init(&reqs[i].done);
        ASSERT_OK(apm_http_request_begin_get_response(reqs[i].r, on_done, &reqs[i].done, &ar));
    }
    for (int i = 0; i < 4; i++) {
        apm_http_response *resp = NULL;
        char *t;
        ASSERT_EVENT(&reqs[i].done, 1);
        ASSERT_OK(apm_http_request_get_response(reqs[i].r, &resp)); /* the same response again */
        t = hx_response_body(resp, NULL);
        ASSERT_STR_EQ(hx_field(t, "conn"), "1");
        free(t);
        ASSERT_OK(apm_http_response_close(resp));
        ASSERT_OK(apm_http_request_close(reqs[i].r));
        hx_event_destroy(&reqs[i].done);
    }
    ASSERT_EQ(count_field(&s, "connections"), 1);
}

TEST(idle_connections_expire_on_a_timer)
{
    server s;
    char *t;
    server_start(&s, 0);
    {
        apm_http_request *r = request(&s, "/echo");
        ASSERT_OK(apm_http_request_set_max_idle_time(r, 100));
        ASSERT_OK(apm_http_request_close(r));
    }
    t = get_text(&s, "/echo");
    free(t);
    hx_sleep_ms(400);
    ASSERT_EQ(count_field(&s, "connections"), 2);
}

TEST(basic_credentials_answer_the_challenge)
{
    server s;
    apm_http_request *r;
    apm_http_response *resp = NULL;
    char *t;
    server_start(&s, 0);
    r = request(&s, "/basic");
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_http_status(), 401);
    ASSERT_OK(apm_last_error_clear());
    ASSERT_OK(apm_http_request_close(r));
    r = request(&s, "/basic");
    ASSERT_OK(apm_http_request_set_credentials(r, "user", "pass"));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    t = hx_response_body(resp, NULL);
    ASSERT_STR_EQ(t, "welcome");
    free(t);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
}

/* ---- hostile servers ---------------------------------------------------------------------- */

static void expect_web(server *s, const char *path, int timeout_ms, int32_t web_status)
{
    apm_http_request *r = request(s, path);
    apm_http_response *resp = NULL;
    if (timeout_ms > 0)
        ASSERT_OK(apm_http_request_set_timeout(r, timeout_ms));
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), web_status);
    ASSERT_OK(apm_http_request_close(r));
}

/* The body read fails with APM_E_IO and `web_status` in the record. */
static void expect_body_failure(server *s, const char *path, int rw_timeout_ms, int32_t web_status)
{
    apm_http_request *r = request(s, path);
    apm_http_response *resp = NULL;
    apm_stream *st = NULL;
    uint8_t buf[4096];
    size_t n = 0;
    apm_status st_ = APM_OK;
    if (rw_timeout_ms > 0)
        ASSERT_OK(apm_http_request_set_read_write_timeout(r, rw_timeout_ms));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    ASSERT_OK(apm_http_response_get_response_stream(resp, &st));
    for (int i = 0; i < 1000; i++) {
        st_ = apm_stream_read(st, buf, sizeof buf, 0, sizeof buf, &n);
        if (st_ != APM_OK || n == 0)
            break;
    }
    ASSERT_EQ(st_, APM_E_IO);
    ASSERT_EQ(apm_last_error_web_status(), web_status);
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
}

TEST(hostile_servers_give_clear_errors)
{
    server s;
    server_start(&s, 0);
    expect_web(&s, "/hostile/truncated-status", 0, APM_WEB_EXCEPTION_STATUS_SERVER_PROTOCOL_VIOLATION);
    ASSERT_LAST_MESSAGE("The server committed a protocol violation. Section=ResponseStatusLine");
    expect_web(&s, "/hostile/huge-headers", 0, APM_WEB_EXCEPTION_STATUS_MESSAGE_LENGTH_LIMIT_EXCEEDED);
    expect_body_failure(&s, "/hostile/bad-chunk", 0, APM_WEB_EXCEPTION_STATUS_SERVER_PROTOCOL_VIOLATION);
    expect_body_failure(&s, "/hostile/short", 0, APM_WEB_EXCEPTION_STATUS_CONNECTION_CLOSED);
    expect_body_failure(&s, "/hostile/reset", 0, 0);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_CONNECTION_RESET);
}

TEST(a_silent_server_times_out_in_both_forms)
{
    server s;
    apm_http_request *r;
    apm_async_result *ar = NULL;
    apm_http_response *resp = NULL;
    hx_cb cb;
    int64_t t0;
    server_start(&s, 0);
    t0 = hx_now_ms();
    expect_web(&s, "/hostile/silent", 300, APM_WEB_EXCEPTION_STATUS_TIMEOUT);
    ASSERT_LAST_MESSAGE("The operation has timed out");
    ASSERT_LT(hx_now_ms() - t0, 10000);
    r = request(&s, "/hostile/silent");
    ASSERT_OK(apm_http_request_set_timeout(r, 300));
    hx_cb_init(&cb);
    ASSERT_OK(apm_http_request_begin_get_response(r, hx_cb_record, &cb, &ar));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_http_request_end_get_response(r, ar, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_TIMEOUT);
    hx_cb_destroy(&cb);
    ASSERT_OK(apm_http_request_close(r));
}

TEST(a_trickling_server_hits_read_write_timeout)
{
    server s;
    server_start(&s, 0);
    expect_body_failure(&s, "/hostile/trickle", 300, APM_WEB_EXCEPTION_STATUS_TIMEOUT);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_TIMED_OUT);
    /* The Begin form is under the same timer. */
    {
        apm_http_request *r = request(&s, "/hostile/trickle");
        apm_http_response *resp = NULL;
        apm_stream *st = NULL;
        apm_async_result *ar = NULL;
        uint8_t buf[16];
        size_t n = 0;
        hx_cb cb;
        ASSERT_OK(apm_http_request_set_read_write_timeout(r, 300));
        ASSERT_OK(apm_http_request_get_response(r, &resp));
        ASSERT_OK(apm_http_response_get_response_stream(resp, &st));
        hx_cb_init(&cb);
        ASSERT_OK(apm_stream_begin_read(st, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &ar));
        ASSERT_EVENT(&cb.done, 1);
        ASSERT_STATUS(apm_stream_end_read(st, ar, &n), APM_E_IO);
        ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_TIMEOUT);
        hx_cb_destroy(&cb);
        ASSERT_OK(apm_stream_close(st));
        ASSERT_OK(apm_http_response_close(resp));
        ASSERT_OK(apm_http_request_close(r));
    }
}

TEST(a_refused_connection_is_connect_failure)
{
    apm_http_request *r = NULL;
    apm_http_response *resp = NULL;
    apm_stream *st = NULL;
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", hx_free_port());
    ASSERT_OK(apm_http_request_create(u, &r));
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_CONNECT_FAILURE);
    ASSERT_LAST_MESSAGE("Unable to connect to the remote server");
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_CONNECTION_REFUSED);
    ASSERT_OK(apm_http_request_close(r));
    ASSERT_OK(apm_http_request_create(u, &r));
    ASSERT_OK(apm_http_request_set_method(r, "POST"));
    ASSERT_STATUS(apm_http_request_get_request_stream(r, &st, NULL), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_CONNECT_FAILURE);
    ASSERT_OK(apm_http_request_close(r));
}

/* ---- TLS ------------------------------------------------------------------------------------ */

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

/* The TransportContext of a POST to /cb has the tls-unique and tls-server-end-point the server
 * computes for the same connection. */
static void check_channel_bindings(server *s)
{
    apm_http_request *r;
    apm_stream *st = NULL;
    apm_transport_context *ctx = NULL;
    apm_http_response *resp = NULL;
    uint8_t token[128], binding[256];
    size_t ulen = 0, elen = 0, blen = 0;
    char unique[300], endpoint[300], *body;
    r = request(s, "/cb");
    ASSERT_OK(apm_http_request_set_method(r, "POST"));
    ASSERT_OK(apm_http_request_set_content_length(r, 0));
    ASSERT_OK(apm_http_request_get_request_stream(r, &st, &ctx));
    ASSERT_OK(apm_transport_context_get_channel_binding_token(ctx, APM_CHANNEL_BINDING_KIND_UNIQUE, token, sizeof token, &ulen));
    ASSERT_GT(ulen, 0);
    hex_of(token, ulen, unique);
    ASSERT_OK(apm_transport_context_get_channel_binding_token(ctx, APM_CHANNEL_BINDING_KIND_ENDPOINT, token, sizeof token, &elen));
    ASSERT_EQ(elen, 32);
    hex_of(token, elen, endpoint);
    ASSERT_OK(apm_transport_context_get_channel_binding(ctx, APM_CHANNEL_BINDING_KIND_ENDPOINT, binding, sizeof binding, &blen));
    ASSERT_EQ(blen, 32 + strlen("tls-server-end-point:") + 32);
    ASSERT_OK(apm_transport_context_close(ctx));
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    body = hx_response_body(resp, NULL);
    ASSERT_STR_EQ(hx_field(body, "unique"), unique);
    ASSERT_STR_EQ(hx_field(body, "endpoint"), endpoint);
    free(body);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
}

TEST(https_channel_bindings_equal_the_python_servers)
{
    server s;
    server_start(&s, 1);
    check_channel_bindings(&s);
    hx_pki_remove();
}

TEST(https_validates_the_server_certificate_by_default)
{
    server s;
    apm_http_request *r = NULL;
    apm_http_response *resp = NULL;
    server_start(&s, 1);
    ASSERT_OK(apm_http_request_create(url(&s, "/echo"), &r)); /* no trusted CA: the system store */
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_TRUST_FAILURE);
    ASSERT_LAST_MESSAGE("The underlying connection was closed: Could not establish trust relationship for the SSL/TLS secure channel.");
    ASSERT_OK(apm_http_request_close(r));
    hx_pki_remove();
}

static int32_t accept_all(apm_stream *sender, apm_certificate *c, apm_certificate *const *chain, size_t n,
                          int32_t errors, void *state)
{
    (void)sender, (void)c, (void)chain, (void)n;
    *(int32_t *)state = errors;
    return 1;
}

TEST(https_validation_callback_decides)
{
    server s;
    apm_http_request *r = NULL;
    apm_http_response *resp = NULL;
    int32_t seen = -1;
    char *t;
    server_start(&s, 1);
    ASSERT_OK(apm_http_request_create(url(&s, "/echo"), &r));
    ASSERT_OK(apm_http_request_set_validation_callback(r, accept_all, &seen));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    ASSERT_EQ(seen, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_CHAIN_ERRORS);
    t = hx_response_body(resp, NULL);
    ASSERT_STR_EQ(hx_field(t, "method"), "GET");
    free(t);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    hx_pki_remove();
}

/* A GET of /echo with `configure` applied; returns the request's outcome (the body is read). */
static apm_status get_with(server *s, void (*configure)(apm_http_request *, void *), void *arg)
{
    apm_http_request *r = NULL;
    apm_http_response *resp = NULL;
    apm_status st;
    ASSERT_OK(apm_http_request_create(url(s, "/echo"), &r));
    configure(r, arg);
    st = apm_http_request_get_response(r, &resp);
    if (st == APM_OK) {
        free(hx_response_body(resp, NULL));
        ASSERT_OK(apm_http_response_close(resp));
    }
    ASSERT_OK(apm_http_request_close(r));
    return st;
}

static void lenient(apm_http_request *r, void *seen) { ASSERT_OK(apm_http_request_set_validation_callback(r, accept_all, seen)); }
static void strict(apm_http_request *r, void *unused) { (void)r, (void)unused; }
/* A kept-alive https connection serves only requests with the same TLS settings: one that a
 * lenient callback accepted must not carry a request that validates by default. (/count goes
 * through a connection of its own, made with the test CA file and reused by every /count.) */
TEST(https_connections_are_shared_only_by_requests_with_the_same_tls_settings)
{
    server s;
    int32_t seen = -1, other = -1;
    int before;
    server_start(&s, 1);
    ASSERT_OK(get_with(&s, lenient, &seen));
    ASSERT_EQ(seen, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_CHAIN_ERRORS);
    before = count_field(&s, "connections");
    /* The same callback with the same state: the same connection, not validated again. */
    seen = -1;
    ASSERT_OK(get_with(&s, lenient, &seen));
    ASSERT_EQ(seen, -1);
    ASSERT_EQ(count_field(&s, "connections"), before);
    /* Another state is another callback: a connection of its own, validated. */
    ASSERT_OK(get_with(&s, lenient, &other));
    ASSERT_EQ(other, APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_CHAIN_ERRORS);
    ASSERT_EQ(count_field(&s, "connections"), before + 1);
    /* No callback and no CA file: validated against the system store, refused, though two idle
     * connections to the same server were accepted by callbacks. */
    ASSERT_STATUS(get_with(&s, strict, NULL), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_TRUST_FAILURE);
    hx_pki_remove();
}

/* ---- proxies ------------------------------------------------------------------------------- */

typedef struct proxy_peer {
    hx_peer peer;
    int port;
    char uri[64];
    server self; /* the proxy as a server of its own /stats and /lines, reached directly */
} proxy_peer;

static void proxy_start(proxy_peer *p, const char *const *args)
{
    char line[128];
    hx_peer_start(&p->peer, "http_proxy_peer.py", args);
    hx_peer_read_line(&p->peer, line, sizeof line);
    ASSERT_EQ(sscanf(line, "PORT %d", &p->port), 1);
    snprintf(p->uri, sizeof p->uri, "http://127.0.0.1:%d", p->port);
    p->self.port = p->port;
    p->self.tls = 0;
    p->self.proxy = "";
}

/* A "k=v" field of the proxy's /stats. */
static int proxy_stat(proxy_peer *p, const char *key)
{
    char *t = get_text(&p->self, "/stats");
    int v = atoi(hx_field(t, key));
    free(t);
    return v;
}

/* The proxy saw a request line (formatted with the port) with or without Proxy-Authorization. */
static void proxy_saw(proxy_peer *p, const char *format, int port, int auth)
{
    char want[256], *lines = get_text(&p->self, "/lines");
    int n = snprintf(want, sizeof want, format, port);
    snprintf(want + n, sizeof want - (size_t)n, " auth=%s\n", auth ? "yes" : "no");
    ASSERT_STR_CONTAINS(lines, want);
    free(lines);
}

/* The proxy the request goes through ("" and found 0 when none). */
static void expect_proxy(apm_http_request *r, const char *want)
{
    char text[128];
    size_t len = 0;
    int32_t found = -1;
    ASSERT_OK(apm_http_request_get_proxy(r, text, sizeof text, &len, &found));
    ASSERT_EQ(found, want[0] != '\0');
    ASSERT_STR_EQ(text, want);
}

/* GetResponse of a request to /echo whose body was written: the server got the bytes of SHA.
 * Closes the request. */
static void expect_echo_sha(apm_http_request *r, const char *sha)
{
    apm_http_response *resp = NULL;
    char *body;
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    body = hx_response_body(resp, NULL);
    ASSERT_STR_EQ(hx_field(body, "sha"), sha);
    free(body);
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
}

TEST(proxy_settings_refuse_bad_input)
{
    size_t len = 0;
    apm_http_response *resp = NULL;
    apm_http_request *r;
    server s;
    server_start(&s, 0);
    r = request(&s, "/echo");
    ASSERT_STATUS(apm_http_request_set_proxy(NULL, "http://127.0.0.1:1"), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_http_request_set_proxy(r, "no uri at all"), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_http_request_set_proxy(r, "http://127.0.0.1:1/a/path"), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_http_request_set_proxy(r, "https://127.0.0.1:1"), APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE("Only the 'http' scheme is allowed for proxies.");
    ASSERT_STATUS(apm_http_request_set_proxy(r, "socks5://127.0.0.1:1"), APM_E_NOT_SUPPORTED);
    ASSERT_STATUS(apm_http_request_set_proxy_credentials(r, "user", NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_http_request_get_proxy(r, NULL, 8, &len, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_http_request_use_default_proxy(NULL), APM_E_ARGUMENT_NULL);
    /* Refused settings changed nothing: the request still goes direct. */
    expect_proxy(r, "");
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_STATUS(apm_http_request_set_proxy(r, "http://127.0.0.1:1"), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("This operation cannot be performed after the request has been submitted.");
    ASSERT_STATUS(apm_http_request_use_default_proxy(r), APM_E_INVALID_OPERATION);
    ASSERT_STATUS(apm_http_request_set_proxy_credentials(r, NULL, NULL), APM_E_INVALID_OPERATION);
    ASSERT_OK(apm_http_request_close(r));
    ASSERT_STATUS(apm_http_request_set_proxy(r, NULL), APM_E_OBJECT_DISPOSED);
}

TEST(proxy_http_requests_go_in_absolute_form)
{
    server s;
    proxy_peer p;
    apm_http_request *r;
    char *t, want[64];
    server_start(&s, 0);
    proxy_start(&p, NULL);
    s.proxy = p.uri;
    r = request(&s, "/echo");
    snprintf(want, sizeof want, "%s/", p.uri);
    expect_proxy(r, want);
    ASSERT_OK(apm_http_request_close(r));
    t = get_text(&s, "/echo?x=1");
    ASSERT_STR_EQ(hx_field(t, "method"), "GET");
    ASSERT_STR_EQ(hx_field(t, "path"), "/echo?x=1");
    free(t);
    upload(&s, "POST", BY_LENGTH, 3 * MIB + 17, 0);
    upload(&s, "PUT", CHUNKED, 100000, 1);
    upload(&s, "POST", BUFFERED, 1, 0);
    proxy_saw(&p, "GET http://localhost:%d/echo?x=1 HTTP/1.1", s.port, 0);
    proxy_saw(&p, "POST http://localhost:%d/echo HTTP/1.1", s.port, 0);
    proxy_saw(&p, "PUT http://localhost:%d/echo HTTP/1.1", s.port, 0);
    ASSERT_EQ(proxy_stat(&p, "forwarded"), 4);
    ASSERT_EQ(proxy_stat(&p, "tunnels"), 0);
}

TEST(proxy_keep_alive_reuses_one_proxy_connection)
{
    server s, s2, t;
    proxy_peer p;
    server_start(&s, 0);
    server_start(&s2, 0);
    server_start(&t, 1);
    proxy_start(&p, NULL);
    s.proxy = s2.proxy = t.proxy = p.uri;
    for (int i = 0; i < 6; i++) {
        char *x = get_text(&s, i % 2 ? "/echo" : "/chunked?n=5000");
        free(x);
    }
    /* One connection for the six requests, one for this query of the proxy's own. */
    ASSERT_EQ(proxy_stat(&p, "connections"), 2);
    ASSERT_EQ(proxy_stat(&p, "forwarded"), 6);
    /* The proxy's connections serve any server. */
    free(get_text(&s2, "/echo"));
    ASSERT_EQ(proxy_stat(&p, "connections"), 2);
    /* https: one tunnel for five requests. */
    for (int i = 0; i < 5; i++) {
        char *x = get_text(&t, "/echo");
        ASSERT_STR_EQ(hx_field(x, "conn"), "1");
        free(x);
    }
    ASSERT_EQ(proxy_stat(&p, "tunnels"), 1);
    ASSERT_EQ(proxy_stat(&p, "connections"), 3);
    hx_pki_remove();
}

TEST(proxy_https_goes_through_a_connect_tunnel)
{
    server t;
    proxy_peer p;
    server_start(&t, 1);
    proxy_start(&p, NULL);
    t.proxy = p.uri;
    /* The Begin forms open tunnels too (KeepAlive off: the second request needs a new one). */
    {
        apm_http_request *r = request(&t, "/echo");
        apm_http_response *resp = NULL;
        apm_async_result *ar = NULL;
        apm_stream *st = NULL;
        hx_cb cb;
        ASSERT_OK(apm_http_request_set_keep_alive(r, 0));
        hx_cb_init(&cb);
        ASSERT_OK(apm_http_request_begin_get_response(r, hx_cb_record, &cb, &ar));
        ASSERT_EVENT(&cb.done, 1);
        ASSERT_OK(apm_http_request_end_get_response(r, ar, &resp));
        hx_cb_destroy(&cb);
        ASSERT_OK(apm_http_response_close(resp));
        ASSERT_OK(apm_http_request_close(r));
        r = request(&t, "/echo");
        ASSERT_OK(apm_http_request_set_method(r, "POST"));
        ASSERT_OK(apm_http_request_set_content_length(r, 3));
        hx_cb_init(&cb);
        ASSERT_OK(apm_http_request_begin_get_request_stream(r, hx_cb_record, &cb, &ar));
        ASSERT_EVENT(&cb.done, 1);
        ASSERT_OK(apm_http_request_end_get_request_stream(r, ar, &st, NULL));
        hx_cb_destroy(&cb);
        ASSERT_OK(apm_stream_write(st, (const uint8_t *)"abc", 3, 0, 3));
        ASSERT_OK(apm_stream_close(st));
        expect_echo_sha(r, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        ASSERT_EQ(proxy_stat(&p, "tunnels"), 2);
    }
    upload(&t, "POST", BY_LENGTH, 3 * MIB + 17, 1);
    upload(&t, "PUT", CHUNKED, 1, 0);
    /* The TLS channel is the server's, inside the tunnel. */
    check_channel_bindings(&t);
    proxy_saw(&p, "CONNECT localhost:%d HTTP/1.1", t.port, 0);
    ASSERT_EQ(proxy_stat(&p, "forwarded"), 0);
    hx_pki_remove();
}

TEST(proxy_from_the_environment_and_no_proxy)
{
    server s;
    proxy_peer p;
    apm_http_request *r = NULL;
    apm_http_response *resp = NULL;
    char u[128], want[64];
    server_start(&s, 0);
    proxy_start(&p, NULL);
    /* As .NET reads them: no scheme needed; lower case first; no_proxy names hosts. Read once,
     * at the first request that needs them. */
    snprintf(u, sizeof u, "127.0.0.1:%d", p.port);
    ASSERT_EQ(setenv("http_proxy", u, 1), 0);
    ASSERT_EQ(setenv("HTTP_PROXY", "http://127.0.0.1:1", 1), 0);
    ASSERT_EQ(setenv("no_proxy", " .example.com, 127.0.0.1 ", 1), 0);
    snprintf(want, sizeof want, "http://127.0.0.1:%d/", p.port);
    r = request(&s, "/echo");
    expect_proxy(r, want);
    ASSERT_OK(apm_http_request_close(r));
    free(get_text(&s, "/echo"));
    ASSERT_EQ(proxy_stat(&p, "forwarded"), 1);
    /* 127.0.0.1 is listed: straight to the server. */
    snprintf(u, sizeof u, "http://127.0.0.1:%d/echo", s.port);
    ASSERT_OK(apm_http_request_create(u, &r));
    expect_proxy(r, "");
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    free(hx_response_body(resp, NULL));
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    ASSERT_EQ(proxy_stat(&p, "forwarded"), 1);
    /* Proxy = null, then the default again. */
    r = request(&s, "/echo");
    ASSERT_OK(apm_http_request_set_proxy(r, NULL));
    expect_proxy(r, "");
    ASSERT_OK(apm_http_request_use_default_proxy(r));
    expect_proxy(r, want);
    ASSERT_OK(apm_http_request_close(r));
    /* No https_proxy or all_proxy: https goes direct. */
    ASSERT_OK(apm_http_request_create("https://localhost:1/", &r));
    expect_proxy(r, "");
    ASSERT_OK(apm_http_request_close(r));
    ASSERT_OK(apm_http_request_create("http://www.example.com/", &r));
    expect_proxy(r, "");
    ASSERT_OK(apm_http_request_close(r));
}

TEST(proxy_https_from_the_environments_all_proxy)
{
    server t;
    proxy_peer p;
    char u[64];
    server_start(&t, 1);
    proxy_start(&p, NULL);
    /* all_proxy serves the scheme without a variable of its own. */
    snprintf(u, sizeof u, "http://127.0.0.1:%d", p.port);
    ASSERT_EQ(setenv("ALL_PROXY", u, 1), 0);
    upload(&t, "PUT", BY_LENGTH, 100000, 0);
    proxy_saw(&p, "CONNECT localhost:%d HTTP/1.1", t.port, 0);
    ASSERT_EQ(proxy_stat(&p, "tunnels"), 1);
    hx_pki_remove();
}

/* A request that fails with ProtocolError and the proxy's answer attached, BODY readable. */
static void expect_proxy_refusal(server *s, const char *method, int32_t code, const char *message, const char *body)
{
    apm_http_request *r = request(s, "/echo");
    apm_http_response *resp = NULL, *attached = NULL;
    apm_stream *st = NULL;
    char *t;
    apm_status got;
    ASSERT_OK(apm_http_request_set_method(r, method));
    got = strcmp(method, "GET") == 0 ? apm_http_request_get_response(r, &resp) : apm_http_request_get_request_stream(r, &st, NULL);
    ASSERT_EQ(got, APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), APM_WEB_EXCEPTION_STATUS_PROTOCOL_ERROR);
    ASSERT_EQ(apm_last_error_http_status(), code);
    ASSERT_LAST_MESSAGE(message);
    ASSERT_OK(apm_http_response_from_last_error(&attached));
    t = hx_response_body(attached, NULL);
    ASSERT_STR_EQ(t, body);
    free(t);
    ASSERT_OK(apm_http_response_close(attached));
    ASSERT_OK(apm_last_error_clear());
    ASSERT_OK(apm_http_request_close(r));
}

TEST(proxy_credentials_answer_407)
{
    static const char *const args[] = {"--auth", "user:pass", NULL};
    static const char *const m407 = "The remote server returned an error: (407) Proxy Authentication Required.";
    server s, t;
    proxy_peer p;
    apm_http_request *r;
    apm_http_response *resp = NULL;
    char with[96];
    server_start(&s, 0);
    server_start(&t, 1);
    proxy_start(&p, args);
    s.proxy = t.proxy = p.uri;
    expect_proxy_refusal(&s, "GET", 407, m407, "proxy credentials, please");
    expect_proxy_refusal(&t, "GET", 407, m407, "proxy credentials, please");
    expect_proxy_refusal(&t, "POST", 407, m407, "proxy credentials, please");
    /* Credentials in the proxy URI (percent-encoded as a URI has them), or set. */
    snprintf(with, sizeof with, "http://us%%65r:pass@127.0.0.1:%d", p.port);
    s.proxy = t.proxy = with;
    free(get_text(&s, "/echo"));
    upload(&t, "POST", BY_LENGTH, 1000, 0);
    s.proxy = t.proxy = p.uri;
    r = request(&t, "/echo");
    ASSERT_OK(apm_http_request_set_proxy_credentials(r, "user", "pass"));
    ASSERT_OK(apm_http_request_get_response(r, &resp));
    free(hx_response_body(resp, NULL));
    ASSERT_OK(apm_http_response_close(resp));
    ASSERT_OK(apm_http_request_close(r));
    /* Wrong ones are refused; the set ones win over the URI's. */
    s.proxy = with;
    r = request(&s, "/echo");
    ASSERT_OK(apm_http_request_set_proxy_credentials(r, "user", "wrong"));
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_http_status(), 407);
    ASSERT_OK(apm_last_error_clear());
    ASSERT_OK(apm_http_request_close(r));
    proxy_saw(&p, "CONNECT localhost:%d HTTP/1.1", t.port, 1);
    proxy_saw(&p, "GET http://localhost:%d/echo HTTP/1.1", s.port, 1);
    hx_pki_remove();
}

TEST(proxy_refusing_connect_is_a_protocol_error)
{
    static const char *const args[] = {"--refuse-connect", "403", NULL};
    static const char *const m403 = "The remote server returned an error: (403) Forbidden.";
    server t;
    proxy_peer p;
    server_start(&t, 1);
    proxy_start(&p, args);
    t.proxy = p.uri;
    expect_proxy_refusal(&t, "GET", 403, m403, "no tunnel for you");
    expect_proxy_refusal(&t, "PUT", 403, m403, "no tunnel for you");
    hx_pki_remove();
}

/* A request to URI through PROXY, with Timeout TIMEOUT_MS (0: the default) and METHOD. */
static apm_http_request *failing(const char *uri, const char *proxy, int timeout_ms, const char *method)
{
    apm_http_request *r = NULL;
    ASSERT_OK(apm_http_request_create(uri, &r));
    ASSERT_OK(apm_http_request_set_proxy(r, proxy));
    ASSERT_OK(apm_http_request_set_method(r, method));
    if (timeout_ms > 0)
        ASSERT_OK(apm_http_request_set_timeout(r, timeout_ms));
    return r;
}

/* GET of URI through PROXY fails with APM_E_WEB STATUS and MESSAGE, blocking and Begin/End;
 * a POST's GetRequestStream too. */
static void expect_failure(const char *uri, const char *proxy, int32_t status, const char *message, int timeout_ms)
{
    apm_http_request *r;
    apm_http_response *resp = NULL;
    apm_async_result *ar = NULL;
    apm_stream *st = NULL;
    hx_cb cb;
    r = failing(uri, proxy, timeout_ms, "GET");
    ASSERT_STATUS(apm_http_request_get_response(r, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), status);
    ASSERT_LAST_MESSAGE(message);
    ASSERT_OK(apm_http_request_close(r));
    r = failing(uri, proxy, timeout_ms, "GET");
    hx_cb_init(&cb);
    ASSERT_OK(apm_http_request_begin_get_response(r, hx_cb_record, &cb, &ar));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_http_request_end_get_response(r, ar, &resp), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), status);
    ASSERT_LAST_MESSAGE(message);
    hx_cb_destroy(&cb);
    ASSERT_OK(apm_http_request_close(r));
    r = failing(uri, proxy, timeout_ms, "POST");
    ASSERT_STATUS(apm_http_request_get_request_stream(r, &st, NULL), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), status);
    ASSERT_OK(apm_http_request_close(r));
    r = failing(uri, proxy, timeout_ms, "POST");
    hx_cb_init(&cb);
    ASSERT_OK(apm_http_request_begin_get_request_stream(r, hx_cb_record, &cb, &ar));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_http_request_end_get_request_stream(r, ar, &st, NULL), APM_E_WEB);
    ASSERT_EQ(apm_last_error_web_status(), status);
    hx_cb_destroy(&cb);
    ASSERT_OK(apm_http_request_close(r));
}

TEST(a_proxy_that_never_answers_connect_times_out)
{
    char proxy[64];
    int port = 0;
    int listener = hx_tcp_listen(&port); /* the kernel accepts; nobody answers */
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", port);
    expect_failure("https://localhost:1/", proxy, APM_WEB_EXCEPTION_STATUS_TIMEOUT, "The operation has timed out", 300);
    hx_close(listener);
}

TEST(a_proxy_that_is_down_is_connect_failure)
{
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", hx_free_port());
    expect_failure("http://localhost:1/", proxy, APM_WEB_EXCEPTION_STATUS_CONNECT_FAILURE, "Unable to connect to the remote server", 0);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_CONNECTION_REFUSED);
    expect_failure("https://localhost:1/", proxy, APM_WEB_EXCEPTION_STATUS_CONNECT_FAILURE, "Unable to connect to the remote server", 0);
}

/* Names under the reserved .invalid TLD (RFC 6761) whose first label is longer than DNS allows
 * (63 octets): glibc's resolver refuses them before sending any query, so they fail at once
 * whatever the machine's DNS (a short .invalid name is asked of the resolver, which may be slow
 * or unreachable). */
#define LONG_LABEL "x123456789x123456789x123456789x123456789x123456789x123456789"
#define UNRESOLVABLE_HOST "apmnet-test-" LONG_LABEL ".invalid"
#define UNRESOLVABLE_PROXY "apmnet-proxy-" LONG_LABEL ".invalid"

TEST(an_unresolvable_proxy_is_proxy_name_resolution_failure)
{
    const char *m = "The proxy name could not be resolved: '" UNRESOLVABLE_PROXY "'";
    expect_failure("http://localhost:1/", "http://" UNRESOLVABLE_PROXY ":3128", APM_WEB_EXCEPTION_STATUS_PROXY_NAME_RESOLUTION_FAILURE, m, 0);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_HOST_NOT_FOUND);
    expect_failure("https://localhost:1/", "http://" UNRESOLVABLE_PROXY ":3128", APM_WEB_EXCEPTION_STATUS_PROXY_NAME_RESOLUTION_FAILURE, m, 0);
}

TEST(an_unresolvable_host_is_name_resolution_failure)
{
    const char *m = "The remote name could not be resolved: '" UNRESOLVABLE_HOST "'";
    expect_failure("http://" UNRESOLVABLE_HOST "/", "", APM_WEB_EXCEPTION_STATUS_NAME_RESOLUTION_FAILURE, m, 0);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_HOST_NOT_FOUND);
    expect_failure("https://" UNRESOLVABLE_HOST ":8443/x", "", APM_WEB_EXCEPTION_STATUS_NAME_RESOLUTION_FAILURE, m, 0);
}

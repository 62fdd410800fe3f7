/*
 * ffi-tests/async_result.c - the IAsyncResult contract: completion flags,
 * inline callbacks, waiting, state, the End rules, callbacks that chain the
 * next Begin, and the runtime rules that involve callbacks.
 */
#include "harness.h"

#include <sys/socket.h>
#include <unistd.h>

static const char invalid_async_result_message[] =
    "The IAsyncResult object was not returned from the corresponding asynchronous "
    "method on this class.";
static const char called_once_suffix[] = "can only be called once for each asynchronous operation.";

/* Wait until `s` has at least `n` bytes to read, so that a receive completes
 * inside Begin. */
static void wait_available(apm_socket *s, int32_t n)
{
    int32_t avail = 0;
    WAIT_FOR(apm_socket_get_available(s, &avail) == APM_OK && avail >= n);
}

TEST(completed_synchronously_callback_inline)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    int32_t v = -1;
    size_t n = 0;
    uint8_t buf[16];

    hx_cb_init(&cb);
    hx_apm_pair(&c, &s);

    /* Data already waiting: the receive finishes inside Begin. */
    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"hello", 5, 0, 5, &n));
    ASSERT_UEQ(n, 5);
    wait_available(c, 5);
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    ASSERT_NOT_NULL(r);
    /* The callback already ran, on this thread, before Begin returned. */
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    ASSERT(pthread_equal(cb.thread, pthread_self()));
    ASSERT_PTR_EQ(cb.result, r);
    ASSERT_EQ(cb.is_completed, 1);
    ASSERT_EQ(cb.completed_sync, 1);
    ASSERT_PTR_EQ(cb.state_from_result, &cb);
    ASSERT_OK(apm_async_result_completed_synchronously(r, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_async_result_is_completed(r, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(apm_socket_end_receive(c, r, &n));
    ASSERT_UEQ(n, 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    hx_cb_destroy(&cb);

    /* A small send fits in the socket buffer: also inline. */
    hx_cb_init(&cb);
    ASSERT_OK(apm_socket_begin_send(c, (const uint8_t *)"world", 5, 0, 5, hx_cb_record, &cb, &r));
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    ASSERT(pthread_equal(cb.thread, pthread_self()));
    ASSERT_EQ(cb.completed_sync, 1);
    ASSERT_EQ(cb.is_completed, 1);
    ASSERT_OK(apm_socket_end_send(c, r, &n));
    ASSERT_UEQ(n, 5);
    ASSERT_OK(apm_socket_receive(s, buf, sizeof buf, 0, 5, &n));
    ASSERT_GT(n, 0);
    hx_cb_destroy(&cb);

    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(callback_on_engine_thread_when_pending)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    int32_t v = -1;
    size_t n = 0;
    uint8_t buf[16];

    hx_cb_init(&cb);
    hx_apm_pair(&c, &s);
    /* Nothing was sent: the receive must wait. */
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    ASSERT_OK(apm_async_result_is_completed(r, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_async_result_completed_synchronously(r, &v));
    ASSERT_EQ(v, 0);

    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"later", 5, 0, 5, &n));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT(!pthread_equal(cb.thread, pthread_self()));
    ASSERT_PTR_EQ(cb.result, r);
    ASSERT_EQ(cb.is_completed, 1);
    ASSERT_EQ(cb.completed_sync, 0);
    ASSERT_OK(apm_async_result_completed_synchronously(r, &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(apm_socket_end_receive(c, r, &n));
    ASSERT_UEQ(n, 5);
    ASSERT_MEM_EQ(buf, "later", 5);

    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
}

TEST(wait_with_timeout)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    int32_t sig = -1, v = -1;
    size_t n = 0;
    uint8_t buf[16];

    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r));
    /* Nothing was sent: the wait times out unsignalled. */
    ASSERT_OK(apm_async_result_wait(r, 0, &sig));
    ASSERT_EQ(sig, 0);
    sig = -1;
    ASSERT_OK(apm_async_result_wait(r, 20, &sig));
    ASSERT_EQ(sig, 0);

    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"x", 1, 0, 1, &n));
    sig = -1;
    ASSERT_OK(apm_async_result_wait(r, -1, &sig));
    ASSERT_EQ(sig, 1);
    ASSERT_OK(apm_async_result_is_completed(r, &v));
    ASSERT_EQ(v, 1);
    /* Waiting again on a completed result returns at once, signalled. */
    sig = -1;
    ASSERT_OK(apm_async_result_wait(r, 0, &sig));
    ASSERT_EQ(sig, 1);
    ASSERT_STATUS(apm_async_result_wait(r, 0, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_async_result_wait(r, -2, &sig), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_OK(apm_socket_end_receive(c, r, &n));
    ASSERT_UEQ(n, 1);

    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

static void *wait_forever_thread(void *arg)
{
    apm_async_result *r = (apm_async_result *)arg;
    int32_t sig = -1;
    if (apm_async_result_wait(r, -1, &sig) != APM_OK)
        return (void *)(intptr_t)-1;
    return (void *)(intptr_t)sig;
}

TEST(wait_from_other_threads)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    pthread_t t[3];
    size_t n = 0;
    uint8_t buf[16];

    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r));
    for (int i = 0; i < 3; i++)
        t[i] = hx_thread_start(wait_forever_thread, r);
    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"wake", 4, 0, 4, &n));
    for (int i = 0; i < 3; i++)
        ASSERT_EQ((intptr_t)hx_thread_join(t[i]), 1);
    ASSERT_OK(apm_socket_end_receive(c, r, &n));
    ASSERT_UEQ(n, 4);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(state_roundtrip)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    int marker = 42;
    void *st = NULL;
    size_t n = 0;
    uint8_t buf[16];

    hx_cb_init(&cb);
    hx_apm_pair(&c, &s);

    /* No callback, a state. */
    ASSERT_OK(apm_socket_begin_send(c, (const uint8_t *)"a", 1, 0, 1, NULL, &marker, &r));
    ASSERT_OK(apm_async_result_state(r, &st));
    ASSERT_PTR_EQ(st, &marker);
    ASSERT_STATUS(apm_async_result_state(r, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_socket_end_send(c, r, &n));

    /* No callback, no state. */
    ASSERT_OK(apm_socket_begin_send(c, (const uint8_t *)"b", 1, 0, 1, NULL, NULL, &r));
    st = &marker;
    ASSERT_OK(apm_async_result_state(r, &st));
    ASSERT_NULL(st);
    ASSERT_OK(apm_socket_end_send(c, r, &n));

    /* A callback: its state argument and apm_async_result_state agree. */
    ASSERT_OK(apm_socket_begin_receive(s, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_PTR_EQ(cb.state_from_result, &cb);
    ASSERT_OK(apm_async_result_state(r, &st));
    ASSERT_PTR_EQ(st, &cb);
    ASSERT_OK(apm_socket_end_receive(s, r, &n));
    ASSERT_GT(n, 0);

    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

TEST(end_null_result)
{
    apm_socket *c = NULL, *s = NULL;
    apm_stream *st = NULL;
    apm_socket *acc = NULL;
    size_t n = 0;

    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_network_stream_create(c, 0, &st));
    ASSERT_STATUS(apm_socket_end_receive(c, NULL, &n), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_end_send(c, NULL, &n), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_end_connect(c, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_end_accept(c, NULL, &acc), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_socket_end_send_file(c, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_end_read(st, NULL, &n), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_end_write(st, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(end_foreign_result_from_other_socket)
{
    apm_socket *c1 = NULL, *s1 = NULL, *c2 = NULL, *s2 = NULL;
    apm_async_result *r = NULL;
    size_t n = 0;
    uint8_t buf[16];

    hx_apm_pair(&c1, &s1);
    hx_apm_pair(&c2, &s2);
    ASSERT_OK(apm_socket_begin_receive(c1, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r));
    /* Pending and foreign. */
    ASSERT_STATUS(apm_socket_end_receive(c2, r, &n), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE(invalid_async_result_message);
    ASSERT_OK(apm_socket_send(s1, (const uint8_t *)"abc", 3, 0, 3, &n));
    {
        int32_t sig = 0;
        ASSERT_OK(apm_async_result_wait(r, -1, &sig));
        ASSERT_EQ(sig, 1);
    }
    /* Completed and foreign. */
    ASSERT_STATUS(apm_socket_end_receive(c2, r, &n), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE(invalid_async_result_message);
    /* The rejected Ends did not release it: the owner's End works. */
    n = 0;
    ASSERT_OK(apm_socket_end_receive(c1, r, &n));
    ASSERT_UEQ(n, 3);
    ASSERT_MEM_EQ(buf, "abc", 3);

    ASSERT_OK(apm_socket_close(c1));
    ASSERT_OK(apm_socket_close(s1));
    ASSERT_OK(apm_socket_close(c2));
    ASSERT_OK(apm_socket_close(s2));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(end_foreign_result_from_other_kind)
{
    apm_socket *c = NULL, *s = NULL;
    apm_stream *st = NULL;
    apm_async_result *r = NULL, *rs = NULL;
    apm_socket *acc = NULL;
    size_t n = 0;
    uint8_t buf[16];

    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"xyz", 3, 0, 3, &n));
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r));
    ASSERT_OK(apm_socket_begin_send(c, (const uint8_t *)"q", 1, 0, 1, NULL, NULL, &rs));
    /* A BeginReceive result given to EndSend, and the other way round. */
    ASSERT_STATUS(apm_socket_end_send(c, r, &n), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE(invalid_async_result_message);
    ASSERT_STATUS(apm_socket_end_receive(c, rs, &n), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE(invalid_async_result_message);
    ASSERT_STATUS(apm_socket_end_accept(c, r, &acc), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_socket_end_connect(c, r), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_socket_end_send_file(c, rs), APM_E_ARGUMENT);
    /* A socket's result given to a stream. */
    ASSERT_OK(apm_network_stream_create(c, 0, &st));
    ASSERT_STATUS(apm_stream_end_read(st, r, &n), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_stream_end_write(st, rs), APM_E_ARGUMENT);
    ASSERT_LAST_MESSAGE(invalid_async_result_message);

    ASSERT_OK(apm_socket_end_send(c, rs, &n));
    ASSERT_UEQ(n, 1);
    ASSERT_OK(apm_socket_end_receive(c, r, &n));
    ASSERT_GT(n, 0);

    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(second_end_invalid_operation)
{
    apm_socket *c = NULL, *s = NULL;
    apm_stream *a = NULL, *b = NULL;
    apm_async_result *r = NULL;
    size_t n = 0;
    uint8_t buf[16];

    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_send(c, (const uint8_t *)"once", 4, 0, 4, NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_send(c, r, &n));
    ASSERT_UEQ(n, 4);
    {
        /* An ended result is no longer a valid handle. */
        int32_t v = -1;
        ASSERT_STATUS(apm_async_result_is_completed(r, &v), APM_E_ARGUMENT);
        ASSERT_EQ(v, -1);
    }
    n = 777;
    ASSERT_STATUS(apm_socket_end_send(c, r, &n), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE_CONTAINS(called_once_suffix);
    ASSERT_UEQ(n, 777); /* out-param untouched on failure */
    ASSERT_STATUS(apm_socket_end_send(c, r, &n), APM_E_INVALID_OPERATION);

    ASSERT_OK(apm_socket_begin_receive(s, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_receive(s, r, &n));
    ASSERT_STATUS(apm_socket_end_receive(s, r, &n), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE_CONTAINS(called_once_suffix);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));

    /* Streams: the spec's text is exact. */
    hx_stream_pair(&a, &b);
    ASSERT_OK(apm_stream_begin_write(a, (const uint8_t *)"once", 4, 0, 4, NULL, NULL, &r));
    ASSERT_OK(apm_stream_end_write(a, r));
    ASSERT_STATUS(apm_stream_end_write(a, r), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("EndWrite can only be called once for each asynchronous operation.");
    ASSERT_OK(apm_stream_begin_read(b, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r));
    ASSERT_OK(apm_stream_end_read(b, r, &n));
    ASSERT_GT(n, 0);
    ASSERT_STATUS(apm_stream_end_read(b, r, &n), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("EndRead can only be called once for each asynchronous operation.");
    ASSERT_OK(apm_stream_close(a));
    ASSERT_OK(apm_stream_close(b));
    ASSERT_OK(apm_runtime_shutdown());
}

typedef struct end_blocks_ctx {
    apm_socket *peer;
} end_blocks_ctx;

static void *send_later(void *arg)
{
    end_blocks_ctx *ctx = (end_blocks_ctx *)arg;
    size_t n = 0;
    hx_sleep_ms(50);
    ASSERT_OK(apm_socket_send(ctx->peer, (const uint8_t *)"late", 4, 0, 4, &n));
    return NULL;
}

TEST(end_blocks_until_completion)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    end_blocks_ctx ctx;
    pthread_t t;
    size_t n = 0;
    uint8_t buf[16];

    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r));
    ctx.peer = s;
    t = hx_thread_start(send_later, &ctx);
    ASSERT_OK(apm_socket_end_receive(c, r, &n));
    ASSERT_UEQ(n, 4);
    ASSERT_MEM_EQ(buf, "late", 4);
    hx_thread_join(t);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(end_after_close_object_disposed)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    size_t n = 0;

    hx_apm_pair(&c, &s);
    /* Completed before the close: End still reports the close (and releases). */
    ASSERT_OK(apm_socket_begin_send(c, (const uint8_t *)"data", 4, 0, 4, NULL, NULL, &r));
    {
        int32_t sig = 0;
        ASSERT_OK(apm_async_result_wait(r, -1, &sig));
        ASSERT_EQ(sig, 1);
    }
    ASSERT_OK(apm_socket_close(c));
    ASSERT_STATUS(apm_socket_end_send(c, r, &n), APM_E_OBJECT_DISPOSED);
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- callbacks that End and issue the next Begin ---------------------- */

#define CHAIN_TOTAL (1u << 20)

typedef struct chain_ctx {
    apm_socket *sock;
    uint8_t buf[4096];
    size_t chunk;
    uint64_t total;
    int callbacks;
    int max_depth;
    pthread_t starter;  /* the thread of the first Begin */
    int offloaded;      /* outermost callbacks on another thread */
    int offloaded_sync; /* ... of which claimed CompletedSynchronously */
    hx_event done;
} chain_ctx;

static _Thread_local int chain_depth;

static void chain_on_receive(apm_async_result *result, void *state)
{
    chain_ctx *ctx = (chain_ctx *)state;
    size_t n = 0;
    apm_async_result *next = NULL;

    int32_t sync = -1;

    chain_depth++;
    if (chain_depth > ctx->max_depth)
        ctx->max_depth = chain_depth;
    ctx->callbacks++;
    ASSERT_OK(apm_async_result_completed_synchronously(result, &sync));
    if (chain_depth == 1 && !pthread_equal(pthread_self(), ctx->starter)) {
        /* Not nested in any Begin of this thread: Begin had returned already. */
        ctx->offloaded++;
        if (sync)
            ctx->offloaded_sync++;
    }
    ASSERT_OK(apm_socket_end_receive(ctx->sock, result, &n));
    if (n == 0) {
        hx_event_signal(&ctx->done);
    } else {
        size_t bad = hx_pattern_check(ctx->buf, n, 7, ctx->total);
        if (bad != n)
            hx_fail(__FILE__, __LINE__, "wrong byte at stream offset %llu",
                    (unsigned long long)(ctx->total + bad));
        ctx->total += n;
        /* `result` is released; the next Begin may complete (and call this
         * function again) before it returns. */
        ASSERT_OK(apm_socket_begin_receive(ctx->sock, ctx->buf, sizeof ctx->buf, 0, ctx->chunk,
                                           chain_on_receive, ctx, &next));
    }
    chain_depth--;
}

typedef struct peer_writer {
    int fd;
    size_t total;
    size_t chunk;
    int shutdown_after;
} peer_writer;

static void *peer_write_pattern(void *arg)
{
    peer_writer *w = (peer_writer *)arg;
    uint8_t *buf = hx_xmalloc(w->chunk);
    size_t off = 0;
    while (off < w->total) {
        size_t len = w->total - off < w->chunk ? w->total - off : w->chunk;
        hx_pattern_fill(buf, len, 7, off);
        hx_write_all(w->fd, buf, len);
        off += len;
    }
    free(buf);
    if (w->shutdown_after)
        shutdown(w->fd, SHUT_WR);
    return NULL;
}

TEST(callback_calls_end_and_next_begin)
{
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_async_result *r = NULL;
    chain_ctx *ctx = hx_xmalloc(sizeof *ctx);
    peer_writer w;
    pthread_t t;

    memset(ctx, 0, sizeof *ctx);
    hx_event_init(&ctx->done);
    ctx->sock = c;
    ctx->chunk = sizeof ctx->buf;
    w.fd = fd;
    w.total = CHAIN_TOTAL;
    w.chunk = 1000;
    w.shutdown_after = 1;
    ASSERT_OK(apm_socket_begin_receive(c, ctx->buf, sizeof ctx->buf, 0, ctx->chunk,
                                       chain_on_receive, ctx, &r));
    t = hx_thread_start(peer_write_pattern, &w);
    ASSERT_EVENT(&ctx->done, 1);
    hx_thread_join(t);
    ASSERT_UEQ(ctx->total, CHAIN_TOTAL);
    ASSERT_GT(ctx->callbacks, 1);

    ASSERT_OK(apm_socket_close(c));
    close(fd);
    ASSERT_OK(apm_runtime_shutdown());
    hx_event_destroy(&ctx->done);
    free(ctx);
}

TEST(inline_completion_depth_is_bounded)
{
    /* 32 KiB already waiting and 16-byte receives: 2048 completions that can
     * all finish inside Begin. Past a small nesting depth the library must
     * hand the callback to an engine thread instead of recursing. */
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_async_result *r = NULL;
    chain_ctx *ctx = hx_xmalloc(sizeof *ctx);
    peer_writer w;

    memset(ctx, 0, sizeof *ctx);
    hx_event_init(&ctx->done);
    ctx->sock = c;
    ctx->chunk = 16;
    ctx->starter = pthread_self();
    w.fd = fd;
    w.total = 32768;
    w.chunk = 32768;
    w.shutdown_after = 1;
    peer_write_pattern(&w);
    wait_available(c, 32768);
    ASSERT_OK(apm_socket_begin_receive(c, ctx->buf, sizeof ctx->buf, 0, ctx->chunk,
                                       chain_on_receive, ctx, &r));
    ASSERT_EVENT(&ctx->done, 1);
    ASSERT_UEQ(ctx->total, 32768);
    ASSERT_EQ(ctx->callbacks, 32768 / 16 + 1);
    ASSERT_LE(ctx->max_depth, 256);
    /* The guard moved callbacks to engine threads, and those report CompletedSynchronously 0:
     * they ran after their Begin returned. */
    ASSERT_GT(ctx->offloaded, 0);
    ASSERT_EQ(ctx->offloaded_sync, 0);

    ASSERT_OK(apm_socket_close(c));
    close(fd);
    ASSERT_OK(apm_runtime_shutdown());
    hx_event_destroy(&ctx->done);
    free(ctx);
}

/* ---- runtime rules involving callbacks --------------------------------- */

typedef struct shutdown_in_cb_ctx {
    apm_socket *sock;
    apm_status shutdown_status;
    apm_status end_status;
    size_t n;
    hx_event done;
} shutdown_in_cb_ctx;

static void shutdown_from_callback(apm_async_result *result, void *state)
{
    shutdown_in_cb_ctx *ctx = (shutdown_in_cb_ctx *)state;
    ctx->shutdown_status = apm_runtime_shutdown();
    ctx->end_status = apm_socket_end_receive(ctx->sock, result, &ctx->n);
    hx_event_signal(&ctx->done);
}

TEST(runtime_shutdown_from_callback_refused)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    shutdown_in_cb_ctx ctx;
    size_t n = 0;
    uint8_t buf[8];

    memset(&ctx, 0, sizeof ctx);
    hx_event_init(&ctx.done);
    hx_apm_pair(&c, &s);
    ctx.sock = c;
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf,
                                       shutdown_from_callback, &ctx, &r));
    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"x", 1, 0, 1, &n));
    ASSERT_EVENT(&ctx.done, 1);
    ASSERT_EQ(ctx.shutdown_status, APM_E_INVALID_OPERATION);
    ASSERT_EQ(ctx.end_status, APM_OK);
    ASSERT_UEQ(ctx.n, 1);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    hx_event_destroy(&ctx.done);
}

TEST(runtime_shutdown_aborts_pending_operations)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    size_t n = 0;
    int32_t v = 0;
    uint8_t buf[8];

    hx_cb_init(&cb);
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    /* Shutdown aborts the receive; its callback has run when shutdown returns. */
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    ASSERT_EQ(cb.is_completed, 1);
    ASSERT_OK(apm_async_result_is_completed(r, &v));
    ASSERT_EQ(v, 1);
    /* The aborted operation reports a failure. */
    {
        apm_status st = apm_socket_end_receive(c, r, &n);
        ASSERT_NE(st, APM_OK);
    }
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
}

/* ---- many callbacks, each exactly once -------------------------------- */

TEST(each_callback_runs_exactly_once)
{
    enum { OPS = 200 };
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    hx_cb *cbs = hx_xmalloc(sizeof(hx_cb) * OPS);
    uint8_t *buf = hx_xmalloc(OPS * 100);
    size_t n = 0, got = 0;

    hx_apm_pair(&c, &s);
    for (int i = 0; i < OPS; i++) {
        hx_cb_init(&cbs[i]);
        hx_pattern_fill(buf + i * 100, 100, 7, (uint64_t)i * 100);
    }
    for (int i = 0; i < OPS; i++) {
        ASSERT_OK(apm_socket_begin_send(c, buf, OPS * 100, (size_t)i * 100, 100, hx_cb_record,
                                        &cbs[i], &r));
        ASSERT_OK(apm_socket_end_send(c, r, &n));
        ASSERT_UEQ(n, 100);
    }
    {
        uint8_t *in = hx_xmalloc(OPS * 100);
        while (got < OPS * 100) {
            ASSERT_OK(apm_socket_receive(s, in, OPS * 100, got, OPS * 100 - got, &n));
            ASSERT_GT(n, 0);
            got += n;
        }
        ASSERT_UEQ(hx_pattern_check(in, OPS * 100, 7, 0), OPS * 100);
        free(in);
    }
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    for (int i = 0; i < OPS; i++) {
        ASSERT_EQ(HX_CB_CALLS(&cbs[i]), 1);
        hx_cb_destroy(&cbs[i]);
    }
    free(cbs);
    free(buf);
}

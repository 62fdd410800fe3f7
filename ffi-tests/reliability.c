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

/*
 * ffi-tests/exactly_once.c - every callback runs exactly once, on a thread it may run on:
 * a blocking call drives only its own operation, a panic inside an operation completes it with
 * APM_E_INTERNAL, an operation abandoned inside the library still completes, the nesting guard
 * stays on the current loop and never restarts a shut-down runtime, and no SIGPIPE is left
 * pending on an engine thread. Also End's check order and the send-file reuse rule.
 */
#include "harness.h"

#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

/* The name of the calling thread. */
static void thread_name(char *buf, size_t len)
{
    buf[0] = 0;
    pthread_getname_np(pthread_self(), buf, len);
}

typedef struct named_cb {
    hx_event done;
    atomic_int calls;
    char thread[32];
    pthread_t tid;
    int32_t sync;
} named_cb;

static void record_named(apm_async_result *result, void *state)
{
    named_cb *cb = state;
    int32_t sync = -1;
    apm_async_result_completed_synchronously(result, &sync);
    pthread_mutex_lock(&cb->done.mu);
    thread_name(cb->thread, sizeof cb->thread);
    cb->tid = pthread_self();
    cb->sync = sync;
    pthread_mutex_unlock(&cb->done.mu);
    atomic_fetch_add(&cb->calls, 1);
    hx_event_signal(&cb->done);
}

/* ---- a blocking call drives only its own operation ----------------------- */

typedef struct big_send {
    apm_socket *sock;
    uint8_t *data;
    size_t len;
    named_cb cb;
    apm_async_result *r;
} big_send;

static void *begin_big_send(void *arg)
{
    big_send *b = arg;
    if (apm_socket_begin_send(b->sock, b->data, b->len, 0, b->len, record_named, &b->cb, &b->r) != APM_OK)
        hx_fail(__FILE__, __LINE__, "begin_send failed: %s", hx_last_message());
    return NULL;
}

typedef struct drainer {
    apm_socket *sock;
    size_t want;
} drainer;

static void *drain_later(void *arg)
{
    drainer *d = arg;
    static uint8_t buf[1 << 16];
    size_t got = 0, n = 0;
    hx_sleep_ms(30); /* let the main thread block in its send first */
    while (got < d->want) {
        if (apm_socket_receive(d->sock, buf, sizeof buf, 0, sizeof buf, &n) != APM_OK || n == 0)
            hx_fail(__FILE__, __LINE__, "drain: %s", hx_last_message());
        got += n;
    }
    return NULL;
}

TEST(blocking_call_never_runs_another_threads_callback)
{
    enum { BIG = 8 << 20, ROUNDS = 6 };
    uint8_t *data = hx_xmalloc(BIG);
    memset(data, 7, BIG);
    for (int round = 0; round < ROUNDS; round++) {
        apm_socket *c = NULL, *s = NULL;
        big_send b;
        drainer d;
        size_t n = 0;
        hx_apm_pair(&c, &s);
        memset(&b, 0, sizeof b);
        hx_event_init(&b.cb.done);
        b.sock = c;
        b.data = data;
        b.len = BIG;
        /* Another thread's BeginSend queues behind a full send buffer ... */
        hx_thread_join(hx_thread_start(begin_big_send, &b));
        ASSERT_EQ(atomic_load(&b.cb.calls), 0);
        /* ... and this thread's blocking send queues behind it, while a third drains. */
        d.sock = s;
        d.want = BIG + 5;
        pthread_t t = hx_thread_start(drain_later, &d);
        ASSERT_OK(apm_socket_send(c, (const uint8_t *)"after", 5, 0, 5, &n));
        ASSERT_UEQ(n, 5);
        hx_thread_join(t);
        ASSERT_EVENT(&b.cb.done, 1);
        /* The other thread's callback ran on the socket's loop, never on the blocking caller. */
        ASSERT(!pthread_equal(b.cb.tid, pthread_self()));
        ASSERT_STR_STARTS_WITH(b.cb.thread, "apmnet-loop");
        ASSERT_OK(apm_socket_end_send(c, b.r, &n));
        ASSERT_UEQ(n, BIG);
        ASSERT_OK(apm_socket_close(c));
        ASSERT_OK(apm_socket_close(s));
        ASSERT_EQ(atomic_load(&b.cb.calls), 1);
        hx_event_destroy(&b.cb.done);
    }
    free(data);
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- a panic inside an operation ------------------------------------------ */

TEST(panic_in_an_attempt_completes_it_with_internal_and_the_queue_goes_on)
{
    /* The first receive attempt on the loop panics (the library is built with fault
     * injection for this harness); the Begin's own first try was attempt 1. */
    setenv("APMNET_FAULT", "receive@2", 1);
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r1 = NULL, *r2 = NULL;
    named_cb cb1, cb2;
    uint8_t b1[16], b2[16];
    size_t n = 0;
    memset(&cb1, 0, sizeof cb1);
    memset(&cb2, 0, sizeof cb2);
    hx_event_init(&cb1.done);
    hx_event_init(&cb2.done);
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_receive(c, b1, sizeof b1, 0, sizeof b1, record_named, &cb1, &r1));
    ASSERT_OK(apm_socket_begin_receive(c, b2, sizeof b2, 0, sizeof b2, record_named, &cb2, &r2));
    ASSERT_EQ(atomic_load(&cb1.calls), 0);
    ASSERT_OK(apm_socket_send(s, (const uint8_t *)"hello", 5, 0, 5, &n));
    ASSERT_EVENT(&cb1.done, 1);
    ASSERT_EVENT(&cb2.done, 1);
    ASSERT_STATUS(apm_socket_end_receive(c, r1, &n), APM_E_INTERNAL);
    /* The receive behind it went on and got the bytes: none were lost. */
    ASSERT_OK(apm_socket_end_receive(c, r2, &n));
    ASSERT_UEQ(n, 5);
    ASSERT_MEM_EQ(b2, "hello", 5);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(atomic_load(&cb1.calls), 1);
    ASSERT_EQ(atomic_load(&cb2.calls), 1);
}

TEST(an_operation_abandoned_inside_the_library_still_completes)
{
    /* The name resolution of a BeginConnect panics on the blocking pool: the operation it owned
     * is dropped, and its callback still runs, once, with APM_E_INTERNAL. */
    setenv("APMNET_FAULT", "resolve", 1);
    apm_socket *c = hx_apm_tcp4();
    apm_async_result *r = NULL;
    named_cb cb;
    memset(&cb, 0, sizeof cb);
    hx_event_init(&cb.done);
    ASSERT_OK(apm_socket_begin_connect(c, "localhost", 9, record_named, &cb, &r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_socket_end_connect(c, r), APM_E_INTERNAL);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(atomic_load(&cb.calls), 1);
}

/* ---- the nesting guard ------------------------------------------------------ */

typedef struct chain {
    apm_socket *sock;
    uint8_t buf[16];
    size_t total, want;
    int callbacks;
    pthread_t first;
    int other_thread;
    int offloaded;
    hx_event done;
} chain;

static void chain_next(apm_async_result *result, void *state)
{
    chain *ch = state;
    size_t n = 0;
    int32_t sync = -1;
    apm_async_result_completed_synchronously(result, &sync);
    if (ch->callbacks++ == 0)
        ch->first = pthread_self();
    else if (!pthread_equal(ch->first, pthread_self()))
        ch->other_thread++;
    if (sync == 0 && ch->callbacks > 1)
        ch->offloaded++;
    if (apm_socket_end_receive(ch->sock, result, &n) != APM_OK)
        hx_fail(__FILE__, __LINE__, "end_receive: %s", hx_last_message());
    ch->total += n;
    if (n == 0 || ch->total >= ch->want) {
        hx_event_signal(&ch->done);
        return;
    }
    apm_async_result *r = NULL;
    if (apm_socket_begin_receive(ch->sock, ch->buf, sizeof ch->buf, 0, sizeof ch->buf, chain_next, ch, &r) != APM_OK)
        hx_fail(__FILE__, __LINE__, "begin_receive: %s", hx_last_message());
}

TEST(nesting_guard_hands_off_to_the_current_loop)
{
    /* Four loops: a hand-off to an arbitrary loop would land elsewhere most of the time. */
    ASSERT_OK(apm_runtime_configure(4, 0));
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    chain *ch = hx_xmalloc(sizeof *ch);
    apm_async_result *r = NULL;
    static uint8_t data[16384];
    memset(ch, 0, sizeof *ch);
    hx_event_init(&ch->done);
    ch->sock = c;
    ch->want = sizeof data;
    /* The first receive waits, so the chain starts on the socket's loop. */
    ASSERT_OK(apm_socket_begin_receive(c, ch->buf, sizeof ch->buf, 0, sizeof ch->buf, chain_next, ch, &r));
    memset(data, 1, sizeof data);
    ASSERT_UEQ(write(fd, data, sizeof data), sizeof data);
    ASSERT_EVENT(&ch->done, 1);
    ASSERT_UEQ(ch->total, sizeof data);
    ASSERT_GT(ch->offloaded, 0);
    ASSERT_EQ(ch->other_thread, 0);
    ASSERT_OK(apm_socket_close(c));
    close(fd);
    ASSERT_OK(apm_runtime_shutdown());
    hx_event_destroy(&ch->done);
    free(ch);
}

/* A custom stream whose every read completes inside begin_read with one byte. */
static apm_status inline_read(void *ctx, uint8_t *buffer, size_t count, apm_custom_complete_fn complete,
                              uint64_t token)
{
    (void)ctx;
    (void)count;
    buffer[0] = 'x';
    return complete(token, APM_OK, 1);
}

static apm_status refuse_write(void *ctx, const uint8_t *buffer, size_t count, apm_custom_complete_fn complete,
                               uint64_t token)
{
    (void)ctx;
    (void)buffer;
    (void)count;
    (void)complete;
    (void)token;
    return APM_E_NOT_SUPPORTED;
}

typedef struct stream_chain {
    apm_stream *stream;
    uint8_t buf[4];
    atomic_int callbacks;
    int want;
    hx_event done;
} stream_chain;

static void stream_chain_next(apm_async_result *result, void *state)
{
    stream_chain *ch = state;
    size_t n = 0;
    if (apm_stream_end_read(ch->stream, result, &n) != APM_OK || n != 1)
        hx_fail(__FILE__, __LINE__, "end_read: %s", hx_last_message());
    if (atomic_fetch_add(&ch->callbacks, 1) + 1 >= ch->want) {
        hx_event_signal(&ch->done);
        return;
    }
    apm_async_result *r = NULL;
    if (apm_stream_begin_read(ch->stream, ch->buf, sizeof ch->buf, 0, 1, stream_chain_next, ch, &r) != APM_OK)
        hx_fail(__FILE__, __LINE__, "begin_read: %s", hx_last_message());
}

/* How many threads of this process are named `prefix...`. */
static int threads_named(const char *prefix)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int count = 0;
    ASSERT_NOT_NULL(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], name[64] = {0};
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(name, sizeof name, f) != NULL && strncmp(name, prefix, strlen(prefix)) == 0)
            count++;
        fclose(f);
    }
    closedir(d);
    return count;
}

TEST(nesting_guard_never_restarts_a_shut_down_runtime)
{
    /* Start the engine and shut it down; then a chain of inline completions deeper than the
     * guard allows, on a stream that needs no engine. Every callback runs, and no engine thread
     * comes back for them. */
    apm_socket *s = hx_apm_tcp4();
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(threads_named("apmnet-loop"), 0);

    apm_stream_vtable v = {inline_read, refuse_write, NULL};
    stream_chain *ch = hx_xmalloc(sizeof *ch);
    apm_async_result *r = NULL;
    memset(ch, 0, sizeof *ch);
    hx_event_init(&ch->done);
    ch->want = 200;
    ASSERT_OK(apm_stream_create_custom(&v, NULL, &ch->stream));
    ASSERT_OK(apm_stream_begin_read(ch->stream, ch->buf, sizeof ch->buf, 0, 1, stream_chain_next, ch, &r));
    ASSERT_EVENT(&ch->done, 1);
    ASSERT_EQ(atomic_load(&ch->callbacks), 200);
    ASSERT_EQ(threads_named("apmnet-loop"), 0);
    ASSERT_OK(apm_stream_close(ch->stream));
    ASSERT_OK(apm_runtime_shutdown());
    hx_event_destroy(&ch->done);
    free(ch);
}

/* ---- SIGPIPE on an engine thread ------------------------------------------ */

typedef struct pipe_check {
    hx_event done;
    int sigpipe_pending;
    char thread[32];
} pipe_check;

static void check_sigpipe(apm_async_result *result, void *state)
{
    pipe_check *p = state;
    sigset_t pending;
    (void)result;
    sigemptyset(&pending);
    sigpending(&pending);
    p->sigpipe_pending = sigismember(&pending, SIGPIPE);
    thread_name(p->thread, sizeof p->thread);
    hx_event_signal(&p->done);
}

/* The fd the library uses for `s`: the socket whose local port is s's and that is not `not_fd`. */
static int library_fd_of(apm_socket *s, int not_fd)
{
    char addr[64];
    int32_t port = 0;
    ASSERT_OK(apm_socket_get_local_endpoint(s, addr, sizeof addr, &port));
    for (int fd = 3; fd < 4096; fd++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (fd == not_fd || getsockname(fd, (struct sockaddr *)&ss, &len) != 0 || ss.ss_family != AF_INET)
            continue;
        if (ntohs(((struct sockaddr_in *)&ss)->sin_port) == port)
            return fd;
    }
    hx_fail(__FILE__, __LINE__, "no fd found for the socket");
}

TEST(send_file_epipe_on_an_engine_thread_leaves_no_sigpipe_pending)
{
    enum { LEN = 16 << 20 };
    char *path = NULL;
    int tmp = hx_temp_file(&path);
    static uint8_t chunk[1 << 20];
    for (int i = 0; i < LEN / (int)sizeof chunk; i++)
        ASSERT_UEQ(write(tmp, chunk, sizeof chunk), sizeof chunk);
    close(tmp);
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_async_result *r = NULL;
    pipe_check p;
    memset(&p, 0, sizeof p);
    hx_event_init(&p.done);
    /* The peer does not read: the transfer waits on the loop ... */
    ASSERT_OK(apm_socket_begin_send_file(c, path, NULL, 0, NULL, 0, 0, check_sigpipe, &p, &r));
    /* ... then the socket's sending side is shut behind the library's back and the peer reads:
     * the loop's next sendfile(2) fails with EPIPE, which raises SIGPIPE on the engine thread. */
    ASSERT_EQ(shutdown(library_fd_of(c, fd), SHUT_WR), 0);
    hx_drain dr;
    hx_drain_start(&dr, fd, 0);
    ASSERT_EVENT(&p.done, 1);
    ASSERT_STR_STARTS_WITH(p.thread, "apmnet-loop");
    ASSERT_EQ(p.sigpipe_pending, 0);
    ASSERT_STATUS(apm_socket_end_send_file(c, r), APM_E_SOCKET);
    ASSERT_OK(apm_socket_close(c));
    hx_drain_join(&dr);
    free(dr.data);
    ASSERT_OK(apm_runtime_shutdown());
    unlink(path);
    hx_temp_forget(path);
    free(path);
}

/* ---- End's order of checks -------------------------------------------------- */

TEST(an_ended_result_given_to_another_object_or_end_is_an_argument_error)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    size_t n = 0;
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_begin_send(c, (const uint8_t *)"x", 1, 0, 1, NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_send(c, r, &n));
    /* The owner check comes before the End-once check. */
    ASSERT_STATUS(apm_socket_end_send(s, r, &n), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_socket_end_receive(c, r, &n), APM_E_ARGUMENT);
    ASSERT_STATUS(apm_socket_end_send(c, r, &n), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("EndSend can only be called once for each asynchronous operation.");
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(blocking_connect_after_send_file_reuse_socket_is_invalid_operation)
{
    int port = 0;
    apm_socket *l = hx_apm_listener(&port);
    apm_socket *c = hx_apm_tcp4();
    apm_socket *a = NULL;
    apm_async_result *r = NULL;
    ASSERT_OK(apm_socket_connect(c, "127.0.0.1", port));
    ASSERT_OK(apm_socket_accept(l, &a));
    ASSERT_OK(apm_socket_begin_send_file(c, NULL, (const uint8_t *)"x", 1, NULL, 0,
                                         APM_TRANSMIT_FILE_DISCONNECT | APM_TRANSMIT_FILE_REUSE_SOCKET,
                                         NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_send_file(c, r));
    /* As the header says: a socket disconnected by send file cannot connect again. */
    ASSERT_STATUS(apm_socket_connect(c, "127.0.0.1", port), APM_E_INVALID_OPERATION);
    ASSERT_OK(apm_socket_close(a));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(l));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(a_host_that_blocks_sigpipe_gets_none_left_pending_by_send_file)
{
    char *path = NULL;
    int tmp = hx_temp_file(&path);
    static uint8_t chunk[1 << 16];
    ASSERT_UEQ(write(tmp, chunk, sizeof chunk), sizeof chunk);
    close(tmp);
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    sigset_t block, pending;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, NULL), 0);
    /* Writing after our own SHUT_WR fails with EPIPE and raises SIGPIPE on this thread. */
    ASSERT_EQ(shutdown(library_fd_of(c, fd), SHUT_WR), 0);
    ASSERT_STATUS(apm_socket_send_file(c, path, NULL, 0, NULL, 0, 0), APM_E_SOCKET);
    sigemptyset(&pending);
    sigpending(&pending);
    ASSERT_EQ(sigismember(&pending, SIGPIPE), 0);
    ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &block, NULL), 0);
    ASSERT_OK(apm_socket_close(c));
    close(fd);
    ASSERT_OK(apm_runtime_shutdown());
    unlink(path);
    hx_temp_forget(path);
    free(path);
}

/* A custom stream that writes one byte at a time and completes inside begin_write. */
static size_t written_by_dribble;

static apm_status dribble_write(void *ctx, const uint8_t *buffer, size_t count, apm_custom_complete_fn complete,
                                uint64_t token)
{
    (void)ctx;
    (void)buffer;
    (void)count;
    written_by_dribble++;
    return complete(token, APM_OK, 1);
}

TEST(a_custom_stream_writing_a_byte_at_a_time_inline_does_not_deepen_the_stack)
{
    enum { LEN = 1 << 18 };
    apm_stream_vtable v = {inline_read, dribble_write, NULL};
    apm_stream *s = NULL;
    apm_async_result *r = NULL;
    uint8_t *buf = hx_xmalloc(LEN);
    hx_cb cb;
    memset(buf, 3, LEN);
    ASSERT_OK(apm_stream_create_custom(&v, NULL, &s));
    /* 256 Ki partial writes (a few thousand nested frames overflowed the stack): each rest is
     * started from the loop, not from inside the last. */
    ASSERT_OK(apm_stream_write(s, buf, LEN, 0, LEN));
    ASSERT_UEQ(written_by_dribble, LEN);
    hx_cb_init(&cb);
    ASSERT_OK(apm_stream_begin_write(s, buf, LEN, 0, LEN, hx_cb_record, &cb, &r));
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    ASSERT_OK(apm_stream_end_write(s, r));
    ASSERT_UEQ(written_by_dribble, 2 * (size_t)LEN);
    ASSERT_OK(apm_stream_close(s));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
    free(buf);
}

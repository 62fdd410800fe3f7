/*
 * ffi-tests/stream.c - NetworkStream: construction checks, Begin/End and sync
 * read/write, the argument checks in .NET's order, 100 connections driven by
 * callbacks only, FIFO order of pending writes, peer reset mid-write (no
 * SIGPIPE), close with a read and a write pending, ownsSocket, CanRead and
 * CanWrite.
 */
#include "harness.h"

#include <sys/socket.h>
#include <unistd.h>

static const char write_failure_prefix[] = "Unable to write data to the transport connection: ";
static const char read_failure_prefix[] = "Unable to read data from the transport connection: ";
static const char not_connected_message[] =
    "The operation is not allowed on non-connected sockets.";

TEST(create_checks)
{
    apm_socket *s = hx_apm_tcp4();
    apm_socket *c = NULL, *srv = NULL;
    apm_stream *st = (apm_stream *)(uintptr_t)1;
    int port = 0;
    apm_socket *l = NULL;

    ASSERT_STATUS(apm_network_stream_create(NULL, 0, &st), APM_E_ARGUMENT_NULL);
    /* Not connected: IOException, not an argument error. */
    ASSERT_STATUS(apm_network_stream_create(s, 0, &st), APM_E_IO);
    ASSERT_LAST_MESSAGE(not_connected_message);
    ASSERT_STATUS(apm_network_stream_create_with_access(s, APM_FILE_ACCESS_READ, 1, &st),
                  APM_E_IO);
    ASSERT_PTR_EQ(st, (apm_stream *)(uintptr_t)1);
    /* A failed create with owns_socket=1 did not take the socket. */
    ASSERT_EQ(hx_connected(s), 0);
    ASSERT_OK(apm_socket_close(s));
    /* A closed socket. */
    ASSERT_STATUS(apm_network_stream_create(s, 0, &st), APM_E_OBJECT_DISPOSED);

    /* A listening socket is not connected either. */
    l = hx_apm_listener(&port);
    ASSERT_STATUS(apm_network_stream_create(l, 0, &st), APM_E_IO);
    ASSERT_OK(apm_socket_close(l));

    hx_apm_pair(&c, &srv);
    ASSERT_STATUS(apm_network_stream_create(c, 0, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_network_stream_create_with_access(c, 0, 0, &st),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_network_stream_create_with_access(c, 4, 0, &st),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_OK(apm_network_stream_create(c, 0, &st));
    ASSERT_NOT_NULL(st);
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(srv));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(can_read_can_write)
{
    apm_socket *c = NULL, *srv = NULL;
    apm_stream *rw = NULL, *ro = NULL, *wo = NULL;
    int32_t r = -1, w = -1;

    hx_apm_pair(&c, &srv);
    ASSERT_OK(apm_network_stream_create(c, 0, &rw));
    ASSERT_OK(apm_network_stream_create_with_access(c, APM_FILE_ACCESS_READ, 0, &ro));
    ASSERT_OK(apm_network_stream_create_with_access(c, APM_FILE_ACCESS_WRITE, 0, &wo));
    ASSERT_OK(apm_stream_can_read(rw, &r));
    ASSERT_OK(apm_stream_can_write(rw, &w));
    ASSERT_EQ(r, 1);
    ASSERT_EQ(w, 1);
    ASSERT_OK(apm_stream_can_read(ro, &r));
    ASSERT_OK(apm_stream_can_write(ro, &w));
    ASSERT_EQ(r, 1);
    ASSERT_EQ(w, 0);
    ASSERT_OK(apm_stream_can_read(wo, &r));
    ASSERT_OK(apm_stream_can_write(wo, &w));
    ASSERT_EQ(r, 0);
    ASSERT_EQ(w, 1);
    ASSERT_STATUS(apm_stream_can_read(rw, NULL), APM_E_ARGUMENT_NULL);
    ASSERT_OK(apm_stream_close(ro));
    /* As .NET after Dispose: both false, no error. */
    r = w = -1;
    ASSERT_OK(apm_stream_can_read(ro, &r));
    ASSERT_OK(apm_stream_can_write(ro, &w));
    ASSERT_EQ(r, 0);
    ASSERT_EQ(w, 0);
    ASSERT_OK(apm_stream_close(rw));
    ASSERT_OK(apm_stream_close(wo));
    /* None of them owned the socket. */
    ASSERT_EQ(hx_connected(c), 1);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(srv));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(begin_end_write_and_read)
{
    apm_stream *a = NULL, *b = NULL;
    apm_async_result *rw = NULL, *rr = NULL;
    hx_cb cbw, cbr;
    uint8_t out[32] = "__payload of the stream__";
    uint8_t in[64];
    size_t n = 0, got = 0;

    hx_cb_init(&cbw);
    hx_cb_init(&cbr);
    hx_stream_pair(&a, &b);
    memset(in, '#', sizeof in);
    ASSERT_OK(apm_stream_begin_read(b, in, sizeof in, 8, 21, hx_cb_record, &cbr, &rr));
    ASSERT_OK(apm_stream_begin_write(a, out, sizeof out, 2, 21, hx_cb_record, &cbw, &rw));
    ASSERT_EVENT(&cbw.done, 1);
    ASSERT_OK(apm_stream_end_write(a, rw));
    ASSERT_EVENT(&cbr.done, 1);
    ASSERT_OK(apm_stream_end_read(b, rr, &n));
    ASSERT_GT(n, 0);
    got = n;
    while (got < 21) {
        ASSERT_OK(apm_stream_read(b, in, sizeof in, 8 + got, 21 - got, &n));
        ASSERT_GT(n, 0);
        got += n;
    }
    ASSERT_MEM_EQ(in + 8, "payload of the stream", 21);
    ASSERT_EQ(in[7], '#');
    ASSERT_EQ(in[29], '#');
    ASSERT_OK(apm_stream_close(a));
    ASSERT_OK(apm_stream_close(b));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cbw), 1);
    ASSERT_EQ(HX_CB_CALLS(&cbr), 1);
    hx_cb_destroy(&cbw);
    hx_cb_destroy(&cbr);
}

typedef struct stream_reader {
    apm_stream *st;
    size_t total;
    size_t got;
    int ok;
} stream_reader;

static void *read_stream_pattern(void *arg)
{
    stream_reader *k = (stream_reader *)arg;
    uint8_t *buf = hx_xmalloc(1 << 16);
    k->ok = 1;
    while (k->got < k->total) {
        size_t n = 0;
        ASSERT_OK(apm_stream_read(k->st, buf, 1 << 16, 0, 1 << 16, &n));
        if (n == 0)
            break;
        if (hx_pattern_check(buf, n, 4, k->got) != n)
            k->ok = 0;
        k->got += n;
    }
    free(buf);
    return NULL;
}

TEST(sync_write_read_large)
{
    enum { TOTAL = 16 << 20 };
    apm_stream *a = NULL, *b = NULL;
    uint8_t *data = hx_xmalloc(TOTAL);
    stream_reader k;
    pthread_t t;

    hx_stream_pair(&a, &b);
    hx_pattern_fill(data, TOTAL, 4, 0);
    memset(&k, 0, sizeof k);
    k.st = b;
    k.total = TOTAL;
    t = hx_thread_start(read_stream_pattern, &k);
    /* Write completes only when every byte went out. */
    ASSERT_OK(apm_stream_write(a, data, TOTAL, 0, TOTAL));
    hx_thread_join(t);
    ASSERT_UEQ(k.got, TOTAL);
    ASSERT_EQ(k.ok, 1);
    ASSERT_OK(apm_stream_close(a));
    ASSERT_OK(apm_stream_close(b));
    ASSERT_OK(apm_runtime_shutdown());
    free(data);
}

TEST(argument_checks_in_dotnet_order)
{
    apm_socket *c = NULL, *srv = NULL;
    apm_stream *rw = NULL, *ro = NULL, *wo = NULL, *closed = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t buf[4] = {1, 2, 3, 4};
    size_t n = 99;

    hx_cb_init(&cb);
    hx_apm_pair(&c, &srv);
    ASSERT_OK(apm_network_stream_create(c, 0, &rw));
    ASSERT_OK(apm_network_stream_create_with_access(c, APM_FILE_ACCESS_READ, 0, &ro));
    ASSERT_OK(apm_network_stream_create_with_access(c, APM_FILE_ACCESS_WRITE, 0, &wo));
    ASSERT_OK(apm_network_stream_create(c, 0, &closed));
    ASSERT_OK(apm_stream_close(closed));

    /* 1. closed, whatever else is wrong. */
    ASSERT_STATUS(apm_stream_begin_write(closed, NULL, 4, 9, 9, hx_cb_record, &cb, NULL),
                  APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_stream_begin_read(closed, NULL, 4, 9, 9, hx_cb_record, &cb, NULL),
                  APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_stream_write(closed, NULL, 4, 9, 9), APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_stream_read(closed, NULL, 4, 9, 9, &n), APM_E_OBJECT_DISPOSED);

    /* 2. wrong direction. */
    ASSERT_STATUS(apm_stream_begin_write(ro, NULL, 4, 9, 9, hx_cb_record, &cb, NULL),
                  APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("The stream does not support writing.");
    ASSERT_STATUS(apm_stream_write(ro, NULL, 4, 9, 9), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("The stream does not support writing.");
    ASSERT_STATUS(apm_stream_begin_read(wo, NULL, 4, 9, 9, hx_cb_record, &cb, NULL),
                  APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("The stream does not support reading.");
    ASSERT_STATUS(apm_stream_read(wo, NULL, 4, 9, 9, &n), APM_E_INVALID_OPERATION);
    ASSERT_LAST_MESSAGE("The stream does not support reading.");

    /* 3. NULL buffer. */
    ASSERT_STATUS(apm_stream_begin_write(rw, NULL, 4, 9, 9, hx_cb_record, &cb, NULL),
                  APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_begin_read(rw, NULL, 4, 9, 9, hx_cb_record, &cb, NULL),
                  APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_write(rw, NULL, 4, 9, 9), APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_read(rw, NULL, 4, 9, 9, &n), APM_E_ARGUMENT_NULL);

    /* 4. offset > buffer_len. */
    ASSERT_STATUS(apm_stream_begin_write(rw, buf, 4, 5, 0, hx_cb_record, &cb, NULL),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_stream_begin_read(rw, buf, 4, 5, 0, hx_cb_record, &cb, NULL),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_stream_write(rw, buf, 4, SIZE_MAX, 0), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_stream_read(rw, buf, 4, 5, 0, &n), APM_E_ARGUMENT_OUT_OF_RANGE);

    /* 5. count > buffer_len - offset. */
    ASSERT_STATUS(apm_stream_begin_write(rw, buf, 4, 2, 3, hx_cb_record, &cb, NULL),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_stream_begin_read(rw, buf, 4, 4, 1, hx_cb_record, &cb, NULL),
                  APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_stream_write(rw, buf, 4, 1, SIZE_MAX), APM_E_ARGUMENT_OUT_OF_RANGE);
    ASSERT_STATUS(apm_stream_read(rw, buf, 4, 0, 5, &n), APM_E_ARGUMENT_OUT_OF_RANGE);

    /* 6. result out-param NULL. */
    ASSERT_STATUS(apm_stream_begin_write(rw, buf, 4, 0, 4, hx_cb_record, &cb, NULL),
                  APM_E_ARGUMENT_NULL);
    ASSERT_STATUS(apm_stream_begin_read(rw, buf, 4, 0, 4, hx_cb_record, &cb, NULL),
                  APM_E_ARGUMENT_NULL);

    /* None of those started anything. */
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    ASSERT_UEQ(n, 99);

    /* The boundary is fine: offset == buffer_len with count 0. */
    ASSERT_OK(apm_stream_begin_write(rw, buf, 4, 4, 0, NULL, NULL, &r));
    ASSERT_OK(apm_stream_end_write(rw, r));
    ASSERT_OK(apm_stream_write(rw, buf, 4, 0, 4));
    ASSERT_OK(apm_socket_receive(srv, buf, 4, 0, 4, &n));
    ASSERT_GT(n, 0);

    ASSERT_OK(apm_stream_close(rw));
    ASSERT_OK(apm_stream_close(ro));
    ASSERT_OK(apm_stream_close(wo));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(srv));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

TEST(read_returns_zero_at_eof)
{
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_stream *st = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t buf[16];
    size_t n = 99;

    hx_cb_init(&cb);
    ASSERT_OK(apm_network_stream_create(c, 1, &st));
    ASSERT_OK(apm_stream_begin_read(st, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    shutdown(fd, SHUT_WR);
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_OK(apm_stream_end_read(st, r, &n));
    ASSERT_UEQ(n, 0);
    n = 99;
    ASSERT_OK(apm_stream_read(st, buf, sizeof buf, 0, sizeof buf, &n));
    ASSERT_UEQ(n, 0);
    ASSERT_OK(apm_stream_close(st));
    close(fd);
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

TEST(owns_socket_closes_the_socket)
{
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_stream *st = NULL;
    uint8_t buf[8];
    int32_t v = 0;
    size_t n = 0;

    /* Not owned: the socket survives the stream untouched. */
    ASSERT_OK(apm_network_stream_create(c, 0, &st));
    ASSERT_OK(apm_stream_close(st));
    ASSERT_EQ(hx_connected(c), 1);
    ASSERT_OK(apm_socket_send(c, (const uint8_t *)"still", 5, 0, 5, &n));
    ASSERT_UEQ(hx_read_full(fd, buf, 5), 5);
    ASSERT_MEM_EQ(buf, "still", 5);

    /* Owned: closing the stream closes the socket; the peer sees EOF. */
    ASSERT_OK(apm_network_stream_create(c, 1, &st));
    ASSERT_OK(apm_stream_close(st));
    ASSERT_STATUS(apm_socket_get_connected(c, &v), APM_E_OBJECT_DISPOSED);
    ASSERT_UEQ(hx_read_full(fd, buf, sizeof buf), 0);
    /* Closing the socket again is harmless. */
    ASSERT_OK(apm_socket_close(c));
    close(fd);
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- 100 connections, callbacks only ------------------------------------ */

#define CONNS 100
#define PER_CONN (128 * 1024)
#define CHUNK 8192

typedef struct echo_server echo_server;

typedef struct echo_conn {
    echo_server *srv;
    apm_stream *st;
    uint8_t buf[CHUNK];
} echo_conn;

struct echo_server {
    apm_socket *listener;
    echo_conn conns[CONNS];
    atomic_int accepted;
    hx_event accepted_ev;
    hx_event eof_ev;
};

typedef struct echo_client {
    apm_stream *st;
    int id;
    size_t wrote, wlen, read;
    uint8_t wbuf[CHUNK];
    uint8_t rbuf[CHUNK];
    hx_event *done;
} echo_client;

static void echo_read(echo_conn *conn);

static void on_echo_written(apm_async_result *r, void *state)
{
    echo_conn *conn = (echo_conn *)state;
    ASSERT_OK(apm_stream_end_write(conn->st, r));
    echo_read(conn);
}

static void on_echo_read(apm_async_result *r, void *state)
{
    echo_conn *conn = (echo_conn *)state;
    apm_async_result *w = NULL;
    size_t n = 0;
    ASSERT_OK(apm_stream_end_read(conn->st, r, &n));
    if (n == 0) {
        hx_event_signal(&conn->srv->eof_ev);
        return;
    }
    ASSERT_OK(apm_stream_begin_write(conn->st, conn->buf, CHUNK, 0, n, on_echo_written, conn, &w));
}

static void echo_read(echo_conn *conn)
{
    apm_async_result *r = NULL;
    ASSERT_OK(apm_stream_begin_read(conn->st, conn->buf, CHUNK, 0, CHUNK, on_echo_read, conn, &r));
}

static void on_accept(apm_async_result *r, void *state)
{
    echo_server *srv = (echo_server *)state;
    apm_socket *s = NULL;
    apm_async_result *next = NULL;
    int idx;
    ASSERT_OK(apm_socket_end_accept(srv->listener, r, &s));
    idx = atomic_fetch_add(&srv->accepted, 1);
    ASSERT_LT(idx, CONNS);
    srv->conns[idx].srv = srv;
    ASSERT_OK(apm_network_stream_create(s, 1, &srv->conns[idx].st));
    hx_event_signal(&srv->accepted_ev);
    echo_read(&srv->conns[idx]);
    if (idx + 1 < CONNS)
        ASSERT_OK(apm_socket_begin_accept(srv->listener, on_accept, srv, &next));
}

static void client_write_next(echo_client *c);

static void on_client_written(apm_async_result *r, void *state)
{
    echo_client *c = (echo_client *)state;
    ASSERT_OK(apm_stream_end_write(c->st, r));
    c->wrote += c->wlen;
    if (c->wrote < PER_CONN)
        client_write_next(c);
}

static void client_write_next(echo_client *c)
{
    apm_async_result *r = NULL;
    /* Varying sizes, so that reads and writes do not line up. */
    size_t len = 1000 + (size_t)((c->id * 7919 + c->wrote) % (CHUNK - 1000));
    if (len > PER_CONN - c->wrote)
        len = PER_CONN - c->wrote;
    hx_pattern_fill(c->wbuf, len, 100 + (uint64_t)c->id, c->wrote);
    c->wlen = len;
    ASSERT_OK(apm_stream_begin_write(c->st, c->wbuf, CHUNK, 0, len, on_client_written, c, &r));
}

static void client_read_next(echo_client *c);

static void on_client_read(apm_async_result *r, void *state)
{
    echo_client *c = (echo_client *)state;
    size_t n = 0, bad;
    ASSERT_OK(apm_stream_end_read(c->st, r, &n));
    if (n == 0)
        hx_fail(__FILE__, __LINE__, "client %d: EOF after %zu of %d bytes", c->id, c->read,
                PER_CONN);
    bad = hx_pattern_check(c->rbuf, n, 100 + (uint64_t)c->id, c->read);
    if (bad != n)
        hx_fail(__FILE__, __LINE__, "client %d: wrong echo byte at offset %zu", c->id,
                c->read + bad);
    c->read += n;
    if (c->read < PER_CONN)
        client_read_next(c);
    else
        hx_event_signal(c->done);
}

static void client_read_next(echo_client *c)
{
    apm_async_result *r = NULL;
    ASSERT_OK(apm_stream_begin_read(c->st, c->rbuf, CHUNK, 0, CHUNK, on_client_read, c, &r));
}

TEST(hundred_connections_echo_through_callbacks)
{
    echo_server *srv = hx_xmalloc(sizeof *srv);
    echo_client *clients = hx_xmalloc(sizeof(echo_client) * CONNS);
    hx_event done;
    apm_async_result *r = NULL;
    int port = 0;

    memset(srv, 0, sizeof *srv);
    memset(clients, 0, sizeof(echo_client) * CONNS);
    atomic_init(&srv->accepted, 0);
    hx_event_init(&srv->accepted_ev);
    hx_event_init(&srv->eof_ev);
    hx_event_init(&done);

    srv->listener = hx_apm_listener(&port);
    ASSERT_OK(apm_socket_begin_accept(srv->listener, on_accept, srv, &r));

    for (int i = 0; i < CONNS; i++) {
        apm_socket *s = hx_apm_tcp4();
        echo_client *c = &clients[i];
        ASSERT_OK(apm_socket_connect(s, "127.0.0.1", port));
        ASSERT_OK(apm_network_stream_create(s, 1, &c->st));
        c->id = i;
        c->done = &done;
        client_read_next(c);
        client_write_next(c);
    }
    ASSERT_EVENT(&srv->accepted_ev, CONNS);
    ASSERT_EVENT(&done, CONNS);
    for (int i = 0; i < CONNS; i++) {
        ASSERT_UEQ(clients[i].read, PER_CONN);
        WAIT_FOR(clients[i].wrote == PER_CONN);
    }
    /* Closing the clients ends every echo loop with EOF. */
    for (int i = 0; i < CONNS; i++)
        ASSERT_OK(apm_stream_close(clients[i].st));
    ASSERT_EVENT(&srv->eof_ev, CONNS);
    for (int i = 0; i < CONNS; i++)
        ASSERT_OK(apm_stream_close(srv->conns[i].st));
    ASSERT_OK(apm_socket_close(srv->listener));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(atomic_load(&srv->accepted), CONNS);

    hx_event_destroy(&srv->accepted_ev);
    hx_event_destroy(&srv->eof_ev);
    hx_event_destroy(&done);
    free(srv);
    free(clients);
}

/* ---- ordering of pending writes ------------------------------------------ */

TEST(pending_writes_complete_in_fifo_order)
{
    enum { WRITES = 8, LEN = 512 * 1024 };
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_stream *st = NULL;
    apm_async_result *r[WRITES];
    uint8_t *bufs[WRITES];
    hx_drain d;

    ASSERT_OK(apm_network_stream_create(c, 1, &st));
    for (int i = 0; i < WRITES; i++) {
        bufs[i] = hx_xmalloc(LEN);
        hx_pattern_fill(bufs[i], LEN, 20 + (uint64_t)i, 0);
    }
    /* All issued before the peer reads anything: most must queue. */
    for (int i = 0; i < WRITES; i++)
        ASSERT_OK(apm_stream_begin_write(st, bufs[i], LEN, 0, LEN, NULL, NULL, &r[i]));
    hx_drain_start(&d, fd, 1);
    for (int i = 0; i < WRITES; i++)
        ASSERT_OK(apm_stream_end_write(st, r[i]));
    ASSERT_OK(apm_stream_close(st));
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, (size_t)WRITES * LEN);
    for (int i = 0; i < WRITES; i++) {
        size_t bad = hx_pattern_check(d.data + (size_t)i * LEN, LEN, 20 + (uint64_t)i, 0);
        if (bad != LEN)
            hx_fail(__FILE__, __LINE__, "write %d: wrong byte at its offset %zu", i, bad);
    }
    free(d.data);
    for (int i = 0; i < WRITES; i++)
        free(bufs[i]);
    ASSERT_OK(apm_runtime_shutdown());
}

/* Writers on several threads share one stream: each write goes out whole,
 * never interleaved with another, and each thread's writes keep their order. */
#define WRITER_THREADS 4
#define WRITER_RECORDS 64

typedef struct writer_ctx {
    apm_stream *st;
    int id;
    uint8_t *records[WRITER_RECORDS];
    size_t lens[WRITER_RECORDS];
} writer_ctx;

static size_t record_payload_len(int id, int seq)
{
    return 1 + (size_t)((id * 7919 + seq * 104729) % 65536);
}

static void *writer_main(void *arg)
{
    writer_ctx *w = (writer_ctx *)arg;
    apm_async_result *r[WRITER_RECORDS];
    for (int seq = 0; seq < WRITER_RECORDS; seq++) {
        size_t len = record_payload_len(w->id, seq);
        uint8_t *rec = hx_xmalloc(12 + len);
        rec[0] = 'R';
        rec[1] = (uint8_t)w->id;
        rec[2] = (uint8_t)seq;
        rec[3] = 'R';
        {
            uint32_t l32 = (uint32_t)len;
            memcpy(rec + 4, &l32, 4);
        }
        memset(rec + 8, 0, 4);
        hx_pattern_fill(rec + 12, len, (uint64_t)(w->id * 1000 + seq), 0);
        w->records[seq] = rec;
        w->lens[seq] = 12 + len;
        ASSERT_OK(apm_stream_begin_write(w->st, rec, 12 + len, 0, 12 + len, NULL, NULL, &r[seq]));
    }
    for (int seq = 0; seq < WRITER_RECORDS; seq++)
        ASSERT_OK(apm_stream_end_write(w->st, r[seq]));
    return NULL;
}

TEST(concurrent_writers_never_interleave)
{
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_stream *st = NULL;
    writer_ctx w[WRITER_THREADS];
    pthread_t t[WRITER_THREADS];
    int next_seq[WRITER_THREADS] = {0};
    size_t off = 0, records = 0;
    hx_drain d;

    ASSERT_OK(apm_network_stream_create(c, 1, &st));
    hx_drain_start(&d, fd, 1);
    for (int i = 0; i < WRITER_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].st = st;
        w[i].id = i;
        t[i] = hx_thread_start(writer_main, &w[i]);
    }
    for (int i = 0; i < WRITER_THREADS; i++)
        hx_thread_join(t[i]);
    ASSERT_OK(apm_stream_close(st));
    hx_drain_join(&d);

    while (off < d.len) {
        uint32_t len = 0;
        int id, seq;
        ASSERT_LE(off + 12, d.len);
        if (d.data[off] != 'R' || d.data[off + 3] != 'R')
            hx_fail(__FILE__, __LINE__, "no record header at stream offset %zu", off);
        id = d.data[off + 1];
        seq = d.data[off + 2];
        memcpy(&len, d.data + off + 4, 4);
        ASSERT_LT(id, WRITER_THREADS);
        ASSERT_EQ(seq, next_seq[id]);
        ASSERT_UEQ(len, record_payload_len(id, seq));
        ASSERT_LE(off + 12 + len, d.len);
        if (hx_pattern_check(d.data + off + 12, len, (uint64_t)(id * 1000 + seq), 0) != len)
            hx_fail(__FILE__, __LINE__, "record %d/%d at offset %zu is mixed with other bytes",
                    id, seq, off);
        next_seq[id]++;
        records++;
        off += 12 + len;
    }
    ASSERT_UEQ(records, WRITER_THREADS * WRITER_RECORDS);
    free(d.data);
    for (int i = 0; i < WRITER_THREADS; i++)
        for (int seq = 0; seq < WRITER_RECORDS; seq++)
            free(w[i].records[seq]);
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(one_read_and_one_write_pending_together)
{
    apm_stream *a = NULL, *b = NULL;
    apm_async_result *ra = NULL, *wa = NULL, *rb = NULL, *wb = NULL;
    uint8_t ina[8], inb[8];
    size_t n = 0;

    hx_stream_pair(&a, &b);
    ASSERT_OK(apm_stream_begin_read(a, ina, sizeof ina, 0, 3, NULL, NULL, &ra));
    ASSERT_OK(apm_stream_begin_read(b, inb, sizeof inb, 0, 3, NULL, NULL, &rb));
    ASSERT_OK(apm_stream_begin_write(a, (const uint8_t *)"a2b", 3, 0, 3, NULL, NULL, &wa));
    ASSERT_OK(apm_stream_begin_write(b, (const uint8_t *)"b2a", 3, 0, 3, NULL, NULL, &wb));
    ASSERT_OK(apm_stream_end_write(a, wa));
    ASSERT_OK(apm_stream_end_write(b, wb));
    ASSERT_OK(apm_stream_end_read(a, ra, &n));
    ASSERT_GT(n, 0);
    ASSERT_MEM_EQ(ina, "b2a", n);
    ASSERT_OK(apm_stream_end_read(b, rb, &n));
    ASSERT_GT(n, 0);
    ASSERT_MEM_EQ(inb, "a2b", n);
    ASSERT_OK(apm_stream_close(a));
    ASSERT_OK(apm_stream_close(b));
    ASSERT_OK(apm_runtime_shutdown());
}

/* ---- failures ----------------------------------------------------------- */

static void assert_reset_error(void)
{
    int32_t se = apm_last_error_socket_error();
    if (se != APM_SOCKET_ERROR_CONNECTION_RESET && se != APM_SOCKET_ERROR_SHUTDOWN)
        hx_fail(__FILE__, __LINE__, "socket error %d, expected 10054 or 10058 (message \"%s\")",
                (int)se, hx_last_message());
}

TEST(peer_reset_during_large_write)
{
    enum { TOTAL = 64 << 20 };
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_stream *st = NULL;
    apm_async_result *r = NULL;
    uint8_t *data = hx_xmalloc(TOTAL);
    uint8_t buf[65536];
    hx_cb cb;
    apm_status status;

    hx_cb_init(&cb);
    memset(data, 'w', TOTAL);
    ASSERT_OK(apm_network_stream_create(c, 1, &st));
    ASSERT_OK(apm_stream_begin_write(st, data, TOTAL, 0, TOTAL, hx_cb_record, &cb, &r));
    /* The write has started; now the peer resets the connection. */
    ASSERT_UEQ(hx_read_full(fd, buf, sizeof buf), sizeof buf);
    hx_close_with_reset(fd);
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_stream_end_write(st, r), APM_E_IO);
    ASSERT_LAST_MESSAGE_CONTAINS(write_failure_prefix);
    ASSERT_STR_STARTS_WITH(hx_last_message(), write_failure_prefix);
    assert_reset_error();

    /* Writing again hits EPIPE in the kernel: an error, never SIGPIPE. */
    status = apm_stream_begin_write(st, data, TOTAL, 0, 4096, NULL, NULL, &r);
    if (status == APM_OK)
        status = apm_stream_end_write(st, r);
    ASSERT_EQ(status, APM_E_IO);
    ASSERT_STR_STARTS_WITH(hx_last_message(), write_failure_prefix);
    ASSERT_STATUS(apm_stream_write(st, data, TOTAL, 0, 4096), APM_E_IO);
    ASSERT_STR_STARTS_WITH(hx_last_message(), write_failure_prefix);
    assert_reset_error();

    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
    free(data);
}

TEST(peer_reset_during_read)
{
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_stream *st = NULL;
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t buf[16];
    size_t n = 0;

    hx_cb_init(&cb);
    ASSERT_OK(apm_network_stream_create(c, 1, &st));
    ASSERT_OK(apm_stream_begin_read(st, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cb, &r));
    hx_close_with_reset(fd);
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_stream_end_read(st, r, &n), APM_E_IO);
    ASSERT_STR_STARTS_WITH(hx_last_message(), read_failure_prefix);
    ASSERT_EQ(apm_last_error_socket_error(), APM_SOCKET_ERROR_CONNECTION_RESET);
    ASSERT_EQ(apm_last_error_errno(), ECONNRESET);
    ASSERT_OK(apm_stream_close(st));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

TEST(close_with_read_and_write_pending)
{
    enum { TOTAL = 64 << 20 };
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_stream *st = NULL;
    apm_async_result *rr = NULL, *rw = NULL;
    uint8_t *data = hx_xmalloc(TOTAL);
    uint8_t buf[16];
    hx_cb cbr, cbw;
    int32_t done = -1;
    size_t n = 4321;

    hx_cb_init(&cbr);
    hx_cb_init(&cbw);
    memset(data, 'p', TOTAL);
    ASSERT_OK(apm_network_stream_create(c, 1, &st));
    /* The peer neither writes nor reads: both stay pending. */
    ASSERT_OK(apm_stream_begin_read(st, buf, sizeof buf, 0, sizeof buf, hx_cb_record, &cbr, &rr));
    ASSERT_OK(apm_stream_begin_write(st, data, TOTAL, 0, TOTAL, hx_cb_record, &cbw, &rw));
    ASSERT_OK(apm_async_result_is_completed(rr, &done));
    ASSERT_EQ(done, 0);
    ASSERT_OK(apm_async_result_is_completed(rw, &done));
    ASSERT_EQ(done, 0);

    ASSERT_OK(apm_stream_close(st));
    ASSERT_EVENT(&cbr.done, 1);
    ASSERT_EVENT(&cbw.done, 1);
    ASSERT_STATUS(apm_stream_end_read(st, rr, &n), APM_E_OBJECT_DISPOSED);
    ASSERT_UEQ(n, 4321);
    ASSERT_STATUS(apm_stream_end_write(st, rw), APM_E_OBJECT_DISPOSED);
    /* The socket went with the stream. */
    ASSERT_STATUS(apm_socket_get_connected(c, &done), APM_E_OBJECT_DISPOSED);
    close(fd);
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cbr), 1);
    ASSERT_EQ(HX_CB_CALLS(&cbw), 1);
    hx_cb_destroy(&cbr);
    hx_cb_destroy(&cbw);
    free(data);
}

typedef struct close_in_cb {
    apm_stream *st;
    apm_status end_status;
    apm_status close_status;
    size_t n;
    hx_event done;
} close_in_cb;

static void read_then_close(apm_async_result *r, void *state)
{
    close_in_cb *k = (close_in_cb *)state;
    k->end_status = apm_stream_end_read(k->st, r, &k->n);
    k->close_status = apm_stream_close(k->st);
    hx_event_signal(&k->done);
}

TEST(close_from_inside_a_callback)
{
    /* A callback may call any function of the library, close included; the
     * pending write still completes exactly once, with OBJECT_DISPOSED. */
    enum { TOTAL = 64 << 20 };
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_async_result *rr = NULL, *rw = NULL;
    uint8_t *data = hx_xmalloc(TOTAL);
    uint8_t buf[16];
    close_in_cb k;
    hx_cb cbw;

    memset(&k, 0, sizeof k);
    hx_event_init(&k.done);
    hx_cb_init(&cbw);
    memset(data, 'c', TOTAL);
    ASSERT_OK(apm_network_stream_create(c, 1, &k.st));
    ASSERT_OK(apm_stream_begin_write(k.st, data, TOTAL, 0, TOTAL, hx_cb_record, &cbw, &rw));
    ASSERT_OK(apm_stream_begin_read(k.st, buf, sizeof buf, 0, sizeof buf, read_then_close, &k,
                                    &rr));
    hx_write_all(fd, "go", 2);
    ASSERT_EVENT(&k.done, 1);
    ASSERT_EQ(k.end_status, APM_OK);
    ASSERT_GT(k.n, 0);
    ASSERT_EQ(k.close_status, APM_OK);
    ASSERT_EVENT(&cbw.done, 1);
    ASSERT_STATUS(apm_stream_end_write(k.st, rw), APM_E_OBJECT_DISPOSED);
    close(fd);
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cbw), 1);
    hx_cb_destroy(&cbw);
    hx_event_destroy(&k.done);
    free(data);
}

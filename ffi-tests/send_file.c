/*
 * ffi-tests/send_file.c - Socket.SendFile / BeginSendFile: buffers only,
 * file with pre/post buffers, the Begin checks (closed, not connected,
 * missing file or directory, empty name), the Disconnect and ReuseSocket
 * flags, progress, a 64 MiB transfer checked by a Python peer's SHA-256, a
 * > 4 GiB sparse file, and peers that go away mid-transfer.
 */
#include "harness.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char not_connected_message[] =
    "The operation is not allowed on non-connected sockets.";

/* A temporary file of `len` pattern bytes (seed 11); optionally hashes it. */
static char *make_pattern_file(size_t len, hx_sha256 *hash)
{
    char *path = NULL;
    int fd = hx_temp_file(&path);
    size_t chunk = 1 << 20, off = 0;
    uint8_t *buf = hx_xmalloc(chunk);
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk;
        hx_pattern_fill(buf, n, 11, off);
        if (hash != NULL)
            hx_sha256_update(hash, buf, n);
        if (write(fd, buf, n) != (ssize_t)n)
            hx_fail(__FILE__, __LINE__, "write %s: %s", path, strerror(errno));
        off += n;
    }
    free(buf);
    close(fd);
    return path;
}

/* Connected apm client + drain thread on the peer side (keeps the bytes). */
static apm_socket *connect_with_drain(hx_drain *d, int keep)
{
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    hx_drain_start(d, fd, keep);
    return c;
}

TEST(send_file_buffers_only_sync)
{
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    /* NULL and "" both mean "no file" for the synchronous call. */
    ASSERT_OK(apm_socket_send_file(c, NULL, (const uint8_t *)"pre:", 4, (const uint8_t *)":post",
                                   5, 0));
    ASSERT_OK(apm_socket_send_file(c, "", (const uint8_t *)"<", 1, (const uint8_t *)">", 1, 0));
    ASSERT_OK(apm_socket_send_file(c, NULL, NULL, 0, NULL, 0, 0));
    ASSERT_OK(apm_socket_send_file(c, NULL, NULL, 0, (const uint8_t *)"!", 1, 0));
    ASSERT_OK(apm_socket_shutdown(c, APM_SOCKET_SHUTDOWN_SEND));
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, 12);
    ASSERT_MEM_EQ(d.data, "pre::post<>!", 12);
    free(d.data);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(begin_send_file_null_name_buffers_only)
{
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    apm_async_result *r = NULL;
    hx_cb cb;
    hx_cb_init(&cb);
    ASSERT_OK(apm_socket_begin_send_file(c, NULL, (const uint8_t *)"head", 4,
                                         (const uint8_t *)"tail", 4, 0, hx_cb_record, &cb, &r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_OK(apm_socket_shutdown(c, APM_SOCKET_SHUTDOWN_SEND));
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, 8);
    ASSERT_MEM_EQ(d.data, "headtail", 8);
    free(d.data);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
}

TEST(begin_send_file_empty_name_file_not_found)
{
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    apm_async_result *r = NULL;
    hx_cb cb;
    hx_cb_init(&cb);
    /* Unlike the sync call, "" is a file name that cannot be opened. */
    ASSERT_STATUS(apm_socket_begin_send_file(c, "", (const uint8_t *)"pre", 3, NULL, 0, 0,
                                             hx_cb_record, &cb, &r),
                  APM_E_FILE_NOT_FOUND);
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    /* Nothing was sent: the file is opened before any byte goes out. */
    ASSERT_OK(apm_socket_close(c));
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, 0);
    free(d.data);
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    hx_cb_destroy(&cb);
}

TEST(send_file_with_pre_and_post_buffers)
{
    enum { LEN = 300000 };
    char *path = make_pattern_file(LEN, NULL);
    uint8_t pre[100], post[77];
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    apm_async_result *r = NULL;
    hx_cb cb;

    hx_cb_init(&cb);
    memset(pre, 'P', sizeof pre);
    memset(post, 'Q', sizeof post);
    /* Sync, then Begin/End on the same connection. */
    ASSERT_OK(apm_socket_send_file(c, path, pre, sizeof pre, post, sizeof post, 0));
    ASSERT_OK(apm_socket_begin_send_file(c, path, pre, sizeof pre, post, sizeof post, 0,
                                         hx_cb_record, &cb, &r));
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_EQ(hx_connected(c), 1);
    ASSERT_OK(apm_socket_shutdown(c, APM_SOCKET_SHUTDOWN_SEND));
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, 2 * (sizeof pre + LEN + sizeof post));
    for (int i = 0; i < 2; i++) {
        const uint8_t *p = d.data + (size_t)i * (sizeof pre + LEN + sizeof post);
        ASSERT_MEM_EQ(p, pre, sizeof pre);
        ASSERT_UEQ(hx_pattern_check(p + sizeof pre, LEN, 11, 0), LEN);
        ASSERT_MEM_EQ(p + sizeof pre + LEN, post, sizeof post);
    }
    free(d.data);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
    hx_temp_remove(path);
}

TEST(send_file_flags)
{
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    apm_async_result *r = NULL;
    /* The Windows-only flags are accepted and ignored. */
    ASSERT_OK(apm_socket_send_file(c, NULL, (const uint8_t *)"a", 1, NULL, 0,
                                   APM_TRANSMIT_FILE_WRITE_BEHIND |
                                       APM_TRANSMIT_FILE_USE_SYSTEM_THREAD |
                                       APM_TRANSMIT_FILE_USE_KERNEL_APC));
    ASSERT_OK(apm_socket_begin_send_file(c, NULL, (const uint8_t *)"b", 1, NULL, 0,
                                         APM_TRANSMIT_FILE_WRITE_BEHIND, NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_EQ(hx_connected(c), 1);
    /* Unknown flags are an argument error. */
    ASSERT_STATUS(apm_socket_send_file(c, NULL, (const uint8_t *)"x", 1, NULL, 0, 0x40),
                  APM_E_ARGUMENT);
    ASSERT_STATUS(apm_socket_begin_send_file(c, NULL, (const uint8_t *)"x", 1, NULL, 0, 0x100,
                                             NULL, NULL, &r),
                  APM_E_ARGUMENT);
    /* Sync Disconnect is honoured too (documented difference from .NET on Linux). */
    ASSERT_OK(apm_socket_send_file(c, NULL, (const uint8_t *)"c", 1, NULL, 0,
                                   APM_TRANSMIT_FILE_DISCONNECT));
    ASSERT_EQ(hx_connected(c), 0);
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, 3);
    ASSERT_MEM_EQ(d.data, "abc", 3);
    free(d.data);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(send_file_empty_file)
{
    char *path = make_pattern_file(0, NULL);
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    apm_async_result *r = NULL;
    ASSERT_OK(apm_socket_begin_send_file(c, path, (const uint8_t *)"[", 1, (const uint8_t *)"]",
                                         1, 0, NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_OK(apm_socket_close(c));
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, 2);
    ASSERT_MEM_EQ(d.data, "[]", 2);
    free(d.data);
    ASSERT_OK(apm_runtime_shutdown());
    hx_temp_remove(path);
}

TEST(send_file_missing_file_and_directory)
{
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    apm_async_result *r = NULL;
    hx_cb cb;
    char *missing = hx_temp_missing_path(".bin");
    char *missing_dir = hx_temp_missing_path("-dir/file.bin");

    hx_cb_init(&cb);
    ASSERT_STATUS(apm_socket_begin_send_file(c, missing, (const uint8_t *)"x", 1, NULL, 0, 0,
                                             hx_cb_record, &cb, &r),
                  APM_E_FILE_NOT_FOUND);
    ASSERT_STATUS(apm_socket_begin_send_file(c, missing_dir, (const uint8_t *)"x", 1, NULL, 0,
                                             0, hx_cb_record, &cb, &r),
                  APM_E_DIRECTORY_NOT_FOUND);
    ASSERT_STATUS(apm_socket_send_file(c, missing, (const uint8_t *)"x", 1, NULL, 0, 0),
                  APM_E_FILE_NOT_FOUND);
    ASSERT_STATUS(apm_socket_send_file(c, missing_dir, (const uint8_t *)"x", 1, NULL, 0, 0),
                  APM_E_DIRECTORY_NOT_FOUND);
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    /* The socket is still connected and nothing was sent. */
    ASSERT_EQ(hx_connected(c), 1);
    ASSERT_OK(apm_socket_close(c));
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, 0);
    free(d.data);
    free(missing);
    free(missing_dir);
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

TEST(send_file_not_connected_not_supported)
{
    apm_socket *s = hx_apm_tcp4();
    apm_async_result *r = NULL;
    char *missing = hx_temp_missing_path(".bin");
    hx_cb cb;
    hx_cb_init(&cb);
    ASSERT_STATUS(apm_socket_begin_send_file(s, NULL, (const uint8_t *)"x", 1, NULL, 0, 0,
                                             hx_cb_record, &cb, &r),
                  APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE(not_connected_message);
    /* Checked before the file is opened. */
    ASSERT_STATUS(apm_socket_begin_send_file(s, missing, NULL, 0, NULL, 0, 0, hx_cb_record, &cb,
                                             &r),
                  APM_E_NOT_SUPPORTED);
    ASSERT_STATUS(apm_socket_send_file(s, missing, NULL, 0, NULL, 0, 0), APM_E_NOT_SUPPORTED);
    ASSERT_LAST_MESSAGE(not_connected_message);
    /* A listening socket is not connected either. */
    ASSERT_OK(apm_socket_bind(s, "127.0.0.1", 0));
    ASSERT_OK(apm_socket_listen(s, 1));
    ASSERT_STATUS(apm_socket_begin_send_file(s, NULL, NULL, 0, NULL, 0, 0, NULL, NULL, &r),
                  APM_E_NOT_SUPPORTED);
    ASSERT_EQ(HX_CB_CALLS(&cb), 0);
    ASSERT_OK(apm_socket_close(s));
    free(missing);
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

TEST(send_file_closed_object_disposed)
{
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    char *missing = hx_temp_missing_path(".bin");
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_socket_close(c));
    /* Checked first: before "not connected" and before the file. */
    ASSERT_STATUS(apm_socket_begin_send_file(c, missing, NULL, 0, NULL, 0, 0, NULL, NULL, &r),
                  APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_socket_begin_send_file(c, NULL, NULL, 0, NULL, 0, 0, NULL, NULL, &r),
                  APM_E_OBJECT_DISPOSED);
    ASSERT_STATUS(apm_socket_send_file(c, NULL, (const uint8_t *)"x", 1, NULL, 0, 0),
                  APM_E_OBJECT_DISPOSED);
    ASSERT_OK(apm_socket_close(s));
    free(missing);
    ASSERT_OK(apm_runtime_shutdown());
}

TEST(send_file_disconnect_flag)
{
    enum { LEN = 200000 };
    char *path = make_pattern_file(LEN, NULL);
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    apm_async_result *r = NULL;
    hx_cb cb;
    hx_cb_init(&cb);
    ASSERT_OK(apm_socket_begin_send_file(c, path, (const uint8_t *)"D", 1, NULL, 0,
                                         APM_TRANSMIT_FILE_DISCONNECT, hx_cb_record, &cb, &r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_EQ(hx_connected(c), 0);
    /* The peer sees everything and then EOF, without us closing the socket. */
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, 1 + LEN);
    ASSERT_EQ(d.data[0], 'D');
    ASSERT_UEQ(hx_pattern_check(d.data + 1, LEN, 11, 0), LEN);
    free(d.data);
    /* Not connected any more: a second send file is refused. */
    ASSERT_STATUS(apm_socket_begin_send_file(c, path, NULL, 0, NULL, 0, 0, NULL, NULL, &r),
                  APM_E_NOT_SUPPORTED);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
    hx_temp_remove(path);
}

TEST(send_file_reuse_socket_connects_again)
{
    enum { LEN = 100000 };
    char *path = make_pattern_file(LEN, NULL);
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    apm_async_result *r = NULL;
    int port2 = 0, fd2 = -1;
    int lfd2 = hx_tcp_listen(&port2);
    uint8_t buf[16];
    size_t n = 0;

    ASSERT_OK(apm_socket_begin_send_file(c, path, NULL, 0, NULL, 0,
                                         APM_TRANSMIT_FILE_DISCONNECT |
                                             APM_TRANSMIT_FILE_REUSE_SOCKET,
                                         NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_EQ(hx_connected(c), 0);
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, LEN);
    ASSERT_UEQ(hx_pattern_check(d.data, LEN, 11, 0), LEN);
    free(d.data);

    /* The same handle connects again (asynchronously, as .NET allows after a
     * disconnect) and carries data to the new peer. */
    ASSERT_OK(apm_socket_begin_connect(c, "127.0.0.1", port2, NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_connect(c, r));
    fd2 = hx_tcp_accept(lfd2);
    ASSERT_EQ(hx_connected(c), 1);
    ASSERT_OK(apm_socket_send(c, (const uint8_t *)"again", 5, 0, 5, &n));
    ASSERT_OK(apm_socket_shutdown(c, APM_SOCKET_SHUTDOWN_SEND));
    ASSERT_UEQ(hx_read_full(fd2, buf, sizeof buf), 5);
    ASSERT_MEM_EQ(buf, "again", 5);
    ASSERT_OK(apm_socket_close(c));
    close(fd2);
    close(lfd2);
    ASSERT_OK(apm_runtime_shutdown());
    hx_temp_remove(path);
}

TEST(send_file_reuse_socket_flag_alone)
{
    enum { LEN = 1000 };
    char *path = make_pattern_file(LEN, NULL);
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 1);
    apm_async_result *r = NULL;
    int port2 = 0, fd2 = -1;
    int lfd2 = hx_tcp_listen(&port2);

    ASSERT_OK(apm_socket_begin_send_file(c, path, NULL, 0, NULL, 0,
                                         APM_TRANSMIT_FILE_REUSE_SOCKET, NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_EQ(hx_connected(c), 0);
    hx_drain_join(&d);
    ASSERT_UEQ(d.len, LEN);
    free(d.data);
    ASSERT_OK(apm_socket_begin_connect(c, "127.0.0.1", port2, NULL, NULL, &r));
    ASSERT_OK(apm_socket_end_connect(c, r));
    fd2 = hx_tcp_accept(lfd2);
    ASSERT_EQ(hx_connected(c), 1);
    ASSERT_OK(apm_socket_close(c));
    close(fd2);
    close(lfd2);
    ASSERT_OK(apm_runtime_shutdown());
    hx_temp_remove(path);
}

/* ---- progress ----------------------------------------------------------- */

typedef struct progress_ctx {
    hx_cb cb; /* first member: hx_cb_record gets the same state */
    pthread_mutex_t mu;
    int64_t values[1 << 14];
    int count;
    int non_monotonic;
    int64_t last_at_completion;
    int count_at_completion;
} progress_ctx;

static void on_progress(apm_async_result *result, int64_t bytes, void *state)
{
    progress_ctx *p = (progress_ctx *)state;
    (void)result;
    pthread_mutex_lock(&p->mu);
    if (p->count > 0 && bytes < p->values[p->count - 1])
        p->non_monotonic = 1;
    if (p->count < (int)(sizeof p->values / sizeof p->values[0]))
        p->values[p->count++] = bytes;
    else
        p->values[p->count - 1] = bytes;
    pthread_mutex_unlock(&p->mu);
}

static void on_progress_done(apm_async_result *result, void *state)
{
    progress_ctx *p = (progress_ctx *)state;
    pthread_mutex_lock(&p->mu);
    p->count_at_completion = p->count;
    p->last_at_completion = p->count > 0 ? p->values[p->count - 1] : -1;
    pthread_mutex_unlock(&p->mu);
    hx_cb_record(result, state);
}

static void run_progress(size_t file_len, size_t pre_len, size_t post_len, int64_t *last,
                         int *count)
{
    char *path = make_pattern_file(file_len, NULL);
    progress_ctx *p = hx_xmalloc(sizeof *p);
    uint8_t *pre = hx_xmalloc(pre_len), *post = hx_xmalloc(post_len);
    hx_drain d;
    apm_socket *c = connect_with_drain(&d, 0);
    apm_async_result *r = NULL;

    memset(p, 0, sizeof *p);
    hx_cb_init(&p->cb);
    pthread_mutex_init(&p->mu, NULL);
    memset(pre, 1, pre_len);
    memset(post, 2, post_len);
    ASSERT_OK(apm_socket_begin_send_file_with_progress(c, path, pre, pre_len, post, post_len, 0,
                                                       on_progress, on_progress_done, p, &r));
    ASSERT_EVENT(&p->cb.done, 1);
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_OK(apm_socket_close(c));
    hx_drain_join(&d);
    ASSERT_UEQ(d.count, pre_len + file_len + post_len);
    ASSERT_OK(apm_runtime_shutdown());

    ASSERT_GT(p->count_at_completion, 0);
    ASSERT_EQ(p->count, p->count_at_completion); /* no progress after completion */
    ASSERT_EQ(p->non_monotonic, 0);
    for (int i = 0; i < p->count; i++) {
        ASSERT_GE(p->values[i], 0);
        ASSERT_LE(p->values[i], (int64_t)(pre_len + file_len + post_len));
    }
    *last = p->last_at_completion;
    *count = p->count;
    ASSERT_EQ(HX_CB_CALLS(&p->cb), 1);
    hx_cb_destroy(&p->cb);
    pthread_mutex_destroy(&p->mu);
    free(p);
    free(pre);
    free(post);
    hx_temp_remove(path);
}

TEST(send_file_progress_increases_to_total)
{
    int64_t last = -1;
    int count = 0;
    /* 16 MiB without buffers: the total is the file's size. */
    run_progress(16u << 20, 0, 0, &last, &count);
    ASSERT_EQ(last, (int64_t)(16u << 20));
    ASSERT_GE(count, 1);
}

TEST(send_file_progress_with_buffers_reaches_total)
{
    int64_t last = -1;
    int count = 0;
    run_progress(4u << 20, 1000, 3000, &last, &count);
    /* The total counts every byte sent: pre + file + post. */
    ASSERT_EQ(last, (int64_t)((4u << 20) + 1000 + 3000));
}

/* ---- big transfers -------------------------------------------------------- */

SLOW_TEST(send_file_64mib_sha256_python_peer)
{
    enum { LEN = 64 << 20 };
    hx_sha256 h;
    char *path;
    char line[256], expect[65], got_hex[65];
    unsigned long long got_count = 0;
    uint8_t pre[1000], post[777];
    hx_peer peer;
    apm_socket *c = hx_apm_tcp4();
    apm_async_result *r = NULL;
    hx_cb cb;
    int port;

    hx_cb_init(&cb);
    hx_pattern_fill(pre, sizeof pre, 5, 0);
    hx_pattern_fill(post, sizeof post, 6, 0);
    hx_sha256_init(&h);
    hx_sha256_update(&h, pre, sizeof pre);
    path = make_pattern_file(LEN, &h);
    hx_sha256_update(&h, post, sizeof post);
    hx_sha256_hex(&h, expect);

    hx_peer_start(&peer, "sha256_sink.py", NULL);
    hx_peer_read_line(&peer, line, sizeof line);
    port = atoi(line);
    ASSERT_GT(port, 0);
    ASSERT_OK(apm_socket_connect(c, "127.0.0.1", port));
    ASSERT_OK(apm_socket_begin_send_file(c, path, pre, sizeof pre, post, sizeof post, 0,
                                         hx_cb_record, &cb, &r));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_OK(apm_socket_close(c));

    hx_peer_read_line(&peer, line, sizeof line);
    ASSERT_EQ(sscanf(line, "%llu %64s", &got_count, got_hex), 2);
    ASSERT_UEQ(got_count, sizeof pre + (size_t)LEN + sizeof post);
    ASSERT_STR_EQ(got_hex, expect);
    ASSERT_EQ(hx_peer_wait(&peer), 0);
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
    hx_temp_remove(path);
}

#define BIG_FILE_LEN ((uint64_t)4 * 1024 * 1024 * 1024 + 65536 + 123)
#define BIG_MARKER_OFF (BIG_FILE_LEN - 1000)
static const char big_marker[] = "APMNET-4GIB-MARKER";

typedef struct big_sink {
    int fd;
    uint64_t count;
    uint64_t bad_at; /* first wrong byte + 1, 0 = none */
    size_t pre_len, post_len;
    const uint8_t *pre, *post;
} big_sink;

static uint8_t big_expected(const big_sink *k, uint64_t pos)
{
    uint64_t marker_start = k->pre_len + BIG_MARKER_OFF;
    if (pos < k->pre_len)
        return k->pre[pos];
    if (pos >= k->pre_len + BIG_FILE_LEN)
        return k->post[pos - k->pre_len - BIG_FILE_LEN];
    if (pos >= marker_start && pos < marker_start + sizeof big_marker - 1)
        return (uint8_t)big_marker[pos - marker_start];
    return 0;
}

static void *big_sink_main(void *arg)
{
    big_sink *k = (big_sink *)arg;
    size_t cap = 1 << 20;
    uint8_t *buf = hx_xmalloc(cap);
    static const uint8_t zeros[4096];
    for (;;) {
        ssize_t n = recv(k->fd, buf, cap, 0);
        uint64_t start = k->count;
        uint64_t zero_lo = k->pre_len, zero_hi = k->pre_len + BIG_MARKER_OFF;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (k->bad_at == 0) {
            size_t i = 0;
            while (i < (size_t)n) {
                uint64_t pos = start + i;
                /* Fast path: whole 4 KiB stretches inside the zero region. */
                if (pos >= zero_lo && pos + sizeof zeros <= zero_hi &&
                    (size_t)n - i >= sizeof zeros) {
                    if (memcmp(buf + i, zeros, sizeof zeros) != 0) {
                        k->bad_at = pos + hx_mem_diff(buf + i, zeros, sizeof zeros) + 1;
                        break;
                    }
                    i += sizeof zeros;
                    continue;
                }
                if (buf[i] != big_expected(k, pos)) {
                    k->bad_at = pos + 1;
                    break;
                }
                i++;
            }
        }
        k->count += (uint64_t)n;
    }
    free(buf);
    close(k->fd);
    return NULL;
}

SLOW_TEST(send_file_over_4gib_sparse)
{
    char *path = NULL;
    int fd = hx_temp_file(&path);
    int peer = -1;
    apm_socket *c;
    apm_async_result *r = NULL;
    big_sink k;
    pthread_t t;
    uint8_t pre[333], post[444];

    if (ftruncate(fd, (off_t)BIG_FILE_LEN) != 0) {
        close(fd);
        hx_temp_remove(path);
        hx_skip("cannot create a %llu-byte sparse file: %s",
                (unsigned long long)BIG_FILE_LEN, strerror(errno));
    }
    if (pwrite(fd, big_marker, sizeof big_marker - 1, (off_t)BIG_MARKER_OFF) !=
        (ssize_t)(sizeof big_marker - 1))
        hx_fail(__FILE__, __LINE__, "pwrite: %s", strerror(errno));
    close(fd);
    hx_pattern_fill(pre, sizeof pre, 8, 0);
    hx_pattern_fill(post, sizeof post, 9, 0);

    c = hx_apm_connect_to_fd(&peer);
    memset(&k, 0, sizeof k);
    k.fd = peer;
    k.pre = pre;
    k.pre_len = sizeof pre;
    k.post = post;
    k.post_len = sizeof post;
    t = hx_thread_start(big_sink_main, &k);
    ASSERT_OK(apm_socket_begin_send_file(c, path, pre, sizeof pre, post, sizeof post, 0, NULL,
                                         NULL, &r));
    ASSERT_OK(apm_socket_end_send_file(c, r));
    ASSERT_OK(apm_socket_shutdown(c, APM_SOCKET_SHUTDOWN_SEND));
    hx_thread_join(t);
    ASSERT_UEQ(k.count, sizeof pre + BIG_FILE_LEN + sizeof post);
    if (k.bad_at != 0)
        hx_fail(__FILE__, __LINE__, "wrong byte at stream offset %llu",
                (unsigned long long)(k.bad_at - 1));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
    hx_temp_remove(path);
}

/* ---- peers that go away -------------------------------------------------- */

TEST(send_file_peer_closed_no_sigpipe)
{
    /* The peer closes first; after we have seen its EOF our socket is in
     * CLOSE_WAIT. The first bytes of the file make the peer answer with a
     * reset, after which sendfile(2) fails with EPIPE: the library must keep
     * SIGPIPE away from the process (sendfile has no MSG_NOSIGNAL). */
    enum { LEN = 32 << 20 };
    char *path = make_pattern_file(LEN, NULL);
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_async_result *r = NULL;
    uint8_t buf[8];
    size_t n = 99;
    apm_status st;

    close(fd);
    ASSERT_OK(apm_socket_receive(c, buf, sizeof buf, 0, sizeof buf, &n));
    ASSERT_UEQ(n, 0);
    st = apm_socket_begin_send_file(c, path, NULL, 0, NULL, 0, 0, NULL, NULL, &r);
    if (st == APM_OK)
        st = apm_socket_end_send_file(c, r);
    ASSERT_EQ(st, APM_E_SOCKET);
    ASSERT(apm_last_error_socket_error() == APM_SOCKET_ERROR_CONNECTION_RESET ||
           apm_last_error_socket_error() == APM_SOCKET_ERROR_SHUTDOWN);
    /* Still alive; a second attempt fails too (not connected any more, or
     * another socket error) and still raises no SIGPIPE. */
    st = apm_socket_send_file(c, path, NULL, 0, NULL, 0, 0);
    ASSERT_NE(st, APM_OK);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
    hx_temp_remove(path);
}

TEST(send_file_peer_reset_midway)
{
    enum { LEN = 64 << 20 };
    char *path = make_pattern_file(LEN, NULL);
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_async_result *r = NULL;
    hx_cb cb;
    uint8_t buf[65536];

    hx_cb_init(&cb);
    ASSERT_OK(apm_socket_begin_send_file(c, path, NULL, 0, NULL, 0, 0, hx_cb_record, &cb, &r));
    /* Read a little, then reset the connection. */
    ASSERT_UEQ(hx_read_full(fd, buf, sizeof buf), sizeof buf);
    hx_close_with_reset(fd);
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_socket_end_send_file(c, r), APM_E_SOCKET);
    ASSERT(apm_last_error_socket_error() == APM_SOCKET_ERROR_CONNECTION_RESET ||
           apm_last_error_socket_error() == APM_SOCKET_ERROR_SHUTDOWN);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
    hx_temp_remove(path);
}

TEST(close_with_pending_send_file)
{
    enum { LEN = 64 << 20 };
    char *path = make_pattern_file(LEN, NULL);
    int fd = -1;
    apm_socket *c = hx_apm_connect_to_fd(&fd);
    apm_async_result *r = NULL;
    hx_cb cb;
    int32_t done = -1;

    hx_cb_init(&cb);
    /* The peer does not read: 64 MiB cannot all be sent. */
    ASSERT_OK(apm_socket_begin_send_file(c, path, NULL, 0, NULL, 0, 0, hx_cb_record, &cb, &r));
    ASSERT_OK(apm_async_result_is_completed(r, &done));
    ASSERT_EQ(done, 0);
    ASSERT_OK(apm_socket_close(c));
    ASSERT_EVENT(&cb.done, 1);
    ASSERT_STATUS(apm_socket_end_send_file(c, r), APM_E_OBJECT_DISPOSED);
    close(fd);
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&cb), 1);
    hx_cb_destroy(&cb);
    hx_temp_remove(path);
}

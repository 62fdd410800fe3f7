/*
 * ffi-tests/fork.c - fork(2) without exec: a child that uses the library (new connections,
 * inherited handles, closing an inherited listener) never affects its parent, whose pending
 * operations and transfers go on; in the child, inherited handles are disposed and new objects
 * get a fresh engine.
 */
#include "harness.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs `body` in a forked child and returns its result. The child reports through a pipe and
 * then kills itself: a child of a fork leaks what its parent's threads held (their stacks are
 * gone), by design, and a memory checker's exit-time leak report must not count that. */
static int in_child(int (*body)(void *), void *arg)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        unsigned char result = (unsigned char)body(arg);
        close(fds[0]);
        if (write(fds[1], &result, 1) != 1)
            _exit(1);
        kill(getpid(), SIGKILL);
        _exit(1);
    }
    close(fds[1]);
    unsigned char result = 255;
    ssize_t n = read(fds[0], &result, 1);
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    return n == 1 ? result : 254;
}

typedef struct transfer {
    apm_socket *from, *to;
    size_t len;
    size_t bad_at; /* 1 + offset of the first wrong byte, 0 if none */
    size_t got;
} transfer;

static void *send_pattern(void *arg)
{
    transfer *t = arg;
    uint8_t *buf = hx_xmalloc(1 << 16);
    size_t off = 0, n = 0;
    while (off < t->len) {
        size_t k = t->len - off < (1 << 16) ? t->len - off : (1 << 16);
        hx_pattern_fill(buf, k, 5, off);
        if (apm_socket_send(t->from, buf, k, 0, k, &n) != APM_OK)
            hx_fail(__FILE__, __LINE__, "send: %s", hx_last_message());
        off += n;
    }
    free(buf);
    return NULL;
}

static void *receive_pattern(void *arg)
{
    transfer *t = arg;
    uint8_t *buf = hx_xmalloc(1 << 16);
    size_t n = 0;
    while (t->got < t->len) {
        if (apm_socket_receive(t->to, buf, 1 << 16, 0, 1 << 16, &n) != APM_OK || n == 0)
            hx_fail(__FILE__, __LINE__, "receive: %s", hx_last_message());
        size_t at = hx_pattern_check(buf, n, 5, t->got);
        if (at != n && t->bad_at == 0)
            t->bad_at = t->got + at + 1;
        t->got += n;
    }
    free(buf);
    return NULL;
}

typedef struct inherited {
    apm_socket *socket, *listener;
} inherited;

/* The child: inherited handles are disposed; a new connection works on a fresh engine. */
static int child_uses_the_library(void *arg)
{
    apm_socket *inherited = ((struct inherited *)arg)->socket;
    apm_socket *inherited_listener = ((struct inherited *)arg)->listener;
    int32_t v = 0;
    size_t n = 0;
    uint8_t buf[8];
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *r = NULL;
    if (apm_socket_get_connected(inherited, &v) != APM_E_OBJECT_DISPOSED)
        return 10;
    /* Closing an inherited handle is a no-op for the parent's socket. */
    if (apm_socket_close(inherited_listener) != APM_OK || apm_socket_close(inherited) != APM_OK)
        return 11;
    hx_apm_pair(&c, &s);
    if (apm_socket_send(s, (const uint8_t *)"child", 5, 0, 5, &n) != APM_OK)
        return 12;
    if (apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r) != APM_OK)
        return 13;
    if (apm_socket_end_receive(c, r, &n) != APM_OK || n == 0 || memcmp(buf, "child", n) != 0)
        return 14;
    /* A receive left pending when the child goes: the parent must not see it. */
    if (apm_socket_begin_receive(c, buf, sizeof buf, 0, sizeof buf, NULL, NULL, &r) != APM_OK)
        return 15;
    return 0;
}

TEST(a_forked_child_using_the_library_never_affects_its_parent)
{
    enum { LEN = 16 << 20, CHILDREN = 5 };
    int port = 0;
    apm_socket *l = hx_apm_listener(&port);
    apm_socket *c = NULL, *s = NULL;
    apm_async_result *accept_r = NULL;
    hx_cb accepted;
    transfer t;
    hx_cb_init(&accepted);
    hx_apm_pair(&c, &s);
    /* A pending accept on the listener the children will close. */
    ASSERT_OK(apm_socket_begin_accept(l, hx_cb_record, &accepted, &accept_r));
    /* A transfer that runs while the children come and go. */
    memset(&t, 0, sizeof t);
    t.from = s;
    t.to = c;
    t.len = LEN;
    pthread_t tx = hx_thread_start(send_pattern, &t);
    pthread_t rx = hx_thread_start(receive_pattern, &t);
    for (int i = 0; i < CHILDREN; i++) {
        struct inherited in = {c, l};
        int result = in_child(child_uses_the_library, &in);
        if (result != 0)
            hx_fail(__FILE__, __LINE__, "child %d failed at step %d", i, result);
    }
    hx_thread_join(tx);
    hx_thread_join(rx);
    ASSERT_UEQ(t.got, LEN);
    ASSERT_UEQ(t.bad_at, 0);
    /* The parent's pending accept still completes. */
    apm_socket *late = hx_apm_tcp4();
    apm_socket *a = NULL;
    ASSERT_OK(apm_socket_connect(late, "127.0.0.1", port));
    ASSERT_EVENT(&accepted.done, 1);
    ASSERT_OK(apm_socket_end_accept(l, accept_r, &a));
    ASSERT_OK(apm_socket_close(a));
    ASSERT_OK(apm_socket_close(late));
    ASSERT_OK(apm_socket_close(c));
    ASSERT_OK(apm_socket_close(s));
    ASSERT_OK(apm_socket_close(l));
    ASSERT_OK(apm_runtime_shutdown());
    ASSERT_EQ(HX_CB_CALLS(&accepted), 1);
    hx_cb_destroy(&accepted);
}

static int close_listener(void *listener)
{
    return apm_socket_close(listener) == APM_OK ? 0 : 1;
}

TEST(a_child_that_only_closes_an_inherited_listener_leaves_the_parents_accept)
{
    int port = 0;
    apm_socket *l = hx_apm_listener(&port);
    apm_async_result *r = NULL;
    hx_cb cb;
    hx_cb_init(&cb);
    ASSERT_OK(apm_socket_begin_accept(l, hx_cb_record, &cb, &r));
    ASSERT_EQ(in_child(close_listener, l), 0);
    int fd = hx_tcp_connect(port);
    ASSERT_EVENT(&cb.done, 1);
    apm_socket *a = NULL;
    ASSERT_OK(apm_socket_end_accept(l, r, &a));
    close(fd);
    ASSERT_OK(apm_socket_close(a));
    ASSERT_OK(apm_socket_close(l));
    ASSERT_OK(apm_runtime_shutdown());
    hx_cb_destroy(&cb);
}

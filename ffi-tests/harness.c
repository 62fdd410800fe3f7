/*
 * ffi-tests/harness.c - runner and helpers of the C test harness.
 * See harness.h for the interface and the environment variables.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------------ */
/* Registry                                                            */
/* ------------------------------------------------------------------ */

#define HX_MAX_TESTS 256

typedef struct hx_test {
    const char *name;
    hx_test_fn fn;
    int flags;
    const char *file;
} hx_test;

static hx_test hx_tests[HX_MAX_TESTS];
static int hx_test_count;
static const char *hx_current_test = "(none)";

void hx_register(const char *name, hx_test_fn fn, int flags, const char *file)
{
    if (hx_test_count == HX_MAX_TESTS) {
        fprintf(stderr, "harness: too many tests\n");
        abort();
    }
    hx_tests[hx_test_count].name = name;
    hx_tests[hx_test_count].fn = fn;
    hx_tests[hx_test_count].flags = flags;
    hx_tests[hx_test_count].file = file;
    hx_test_count++;
}

/* ------------------------------------------------------------------ */
/* Cleanup registry: peers and temporary files                         */
/* ------------------------------------------------------------------ */

#define HX_MAX_CLEANUP 64

static pthread_mutex_t hx_cleanup_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t hx_peer_pids[HX_MAX_CLEANUP];
static char *hx_temp_paths[HX_MAX_CLEANUP];

static void hx_cleanup(void)
{
    /* Called on the failure path only; best effort, no locking games. */
    for (int i = 0; i < HX_MAX_CLEANUP; i++) {
        if (hx_peer_pids[i] > 0)
            kill(hx_peer_pids[i], SIGKILL);
        if (hx_temp_paths[i] != NULL)
            unlink(hx_temp_paths[i]);
    }
}

static void hx_track_pid(pid_t pid, int add)
{
    pthread_mutex_lock(&hx_cleanup_mu);
    for (int i = 0; i < HX_MAX_CLEANUP; i++) {
        if (add && hx_peer_pids[i] == 0) {
            hx_peer_pids[i] = pid;
            break;
        }
        if (!add && hx_peer_pids[i] == pid) {
            hx_peer_pids[i] = 0;
            break;
        }
    }
    pthread_mutex_unlock(&hx_cleanup_mu);
}

static void hx_track_path(const char *path)
{
    pthread_mutex_lock(&hx_cleanup_mu);
    for (int i = 0; i < HX_MAX_CLEANUP; i++) {
        if (hx_temp_paths[i] == NULL) {
            hx_temp_paths[i] = strdup(path);
            break;
        }
    }
    pthread_mutex_unlock(&hx_cleanup_mu);
}

void hx_temp_forget(const char *path)
{
    pthread_mutex_lock(&hx_cleanup_mu);
    for (int i = 0; i < HX_MAX_CLEANUP; i++) {
        if (hx_temp_paths[i] != NULL && strcmp(hx_temp_paths[i], path) == 0) {
            free(hx_temp_paths[i]);
            hx_temp_paths[i] = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&hx_cleanup_mu);
}

/* ------------------------------------------------------------------ */
/* Failing                                                             */
/* ------------------------------------------------------------------ */

static pthread_mutex_t hx_fail_mu = PTHREAD_MUTEX_INITIALIZER;

const char *hx_status_name(apm_status st)
{
    const char *name = apm_status_name(st);
    return name != NULL ? name : "(null name)";
}

const char *hx_last_message(void)
{
    static _Thread_local char buf[2048];
    size_t len = 0;
    buf[0] = '\0';
    if (apm_last_error_message(buf, sizeof buf, &len) != APM_OK)
        snprintf(buf, sizeof buf, "(apm_last_error_message failed)");
    return buf;
}

static void hx_print_last_error(void)
{
    char inner[1024];
    size_t len = 0;
    inner[0] = '\0';
    if (apm_last_error_inner_message(inner, sizeof inner, &len) != APM_OK)
        snprintf(inner, sizeof inner, "(apm_last_error_inner_message failed)");
    fprintf(stderr,
            "    last error: status %s (%d), message \"%s\", inner \"%s\", "
            "socket error %d, errno %d\n",
            hx_status_name(apm_last_error_status()), (int)apm_last_error_status(),
            hx_last_message(), inner, (int)apm_last_error_socket_error(),
            (int)apm_last_error_errno());
}

static _Noreturn void hx_die(void)
{
    fflush(stdout);
    fflush(stderr);
    hx_cleanup();
    _exit(1);
}

void hx_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&hx_fail_mu); /* one report; other failing threads wait */
    fprintf(stderr, "%s:%d: [%s] ", file, line, hx_current_test);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    hx_die();
}

void hx_fail_status(const char *file, int line, const char *expr, apm_status got,
                    apm_status expected)
{
    pthread_mutex_lock(&hx_fail_mu);
    fprintf(stderr, "%s:%d: [%s] %s returned %s (%d), expected %s (%d)\n", file,
            line, hx_current_test, expr, hx_status_name(got), (int)got,
            hx_status_name(expected), (int)expected);
    hx_print_last_error();
    hx_die();
}

void hx_skip(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "[%s] skipped: ", hx_current_test);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stdout);
    fflush(stderr);
    hx_cleanup();
    _exit(77);
}

/* ------------------------------------------------------------------ */
/* Time, events, threads                                               */
/* ------------------------------------------------------------------ */

int64_t hx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hx_sleep_ms(int ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int hx_env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    return atoi(v);
}

int hx_wait_ms(void)
{
    int ms = hx_env_int("APMNET_WAIT_MS", 30000);
    return ms > 0 ? ms : 30000;
}

void hx_event_init(hx_event *ev)
{
    pthread_condattr_t attr;
    pthread_mutex_init(&ev->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->cv, &attr);
    pthread_condattr_destroy(&attr);
    ev->count = 0;
}

void hx_event_destroy(hx_event *ev)
{
    pthread_cond_destroy(&ev->cv);
    pthread_mutex_destroy(&ev->mu);
}

void hx_event_signal(hx_event *ev)
{
    pthread_mutex_lock(&ev->mu);
    ev->count++;
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
}

long hx_event_count(hx_event *ev)
{
    long c;
    pthread_mutex_lock(&ev->mu);
    c = ev->count;
    pthread_mutex_unlock(&ev->mu);
    return c;
}

int hx_event_wait(hx_event *ev, long target, int timeout_ms)
{
    struct timespec deadline;
    int ok;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms >= 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&ev->mu);
    while (ev->count < target) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&ev->cv, &ev->mu);
        } else if (pthread_cond_timedwait(&ev->cv, &ev->mu, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    ok = ev->count >= target;
    pthread_mutex_unlock(&ev->mu);
    return ok;
}

void hx_cb_init(hx_cb *cb)
{
    memset(cb, 0, sizeof *cb);
    hx_event_init(&cb->done);
    atomic_init(&cb->calls, 0);
}

void hx_cb_destroy(hx_cb *cb)
{
    hx_event_destroy(&cb->done);
}

void hx_cb_record(apm_async_result *result, void *state)
{
    hx_cb *cb = (hx_cb *)state;
    int32_t completed = -1, sync = -1;
    void *st = NULL;
    if (apm_async_result_is_completed(result, &completed) != APM_OK)
        completed = -1;
    if (apm_async_result_completed_synchronously(result, &sync) != APM_OK)
        sync = -1;
    if (apm_async_result_state(result, &st) != APM_OK)
        st = NULL;
    /* Fields are published by the event's mutex. */
    pthread_mutex_lock(&cb->done.mu);
    cb->thread = pthread_self();
    cb->is_completed = completed;
    cb->completed_sync = sync;
    cb->result = result;
    cb->state_from_result = st;
    pthread_mutex_unlock(&cb->done.mu);
    atomic_fetch_add(&cb->calls, 1);
    hx_event_signal(&cb->done);
}

pthread_t hx_thread_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    if (rc != 0)
        hx_fail(__FILE__, __LINE__, "pthread_create: %s", strerror(rc));
    return t;
}

void *hx_thread_join(pthread_t t)
{
    void *ret = NULL;
    int rc = pthread_join(t, &ret);
    if (rc != 0)
        hx_fail(__FILE__, __LINE__, "pthread_join: %s", strerror(rc));
    return ret;
}

/* ------------------------------------------------------------------ */
/* POSIX sockets                                                       */
/* ------------------------------------------------------------------ */

static struct sockaddr_in hx_loopback(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

int hx_tcp_listen(int *port)
{
    struct sockaddr_in sa = hx_loopback(0);
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        hx_fail(__FILE__, __LINE__, "socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        hx_fail(__FILE__, __LINE__, "bind: %s", strerror(errno));
    if (listen(fd, 256) != 0)
        hx_fail(__FILE__, __LINE__, "listen: %s", strerror(errno));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        hx_fail(__FILE__, __LINE__, "getsockname: %s", strerror(errno));
    *port = ntohs(sa.sin_port);
    return fd;
}

int hx_tcp_accept(int listen_fd)
{
    int fd;
    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        hx_fail(__FILE__, __LINE__, "accept: %s", strerror(errno));
    return fd;
}

int hx_tcp_connect(int port)
{
    struct sockaddr_in sa = hx_loopback(port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        hx_fail(__FILE__, __LINE__, "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        hx_fail(__FILE__, __LINE__, "connect: %s", strerror(errno));
    return fd;
}

int hx_free_port(void)
{
    struct sockaddr_in sa = hx_loopback(0);
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        hx_fail(__FILE__, __LINE__, "socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        hx_fail(__FILE__, __LINE__, "bind: %s", strerror(errno));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        hx_fail(__FILE__, __LINE__, "getsockname: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

void hx_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            hx_fail(__FILE__, __LINE__, "peer send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

size_t hx_read_full(int fd, void *data, size_t len)
{
    uint8_t *p = (uint8_t *)data;
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, p + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            hx_fail(__FILE__, __LINE__, "peer recv: %s", strerror(errno));
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return got;
}

void hx_close_with_reset(int fd)
{
    struct linger lg;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
        hx_fail(__FILE__, __LINE__, "SO_LINGER: %s", strerror(errno));
    close(fd);
}

void hx_close(int fd)
{
    if (fd >= 0)
        close(fd);
}

static void *hx_drain_main(void *arg)
{
    hx_drain *d = (hx_drain *)arg;
    uint8_t *chunk = hx_xmalloc(1 << 16);
    for (;;) {
        ssize_t n = recv(d->fd, chunk, 1 << 16, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            hx_fail(__FILE__, __LINE__, "drain recv: %s", strerror(errno));
        if (n == 0)
            break;
        if (d->keep) {
            if (d->len + (size_t)n > d->cap) {
                size_t cap = d->cap ? d->cap * 2 : (1 << 16);
                while (cap < d->len + (size_t)n)
                    cap *= 2;
                d->data = realloc(d->data, cap);
                if (d->data == NULL)
                    hx_fail(__FILE__, __LINE__, "out of memory");
                d->cap = cap;
            }
            memcpy(d->data + d->len, chunk, (size_t)n);
            d->len += (size_t)n;
        }
        d->count += (uint64_t)n;
    }
    free(chunk);
    if (d->close_fd)
        close(d->fd);
    return NULL;
}

void hx_drain_start(hx_drain *d, int fd, int keep)
{
    memset(d, 0, sizeof *d);
    d->fd = fd;
    d->keep = keep;
    d->close_fd = 1;
    d->thread = hx_thread_start(hx_drain_main, d);
}

void hx_drain_join(hx_drain *d)
{
    hx_thread_join(d->thread);
}

/* ------------------------------------------------------------------ */
/* apm helpers                                                         */
/* ------------------------------------------------------------------ */

apm_socket *hx_apm_tcp4(void)
{
    apm_socket *s = NULL;
    ASSERT_OK(apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM,
                                APM_PROTOCOL_TYPE_TCP, &s));
    ASSERT_NOT_NULL(s);
    return s;
}

apm_socket *hx_apm_listener(int *port)
{
    apm_socket *l = hx_apm_tcp4();
    char addr[64];
    int32_t p = -1;
    ASSERT_OK(apm_socket_bind(l, "127.0.0.1", 0));
    ASSERT_OK(apm_socket_listen(l, 128));
    ASSERT_OK(apm_socket_get_local_endpoint(l, addr, sizeof addr, &p));
    ASSERT_GT(p, 0);
    *port = (int)p;
    return l;
}

void hx_apm_pair(apm_socket **client, apm_socket **server)
{
    int port = 0;
    apm_socket *l = hx_apm_listener(&port);
    apm_socket *c = hx_apm_tcp4();
    apm_socket *s = NULL;
    ASSERT_OK(apm_socket_connect(c, "127.0.0.1", port));
    ASSERT_OK(apm_socket_accept(l, &s));
    ASSERT_NOT_NULL(s);
    ASSERT_OK(apm_socket_close(l));
    *client = c;
    *server = s;
}

apm_socket *hx_apm_connect_to_fd(int *peer_fd)
{
    int port = 0;
    int lfd = hx_tcp_listen(&port);
    apm_socket *c = hx_apm_tcp4();
    ASSERT_OK(apm_socket_connect(c, "127.0.0.1", port));
    *peer_fd = hx_tcp_accept(lfd);
    close(lfd);
    return c;
}

void hx_stream_pair(apm_stream **a, apm_stream **b)
{
    apm_socket *c = NULL, *s = NULL;
    hx_apm_pair(&c, &s);
    ASSERT_OK(apm_network_stream_create(c, 1, a));
    ASSERT_OK(apm_network_stream_create(s, 1, b));
}

int32_t hx_connected(apm_socket *s)
{
    int32_t v = -1;
    ASSERT_OK(apm_socket_get_connected(s, &v));
    return v;
}

/* ------------------------------------------------------------------ */
/* Test certificate                                                    */
/* ------------------------------------------------------------------ */

/* The throwaway self-signed test certificate and its key (see harness.h). */
const char hx_test_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfzCCASWgAwIBAgIUTE+h5WQKa/Ud0zwp15MNCqLgTZUwCgYIKoZIzj0EAwIw\n"
    "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMTA5MzI0M1oYDzIxMjYxMTA3\n"
    "MDkzMjQzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
    "PQMBBwNCAARIR8SWAOvo6GmaOkuMocSpWKvLJ4bYLvTM/r9ggJTq0zkJ31zcsUEa\n"
    "kaSnkuJ90gEQMSMAGGxfgKwvPsv2MXoro1MwUTAdBgNVHQ4EFgQUP62cLObDvQg7\n"
    "C1bEDPOqsr06+EQwHwYDVR0jBBgwFoAUP62cLObDvQg7C1bEDPOqsr06+EQwDwYD\n"
    "VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA7q3y12Eax7kacjpMlknV\n"
    "/WxGSpb17yjrWygcuc0bofoCIFqwRhxkYNcJILGe7sMpwwpLwdJfTyye8B6AQ96n\n"
    "7vKu\n"
    "-----END CERTIFICATE-----\n"
    ;
const char hx_test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeHC3gawHz7TC1RSe\n"
    "w6C8bE9wukYAQsw3mj0mk8JTO9GhRANCAARIR8SWAOvo6GmaOkuMocSpWKvLJ4bY\n"
    "LvTM/r9ggJTq0zkJ31zcsUEakaSnkuJ90gEQMSMAGGxfgKwvPsv2MXor\n"
    "-----END PRIVATE KEY-----\n"
    ;

/* ------------------------------------------------------------------ */
/* Python peers                                                        */
/* ------------------------------------------------------------------ */

void hx_process_start(hx_peer *p, const char *const *argv)
{
    int pipefd[2];
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc;

    if (pipe2(pipefd, O_CLOEXEC) != 0)
        hx_fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        hx_skip("cannot start %s: %s", argv[0], strerror(rc));
    }
    hx_track_pid(pid, 1);
    p->pid = pid;
    p->out_fd = pipefd[0];
}

void hx_peer_start(hx_peer *p, const char *script, const char *const *args)
{
    const char *python = getenv("APMNET_PYTHON");
    const char *dir = getenv("APMNET_FFI_DIR");
    char path[4096];
    const char *argv[32];
    int argc = 0;

    if (python == NULL || *python == '\0')
        python = "python3";
    if (dir == NULL || *dir == '\0')
        dir = "ffi-tests";
    snprintf(path, sizeof path, "%s/peers/%s", dir, script);
    if (access(path, R_OK) != 0)
        hx_fail(__FILE__, __LINE__, "peer script %s: %s", path, strerror(errno));

    argv[argc++] = python;
    argv[argc++] = "-u";
    argv[argc++] = path;
    for (int i = 0; args != NULL && args[i] != NULL && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    hx_process_start(p, argv);
}

void hx_peer_read_line(hx_peer *p, char *buf, size_t len)
{
    size_t n = 0;
    int64_t deadline = hx_now_ms() + hx_wait_ms();
    if (len == 0)
        return;
    for (;;) {
        struct pollfd pfd;
        char ch;
        ssize_t r;
        int64_t left = deadline - hx_now_ms();
        if (left <= 0)
            hx_fail(__FILE__, __LINE__, "timed out reading a line from the peer");
        pfd.fd = p->out_fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
            continue;
        r = read(p->out_fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            hx_fail(__FILE__, __LINE__, "peer closed its output (read so far: \"%.*s\")",
                    (int)n, buf);
        if (ch == '\n')
            break;
        if (n + 1 < len)
            buf[n++] = ch;
    }
    buf[n] = '\0';
}

int hx_peer_wait(hx_peer *p)
{
    int status = 0;
    pid_t r;
    do {
        r = waitpid(p->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    hx_track_pid(p->pid, 0);
    close(p->out_fd);
    p->out_fd = -1;
    if (r < 0)
        return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Data, files                                                         */
/* ------------------------------------------------------------------ */

void hx_pattern_fill(uint8_t *buf, size_t len, uint64_t seed, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = hx_pattern_byte(seed, offset + i);
}

size_t hx_pattern_check(const uint8_t *buf, size_t len, uint64_t seed, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != hx_pattern_byte(seed, offset + i))
            return i;
    return len;
}

size_t hx_mem_diff(const void *a, const void *b, size_t len)
{
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    for (size_t i = 0; i < len; i++)
        if (x[i] != y[i])
            return i;
    return len;
}

void *hx_xmalloc(size_t len)
{
    void *p = malloc(len ? len : 1);
    if (p == NULL)
        hx_fail(__FILE__, __LINE__, "out of memory (%zu bytes)", len);
    return p;
}

static const char *hx_tmpdir(void)
{
    const char *d = getenv("APMNET_TEST_TMPDIR");
    if (d == NULL || *d == '\0')
        d = getenv("TMPDIR");
    if (d == NULL || *d == '\0')
        d = "/tmp";
    return d;
}

int hx_temp_file(char **path)
{
    size_t len = strlen(hx_tmpdir()) + 64;
    char *p = hx_xmalloc(len);
    int fd;
    snprintf(p, len, "%s/apmnet-test-XXXXXX", hx_tmpdir());
    fd = mkostemp(p, O_CLOEXEC);
    if (fd < 0)
        hx_fail(__FILE__, __LINE__, "mkstemp in %s: %s", hx_tmpdir(), strerror(errno));
    hx_track_path(p);
    *path = p;
    return fd;
}

char *hx_temp_file_with(const void *data, size_t len)
{
    char *path = NULL;
    int fd = hx_temp_file(&path);
    const uint8_t *p = (const uint8_t *)data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            hx_fail(__FILE__, __LINE__, "write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    close(fd);
    return path;
}

void hx_temp_remove(char *path)
{
    unlink(path);
    hx_temp_forget(path);
    free(path);
}

char *hx_temp_missing_path(const char *suffix)
{
    size_t len = strlen(hx_tmpdir()) + strlen(suffix) + 96;
    char *p = hx_xmalloc(len);
    static atomic_int counter;
    snprintf(p, len, "%s/apmnet-missing-%d-%d-%lld%s", hx_tmpdir(), (int)getpid(),
             atomic_fetch_add(&counter, 1), (long long)hx_now_ms(), suffix);
    return p;
}

/* SHA-256 (FIPS 180-4), small and portable. */
static const uint32_t hx_k256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define HX_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void hx_sha256_block(hx_sha256 *c, const uint8_t *p)
{
    uint32_t w[64], a, b, cc, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = HX_ROR(w[i - 15], 7) ^ HX_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = HX_ROR(w[i - 2], 17) ^ HX_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3];
    e = c->h[4]; f = c->h[5]; g = c->h[6]; h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = HX_ROR(e, 6) ^ HX_ROR(e, 11) ^ HX_ROR(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + s1 + ch + hx_k256[i] + w[i];
        uint32_t s0 = HX_ROR(a, 2) ^ HX_ROR(a, 13) ^ HX_ROR(a, 22);
        uint32_t mj = (a & b) ^ (a & cc) ^ (b & cc);
        uint32_t t2 = s0 + mj;
        h = g; g = f; f = e; e = d + t1;
        d = cc; cc = b; b = a; a = t1 + t2;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
    c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

void hx_sha256_init(hx_sha256 *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->buf_len = 0;
}

void hx_sha256_update(hx_sha256 *c, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    c->len += len;
    if (c->buf_len > 0) {
        size_t take = 64 - c->buf_len < len ? 64 - c->buf_len : len;
        memcpy(c->buf + c->buf_len, p, take);
        c->buf_len += take;
        p += take;
        len -= take;
        if (c->buf_len == 64) {
            hx_sha256_block(c, c->buf);
            c->buf_len = 0;
        }
    }
    while (len >= 64) {
        hx_sha256_block(c, p);
        p += 64;
        len -= 64;
    }
    if (len > 0) {
        memcpy(c->buf, p, len);
        c->buf_len = len;
    }
}

void hx_sha256_hex(hx_sha256 *c, char out[65])
{
    uint64_t bits = c->len * 8;
    uint8_t pad[72];
    size_t padlen = (c->buf_len < 56) ? 56 - c->buf_len : 120 - c->buf_len;
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++)
        pad[padlen + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    hx_sha256_update(c, pad, padlen + 8);
    for (int i = 0; i < 8; i++)
        snprintf(out + 8 * i, 9, "%08" PRIx32, c->h[i]);
}

/* ------------------------------------------------------------------ */
/* Runner                                                              */
/* ------------------------------------------------------------------ */

static int hx_find(const char *name)
{
    for (int i = 0; i < hx_test_count; i++)
        if (strcmp(hx_tests[i].name, name) == 0)
            return i;
    return -1;
}

static int hx_skip_slow(void)
{
    return hx_env_int("APMNET_SKIP_SLOW", 0) != 0;
}

/* A test killed by a signal (its timeout, or a SIGPIPE the library let
 * through) still removes its temporary files and peers, then dies of the same
 * signal so that the runner reports it. SIGPIPE is not ignored: reaching this
 * handler fails the test, exactly as the default action would. */
static void hx_fatal_signal(int sig)
{
    static const char pipe_msg[] = "harness: killed by SIGPIPE (the library let it through)\n";
    static const char alarm_msg[] = "harness: test timed out (APMNET_TEST_TIMEOUT)\n";
    static const char other_msg[] = "harness: killed by a signal\n";
    const char *msg = sig == SIGPIPE ? pipe_msg : sig == SIGALRM ? alarm_msg : other_msg;
    size_t len = sig == SIGPIPE ? sizeof pipe_msg - 1
                 : sig == SIGALRM ? sizeof alarm_msg - 1 : sizeof other_msg - 1;
    ssize_t ignored = write(STDERR_FILENO, msg, len);
    (void)ignored;
    hx_cleanup();
    /* SA_RESETHAND restored the default action; the signal is blocked while
     * this handler runs, so it is delivered (and kills) when it returns. */
    raise(sig);
}

static void hx_install_signal_handlers(void)
{
    static const int sigs[] = {SIGPIPE, SIGALRM, SIGTERM, SIGINT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = hx_fatal_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

static int hx_run_in_process(int idx)
{
    int timeout = hx_env_int("APMNET_TEST_TIMEOUT", 60);
    hx_current_test = hx_tests[idx].name;
    hx_install_signal_handlers();
    if ((hx_tests[idx].flags & HX_FLAG_SLOW) && hx_skip_slow()) {
        hx_skip("slow test and APMNET_SKIP_SLOW is set");
    }
    if (timeout > 0)
        alarm((unsigned)timeout); /* default action of SIGALRM ends the process */
    hx_tests[idx].fn();
    alarm(0);
    fflush(stdout);
    fflush(stderr);
    return 0;
}

static const char *hx_signal_name(int sig)
{
    switch (sig) {
    case SIGPIPE: return "SIGPIPE";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGKILL: return "SIGKILL";
    case SIGALRM: return "SIGALRM (timeout)";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    default: return "signal";
    }
}

/* Run every test, each in a forked child in its own process group. */
static int hx_run_all_forked(void)
{
    int timeout = hx_env_int("APMNET_TEST_TIMEOUT", 60);
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < hx_test_count; i++) {
        int status = 0;
        int timed_out = 0;
        int64_t deadline = hx_now_ms() + (int64_t)timeout * 1000;
        pid_t pid;
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            setpgid(0, 0);
            hx_run_in_process(i);
            _exit(0);
        }
        setpgid(pid, pid);
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid)
                break;
            if (r < 0 && errno != EINTR) {
                perror("waitpid");
                return 2;
            }
            if (timeout > 0 && hx_now_ms() > deadline) {
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                timed_out = 1;
                break;
            }
            hx_sleep_ms(5);
        }
        kill(-pid, SIGKILL); /* peers the test left behind */
        if (timed_out) {
            printf("FAIL %s (timeout after %d s)\n", hx_tests[i].name, timeout);
            failed++;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("ok   %s\n", hx_tests[i].name);
            passed++;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
            printf("skip %s\n", hx_tests[i].name);
            skipped++;
        } else if (WIFSIGNALED(status)) {
            printf("FAIL %s (killed by %s, %d)\n", hx_tests[i].name,
                   hx_signal_name(WTERMSIG(status)), WTERMSIG(status));
            failed++;
        } else {
            printf("FAIL %s (exit status %d)\n", hx_tests[i].name, WEXITSTATUS(status));
            failed++;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

static void hx_usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s              run every test, each in its own process\n"
            "       %s --list       list the tests (slow ones marked \"slow\")\n"
            "       %s NAME...      run the named tests in this process\n",
            argv0, argv0, argv0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 1)
        return hx_run_all_forked();
    if (strcmp(argv[1], "--list") == 0 || strcmp(argv[1], "-l") == 0) {
        for (int i = 0; i < hx_test_count; i++)
            printf("%s%s\n", hx_tests[i].name,
                   (hx_tests[i].flags & HX_FLAG_SLOW) ? " slow" : "");
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        hx_usage(argv[0]);
        return 0;
    }
    for (int a = 1; a < argc; a++) {
        int idx = hx_find(argv[a]);
        if (idx < 0) {
            fprintf(stderr, "no test named %s\n", argv[a]);
            hx_usage(argv[0]);
            return 2;
        }
        hx_run_in_process(idx);
        printf("ok   %s\n", argv[a]);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The temporary PKI                                                   */
/* ------------------------------------------------------------------ */


static char g_pki[512];

const char *hx_pki_dir(void)
{
    return g_pki;
}

/* ---- HTTP responses, NTLM users ---- */

char *hx_read_to_end(apm_stream *st, size_t *len)
{
    size_t cap = 4096, n = 0, got = 0;
    char *buf = hx_xmalloc(cap + 1);
    for (;;) {
        if (cap - n < 1024) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ASSERT_NOT_NULL(buf);
        }
        ASSERT_OK(apm_stream_read(st, (uint8_t *)buf, cap, n, cap - n, &got));
        if (got == 0)
            break;
        n += got;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

char *hx_response_body(apm_http_response *resp, size_t *len)
{
    apm_stream *st = NULL;
    char *body;
    ASSERT_OK(apm_http_response_get_response_stream(resp, &st));
    body = hx_read_to_end(st, len);
    ASSERT_OK(apm_stream_close(st));
    return body;
}

const char *hx_field(const char *text, const char *key)
{
    static char out[256];
    char pat[64];
    const char *p;
    size_t n = 0;
    snprintf(pat, sizeof pat, "%s=", key);
    p = strstr(text, pat);
    if (p == NULL)
        hx_fail(__FILE__, __LINE__, "no %s in \"%s\"", pat, text);
    p += strlen(pat);
    while (p[n] != '\0' && p[n] != ' ' && p[n] != '\n' && n < sizeof out - 1) {
        out[n] = p[n];
        n++;
    }
    out[n] = '\0';
    return out;
}

void hx_ntlm_users_file(void)
{
    static char path[600];
    FILE *f;
    if (path[0] != '\0')
        return;
    snprintf(path, sizeof path, "%s/apmnet-ntlm-users-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs("TESTDOM:alice:Passw0rd!\n", f);
    fclose(f);
    hx_temp_forget(path);
    setenv("NTLM_USER_FILE", path, 1);
}

/* ---- the loopback Kerberos realm ---- */

static char hx_realm[512];

/* Starts the loopback KDC (peers/krb5-loopback.sh) and exports its environment; skips the test
 * when the KDC is not installed. */
const char *hx_realm_start(void)
{
    const char *dir = getenv("APMNET_FFI_DIR");
    char cmd[1400], line[2048];
    FILE *f;
    int port = hx_free_port();
    char *tok, *save = NULL;
    snprintf(hx_realm, sizeof hx_realm, "%s/apmnet-krb5-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(hx_realm) == NULL)
        hx_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
    snprintf(cmd, sizeof cmd, "sh %s/peers/krb5-loopback.sh %s %d 2>&1", dir ? dir : "ffi-tests", hx_realm, port);
    f = popen(cmd, "r");
    ASSERT_NOT_NULL(f);
    line[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "SKIP", 4) == 0 || strncmp(line, "export ", 7) == 0)
            break;
    }
    pclose(f);
    if (strncmp(line, "SKIP", 4) == 0)
        hx_skip("%s", line + 5);
    ASSERT_STR_STARTS_WITH(line, "export ");
    line[strcspn(line, "\n")] = '\0';
    for (tok = strtok_r(line + 7, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        ASSERT_NOT_NULL(eq);
        *eq = '\0';
        setenv(tok, eq + 1, 1);
    }
    return hx_realm;
}

void hx_realm_stop(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "kill \"$(cat %s/kdc.pid)\" 2>/dev/null; rm -rf %s", hx_realm, hx_realm);
    if (system(cmd) != 0) {
        /* The KDC may be gone already; the directory is removed either way. */
    }
}

void hx_pki_make(void)
{
    const char *tmp = getenv("APMNET_TEST_TMPDIR");
    const char *args[2];
    hx_peer p;
    char line[128];
    if (tmp == NULL || *tmp == '\0')
        tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    snprintf(g_pki, sizeof g_pki, "%s/apmnet-pki-XXXXXX", tmp);
    if (mkdtemp(g_pki) == NULL)
        hx_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
    args[0] = g_pki;
    args[1] = NULL;
    hx_peer_start(&p, "make_pki.py", args);
    hx_peer_read_line(&p, line, sizeof line);
    if (strncmp(line, "SKIP", 4) == 0) {
        hx_peer_wait(&p);
        rmdir(g_pki);
        hx_skip("%s", line + 4);
    }
    ASSERT_STR_EQ(line, "OK");
    ASSERT_EQ(hx_peer_wait(&p), 0);
}

void hx_pki_remove(void)
{
    DIR *d = opendir(g_pki);
    struct dirent *e;
    char path[1024];
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", g_pki, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(g_pki);
}

const char *hx_pki_file(const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 1024, "%s/%s", g_pki, name);
    return b;
}

apm_certificate *hx_pki_load(const char *name)
{
    char cert[64], key[64];
    apm_certificate *c = NULL;
    snprintf(cert, sizeof cert, "%s.pem", name);
    snprintf(key, sizeof key, "%s.key", name);
    ASSERT_OK(apm_certificate_load_pem_file(hx_pki_file(cert), hx_pki_file(key), &c));
    return c;
}

